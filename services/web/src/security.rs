//! The headers every answer carries: a Content-Security-Policy that allows only the app's own script and
//! style (no inline script, no framing), no caching of pages that show cases, and over HTTPS
//! Strict-Transport-Security (a browser that has been here once never again asks over plain HTTP, where
//! the session cookie could be taken on the way).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderName, HeaderValue, header},
    middleware::Next,
    response::Response,
};

/// What every answer carries, worked out once from the configuration.
pub struct Policy {
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// A year, without `includeSubDomains`: the app does not know what else its domain serves.
const HSTS: &str = "max-age=31536000";

impl Policy {
    /// For an app reached at `public_url` whose people sign in (and out) at the provider `issuer`.
    pub fn new(public_url: &str, issuer: &str) -> Policy {
        // Signing out is a form whose answer redirects to the provider's end-session endpoint, and
        // browsers hold a form's redirects to `form-action` too.
        let provider = url::Url::parse(issuer)
            .ok()
            .map(|u| u.origin())
            .filter(url::Origin::is_tuple)
            .map(|o| format!(" {}", o.ascii_serialization()))
            .unwrap_or_default();
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'{provider}; frame-ancestors 'none'; base-uri 'none'"
        );
        let mut headers = vec![
            (header::CONTENT_SECURITY_POLICY, value(&csp)),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ];
        if public_url.starts_with("https://") {
            headers.push((
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            ));
        }
        Policy { headers }
    }
}

/// An origin's serialization is ASCII without control characters; a value that is not falls back to
/// allowing only the app's own forms.
fn value(csp: &str) -> HeaderValue {
    HeaderValue::from_str(csp).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
    })
}

pub async fn headers(State(policy): State<Arc<Policy>>, request: Request, next: Next) -> Response {
    // The icon is asked for at the address browsers use unprompted, outside /static/, and is as
    // unchanging as the rest.
    let path = request.uri().path();
    let is_static = path.starts_with("/static/") || path == "/favicon.ico";
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in &policy.headers {
        headers.insert(name.clone(), value.clone());
    }
    let cache = if is_static {
        "public, max-age=3600"
    } else {
        "no-store"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(policy: &Policy, name: &HeaderName) -> Option<String> {
        (policy.headers.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().expect("ASCII").to_string())
    }

    #[test]
    fn strict_transport_security_only_over_https() {
        let https = Policy::new(
            "https://placement.example.bg",
            "https://id.example.bg/realm",
        );
        assert_eq!(
            header_of(&https, &header::STRICT_TRANSPORT_SECURITY).as_deref(),
            Some("max-age=31536000")
        );
        let http = Policy::new("http://127.0.0.1:8080", "http://127.0.0.1:8090");
        assert_eq!(header_of(&http, &header::STRICT_TRANSPORT_SECURITY), None);
    }

    #[test]
    fn forms_may_go_to_the_app_and_its_identity_provider_only() {
        let policy = Policy::new(
            "https://placement.example.bg",
            "https://id.example.bg/realm",
        );
        let csp = header_of(&policy, &header::CONTENT_SECURITY_POLICY).expect("a CSP");
        assert!(
            csp.contains("form-action 'self' https://id.example.bg;"),
            "{csp}"
        );
        assert!(
            csp.contains("script-src 'self';") && !csp.contains("unsafe"),
            "{csp}"
        );
        let odd = Policy::new("https://placement.example.bg", "not a url");
        let csp = header_of(&odd, &header::CONTENT_SECURITY_POLICY).expect("a CSP");
        assert!(csp.contains("form-action 'self';"), "{csp}");
    }
}
