//! Sessions: a random id in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` and `__Host-` over HTTPS), the
//! rest server-side. A session ends when unused for `PLACEMENT_WEB_SESSION_IDLE`, at
//! `PLACEMENT_WEB_SESSION_MAX` after sign-in, when its access token can no longer be refreshed, or on
//! sign-out. Who the person is (agency, roles) is read from their access token, verified as the services
//! verify it.
//!
//! The tokens are stored sealed with a key derived from the cookie's id, which is not stored (only its
//! SHA-256, for finding the row): the table, or a backup of it, gives no one the person's tokens.

use std::time::Duration;

use axum::{extract::FromRequestParts, http::request::Parts};
use axum_extra::extract::{
    CookieJar,
    cookie::{Cookie, SameSite},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use placement_platform::{
    caller::{Act, Roles},
    seal::Sealer,
};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{AppState, WebError, oidc::Tokens, store};

/// A signed-in person, for one request.
#[derive(Debug, Clone)]
pub struct Session {
    id_hash: Vec<u8>,
    pub agency_id: Uuid,
    pub roles: Roles,
    access_token: String,
    /// The sign-in's ID token, handed back to the provider at sign-out.
    id_token: Option<String>,
    /// The token every form of this session carries.
    pub csrf: String,
}

/// Access tokens are refreshed this long before they expire.
const REFRESH_AHEAD: chrono::Duration = chrono::Duration::seconds(60);
/// `last_seen_at` is written at most this often.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);
/// How often a long-lived response of a session (the inbox's live events) checks that the session lives:
/// a sign-out on any instance, an idle or a spent session ends it within this.
const STREAM_CHECK: Duration = Duration::from_secs(10);

pub fn cookie_name(app: &AppState) -> &'static str {
    // The `__Host-` prefix makes the browser refuse the cookie unless Secure, path `/` and no domain.
    if app.secure_cookie() {
        "__Host-placement_session"
    } else {
        "placement_session"
    }
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// What seals a session's tokens: a key only the cookie's id gives (a hash of it apart from the one
/// stored, so the stored one does not give it).
struct SessionKey(Sealer);

impl SessionKey {
    const ACCESS: &[u8] = b"access_token";
    const REFRESH: &[u8] = b"refresh_token";
    const ID: &[u8] = b"id_token";

    fn of(id: &str) -> Self {
        let key: [u8; 32] = Sha256::new()
            .chain_update(b"placement-web session tokens\0")
            .chain_update(id.as_bytes())
            .finalize()
            .into();
        Self(Sealer::new(&key))
    }

    fn seal(&self, tokens: &Tokens) -> (Vec<u8>, Option<Vec<u8>>) {
        (
            self.0.seal(Self::ACCESS, &tokens.access_token),
            (tokens.refresh_token.as_deref()).map(|t| self.0.seal(Self::REFRESH, t)),
        )
    }

    /// The access token and refresh token of `row`; `None` if they do not open (the row was altered).
    fn open(&self, row: &store::SessionRow) -> Option<(String, Option<String>)> {
        let access = self.0.open(Self::ACCESS, &row.access_token_sealed).ok()?;
        let refresh = match &row.refresh_token_sealed {
            Some(sealed) => Some(self.0.open(Self::REFRESH, sealed).ok()?),
            None => None,
        };
        Some((access, refresh))
    }

    fn seal_id_token(&self, tokens: &Tokens) -> Option<Vec<u8>> {
        (tokens.id_token.as_deref()).map(|t| self.0.seal(Self::ID, t))
    }

    /// The ID token of `row`, if it has one that opens.
    fn open_id_token(&self, row: &store::SessionRow) -> Option<String> {
        let sealed = row.id_token_sealed.as_ref()?;
        self.0.open(Self::ID, sealed).ok()
    }
}

impl Session {
    /// A request to a service made as this person.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = format!("Bearer {}", self.access_token).parse() {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// Resolves when the session has ended (signed out, idle too long, past its end): what a long-lived
    /// response made for it ends with. A database outage does not end it.
    pub fn ended(&self, app: &AppState) -> impl Future<Output = ()> + Send + use<> {
        let (pool, id_hash) = (app.pool.clone(), self.id_hash.clone());
        let idle = chrono::Duration::from_std(app.config.web_session_idle)
            .unwrap_or(chrono::Duration::minutes(30));
        async move {
            loop {
                tokio::time::sleep(STREAM_CHECK).await;
                match store::session_lives(&pool, &id_hash, idle).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(error = %e, "cannot check a streaming session"),
                }
            }
        }
    }

    /// Whether this person's roles allow `act` (the services decide; this only chooses what to offer).
    pub fn may(&self, act: Act) -> bool {
        self.roles.any(act.roles())
    }

    /// Ends the session; returns the cookie jar that removes the cookie, and the sign-in's ID token (for
    /// ending the provider's session too).
    pub async fn end(
        self,
        app: &AppState,
        jar: CookieJar,
    ) -> Result<(CookieJar, Option<String>), WebError> {
        store::delete_session(&app.pool, &self.id_hash).await?;
        let jar = jar.remove(Cookie::build(cookie_name(app)).path("/"));
        Ok((jar, self.id_token))
    }
}

/// Starts a session for the person `tokens` are for; returns the cookie that names it.
pub async fn begin(app: &AppState, tokens: Tokens, jar: CookieJar) -> Result<CookieJar, WebError> {
    let caller = app
        .verifier
        .verify(&tokens.access_token)
        .map_err(|e| WebError::Provider(format!("the access token: {}", e.message())))?;
    let id = random_token();
    let max = chrono::Duration::from_std(app.config.web_session_max)
        .unwrap_or(chrono::Duration::hours(12));
    let key = SessionKey::of(&id);
    let (access_token_sealed, refresh_token_sealed) = key.seal(&tokens);
    let row = store::SessionRow {
        id_hash: hash(&id),
        subject: caller.subject.clone(),
        agency_id: caller.agency_id,
        roles: caller
            .roles
            .list()
            .iter()
            .map(|r| r.as_str().to_string())
            .collect(),
        access_token_sealed,
        access_expires_at: tokens.access_expires_at,
        refresh_token_sealed,
        id_token_sealed: key.seal_id_token(&tokens),
        csrf_token: random_token(),
        last_seen_at: Utc::now(),
        expires_at: Utc::now() + max,
    };
    store::insert_session(&app.pool, &row).await?;
    tracing::info!(agency_id = %caller.agency_id, "signed in");
    let cookie = Cookie::build((cookie_name(app), id))
        .path("/")
        .http_only(true)
        .secure(app.secure_cookie())
        .same_site(SameSite::Lax)
        .build();
    Ok(jar.add(cookie))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, WebError> {
        let sign_in = || WebError::SignIn {
            return_to: return_to(parts),
        };
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(cookie) = jar.get(cookie_name(app)) else {
            return Err(sign_in());
        };
        let id_hash = hash(cookie.value());
        let idle = chrono::Duration::from_std(app.config.web_session_idle)
            .unwrap_or(chrono::Duration::minutes(30));
        let Some(row) = store::live_session(&app.pool, &id_hash, idle).await? else {
            return Err(sign_in());
        };
        let key = SessionKey::of(cookie.value());
        let Some((mut access_token, refresh_token)) = key.open(&row) else {
            store::delete_session(&app.pool, &id_hash).await?;
            return Err(sign_in());
        };
        if row.access_expires_at - REFRESH_AHEAD <= Utc::now() {
            let Some(tokens) = refresh(app, &row, &key, refresh_token).await? else {
                store::delete_session(&app.pool, &id_hash).await?;
                return Err(sign_in());
            };
            access_token = tokens.access_token;
        } else if Utc::now() - row.last_seen_at > TOUCH_EVERY {
            store::touch_session(&app.pool, &id_hash).await?;
        }
        // Verified as the services will verify it: a token they would refuse ends the session here.
        let Ok(caller) = app.verifier.verify(&access_token) else {
            store::delete_session(&app.pool, &id_hash).await?;
            return Err(sign_in());
        };
        Ok(Session {
            id_hash,
            agency_id: caller.agency_id,
            roles: caller.roles,
            access_token,
            id_token: key.open_id_token(&row),
            csrf: row.csrf_token,
        })
    }
}

/// New tokens for a session whose access token is about to expire; `None` when it cannot be refreshed
/// (no refresh token, or the provider refuses it).
async fn refresh(
    app: &AppState,
    row: &store::SessionRow,
    key: &SessionKey,
    refresh_token: Option<String>,
) -> Result<Option<Tokens>, WebError> {
    let Some(refresh_token) = refresh_token else {
        return Ok(None);
    };
    match app.oidc.refresh(&refresh_token).await {
        Ok(tokens) => {
            let (access, refresh) = key.seal(&tokens);
            store::replace_tokens(
                &app.pool,
                &row.id_hash,
                &access,
                tokens.access_expires_at,
                refresh.as_deref(),
            )
            .await?;
            tracing::debug!(agency_id = %row.agency_id, "access token refreshed");
            Ok(Some(tokens))
        }
        Err(e) => {
            tracing::info!(error = %e, agency_id = %row.agency_id, "the session's token could not be refreshed; signed out");
            Ok(None)
        }
    }
}

/// Where to come back to after signing in: the page asked for, if it was a page (not a form's POST).
fn return_to(parts: &Parts) -> String {
    if parts.method == axum::http::Method::GET
        && let Some(pq) = parts.uri.path_and_query()
        && !pq.path().starts_with("/auth/")
    {
        return pq.as_str().to_string();
    }
    "/inbox".into()
}

/// Removes ended sessions every minute.
pub async fn sweep(app: AppState, shutdown: CancellationToken) {
    let idle = chrono::Duration::from_std(app.config.web_session_idle)
        .unwrap_or(chrono::Duration::minutes(30));
    loop {
        match store::delete_expired(&app.pool, idle).await {
            Ok(n) if n > 0 => tracing::info!(sessions = n, "ended sessions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not remove ended sessions"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Whether `given` is this session's CSRF token (compared in constant time).
pub fn csrf_matches(session: &Session, given: &str) -> bool {
    let (a, b) = (session.csrf.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &SessionKey, tokens: &Tokens) -> store::SessionRow {
        let (access_token_sealed, refresh_token_sealed) = key.seal(tokens);
        store::SessionRow {
            id_hash: hash("id"),
            subject: "s".into(),
            agency_id: Uuid::nil(),
            roles: Vec::new(),
            access_token_sealed,
            access_expires_at: Utc::now(),
            refresh_token_sealed,
            id_token_sealed: key.seal_id_token(tokens),
            csrf_token: String::new(),
            last_seen_at: Utc::now(),
            expires_at: Utc::now(),
        }
    }

    #[test]
    fn a_sessions_tokens_open_only_with_its_cookie() {
        let tokens = Tokens {
            access_token: "eyJ.access".into(),
            access_expires_at: Utc::now(),
            refresh_token: Some("refresh-secret".into()),
            id_token: Some("eyJ.id".into()),
        };
        let id = random_token();
        let stored = row(&SessionKey::of(&id), &tokens);
        let sealed = [
            &stored.access_token_sealed[..],
            stored.refresh_token_sealed.as_deref().unwrap(),
            stored.id_token_sealed.as_deref().unwrap(),
        ];
        for bytes in sealed {
            let text = String::from_utf8_lossy(bytes);
            assert!(!text.contains("access") && !text.contains("refresh-secret"));
            assert!(!text.contains("eyJ.id"));
        }
        assert_eq!(
            SessionKey::of(&id).open(&stored),
            Some(("eyJ.access".into(), Some("refresh-secret".into())))
        );
        assert_eq!(
            SessionKey::of(&id).open_id_token(&stored),
            Some("eyJ.id".into())
        );
        assert_eq!(SessionKey::of(&random_token()).open(&stored), None);
        assert_eq!(SessionKey::of(&random_token()).open_id_token(&stored), None);
        // Neither is the stored hash of the id the key.
        let from_hash = SessionKey::of(&URL_SAFE_NO_PAD.encode(hash(&id)));
        assert_eq!(from_hash.open(&stored), None);
    }
}
