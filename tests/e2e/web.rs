//! The staff web app in a real browser (Debian's chromium over WebDriver), signed in through a real OpenID
//! provider (oidc-provider, its login and consent pages filled in as a person would), against the whole
//! exchange. Screenshots of the main pages are saved under `target/web-screenshots/`.

use std::time::Duration;

use fantoccini::{Client, Locator};
use placement_e2e::{
    StackOptions,
    browser::{Driver, screenshot, wait_for_text, wait_gone, wait_reloading},
    web_app::{WebApp, WebAppPlan, exists},
};
use placement_model::reference::Reference;
use placement_proto::v1::{
    Language, ListNotificationEndpointsRequest, NotificationChannel, NotificationEndpoint,
    ReferralStatus,
};
use uuid::Uuid;

use crate::support::Fixture;

const WAIT: Duration = Duration::from_secs(20);

/// The exchange with the demo directory, the OpenID provider with the demo's people as accounts, and the
/// web app registered with it as a client.
pub(crate) struct Web {
    pub(crate) fixture: Fixture,
    pub(crate) app: WebApp,
}

impl Web {
    async fn start(mut options: StackOptions) -> Web {
        let plan = WebAppPlan::prepare(&mut options).await;
        let mut fixture = Fixture::with(options).await;
        let app = plan.start(&mut fixture.stack, &fixture.demo).await;
        Web { fixture, app }
    }

    pub(crate) fn at(&self, path: &str) -> String {
        self.app.at(path)
    }

    pub(crate) async fn sign_in(&self, client: &Client, login: &str, path: &str) {
        self.app.sign_in(client, login, path).await;
    }
}

pub(crate) async fn click(client: &Client, css: &str) {
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

pub(crate) async fn fill(client: &Client, css: &str, text: &str) {
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.ok();
    field
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

pub(crate) async fn select(client: &Client, css: &str, value: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
}

pub(crate) async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap_or_default()
}

/// Waits until the page's live inbox is connected (the script marks the page when its event stream opens).
async fn live(client: &Client) {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("body[data-live=open]"))
        .await
        .expect("the live inbox connects");
}

/// The demo scenario by the people who do it, each in a browser of their own: the Pirdop caseworker
/// opens the twins' case, finds the Vratsa centre and sends the request; the Vratsa provider and the
/// Vratsa foster-care team see it arrive in their inboxes without reloading and acknowledge; the
/// provider's director accepts; the Pirdop supervisor confirms the placement; the free places change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_people_place_the_twins_in_their_browsers() {
    let web = Web::start(StackOptions::default()).await;
    let mut driver = Driver::start().await;
    let service = web.fixture.demo.service("ftpc-vratsa");
    let free_before = web.fixture.service(service).await.free_places;

    // The receiving side waits with its inboxes open.
    let provider = driver.person().await;
    web.sign_in(&provider, "vratsa-provider", "/inbox").await;
    live(&provider).await;
    let foster = driver.person().await;
    web.sign_in(&foster, "vratsa-foster-team", "/inbox").await;
    live(&foster).await;
    let unread_before = text_of(&provider, "#unread-count").await;

    let caseworker = driver.person().await;
    web.sign_in(&caseworker, "pirdop-caseworker", "/cases/new")
        .await;
    // A DSA's menu has the pages of sending.
    assert!(exists(&caseworker, "nav a[href='/cases/new']").await);
    assert!(exists(&caseworker, "nav a[href='/referrals?direction=outgoing']").await);
    let referral_id = caseworker_sends_the_request(&web, &caseworker).await;

    both_acknowledge_from_the_notification(&provider, &foster, &referral_id, &unread_before).await;
    one_reference_in_the_inbox_and_on_the_page(&web, &provider, &referral_id).await;
    let (director, supervisor) =
        the_director_accepts_and_the_sender_confirms(&web, &mut driver, &referral_id).await;
    the_directory_shows_the_places_taken(&web, &provider, service, free_before).await;
    rdsa_sees_the_districts_figures(&web, &mut driver).await;
    sacp_sees_the_country(&web, &mut driver, &referral_id).await;
    rdsa_imports_the_register(&web, &mut driver).await;
    crate::web_words::each_person_reads_their_own_language(&web, &mut driver, &referral_id).await;
    crate::web_search::a_dsa_sends_one_search_to_three_services(&web, &mut driver).await;
    for c in [provider, foster, caseworker, director, supervisor] {
        c.close().await.ok();
    }
}

/// Both see it arrive without reloading, and acknowledge it from the notification; the provider's
/// caseworker may not decide.
async fn both_acknowledge_from_the_notification(
    provider: &Client,
    foster: &Client,
    referral_id: &str,
    unread_before: &str,
) {
    for (who, client) in [("provider", provider), ("foster", foster)] {
        wait_for_text(client, "#inbox li.live", "", WAIT).await;
        // A Bulgarian person's inbox says the notice in words: no id, no district code.
        let inbox = text_of(client, "#inbox").await;
        assert!(
            !crate::notices::has_uuid(&inbox) && !crate::notices::has_district_code(&inbox),
            "{who}: {inbox}"
        );
        assert_ne!(text_of(client, "#unread-count").await, "", "{who}");
        screenshot(client, &format!("inbox-{who}")).await;
        click(
            client,
            &format!("#inbox li.live a[href='/referrals/{referral_id}']"),
        )
        .await;
        wait_for_text(client, "#referral-status", "Изпратено", WAIT).await;
        assert!(
            !exists(client, "#accept").await,
            "{who}: nothing to accept yet"
        );
        click(client, "#acknowledge").await;
        // Acknowledged once: the page that follows offers it no more, and lists the acknowledgement.
        wait_gone(client, "#acknowledge", WAIT).await;
        assert!(exists(client, "#acknowledgements li").await, "{who}");
    }
    assert_ne!(text_of(provider, "#unread-count").await, unread_before);
    provider.refresh().await.expect("reload");
    wait_for_text(provider, "#referral-status", "Потвърдено", WAIT).await;
    screenshot(provider, "referral-acknowledged").await;
    // The provider's caseworker may not decide: no accept button.
    assert!(!exists(provider, "#accept").await);
}

/// The reference people say is the same in the inbox and on the referral's page, and the search box finds
/// the referral by it, typed on a Latin keyboard in lower case.
async fn one_reference_in_the_inbox_and_on_the_page(
    web: &Web,
    provider: &Client,
    referral_id: &str,
) {
    let agency = web.fixture.agency("provider-vratsa");
    let reference = web.fixture.referral(agency, referral_id).await.reference;
    let parsed = Reference::parse(&reference).expect("a reference");
    provider.goto(&web.at("/inbox")).await.expect("open");
    let in_inbox = format!("#inbox li:has(a[href='/referrals/{referral_id}']) .reference");
    wait_for_text(provider, &in_inbox, &reference, WAIT).await;
    provider
        .goto(&web.at(&format!("/referrals/{referral_id}")))
        .await
        .expect("open");
    assert_eq!(text_of(provider, "#referral-short").await, reference);
    provider.goto(&web.at("/inbox")).await.expect("open");
    let typed = format!("h-sfo-{}-{}", parsed.year, parsed.number);
    fill(provider, "#find-reference", &typed).await;
    click(provider, "#find").await;
    wait_for_text(provider, "#referral-short", &reference, WAIT).await;
    let url = provider.current_url().await.expect("url");
    assert_eq!(url.path(), format!("/referrals/{referral_id}"));
}

/// The provider's director accepts; the sender's supervisor confirms the placement and records the court
/// decision. Returns their browsers.
async fn the_director_accepts_and_the_sender_confirms(
    web: &Web,
    driver: &mut Driver,
    referral_id: &str,
) -> (Client, Client) {
    let director = driver.person().await;
    web.sign_in(
        &director,
        "vratsa-director",
        &format!("/referrals/{referral_id}"),
    )
    .await;
    click(&director, "#accept").await;
    wait_for_text(&director, "#referral-status", "Прието", WAIT).await;
    assert!(!exists(&director, "#accept").await);

    let supervisor = driver.person().await;
    web.sign_in(
        &supervisor,
        "pirdop-supervisor",
        &format!("/referrals/{referral_id}"),
    )
    .await;
    click(&supervisor, "#confirm").await;
    wait_for_text(&supervisor, "#referral-status", "Настанени", WAIT).await;
    wait_for_text(&supervisor, "#timeline", "Потвърдено настаняване", WAIT).await;
    screenshot(&supervisor, "referral-placed").await;
    supervisor_records_the_court_decision(web, &supervisor, referral_id).await;
    (director, supervisor)
}

/// The directory's free places changed by the two children, as the provider's page shows.
async fn the_directory_shows_the_places_taken(
    web: &Web,
    provider: &Client,
    service: Uuid,
    free_before: u32,
) {
    let free_after = web.fixture.service(service).await.free_places;
    assert_eq!(free_after + 2, free_before);
    provider
        .goto(&web.at("/directory"))
        .await
        .expect("directory");
    wait_for_text(
        provider,
        &format!("section[data-id='{service}'] .free"),
        &free_after.to_string(),
        WAIT,
    )
    .await;
    screenshot(provider, "directory").await;
    assert!(
        !exists(provider, "#nav-figures").await,
        "a provider sees no district figures"
    );
}

/// The receiving district's RDSA finds the placement in its figures (from the reports service, which
/// learnt it from the events).
async fn rdsa_sees_the_districts_figures(web: &Web, driver: &mut Driver) {
    let rdsa = driver.person().await;
    web.sign_in(&rdsa, "vratsa-rdsa", "/inbox").await;
    click(&rdsa, "#nav-figures").await;
    wait_for_text(&rdsa, "#figures-region", "Враца", WAIT).await;
    // Placed: the sixth row; the receiving side's column.
    wait_reloading(
        &rdsa,
        "#figures-table tbody tr:nth-child(6) td:nth-child(3)",
        "1",
        WAIT,
    )
    .await;
    assert_eq!(
        text_of(
            &rdsa,
            "#figures-table tbody tr:nth-child(1) td:nth-child(3)"
        )
        .await,
        "1",
        "one referral sent to the district"
    );
    assert!(exists(&rdsa, "#chart-status svg rect").await);
    assert!(exists(&rdsa, "#chart-flows svg").await);
    assert!(exists(&rdsa, "#figures-no-stalled").await);
    // The downloads come from the reports service, as the signed-in RDSA.
    let script = "const [path, done] = arguments; \
        fetch(path).then(r => r.text().then(t => done(r.status + ' ' + r.headers.get('content-type') + ' ' + t.split('\\n')[1])), () => done('failed'));";
    let flows = rdsa
        .execute_async(
            script,
            vec!["/figures/export?format=csv&table=flows".into()],
        )
        .await
        .expect("download from the page");
    assert_eq!(
        flows.as_str(),
        Some("200 text/csv; charset=utf-8 SFO,VRC,1,1,0,1"),
        "the flows as CSV"
    );
    screenshot(&rdsa, "figures").await;
    rdsa.close().await.ok();
}

/// The RDSA imports a register file of its district from the directory page: two services created, the
/// row in Sofia refused with its column named.
async fn rdsa_imports_the_register(web: &Web, driver: &mut Driver) {
    let rdsa = driver.person().await;
    web.sign_in(&rdsa, "vratsa-rdsa", "/directory").await;
    // An RDSA opens no cases and sends no referrals: its menu leaves those out.
    assert!(!exists(&rdsa, "nav a[href='/cases/new']").await);
    assert!(!exists(&rdsa, "nav a[href='/referrals?direction=outgoing']").await);
    click(&rdsa, "#register-link").await;
    let file = std::env::temp_dir().join(format!("placement-register-{}.csv", std::process::id()));
    std::fs::write(
        &file,
        "Рег. номер;Наименование;Вид;Код на общината;Доставчик;Капацитет;Възраст от;Възраст до\n\
         W-1;ЦНСТ Враца 7;ЦНСТДБУ;VRC10;Сдружение „Мост“;8;3;17\n\
         W-2;Кризисен център Козлодуй;КЦ;VRC20;Сдружение „Мост“;6;7;17\n\
         W-3;Кризисен център София;КЦ;SOF46;Сдружение „Мост“;6;7;17\n",
    )
    .expect("register file");
    rdsa.find(Locator::Css("#register-file"))
        .await
        .expect("file input")
        .send_keys(&file.display().to_string())
        .await
        .expect("choose the file");
    click(&rdsa, "#register-dry-run").await;
    click(&rdsa, "#register-submit").await;
    wait_for_text(&rdsa, "#register-created", "2", WAIT).await;
    assert_eq!(text_of(&rdsa, "#register-refused").await, "1");
    assert_eq!(
        text_of(&rdsa, "#register-lines tr.refused .column").await,
        "municipality_code"
    );
    screenshot(&rdsa, "register-import").await;
    let _ = std::fs::remove_file(&file);
    rdsa.close().await.ok();
}

/// The State Agency for Child Protection sees the country by district — the one referral, to Vratsa, and
/// placed — and, as published, that count suppressed; the referral's page is not for it.
async fn sacp_sees_the_country(web: &Web, driver: &mut Driver, referral_id: &str) {
    let sacp = driver.person().await;
    web.sign_in(&sacp, "sacp-analyst", "/inbox").await;
    click(&sacp, "#nav-figures").await;
    let vratsa = "#figures-country tr[data-region='VRC']";
    // Submitted and placed: the second and fifth columns.
    wait_reloading(&sacp, &format!("{vratsa} td:nth-of-type(4)"), "1", WAIT).await;
    assert_eq!(
        text_of(&sacp, &format!("{vratsa} td:nth-of-type(1)")).await,
        "1"
    );
    assert_eq!(
        text_of(
            &sacp,
            "#figures-country tr[data-region=''] td:nth-of-type(1)"
        )
        .await,
        "1",
        "the country's total"
    );
    click(&sacp, "#country-published").await;
    click(&sacp, "#country-filter button").await;
    wait_for_text(&sacp, &format!("{vratsa} td:nth-of-type(1)"), "под 5", WAIT).await;
    screenshot(&sacp, "figures-country").await;
    sacp.goto(&web.at(&format!("/referrals/{referral_id}")))
        .await
        .expect("the referral's address");
    wait_for_text(&sacp, "h1", "", WAIT).await;
    assert!(
        !exists(&sacp, "#referral-status").await,
        "no referral for the SACP"
    );
    sacp.close().await.ok();
}

/// The placement rests on the DSA director's order: the court's decision is recorded on the page when it
/// comes, refused first without its fields, each named next to its input.
async fn supervisor_records_the_court_decision(web: &Web, supervisor: &Client, referral_id: &str) {
    let form = "form[action$='/court-decision']";
    let pirdop = web.fixture.agency("dsa-pirdop");
    // Decided on the day of the order (a decision before it is refused).
    let order = web.fixture.referral(pirdop, referral_id).await.legal_basis;
    let day = order.and_then(|b| b.issued_on).expect("the order's date");
    let date = format!("{:04}-{:02}-{:02}", day.year, day.month, day.day);
    click(supervisor, "#record-court-decision").await;
    wait_for_text(supervisor, &format!("{form} .error"), "", WAIT).await;
    fill(supervisor, "#court-number", "GD-12/2026").await;
    supervisor
        .execute(
            "document.getElementById('court-date').value = arguments[0]",
            vec![date.into()],
        )
        .await
        .expect("set the date");
    fill(supervisor, "#court-name", "Районен съд Пирдоп").await;
    click(supervisor, "#record-court-decision").await;
    wait_for_text(supervisor, "#referral-court-decision", "GD-12/2026", WAIT).await;
    assert!(!exists(supervisor, form).await, "recorded once");
    let recorded = web
        .fixture
        .referral(pirdop, referral_id)
        .await
        .court_decision
        .expect("the court decision is recorded");
    assert_eq!(
        (recorded.number.as_str(), recorded.court.as_str()),
        ("GD-12/2026", "Районен съд Пирдоп")
    );
    assert_eq!(recorded.issued_on, Some(day));
}

/// The Pirdop caseworker opens the twins' case, searches the directory and sends the request from the
/// result; returns the referral's id.
async fn caseworker_sends_the_request(web: &Web, caseworker: &Client) -> String {
    let year = chrono::Datelike::year(&chrono::Utc::now()) - 5;
    for (n, pseudonym) in [(1, "Twin A"), (2, "Twin B")] {
        fill(caseworker, &format!("#pseudonym_{n}"), pseudonym).await;
        fill(caseworker, &format!("#birth_year_{n}"), &year.to_string()).await;
    }
    fill(
        caseworker,
        "#current_setting",
        "Home for medical and social care, Zlatitsa",
    )
    .await;
    screenshot(caseworker, "case-new").await;
    click(caseworker, "#open-case").await;
    wait_for_text(caseworker, "#case-children", "Twin B", WAIT).await;
    select(caseworker, "#region", "VRC").await;
    select(
        caseworker,
        "#service_type",
        "SERVICE_TYPE_FAMILY_TYPE_PLACEMENT_CENTRE",
    )
    .await;
    click(caseworker, "#search-button").await;
    // A Bulgarian browser: the service by its Bulgarian name, the district by name.
    wait_for_text(caseworker, "#results", "ЦНСТДБУ Враца 1", WAIT).await;
    let service = web.fixture.demo.service("ftpc-vratsa");
    click(
        caseworker,
        &format!("#results tr[data-id='{service}'] a.choose"),
    )
    .await;
    fill(caseworker, "#number", "ZD-7/2026").await;
    fill(
        caseworker,
        "#reason",
        "No free places in the district; the twins stay together.",
    )
    .await;
    screenshot(caseworker, "case-search").await;
    click(caseworker, "#send-request").await;
    wait_for_text(caseworker, "#referral-status", "Изпратено", WAIT).await;
    // The sender has nothing to accept, and withdrawing is a supervisor's decision.
    assert!(!exists(caseworker, "#accept").await);
    assert!(!exists(caseworker, "#withdraw").await);
    screenshot(caseworker, "referral-submitted").await;
    let here = caseworker.current_url().await.expect("url").to_string();
    let id = here
        .rsplit('/')
        .next()
        .expect("a referral's address")
        .to_string();
    Uuid::parse_str(&id).unwrap_or_else(|_| panic!("{here} is a referral's page"));
    id
}

/// Posts a form from inside the page (same origin, with the session's cookie); returns the HTTP status.
async fn post_from_page(client: &Client, path: &str, body: &str) -> u64 {
    let script = "const [url, body, done] = arguments; \
        fetch(url, {method: 'POST', redirect: 'manual', \
          headers: {'content-type': 'application/x-www-form-urlencoded'}, body}) \
        .then(r => done(r.status), () => done(-1));";
    client
        .execute_async(script, vec![path.into(), body.into()])
        .await
        .expect("fetch from the page")
        .as_u64()
        .expect("a status")
}

async fn status_of(web: &Web, id: &str) -> ReferralStatus {
    let r = web
        .fixture
        .referral(web.fixture.agency("dsa-pirdop"), id)
        .await;
    ReferralStatus::try_from(r.status).expect("a status")
}

/// What the web app refuses (a form without its CSRF token, a step the person's role does not allow,
/// another agency's referral), how it protects the page (headers, cookie, escaping), sign-out, and the
/// other endings: a decline with a coded reason, an overdue request shown as overdue and withdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_app_refuses_what_it_must_and_shows_what_is_late() {
    let web = Web::start(StackOptions {
        ack_deadline: Some("3s".into()),
        escalation_interval: Some("200ms".into()),
        ..Default::default()
    })
    .await;
    security_headers_and_anonymous_access(&web).await;
    let f = &web.fixture;
    let pirdop = f.agency("dsa-pirdop");
    let service = f.demo.service("ftpc-vratsa");
    let to_decline = f
        .submit(pirdop, &f.open_twins_case(pirdop).await, service)
        .await;
    f.acknowledge(&to_decline.id, &["provider-vratsa", "foster-vratsa"])
        .await;
    let overdue = f
        .submit(pirdop, &f.open_twins_case(pirdop).await, service)
        .await;
    let mut driver = Driver::start().await;

    let page = format!("/referrals/{}", to_decline.id);
    let provider =
        a_providers_caseworker_decides_nothing(&web, &mut driver, &to_decline.id, &overdue.id)
            .await;
    let stranger = another_agency_finds_nothing(&web, &mut driver, &page).await;
    let director =
        the_director_declines_with_a_script_in_the_comment(&web, &mut driver, &page).await;
    let supervisor = the_sender_withdraws_the_overdue_request(&web, &mut driver, &overdue.id).await;
    signing_out_ends_the_session(&web, &supervisor).await;
    for c in [provider, stranger, director, supervisor] {
        c.close().await.ok();
    }
}

/// A caseworker of the provider is offered no decision, and a forged one is refused by the service; a form
/// without the token is refused before anything is asked of the services. Returns the caseworker's browser.
async fn a_providers_caseworker_decides_nothing(
    web: &Web,
    driver: &mut Driver,
    to_decline: &str,
    overdue: &str,
) -> Client {
    let page = format!("/referrals/{to_decline}");
    let provider = driver.person().await;
    web.sign_in(&provider, "vratsa-provider", &page).await;
    assert!(!exists(&provider, "#accept").await);
    assert!(!exists(&provider, "#decline").await);
    let csrf = provider
        .find(Locator::Css("input[name=csrf]"))
        .await
        .expect("a form")
        .attr("value")
        .await
        .expect("value")
        .expect("the CSRF token");
    let forged = post_from_page(
        &provider,
        &format!("{page}/accept"),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(forged, 403, "accepting is a supervisor's decision");
    assert_eq!(
        status_of(web, to_decline).await,
        ReferralStatus::Acknowledged
    );
    // A form without the token is refused before anything is asked of the services.
    let path = format!("/referrals/{overdue}/acknowledge");
    assert_eq!(post_from_page(&provider, &path, "").await, 403);
    assert_eq!(post_from_page(&provider, &path, "csrf=wrong").await, 403);
    assert_eq!(status_of(web, overdue).await, ReferralStatus::Submitted);
    session_cookie_flags(&provider).await;
    provider
}

/// Another agency's referral is not found, as if it did not exist.
async fn another_agency_finds_nothing(web: &Web, driver: &mut Driver, page: &str) -> Client {
    let stranger = driver.person().await;
    web.sign_in(&stranger, "vratsa-dsa", "/inbox").await;
    stranger.goto(&web.at(page)).await.expect("open");
    wait_for_text(&stranger, "#error-heading", "Не е намерено", WAIT).await;
    screenshot(&stranger, "not-found").await;
    stranger
}

/// The director declines with a coded reason and a comment that holds a script: shown as text.
async fn the_director_declines_with_a_script_in_the_comment(
    web: &Web,
    driver: &mut Driver,
    page: &str,
) -> Client {
    let director = driver.person().await;
    web.sign_in(&director, "vratsa-director", page).await;
    click(&director, "#decline").await;
    wait_for_text(&director, "#decline-reason-error", "", WAIT).await;
    let comment = "<script>document.title='pwned'</script> no room";
    select(&director, "#decline-reason", "1").await;
    fill(&director, "#decline-comment", comment).await;
    click(&director, "#decline").await;
    wait_for_text(&director, "#referral-status", "Отказано", WAIT).await;
    wait_for_text(&director, "#referral-resolution", comment, WAIT).await;
    assert!(!exists(&director, "#referral-resolution script").await);
    assert_ne!(director.title().await.expect("title"), "pwned");
    screenshot(&director, "referral-declined").await;
    director
}

/// The unanswered request is overdue, in the sender's list and on its page; the sender withdraws it.
async fn the_sender_withdraws_the_overdue_request(
    web: &Web,
    driver: &mut Driver,
    overdue: &str,
) -> Client {
    let supervisor = driver.person().await;
    web.sign_in(
        &supervisor,
        "pirdop-supervisor",
        "/referrals?direction=outgoing",
    )
    .await;
    wait_reloading(
        &supervisor,
        &format!("tr.overdue[data-id='{overdue}'] .deadline"),
        "просрочено",
        WAIT,
    )
    .await;
    screenshot(&supervisor, "referrals-outgoing").await;
    click(&supervisor, &format!("tr[data-id='{overdue}'] a")).await;
    wait_for_text(&supervisor, "#referral-overdue", "", WAIT).await;
    select(&supervisor, "#withdraw-reason", "1").await;
    click(&supervisor, "#withdraw").await;
    wait_for_text(&supervisor, "#referral-status", "Оттеглено", WAIT).await;
    assert_eq!(status_of(web, overdue).await, ReferralStatus::Withdrawn);
    supervisor
}

async fn security_headers_and_anonymous_access(web: &Web) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = http.get(web.at("/signed-out")).send().await.expect("page");
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let csp = header("content-security-policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("x-content-type-options"), "nosniff");
    // Without a session, a page sends the person to sign in, and comes back to it after.
    let inbox = http
        .get(web.at("/inbox?unread=true"))
        .send()
        .await
        .expect("inbox");
    assert_eq!(inbox.status(), 303);
    let location = inbox.headers()["location"].to_str().expect("location");
    assert_eq!(location, "/sign-in?return_to=%2Finbox%3Funread%3Dtrue");
}

async fn session_cookie_flags(client: &Client) {
    let cookie = client
        .get_named_cookie("placement_session")
        .await
        .expect("the session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(cookie::SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    // Plain HTTP here (PLACEMENT_PUBLIC_URL is http://): Secure only behind HTTPS, where the cookie is
    // also `__Host-` prefixed.
    assert_ne!(cookie.secure(), Some(true));
}

/// After signing out, the page and the old cookie open nothing.
async fn signing_out_ends_the_session(web: &Web, client: &Client) {
    let old = client
        .get_named_cookie("placement_session")
        .await
        .expect("the session cookie")
        .value()
        .to_string();
    click(client, "#sign-out").await;
    wait_for_text(client, "h1", "Излязохте", WAIT).await;
    web.app.assert_session_ended(&old).await;
}

/// A provider's directory administrator keeps where the agency is told: an address refused next to its
/// field, an e-mail for one event in English, turned off; a webhook whose secret is shown once and rotated;
/// removal. The directory service holds exactly what the page shows. A caseworker sees none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_keeps_the_addresses_it_is_told_at() {
    let web = Web::start(StackOptions::default()).await;
    let mut driver = Driver::start().await;
    let agency = web.fixture.agency("provider-vratsa");
    let director = driver.person().await;
    web.sign_in(&director, "vratsa-director", "/directory")
        .await;

    a_bad_address_is_refused_and_kept(&web, &director, agency).await;
    let row = an_email_address_added_and_disabled(&web, &director, agency).await;
    let hook = a_webhooks_secret_is_shown_once_and_rotated(&web, &director, agency).await;
    click(&director, &format!("{row} button[value=remove]")).await;
    wait_gone(&director, &row, WAIT).await;
    let left: Vec<String> = (endpoints_of(&web, agency).await.into_iter())
        .map(|e| e.id)
        .collect();
    assert_eq!(left, [hook.id]);

    let caseworker = driver.person().await;
    web.sign_in(&caseworker, "vratsa-provider", "/directory")
        .await;
    wait_for_text(&caseworker, "h1", "", WAIT).await;
    assert!(!exists(&caseworker, "#endpoints").await);
    assert!(!exists(&caseworker, "#new-endpoint").await);
    for c in [director, caseworker] {
        c.close().await.ok();
    }
}

/// An address that is none is refused on the page, what was typed kept, and nothing is added.
async fn a_bad_address_is_refused_and_kept(web: &Web, director: &Client, agency: Uuid) {
    fill(director, "#new-address", "not an address").await;
    click(director, "#add-endpoint").await;
    wait_for_text(director, "#new-address-error", "", WAIT).await;
    assert_eq!(
        director
            .find(Locator::Css("#new-address"))
            .await
            .expect("address")
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some("not an address"),
        "what was typed is kept"
    );
    assert!(endpoints_of(web, agency).await.is_empty());
}

/// An e-mail address for new requests in English, added and then disabled; returns its row's selector.
async fn an_email_address_added_and_disabled(web: &Web, director: &Client, agency: Uuid) -> String {
    fill(director, "#new-address", "centre@vratsa.example.org").await;
    click(director, "#new-endpoint input[value='referral.submitted']").await;
    select(director, "#new-language", "en").await;
    click(director, "#add-endpoint").await;
    wait_for_text(
        director,
        "form.endpoint .address",
        "centre@vratsa.example.org",
        WAIT,
    )
    .await;
    let email = endpoints_of(web, agency).await.remove(0);
    assert_eq!(email.event_types, ["referral.submitted"]);
    assert_eq!(email.language, Language::En as i32);
    assert!(email.enabled);

    let row = format!("form.endpoint[data-id='{}']", email.id);
    click(director, &format!("{row} button[value=disable]")).await;
    wait_for_text(director, &format!("{row} .state"), "Изключен", WAIT).await;
    assert!(!endpoints_of(web, agency).await[0].enabled);
    row
}

/// A webhook's secret is shown once, never listed, and a rotation shows a new one; returns the webhook.
async fn a_webhooks_secret_is_shown_once_and_rotated(
    web: &Web,
    director: &Client,
    agency: Uuid,
) -> NotificationEndpoint {
    select(director, "#new-channel", "webhook").await;
    fill(
        director,
        "#new-address",
        "https://hooks.vratsa.example.org/placement",
    )
    .await;
    click(director, "#add-endpoint").await;
    wait_for_text(director, ".secret code", "whsec_", WAIT).await;
    let first_secret = text_of(director, ".secret code").await;
    screenshot(director, "directory-endpoints").await;
    let hook = endpoints_of(web, agency).await.remove(1);
    assert_eq!(hook.channel, NotificationChannel::Webhook as i32);
    assert!(hook.secret.is_empty(), "a secret is never listed");
    // Shown once: the page opened again holds no secret.
    director.goto(&web.at("/directory")).await.expect("open");
    wait_for_text(director, "#endpoints", "", WAIT).await;
    assert!(!exists(director, ".secret").await);
    let hook_row = format!("form.endpoint[data-id='{}']", hook.id);
    click(director, &format!("{hook_row} button[value=rotate]")).await;
    wait_for_text(
        director,
        &format!("{hook_row} .secret code"),
        "whsec_",
        WAIT,
    )
    .await;
    assert_ne!(text_of(director, ".secret code").await, first_secret);
    assert_eq!(endpoints_of(web, agency).await[1].secret_version, 2);
    hook
}

async fn endpoints_of(web: &Web, agency: Uuid) -> Vec<NotificationEndpoint> {
    web.fixture
        .clients
        .directory
        .clone()
        .list_notification_endpoints(placement_cli::clients::as_agency_with(
            agency,
            &[placement_platform::caller::Role::DirectoryAdmin],
            ListNotificationEndpointsRequest {
                agency_id: agency.to_string(),
            },
        ))
        .await
        .expect("ListNotificationEndpoints")
        .into_inner()
        .endpoints
}
