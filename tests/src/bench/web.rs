//! The staff web app's pages, timed as a person opens them (one after another, with the session cookie of
//! a signed-in caseworker) while the flow runs at half its peak in the background, with the long history
//! stored.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Serialize;

use super::{Latency, histogram, record};
use crate::{browser::Driver, web_app::WebApp};

#[derive(Debug, Clone, Serialize, Default)]
pub struct WebFigures {
    /// Response time at a client on the same machine (the server's time plus the loopback), per page.
    pub inbox: Latency,
    pub referral_list: Latency,
    pub referral_page: Latency,
    /// Answers other than 200 OK (each is also left out of the latencies).
    pub failed_pages: u64,
    /// The background load while the pages were timed.
    pub background_offered_flows_per_s: f64,
    pub background_flows_per_s: f64,
    pub background_errors: u64,
}

/// The session cookie of `login`, signed in through the OpenID provider in a real browser (closed after).
pub async fn session_cookie(web: &WebApp, login: &str) -> String {
    let mut driver = Driver::start().await;
    let person = driver.person().await;
    web.sign_in(&person, login, "/inbox").await;
    let cookie = person
        .get_named_cookie("placement_session")
        .await
        .expect("the session cookie")
        .value()
        .to_string();
    person.close().await.ok();
    cookie
}

/// Opens the inbox, the sent referrals and `referral`'s page in turn until `until`, at least `min` times each.
pub async fn time_pages(
    web: &WebApp,
    cookie: &str,
    referral: &str,
    until: Instant,
    min: usize,
) -> (Latency, Latency, Latency, u64) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let pages = [
        web.at("/inbox"),
        web.at("/referrals?direction=outgoing"),
        web.at(&format!("/referrals/{referral}")),
    ];
    let histograms = [
        Mutex::new(histogram()),
        Mutex::new(histogram()),
        Mutex::new(histogram()),
    ];
    let mut failed = 0;
    let mut rounds = 0;
    while rounds < min || Instant::now() < until {
        for (page, h) in pages.iter().zip(&histograms) {
            let t = Instant::now();
            let answer = http
                .get(page)
                .header("cookie", format!("placement_session={cookie}"))
                .send()
                .await;
            let ok = match answer {
                Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                Ok(r) => {
                    eprintln!("{page}: {}", r.status());
                    false
                }
                Err(e) => {
                    eprintln!("{page}: {e}");
                    false
                }
            };
            if ok {
                record(h, t.elapsed());
            } else {
                failed += 1;
                // A failing page must not spin: the next try is as far off as a slow page.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        rounds += 1;
    }
    let [a, b, c] = histograms.map(|h| Latency::of(&h.into_inner().expect("histogram")));
    (a, b, c, failed)
}
