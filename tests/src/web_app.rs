//! The staff web app on a test stack, signed in to through a real OpenID provider: for the browser tests
//! and for the benchmark, which times its pages.
//!
//! Two steps, because the services must trust the provider before they start:
//! [`WebAppPlan::prepare`] starts the provider and points the stack's options at it; once the stack runs
//! and the directory is loaded, [`WebAppPlan::start`] gives the provider the demo's people as accounts and
//! starts `placement-web` as its client.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use placement_cli::demo::DemoDirectory;

use crate::{Stack, StackOptions, free_port, oidc::OpenIdProvider};

const WAIT: Duration = Duration::from_secs(20);

pub struct WebAppPlan {
    provider: OpenIdProvider,
    http_port: u16,
    url: String,
}

pub struct WebApp {
    pub url: String,
    pub provider: OpenIdProvider,
}

impl WebAppPlan {
    pub async fn prepare(options: &mut StackOptions) -> WebAppPlan {
        let http_port = free_port();
        let url = format!("http://127.0.0.1:{http_port}");
        let provider = OpenIdProvider::start(serde_json::json!({
            "accounts": {},
            "clients": [{
                "client_id": "placement-web",
                "client_secret": "web-secret",
                "redirect_uris": [format!("{url}/auth/callback")],
                "post_logout_redirect_uris": [format!("{url}/signed-out")],
            }],
        }))
        .await;
        options.identity_provider = Some((
            provider.discovery.jwks_uri.clone(),
            provider.discovery.issuer.clone(),
        ));
        WebAppPlan {
            provider,
            http_port,
            url,
        }
    }

    pub async fn start(mut self, stack: &mut Stack, demo: &DemoDirectory) -> WebApp {
        // The accounts name agencies by id, known once the directory is loaded.
        self.provider
            .set_accounts(placement_cli::demo::accounts(demo));
        let settings = vec![
            (
                "PLACEMENT_OIDC_ISSUER".into(),
                self.provider.discovery.issuer.clone(),
            ),
            ("PLACEMENT_OIDC_CLIENT_ID".into(), "placement-web".into()),
            ("PLACEMENT_OIDC_CLIENT_SECRET".into(), "web-secret".into()),
        ];
        assert_eq!(stack.start_web(self.http_port, settings).await, self.url);
        WebApp {
            url: self.url,
            provider: self.provider,
        }
    }
}

impl WebApp {
    /// Asserts that the session cookie `session` of a person who signed out opens nothing: the request is
    /// sent to sign in (303), as if the session had never existed.
    pub async fn assert_session_ended(&self, session: &str) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let replayed = http
            .get(self.at("/inbox"))
            .header("cookie", format!("placement_session={session}"))
            .send()
            .await
            .expect("inbox");
        assert_eq!(replayed.status(), 303, "the ended session opens nothing");
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Signs `login` in, in `client`, through the provider's login and consent pages, as a person would;
    /// ends on `path`.
    pub async fn sign_in(&self, client: &Client, login: &str, path: &str) {
        client.goto(&self.at(path)).await.expect("open the app");
        self.log_in_at_provider(client, login).await;
        self.wait_until_on(client, login, path).await;
    }

    /// Fills in the provider's login page (waiting for it) and its consent page, as `login`.
    pub async fn log_in_at_provider(&self, client: &Client, login: &str) {
        let field = client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css("input[name=login]"))
            .await
            .expect("the provider's sign-in page");
        field.send_keys(login).await.expect("login");
        client
            .find(Locator::Css("input[name=password]"))
            .await
            .expect("password field")
            .send_keys("any password")
            .await
            .expect("password");
        client
            .find(Locator::Css("button[type=submit]"))
            .await
            .expect("sign-in button")
            .click()
            .await
            .expect("sign in");
        // Consent to the web app's access (asked every time: refresh tokens need it), once the login
        // page has gone.
        let deadline = Instant::now() + WAIT;
        loop {
            if !exists(client, "input[name=login]").await
                && let Ok(button) = client.find(Locator::Css("button[type=submit]")).await
                && button.click().await.is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "{login}: no consent page");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `client` is on the app's `path` (after signing `login` in).
    pub async fn wait_until_on(&self, client: &Client, login: &str, path: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let here = client.current_url().await.expect("url").to_string();
            if here.starts_with(&self.at(path)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{login} not back on {path} after signing in, but on {here}\n{}",
                self.provider.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub async fn exists(client: &Client, css: &str) -> bool {
    client
        .find_all(Locator::Css(css))
        .await
        .is_ok_and(|v| !v.is_empty())
}
