//! A sign-in under way, kept in a short-lived cookie of the browser that started it (`__Host-` prefixed and
//! `Secure` over HTTPS, plain over HTTP, as the session's cookie). The provider's answer is taken only in
//! that browser: an attacker's half-done sign-in cannot be finished in a victim's browser (who would then
//! work in the attacker's agency), and an anonymous `/sign-in` writes nothing on the server.
//!
//! Nothing in it is worth more than the browser holding it: its PKCE verifier and nonce finish only the
//! sign-in that browser started, with the code the provider sends back to that browser.

use axum_extra::extract::{
    CookieJar,
    cookie::{Cookie, SameSite},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// How long a person may take at the provider's pages.
const LIFETIME_MINUTES: i64 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: String,
    /// A path of this app, checked when the sign-in starts and again when it ends (the cookie is the
    /// browser's to change).
    pub return_to: String,
}

fn cookie_name(secure: bool) -> &'static str {
    // The `__Host-` prefix makes the browser refuse the cookie unless Secure, path `/` and no domain: no
    // sibling host can plant one.
    if secure {
        "__Host-placement_sign_in"
    } else {
        "placement_sign_in"
    }
}

/// The random values openidconnect makes are base64url, so `.` separates them.
fn is_token(part: &str) -> bool {
    !part.is_empty()
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl PendingSignIn {
    fn encode(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.state,
            self.pkce_verifier,
            self.nonce,
            URL_SAFE_NO_PAD.encode(&self.return_to)
        )
    }

    fn decode(value: &str) -> Option<Self> {
        let mut parts = value.split('.');
        let (state, verifier, nonce, return_to) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || ![state, verifier, nonce].into_iter().all(is_token) {
            return None;
        }
        let return_to = String::from_utf8(URL_SAFE_NO_PAD.decode(return_to).ok()?).ok()?;
        Some(Self {
            state: state.into(),
            pkce_verifier: verifier.into(),
            nonce: nonce.into(),
            return_to,
        })
    }

    /// The jar with this sign-in's cookie added (replacing any earlier sign-in of the browser's).
    pub fn keep(&self, jar: CookieJar, secure: bool) -> CookieJar {
        let cookie = Cookie::build((cookie_name(secure), self.encode()))
            .path("/")
            .http_only(true)
            .secure(secure)
            // Lax: the provider sends the person back with a top-level GET from its own site.
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::minutes(LIFETIME_MINUTES))
            .build();
        jar.add(cookie)
    }

    /// The sign-in this browser started, if `state` is its; then the jar that removes the cookie (it is
    /// used once). A state this browser did not start leaves its own sign-in as it was.
    pub fn take(jar: CookieJar, secure: bool, state: &str) -> (CookieJar, Option<Self>) {
        let pending = jar
            .get(cookie_name(secure))
            .and_then(|c| Self::decode(c.value()))
            .filter(|p| same(p.state.as_bytes(), state.as_bytes()));
        match pending {
            Some(p) => (
                jar.remove(Cookie::build(cookie_name(secure)).path("/")),
                Some(p),
            ),
            None => (jar, None),
        }
    }
}

/// Compared in constant time.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> PendingSignIn {
        PendingSignIn {
            state: "st4te_-x".into(),
            pkce_verifier: "v3rifier".into(),
            nonce: "n0nce".into(),
            return_to: "/referrals/1?x=2&y=.".into(),
        }
    }

    #[test]
    fn a_sign_in_is_taken_once_and_only_by_its_state() {
        for secure in [false, true] {
            let jar = pending().keep(CookieJar::new(), secure);
            let cookie = jar.get(cookie_name(secure)).expect("kept").clone();
            assert_eq!(cookie.http_only(), Some(true));
            assert_eq!(cookie.secure(), Some(secure));
            assert_eq!(cookie.path(), Some("/"));
            assert_eq!(cookie.same_site(), Some(SameSite::Lax));
            assert!(cookie.max_age().is_some_and(|a| a.whole_minutes() == 10));

            let (kept, none) = PendingSignIn::take(jar.clone(), secure, "another-state");
            assert_eq!(none, None);
            assert!(
                kept.get(cookie_name(secure)).is_some(),
                "its own sign-in stays"
            );
            let (after, taken) = PendingSignIn::take(jar, secure, "st4te_-x");
            assert_eq!(taken, Some(pending()));
            assert!(after.get(cookie_name(secure)).is_none(), "used once");
        }
        assert_eq!(cookie_name(true), "__Host-placement_sign_in");
    }

    #[test]
    fn a_cookie_not_made_here_is_no_sign_in() {
        for value in [
            "",
            "a.b.c",
            "a.b.c.d.e",
            "a..c.L2luYm94",
            "a b.b.c.L2luYm94",
            "a.b.c.%%%",
        ] {
            assert_eq!(PendingSignIn::decode(value), None, "{value:?}");
        }
        assert_eq!(PendingSignIn::decode(&pending().encode()), Some(pending()));
    }
}
