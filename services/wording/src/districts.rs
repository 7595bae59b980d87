//! Districts by name, from the official EKATTE list the directory carries (`municipalities.csv`), in the
//! form a sentence names them: «област Враца», «Vratsa Province».

use std::{collections::HashMap, sync::OnceLock};

use placement_proto::v1::Language;

const MUNICIPALITIES_CSV: &str = include_str!("../../directory/municipalities.csv");

/// Each district's code with its Bulgarian and English names.
fn names() -> &'static HashMap<&'static str, (&'static str, &'static str)> {
    static NAMES: OnceLock<HashMap<&'static str, (&'static str, &'static str)>> = OnceLock::new();
    NAMES.get_or_init(|| {
        // oblast_code,oblast_name_bg,oblast_name_en,…: no field holds a comma or a quote.
        (MUNICIPALITIES_CSV.lines().skip(1))
            .filter_map(|line| {
                let mut fields = line.split(',');
                Some((fields.next()?, (fields.next()?, fields.next()?)))
            })
            .collect()
    })
}

/// The district `code` as a sentence names it. EKATTE calls both Sofias «София»; people tell the
/// capital's district from the one around it. A code that is not a district is left as it is.
pub fn district(code: &str, language: Language) -> String {
    let en = language == Language::En;
    match code {
        "SOF" if en => "Sofia City".into(),
        "SOF" => "София-град".into(),
        "SFO" if en => "Sofia Province".into(),
        "SFO" => "Софийска област".into(),
        _ => match names().get(code) {
            Some((_, name)) if en => format!("{name} Province"),
            Some((name, _)) => format!("област {name}"),
            None => code.to_string(),
        },
    }
}

/// Every district's code, for the tests that no notice shows one.
#[cfg(test)]
pub(crate) fn codes() -> impl Iterator<Item = &'static str> {
    names().keys().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_28_districts_are_named_in_both_languages() {
        assert_eq!(codes().count(), 28);
        assert_eq!(district("VRC", Language::Bg), "област Враца");
        assert_eq!(district("VRC", Language::En), "Vratsa Province");
        assert_eq!(district("SFO", Language::Bg), "Софийска област");
        assert_eq!(district("SOF", Language::En), "Sofia City");
        for code in codes() {
            let bg = district(code, Language::Bg);
            assert!(!bg.contains(code), "{code}: {bg}");
            assert!(bg.chars().all(|c| !c.is_ascii_alphabetic()), "{bg}");
        }
    }
}
