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
use crate::{AppState, WebError, i18n, i18n::Lang, session, session::Session, store};

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    return_to: String,
}

/// Only a path of this app is returned to: never another site (an open redirect).
fn local_path(path: &str) -> String {
    if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') {
        path.to_string()
    } else {
        "/inbox".into()
    }
}

/// Sends the person to the identity provider.
pub async fn sign_in(
    State(app): State<AppState>,
    Query(q): Query<SignInQuery>,
) -> Result<Response, WebError> {
    let start = app
        .oidc
        .start()
        .await
        .map_err(|e| WebError::Provider(e.to_string()))?;
    store::insert_sign_in(
        &app.pool,
        &start.state,
        &start.pkce_verifier,
        &start.nonce,
        &local_path(&q.return_to),
    )
    .await?;
    Ok(Redirect::to(&start.url).into_response())
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
    // A state we did not hand out (or used already, or too old) is a forged or replayed answer.
    let Some(pending) = store::take_sign_in(&app.pool, &q.state).await? else {
        return Err(WebError::BadRequest("unknown or expired sign-in".into()));
    };
    let tokens = app
        .oidc
        .finish(q.code, pending.pkce_verifier, pending.nonce)
        .await
        .map_err(|e| WebError::Provider(e.to_string()))?;
    let jar = session::begin(&app, tokens, jar).await?;
    Ok((jar, Redirect::to(&pending.return_to)).into_response())
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
    let jar = session.end(&app, jar).await?;
    Ok((jar, Redirect::to("/signed-out")).into_response())
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
pub async fn language(jar: CookieJar, Query(q): Query<LanguageQuery>) -> Response {
    let lang = Lang::parse(&q.lang).unwrap_or(Lang::Bg);
    let cookie = Cookie::build((i18n::COOKIE, lang.code()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(time_year())
        .build();
    (jar.add(cookie), Redirect::to(&local_path(&q.return_to))).into_response()
}

fn time_year() -> cookie::time::Duration {
    cookie::time::Duration::days(365)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path("/referrals/1?x=2"), "/referrals/1?x=2");
        for evil in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "",
        ] {
            assert_eq!(local_path(evil), "/inbox", "{evil}");
        }
    }
}
