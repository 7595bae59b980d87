//! Signing in to and out of the web app, against the real OpenID provider, and its readiness: signing out
//! ends the provider's session too (the next sign-in at that browser asks for a password); a return path
//! holding a tab (which browsers drop, making `//host`) lands on this site, after choosing the language and
//! after signing in; the provider's answer to a sign-in is taken only in the browser that started it;
//! anonymous sign-ins write nothing on the server; and every process of a stack answers `/readyz`.
//!
//! The "other site" of the redirect checks is the provider's own loopback address: were a redirect to
//! escape, the browser would still go nowhere but this machine.

use std::{collections::BTreeMap, time::Duration};

use fantoccini::{Client, Locator};
use placement_e2e::{
    StackOptions,
    browser::Driver,
    web_app::{WebApp, WebAppPlan},
};
use sqlx::PgConnection;

use crate::support::{Fixture, WAIT};

/// The exchange with the demo directory and the web app, signed in to through the provider.
async fn start() -> (Fixture, WebApp) {
    let mut options = StackOptions::default();
    let plan = WebAppPlan::prepare(&mut options).await;
    let mut fixture = Fixture::with(options).await;
    let app = plan.start(&mut fixture.stack, &fixture.demo).await;
    (fixture, app)
}

/// `/\t/<the provider's host:port>/`, encoded as a query value: a path to a browser that keeps tabs, another
/// site to one that drops them.
fn tab_path(web: &WebApp) -> String {
    let elsewhere = web
        .provider
        .discovery
        .issuer
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .replace(':', "%3A");
    format!("%2F%09%2F{elsewhere}%2F")
}

async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap_or_default()
}

/// One person at a shared office PC signs out; the next one to click "sign in" there is asked for a
/// password by the provider, and works as themselves. Before that, the tab redirects land on this site.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_out_ends_the_providers_session_and_return_paths_stay_on_this_site() {
    let (_fixture, web) = start().await;
    let mut driver = Driver::start().await;
    let pc = driver.person().await;

    // Signing in from a link whose return path holds a tab: back on this site, at the inbox.
    let tab = tab_path(&web);
    pc.goto(&web.at(&format!("/sign-in?return_to={tab}")))
        .await
        .expect("open the sign-in link");
    web.log_in_at_provider(&pc, "pirdop-caseworker").await;
    web.wait_until_on(&pc, "pirdop-caseworker", "/inbox").await;
    // The language link with the same return path: back on this site too.
    pc.goto(&web.at(&format!("/language?lang=en&return_to={tab}")))
        .await
        .expect("choose the language");
    web.wait_until_on(&pc, "pirdop-caseworker", "/inbox").await;
    let first_agency = text_of(&pc, "#agency-name").await;
    let old_session = pc
        .get_named_cookie("placement_session")
        .await
        .expect("the session cookie")
        .value()
        .to_string();

    click(&pc, "#sign-out").await;
    // The provider's end-session page proceeds (given the ID token as the hint) and sends the person back.
    web.wait_until_on(&pc, "pirdop-caseworker", "/signed-out")
        .await;
    web.assert_session_ended(&old_session).await;

    // The next person clicks "sign in": the provider asks who they are, with a password, not just for
    // consent as the last person.
    click(&pc, "#sign-in-again").await;
    pc.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("input[name=password]"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no password asked after signing out: {e}\n{}",
                web.provider.logs()
            )
        });
    let here = pc.current_url().await.expect("url").to_string();
    assert!(
        here.starts_with(&web.provider.discovery.issuer),
        "the provider's login page, not {here}"
    );
    web.log_in_at_provider(&pc, "vratsa-provider").await;
    web.wait_until_on(&pc, "vratsa-provider", "/inbox").await;
    let second_agency = text_of(&pc, "#agency-name").await;
    assert_ne!(
        second_agency, first_agency,
        "the next person works as their own agency"
    );
    pc.close().await.ok();
}

/// Every process of a stack with the web app is ready; an anonymous `/sign-in` writes nothing on the
/// server, however often; a sign-in's answer opened in another browser (one that never started a sign-in,
/// or started one of its own) is refused and signs no one in, while in the browser that started it the
/// same answer is taken, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_is_ready_and_a_sign_in_is_bound_to_its_browser() {
    let (fixture, web) = start().await;
    every_process_answers_ready(&fixture.stack.metrics).await;
    let mut db = fixture.stack.db().await;

    // Anonymous sign-ins: each is a cookie of the browser's and a redirect to the provider, no row.
    let rows_before = web_rows(&mut db).await;
    let mut anonymous = Browser::new();
    for _ in 0..50 {
        let started = anonymous
            .get(&web.at("/sign-in?return_to=%2Freferrals"))
            .await;
        assert_eq!(started.status(), 303);
        let location = started.headers()["location"].to_str().expect("location");
        assert!(
            location.starts_with(&web.provider.discovery.authorization_endpoint),
            "{location}"
        );
        assert!(started.headers().get("strict-transport-security").is_none());
        let cookie = set_cookie(&started, "placement_sign_in").expect("the sign-in's cookie");
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(cookie::SameSite::Lax));
        assert_eq!(cookie.path(), Some("/"));
        assert_eq!(cookie.max_age(), Some(cookie::time::Duration::minutes(10)));
    }
    assert_eq!(web_rows(&mut db).await, rows_before, "nothing written");

    // Choosing the language with a return path holding a tab: back to this site.
    let language = anonymous
        .get(&web.at(&format!("/language?lang=en&return_to={}", tab_path(&web))))
        .await;
    assert_eq!(language.status(), 303);
    assert_eq!(language.headers()["location"], "/inbox");

    // The attacker's half-done sign-in (its return path holding a tab), opened in two victims' browsers.
    let mut attacker = Browser::new();
    let start = format!("/sign-in?return_to={}", tab_path(&web));
    let answer = half_done_sign_in(&web, &mut attacker, &start, "vratsa-dsa").await;
    let mut never_started = Browser::new();
    let mut started_own = Browser::new();
    assert_eq!(started_own.get(&web.at("/sign-in")).await.status(), 303);
    for (who, victim) in [
        ("never started", &mut never_started),
        ("started its own", &mut started_own),
    ] {
        let finished = victim.get(&answer).await;
        assert_eq!(finished.status(), 400, "{who}");
        assert!(!victim.holds("placement_session"), "{who}: signed in");
    }
    assert!(
        started_own.holds("placement_sign_in"),
        "a foreign answer leaves the browser's own sign-in as it was"
    );
    assert_eq!(sessions(&mut db).await, 0);

    // In the attacker's own browser the same answer is taken (the code and state were good): once, and
    // back on this site.
    let finished = attacker.get(&answer).await;
    assert_eq!(finished.status(), 303);
    assert_eq!(finished.headers()["location"], "/inbox");
    assert!(attacker.holds("placement_session"));
    assert!(!attacker.holds("placement_sign_in"), "used once");
    assert_eq!(sessions(&mut db).await, 1);
    assert_eq!(attacker.get(&web.at("/inbox")).await.status(), 200);
    assert_eq!(attacker.get(&answer).await.status(), 400, "replayed");
}

/// Waits until every process's metrics port answers `/readyz` 200 `SERVING` (and `/livez`), the web
/// app's included.
async fn every_process_answers_ready(targets: &BTreeMap<String, String>) {
    assert!(targets.contains_key("web"), "{targets:?}");
    assert_eq!(
        targets.len(),
        placement_platform::services::ALL.len() + 1,
        "{targets:?}"
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    for (name, addr) in targets {
        let live = http
            .get(format!("http://{addr}/livez"))
            .send()
            .await
            .expect("livez");
        assert_eq!(live.status(), 200, "{name} /livez");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let answer = match http.get(format!("http://{addr}/readyz")).send().await {
                Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                Err(e) => (0, e.to_string()),
            };
            if answer == (200, "SERVING".to_string()) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} /readyz still {answer:?} after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Rows in every table of the web app's schema.
async fn web_rows(db: &mut PgConnection) -> i64 {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'web' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut *db)
    .await
    .expect("the web app's tables");
    assert!(tables.iter().any(|t| t == "sessions"), "{tables:?}");
    let mut rows = 0;
    for table in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM web.\"{table}\""))
            .fetch_one(&mut *db)
            .await
            .expect("count");
        rows += n;
    }
    rows
}

async fn sessions(db: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM web.sessions")
        .fetch_one(db)
        .await
        .expect("sessions")
}

/// Starts a sign-in in `browser` at the app's `start` and goes through the provider's login and consent
/// pages as `login`, up to the provider's answer: the callback URL (code and state), not yet opened.
async fn half_done_sign_in(
    web: &WebApp,
    browser: &mut Browser,
    start: &str,
    login: &str,
) -> String {
    let callback = web.at("/auth/callback");
    let mut url = web.at(start);
    let mut response = browser.get(&url).await;
    for _ in 0..16 {
        if response.status().is_redirection() {
            let location = response.headers()["location"].to_str().expect("location");
            url = join(&url, location);
            if url.starts_with(&callback) {
                return url;
            }
            response = browser.get(&url).await;
            continue;
        }
        let status = response.status();
        let page = response.text().await.expect("a page");
        assert_eq!(status, 200, "{url}:\n{page}");
        let action = join(&url, &between(&page, "action=\"", "\""));
        let prompt = between(&page, "name=\"prompt\" value=\"", "\"");
        let mut form = vec![("prompt", prompt.as_str())];
        if prompt == "login" {
            form.extend([("login", login), ("password", "any password")]);
        }
        response = browser.post(&action, &form).await;
        url = action;
    }
    panic!("no answer from the provider after 16 steps, at {url}")
}

fn join(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(location))
        .expect("a URL")
        .to_string()
}

/// The text of `page` between the first `before` and the next `after`.
fn between(page: &str, before: &str, after: &str) -> String {
    let start = page
        .find(before)
        .unwrap_or_else(|| panic!("no {before:?} in:\n{page}"))
        + before.len();
    let len = page[start..].find(after).expect("closed");
    page[start..start + len].to_string()
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<cookie::Cookie<'static>> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| cookie::Cookie::parse(v.to_string()).ok())
        .find(|c| c.name() == name)
}

/// A browser's cookies as far as these requests need: by name and path (cookies ignore ports, so the app's
/// and the provider's, both on 127.0.0.1, share one jar, as in a browser); redirects not followed.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<(String, String), String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    fn holds(&self, name: &str) -> bool {
        self.cookies.keys().any(|(n, _)| n == name)
    }

    fn cookie_header(&self, url: &str) -> String {
        let path = url::Url::parse(url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        (self.cookies.iter())
            .filter(|((_, p), _)| path.starts_with(p.as_str()))
            .map(|((name, _), value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        let now = cookie::time::OffsetDateTime::now_utc();
        for value in response.headers().get_all("set-cookie") {
            let Some(c) =
                (value.to_str().ok()).and_then(|v| cookie::Cookie::parse(v.to_string()).ok())
            else {
                continue;
            };
            let key = (c.name().to_string(), c.path().unwrap_or("/").to_string());
            let expired = c
                .max_age()
                .is_some_and(|a| a <= cookie::time::Duration::ZERO)
                || c.expires_datetime().is_some_and(|t| t <= now);
            if expired {
                self.cookies.remove(&key);
            } else {
                self.cookies.insert(key, c.value().to_string());
            }
        }
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let response = (self.http.get(url))
            .header("cookie", self.cookie_header(url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        self.keep(&response);
        response
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = (self.http.post(url))
            .header("cookie", self.cookie_header(url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        self.keep(&response);
        response
    }
}
