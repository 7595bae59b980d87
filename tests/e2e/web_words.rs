//! The words the web app's pages show, read in a real browser on the stack of the placement test
//! (`web::four_people_place_the_twins_in_their_browsers`, once the twins are placed): a Bulgarian person's
//! inbox, sent referrals, referral page, search results and figures hold no word of the English catalogue
//! and no district code, and name agencies and services in Bulgarian; an English person's hold no word of the
//! Bulgarian catalogue and name them in English. Also: an error page keeps the menu and sign-out, the
//! favicon answers, and at 1366×768 a DSA's header is one line. Screenshots of each page in each language
//! are saved under `target/web-screenshots/` (`bg-*.png`, `en-*.png`; docs/screens.md shows some).

use std::{collections::BTreeSet, time::Duration};

use fantoccini::{Client, Locator};
use placement_cli::{clients::as_agency, demo::NATIONAL_AUTHORITY};
use placement_e2e::browser::{Driver, screenshot, wait_for_text};
use placement_proto::v1::ListRegionsRequest;
use uuid::Uuid;

use crate::web::Web;

const WAIT: Duration = Duration::from_secs(20);

/// What people typed (pseudonyms, the reason, the court's name), left out of the words checked: the
/// catalogue's words are the app's, these are theirs. So is the link to the other language, named in it.
const LEFT_OUT: &str =
    "#referral-reason, #children, #case-children, #referral-court-decision, header.top a.lang";

/// The pages read, each with the person who reads it (a DSA's caseworker; the figures, the RDSA's).
struct Pages {
    referral: String,
    search: String,
}

impl Pages {
    fn of_the_dsa(&self) -> [(&'static str, String); 4] {
        [
            ("inbox", "/inbox".to_string()),
            ("referrals", "/referrals?direction=outgoing".to_string()),
            ("referral", self.referral.clone()),
            ("search", self.search.clone()),
        ]
    }
}

pub(crate) async fn each_person_reads_their_own_language(
    web: &Web,
    driver: &mut Driver,
    referral_id: &str,
) {
    let case_id = (web.fixture)
        .referral(web.fixture.agency("dsa-pirdop"), referral_id)
        .await
        .case_id;
    let pages = Pages {
        referral: format!("/referrals/{referral_id}"),
        search: format!(
            "/cases/{case_id}?region=VRC&service_type=SERVICE_TYPE_FAMILY_TYPE_PLACEMENT_CENTRE"
        ),
    };
    let codes = district_codes(web).await;
    let (english, bulgarian) = (catalogue_words("en"), catalogue_words("bg"));
    let dsa = driver.person().await;
    web.sign_in(&dsa, "pirdop-caseworker", "/inbox").await;
    let rdsa = driver.person().await;
    web.sign_in(&rdsa, "vratsa-rdsa", "/figures").await;

    for (name, path) in pages.of_the_dsa() {
        read_in(web, &dsa, "bg", name, &path, &english, &codes).await;
    }
    read_in(web, &rdsa, "bg", "figures", "/figures", &english, &codes).await;
    names_are(
        &dsa,
        web,
        &pages,
        "ЦНСТДБУ Враца 1",
        "Дирекция „Социално подпомагане“ – Пирдоп",
    )
    .await;
    dsa.goto(&web.at(&pages.search)).await.expect("search");
    let vratsa_1 = format!(
        "#results tr[data-id='{}']",
        web.fixture.demo.service("ftpc-vratsa")
    );
    wait_for_text(&dsa, &vratsa_1, "ЦНСТДБУ Враца 1", WAIT).await;
    // Its district by name, in the third column.
    assert_eq!(
        text(&dsa, &format!("{vratsa_1} td:nth-child(3)")).await,
        "Враца"
    );

    an_error_page_keeps_the_menu(web, &dsa).await;
    the_favicon_answers(web).await;
    a_dsas_header_is_one_line_at_1366(web, &dsa).await;

    for client in [&dsa, &rdsa] {
        client
            .goto(&web.at("/language?lang=en&return_to=%2Finbox"))
            .await
            .expect("English");
        wait_for_text(client, "html[lang=en] h1", "", WAIT).await;
    }
    for (name, path) in pages.of_the_dsa() {
        read_in(web, &dsa, "en", name, &path, &bulgarian, &BTreeSet::new()).await;
    }
    read_in(
        web,
        &rdsa,
        "en",
        "figures",
        "/figures",
        &bulgarian,
        &BTreeSet::new(),
    )
    .await;
    names_are(&dsa, web, &pages, "FTPC Vratsa 1", "DSA Pirdop").await;
    for c in [dsa, rdsa] {
        c.close().await.ok();
    }
}

/// Opens `path` and checks the words a person reads there (what they typed left out): none of `foreign`
/// (the other language's catalogue), no district code of `codes`. Saves its screenshot as `<lang>-<name>`.
async fn read_in(
    web: &Web,
    client: &Client,
    lang: &str,
    name: &str,
    path: &str,
    foreign: &BTreeSet<String>,
    codes: &BTreeSet<String>,
) {
    client.goto(&web.at(path)).await.expect("the page");
    wait_for_text(client, &format!("html[lang={lang}] h1"), "", WAIT).await;
    let shown = client
        .execute(
            "let text = document.body.innerText; \
             document.querySelectorAll(arguments[0]).forEach(e => { text = text.replace(e.innerText, ' '); }); \
             return text;",
            vec![LEFT_OUT.into()],
        )
        .await
        .expect("the page's text");
    let shown = shown.as_str().unwrap_or_default();
    let foreign_words: BTreeSet<String> = words(shown)
        .filter(|w| foreign.contains(&w.to_lowercase()))
        .collect();
    assert!(
        foreign_words.is_empty(),
        "{lang} {path} shows the other catalogue's words {foreign_words:?}:\n{shown}"
    );
    let district_codes: Vec<String> = words(shown)
        .filter(|w| {
            let letters: String = w.chars().take(3).collect();
            codes.contains(&letters) && w.chars().skip(3).all(|c| c.is_ascii_digit())
        })
        .collect();
    assert!(
        district_codes.is_empty(),
        "{lang} {path} shows district codes {district_codes:?}:\n{shown}"
    );
    screenshot(client, &format!("{lang}-{name}")).await;
}

/// The referral's page names the service and the sender as the language has them.
async fn names_are(client: &Client, web: &Web, pages: &Pages, service: &str, sender: &str) {
    client.goto(&web.at(&pages.referral)).await.expect("page");
    wait_for_text(client, "#referral-service", service, WAIT).await;
    assert_eq!(text(client, "#referral-service").await, service);
    assert!(
        text(client, "dl.facts").await.contains(sender),
        "the sender named {sender}"
    );
    assert!(text(client, "#agency-name").await.contains(sender));
}

/// A page that is not found is still a page of the app: the menu and the sign-out button are there.
async fn an_error_page_keeps_the_menu(web: &Web, client: &Client) {
    let missing = format!("/referrals/{}", Uuid::new_v4());
    client.goto(&web.at(&missing)).await.expect("open");
    wait_for_text(client, "#error-heading", "Не е намерено", WAIT).await;
    for css in [
        "nav #nav-inbox",
        "nav a[href='/cases/new']",
        "#sign-out",
        "#agency-name",
    ] {
        assert!(
            client.find(Locator::Css(css)).await.is_ok(),
            "the error page has {css}"
        );
    }
    screenshot(client, "bg-not-found").await;
}

async fn the_favicon_answers(web: &Web) {
    let icon = reqwest::get(web.at("/favicon.ico")).await.expect("favicon");
    assert_eq!(icon.status(), 200);
    let header = |name: &str| {
        (icon.headers().get(name))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "image/svg+xml");
    assert!(header("cache-control").contains("max-age="), "cached");
    assert!(icon.text().await.expect("body").starts_with("<svg"));
}

/// At 1366×768 a DSA's header — the app's name, the menu, the agency, sign-out and «English» — is one line:
/// every part's middle at the height of the app's name, and the language link inside the window.
async fn a_dsas_header_is_one_line_at_1366(web: &Web, client: &Client) {
    client.set_window_size(1366, 768).await.expect("resize");
    client.goto(&web.at("/inbox")).await.expect("inbox");
    wait_for_text(client, "h1", "", WAIT).await;
    let measured = client
        .execute(
            "const middle = e => { const r = e.getBoundingClientRect(); return (r.top + r.bottom) / 2; }; \
             const brand = middle(document.querySelector('header.top .brand')); \
             const parts = [...document.querySelectorAll( \
               'header.top nav a, #agency-name, #sign-out, header.top a.lang')]; \
             const lang = document.querySelector('header.top a.lang').getBoundingClientRect(); \
             return [parts.length, Math.max(...parts.map(p => Math.abs(middle(p) - brand))), \
                     lang.right <= window.innerWidth];",
            vec![],
        )
        .await
        .expect("the header measured");
    let parts = measured[0].as_u64().unwrap_or_default();
    let off_line = measured[1].as_f64().unwrap_or(f64::MAX);
    assert!(parts >= 5, "{measured}");
    assert!(
        off_line < 8.0,
        "a part of the header is {off_line}px off the line"
    );
    assert_eq!(
        measured[2].as_bool(),
        Some(true),
        "«English» inside the window"
    );
    screenshot(client, "bg-inbox-1366").await;
    client.set_window_size(1280, 1000).await.expect("resize");
}

async fn text(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// A catalogue line's words: without its placeholders (`{ $span }`, a `{ $n ->` left open) and variant
/// keys (`*[other]`).
fn message_text(line: &str) -> String {
    let mut text = String::new();
    let mut closing = None;
    for c in line.chars() {
        match (closing, c) {
            (None, '{') => closing = Some('}'),
            (None, '[') => closing = Some(']'),
            (Some(end), c) if c == end => closing = None,
            (None, c) => text.push(c),
            _ => {}
        }
    }
    text
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
}

/// The districts' EKATTE codes, from the directory.
async fn district_codes(web: &Web) -> BTreeSet<String> {
    let regions = (web.fixture.clients.directory.clone())
        .list_regions(as_agency(NATIONAL_AUTHORITY, ListRegionsRequest {}))
        .await
        .expect("ListRegions")
        .into_inner()
        .regions;
    assert_eq!(regions.len(), 28);
    regions.into_iter().map(|r| r.code).collect()
}

/// The words of the web app's catalogue in `lang` that the other language's catalogue does not use
/// ("webhook", "CSV" are in both), lower-cased, four letters or more: what a page in the other language
/// must not show.
fn catalogue_words(lang: &str) -> BTreeSet<String> {
    let other = if lang == "bg" { "en" } else { "bg" };
    let of = |lang: &str| -> BTreeSet<String> {
        let services = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../services");
        // The web app's catalogue, and the notices' (shown in the inbox) where there is one.
        let dirs = [
            services.join("web/locales"),
            services.join("wording/locales"),
        ]
        .map(|d| d.join(lang));
        let files = (dirs.iter().filter(|d| d.is_dir()))
            .flat_map(|d| std::fs::read_dir(d).expect("a catalogue folder").flatten());
        let mut all = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(file.path()).expect("a catalogue");
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                let value = message_text(line.split_once('=').map_or(line, |(_, v)| v));
                all.extend(
                    words(&value)
                        .filter(|w| w.chars().count() >= 4 && w.chars().all(char::is_alphabetic))
                        .map(|w| w.to_lowercase()),
                );
            }
        }
        all
    };
    let (mine, theirs) = (of(lang), of(other));
    assert!(mine.len() > 100, "{lang}: {} words", mine.len());
    mine.difference(&theirs).cloned().collect()
}
