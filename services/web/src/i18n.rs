//! Every word the pages show, in Bulgarian (first) and English, from the Fluent catalogues in `locales/`
//! (the report's figures are named by the catalogue in `placement-model`, added to them here).
//! A person's choice is remembered in a cookie; until they choose, the browser's `Accept-Language` decides.

use axum::{extract::FromRequestParts, http::request::Parts};
use axum_extra::extract::CookieJar;
use fluent_templates::{
    FluentBundle, Loader,
    fluent_bundle::{FluentResource, FluentValue},
    static_loader,
};
use placement_model::figures::FIGURES;
use placement_proto::v1::Language;
use std::{borrow::Cow, collections::HashMap, convert::Infallible};
use unic_langid::{LanguageIdentifier, langid};

static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "bg",
        customise: |bundle| {
            bundle.set_use_isolating(false);
            add_figure_labels(bundle);
        },
    };
}

/// The figures' names come from the model's catalogue, which the CLI, the export and the digest use too:
/// written in `locales/` as well, the page's names could drift from theirs.
fn add_figure_labels(bundle: &mut FluentBundle<&'static FluentResource>) {
    let language = match bundle.locales.first() {
        Some(id) if *id == EN => Language::En,
        _ => Language::Bg,
    };
    let messages: String = (FIGURES.iter())
        .map(|f| format!("{} = {}\n", f.label_key(), f.label(language)))
        .collect();
    // Once per language, when the catalogues load: the bundles hold their resources for the process's life.
    let resource: &'static FluentResource = Box::leak(Box::new(
        FluentResource::try_new(messages).expect("the figures' labels are plain text"),
    ));
    bundle
        .add_resource(resource)
        .expect("no figure's label key is in locales/ too");
}

static BG: LanguageIdentifier = langid!("bg");
static EN: LanguageIdentifier = langid!("en");

/// The cookie that remembers the language chosen.
pub const COOKIE: &str = "placement_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Bg,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Bg => "bg",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "bg" => Some(Lang::Bg),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language as the exchange's messages name it (the model's catalogue is in both).
    pub fn language(self) -> Language {
        match self {
            Lang::Bg => Language::Bg,
            Lang::En => Language::En,
        }
    }

    fn id(self) -> &'static LanguageIdentifier {
        match self {
            Lang::Bg => &BG,
            Lang::En => &EN,
        }
    }

    /// The first of Bulgarian and English the browser asks for (`bg-BG,bg;q=0.9,en;q=0.8`), else Bulgarian.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut asked: Vec<(f32, Lang)> = header
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let tag = pieces.next()?.trim();
                let quality = pieces
                    .find_map(|p| p.trim().strip_prefix("q=")?.parse::<f32>().ok())
                    .unwrap_or(1.0);
                let lang = Lang::parse(tag.split('-').next()?)?;
                Some((quality, lang))
            })
            .collect();
        asked.sort_by(|a, b| b.0.total_cmp(&a.0));
        asked.first().map(|(_, l)| *l).unwrap_or(Lang::Bg)
    }

    /// The message `key`.
    pub fn t(self, key: &str) -> String {
        LOCALES.lookup(self.id(), key)
    }

    /// The message `key` with one argument.
    pub fn t1(self, key: &str, name: &str, value: impl ToString) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue<'_>> = HashMap::from([(
            Cow::Owned(name.to_string()),
            FluentValue::from(value.to_string()),
        )]);
        LOCALES.lookup_with_args(self.id(), key, &args)
    }

    /// Whether the catalogue of this language has `key` (the tests check that both have every key).
    #[cfg(test)]
    pub fn has(self, key: &str) -> bool {
        // With every argument a message takes: one missing makes the lookup fail.
        let args: HashMap<Cow<'static, str>, FluentValue<'_>> = HashMap::from([
            (Cow::Borrowed("span"), FluentValue::from("1 h")),
            (Cow::Borrowed("count"), FluentValue::from(1)),
            (Cow::Borrowed("n"), FluentValue::from(30)),
            (Cow::Borrowed("rate"), FluentValue::from("1 · 50%")),
        ]);
        LOCALES
            .try_lookup_with_args(self.id(), key, &args)
            .is_some()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(of_request(parts))
    }
}

pub fn of_request(parts: &Parts) -> Lang {
    let jar = CookieJar::from_headers(&parts.headers);
    if let Some(lang) = jar.get(COOKIE).and_then(|c| Lang::parse(c.value())) {
        return lang;
    }
    parts
        .headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Lang::from_accept_language)
        .unwrap_or(Lang::Bg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_of_ours() {
        assert_eq!(
            Lang::from_accept_language("en-GB,en;q=0.9,bg;q=0.8"),
            Lang::En
        );
        assert_eq!(Lang::from_accept_language("de,bg;q=0.5,en;q=0.4"), Lang::Bg);
        assert_eq!(Lang::from_accept_language("fr"), Lang::Bg);
        assert_eq!(Lang::from_accept_language(""), Lang::Bg);
    }

    #[test]
    fn both_catalogues_have_every_message() {
        let keys = |path: &str| -> Vec<String> {
            std::fs::read_to_string(path)
                .expect("catalogue")
                .lines()
                .filter_map(|l| {
                    let (k, _) = l.split_once(" =")?;
                    (!k.starts_with([' ', '#', '.'])).then(|| k.trim().to_string())
                })
                .collect()
        };
        let bg = keys(concat!(env!("CARGO_MANIFEST_DIR"), "/locales/bg/main.ftl"));
        let en = keys(concat!(env!("CARGO_MANIFEST_DIR"), "/locales/en/main.ftl"));
        assert!(bg.len() > 50, "{} messages", bg.len());
        for key in &en {
            assert!(bg.contains(key), "{key} is missing in Bulgarian");
            assert!(
                Lang::Bg.has(key) && Lang::En.has(key),
                "{key} does not load"
            );
        }
        for key in &bg {
            assert!(en.contains(key), "{key} is missing in English");
        }
    }
}
