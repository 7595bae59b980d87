//! Signing in and out, and the language.

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::{
    CookieJar,
    cookie::{Cookie, SameSite},
};
use serde::Deserialize;

use super::{Chrome, check_csrf, render};
use crate::{
    AppState, WebError, i18n, i18n::Lang, pending_sign_in::PendingSignIn, session, session::Session,
};

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    return_to: String,
}

/// The longest path returned to (it rides in the sign-in's cookie, which browsers cap at 4 KiB).
const MAX_RETURN_TO: usize = 2048;

/// Only a path of this app is returned to: never another site (an open redirect). The path is read as a
/// browser reads it, as a URL relative to the public URL (browsers drop tabs and newlines, so "/\t/x" is
/// "//x", another host), and what is returned to is that URL's path, query and fragment as parsed.
fn local_path(public_url: &str, path: &str) -> String {
    let fallback = || "/inbox".to_string();
    if !path.starts_with('/') || path.len() > MAX_RETURN_TO {
        return fallback();
    }
    let Ok(base) = url::Url::parse(public_url) else {
        return fallback();
    };
    match base.join(path) {
        Ok(target) if target.origin() == base.origin() => {
            // Dot segments can leave a path that starts "//" ("/.//evil.example"), which a browser reads
            // as another host when it is sent alone.
            let local = &target[url::Position::BeforePath..];
            if local.starts_with("//") || local.starts_with("/\\") {
                fallback()
            } else {
                local.to_string()
            }
        }
        _ => fallback(),
    }
}

/// Sends the person to the identity provider, the sign-in bound to this browser by a short-lived cookie.
pub async fn sign_in(
    State(app): State<AppState>,
    jar: CookieJar,
    Query(q): Query<SignInQuery>,
) -> Result<Response, WebError> {
    let start = app
        .oidc
        .start()
        .await
        .map_err(|e| WebError::Provider(e.to_string()))?;
    let pending = PendingSignIn {
        state: start.state,
        pkce_verifier: start.pkce_verifier,
        nonce: start.nonce,
        return_to: local_path(&app.config.public_url, &q.return_to),
    };
    let jar = pending.keep(jar, app.secure_cookie());
    Ok((jar, Redirect::to(&start.url)).into_response())
}

#[derive(Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// The provider sends the person back here with a code.
pub async fn callback(
    State(app): State<AppState>,
    jar: CookieJar,
    Query(q): Query<Callback>,
) -> Result<Response, WebError> {
    if !q.error.is_empty() {
        return Err(WebError::Provider(format!(
            "{}: {}",
            q.error, q.error_description
        )));
    }
    // A state this browser was not handed (or used already, or too old) is a forged or replayed answer,
    // or another browser's sign-in.
    let (jar, pending) = PendingSignIn::take(jar, app.secure_cookie(), &q.state);
    let Some(pending) = pending else {
        return Err(WebError::BadRequest("unknown or expired sign-in".into()));
    };
    let tokens = app
        .oidc
        .finish(q.code, pending.pkce_verifier, pending.nonce)
        .await
        .map_err(|e| WebError::Provider(e.to_string()))?;
    let jar = session::begin(&app, tokens, jar).await?;
    let return_to = local_path(&app.config.public_url, &pending.return_to);
    Ok((jar, Redirect::to(&return_to)).into_response())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(app): State<AppState>,
    session: Session,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_csrf(&session, &form.csrf)?;
    let (jar, id_token) = session.end(&app, jar).await?;
    // The provider's session ends too, or the next person at this browser would be signed in as this
    // one by a click; it sends the person back to the signed-out page.
    let signed_out = format!("{}/signed-out", app.config.public_url.trim_end_matches('/'));
    let target = app
        .oidc
        .end_session_url(id_token.as_deref(), &signed_out)
        .await
        .unwrap_or_else(|| "/signed-out".into());
    Ok((jar, Redirect::to(&target)).into_response())
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOut {
    c: Chrome,
}

pub async fn signed_out(lang: Lang) -> Result<Response, WebError> {
    render(&SignedOut {
        c: Chrome::anonymous(lang),
    })
}

#[derive(Deserialize)]
pub struct LanguageQuery {
    lang: String,
    #[serde(default)]
    return_to: String,
}

/// Remembers the language chosen for a year.
pub async fn language(
    State(app): State<AppState>,
    jar: CookieJar,
    Query(q): Query<LanguageQuery>,
) -> Response {
    let lang = Lang::parse(&q.lang).unwrap_or(Lang::Bg);
    let cookie = Cookie::build((i18n::COOKIE, lang.code()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(time_year())
        .build();
    let return_to = local_path(&app.config.public_url, &q.return_to);
    (jar.add(cookie), Redirect::to(&return_to)).into_response()
}

fn time_year() -> cookie::time::Duration {
    cookie::time::Duration::days(365)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    const PUBLIC: &str = "https://placement.example.bg";

    #[test]
    fn only_local_paths_are_returned_to() {
        for (path, expected) in [
            ("/referrals/1?x=2", "/referrals/1?x=2"),
            ("/inbox#top", "/inbox#top"),
            ("/a/../referrals", "/referrals"),
            // An encoded tab stays in the path: browsers do not drop it.
            ("/%09/evil.example", "/%09/evil.example"),
        ] {
            assert_eq!(local_path(PUBLIC, path), expected, "{path}");
        }
        let long = format!("/{}", "a".repeat(3000));
        for evil in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/.//evil.example",
            "/a/..//evil.example",
            "/%2e//evil.example",
            "/./\\evil.example",
            "\t//evil.example",
            "https:evil.example",
            "javascript:alert(1)",
            "inbox",
            "",
            &long,
        ] {
            assert_eq!(local_path(PUBLIC, evil), "/inbox", "{evil:?}");
        }
    }
}
