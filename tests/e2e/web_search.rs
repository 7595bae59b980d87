//! A search in the browser (issue #27), on the stack of the placement test
//! (`web::four_people_place_the_twins_in_their_browsers`, once its own checks are done): the Pirdop
//! caseworker ticks three services of the Vratsa district in a case's directory results, sees the search's
//! preview with their free places and sends it; the search's page shows the three side by side. Mezdra
//! declines at once, before any acknowledgement (through the API: no one of Mezdra signs in to the demo);
//! the Vratsa centre, acknowledged by both parties, offers a place on its director's page; the Vratsa
//! foster-care team, asked for its own foster care, gives a waiting reason on its page. The Pirdop
//! supervisor confirms the offer on the search's page, which then shows the waiting request closed as placed
//! elsewhere and the decline kept; the centre records the children's arrival.

use std::time::Duration;

use fantoccini::{Client, Locator};
use placement_cli::{clients::as_agency, scenario::eventually};
use placement_e2e::{
    browser::{Driver, screenshot, wait_for_text, wait_gone, wait_reloading},
    web_app::exists,
};
use placement_proto::v1::{
    DeclineReason, DeclineReferralRequest, GetSearchRequest, ReferralStatus, Search, Urgency,
    WaitingReason, WithdrawReason,
};

use crate::web::{Web, click, fill, select, text_of};

const WAIT: Duration = Duration::from_secs(20);

/// The services asked (demo keys), their Bulgarian names, in the order ticked.
const ASKED: [(&str, &str); 3] = [
    ("ftpc-vratsa", "ЦНСТДБУ Враца 1"),
    ("ftpcd-mezdra", "ЦНСТДМУ Мездра"),
    ("foster-care-vratsa", "Приемна грижа – Враца"),
];

pub(crate) async fn a_dsa_sends_one_search_to_three_services(web: &Web, driver: &mut Driver) {
    let f = &web.fixture;
    let case = f.open_twins_case(f.agency("dsa-pirdop")).await;
    let centre = f.demo.service("ftpc-vratsa");
    let centre_free_before = f.service(centre).await.free_places;

    let caseworker = driver.person().await;
    let search_id = the_caseworker_sends_the_search(web, &caseworker, &case.id).await;
    let search = search_of(web, &search_id).await;
    let ids = referrals_in_order(web, &search);
    the_three_side_by_side(&caseworker, &search, &ids).await;
    // Each person's browser is closed once done: the placement test's five are open still.
    caseworker.close().await.ok();

    mezdra_declines_at_once(web, &ids[1]).await;
    let director = driver.person().await;
    let foster = driver.person().await;
    the_centre_offers_a_place(web, &director, &foster, &ids[0]).await;
    the_foster_team_waits_with_a_reason(web, &foster, &ids[2]).await;
    foster.close().await.ok();

    let supervisor = driver.person().await;
    the_supervisor_confirms_the_offer(web, &supervisor, &case.id, &search_id, &ids).await;
    the_centre_records_the_arrival(web, &director, &ids[0]).await;

    // The centre's places were held on its offer and taken on the confirmation; nothing held elsewhere.
    eventually("the centre's places taken", WAIT, || async {
        let free = f.service(centre).await.free_places;
        (free + 2 == centre_free_before).then_some(())
    })
    .await
    .expect("two places fewer at the centre");
    for c in [director, supervisor] {
        c.close().await.ok();
    }
}

/// From the case's results in Vratsa, the three ticked and previewed with their free places (as the
/// directory has them), sent as one urgent search; returns the search's id (from its page's address).
async fn the_caseworker_sends_the_search(web: &Web, caseworker: &Client, case_id: &str) -> String {
    let page = format!("/cases/{case_id}?region=VRC");
    web.sign_in(caseworker, "pirdop-caseworker", &page).await;
    wait_for_text(caseworker, "#results", ASKED[0].1, WAIT).await;
    for (key, _) in ASKED {
        let id = web.fixture.demo.service(key);
        click(
            caseworker,
            &format!("#results tr[data-id='{id}'] input.pick"),
        )
        .await;
    }
    screenshot(caseworker, "search-picked").await;
    click(caseworker, "#send-to-these").await;
    wait_for_text(caseworker, "#search-chosen", ASKED[2].1, WAIT).await;
    assert_eq!(count(caseworker, "#search-chosen tr").await, 3);
    for (key, name) in ASKED {
        let id = web.fixture.demo.service(key);
        let free = web.fixture.service(id).await.free_places.to_string();
        let row = format!("#search-chosen tr[data-id='{id}']");
        // The preview's places are the referrals service's, which learns them from the directory's events.
        wait_reloading(caseworker, &format!("{row} .free"), &free, WAIT).await;
        assert_eq!(text_of(caseworker, &format!("{row} .free")).await, free);
        assert!(text_of(caseworker, &row).await.contains(name), "{name}");
        assert!(
            !exists(caseworker, &format!("{row} .unfit")).await,
            "{name} fits"
        );
    }
    fill(caseworker, "#number", "ZD-9/2026").await;
    select(
        caseworker,
        "#urgency",
        &(Urgency::Urgent as i32).to_string(),
    )
    .await;
    fill(
        caseworker,
        "#reason",
        "No place in Sofia Province; the twins stay together.",
    )
    .await;
    screenshot(caseworker, "search-preview").await;
    click(caseworker, "#send-search").await;
    wait_for_text(caseworker, "#search-requests", ASKED[2].1, WAIT).await;
    let url = caseworker.current_url().await.expect("url");
    let id = url
        .path()
        .strip_prefix("/searches/")
        .expect("the search's page");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{url}");
    id.to_string()
}

/// The search as its sender reads it through the API.
async fn search_of(web: &Web, id: &str) -> Search {
    (web.fixture.clients.referrals.clone())
        .get_search(as_agency(
            web.fixture.agency("dsa-pirdop"),
            GetSearchRequest {
                search_id: id.to_string(),
            },
        ))
        .await
        .expect("GetSearch")
        .into_inner()
}

/// The referrals' ids in the order of [`ASKED`].
fn referrals_in_order(web: &Web, search: &Search) -> Vec<String> {
    ASKED
        .iter()
        .map(|(key, _)| {
            let service = web.fixture.demo.service(key).to_string();
            let r = (search.referrals.iter())
                .find(|r| r.service_id == service)
                .unwrap_or_else(|| panic!("a referral to {key}"));
            r.id.clone()
        })
        .collect()
}

/// One row per request: the service and its district by name, sent, not answered, the acknowledgement
/// due; the search urgent, as each of its referrals.
async fn the_three_side_by_side(caseworker: &Client, search: &Search, ids: &[String]) {
    assert_eq!(search.referrals.len(), 3);
    assert!(
        (search.referrals.iter()).all(|r| r.urgency == Urgency::Urgent as i32),
        "every referral of the search is urgent"
    );
    assert_eq!(count(caseworker, "#search-requests tbody tr").await, 3);
    assert_eq!(text_of(caseworker, "#search-urgency").await, "Спешна");
    for (id, (_, name)) in ids.iter().zip(ASKED) {
        let row = format!("#search-requests tr[data-id='{id}']");
        assert_eq!(text_of(caseworker, &format!("{row} .service")).await, name);
        assert_eq!(
            text_of(caseworker, &format!("{row} .district")).await,
            "Враца"
        );
        assert_eq!(
            text_of(caseworker, &format!("{row} .answer")).await,
            "Без отговор"
        );
        assert!(
            (text_of(caseworker, &format!("{row} .deadline")).await)
                .starts_with("Потвърждаване на получаването: "),
            "{name}: the acknowledgement's deadline"
        );
    }
    // A caseworker confirms no placement.
    assert!(!exists(caseworker, "button.confirm").await);
    screenshot(caseworker, "search-sent").await;
}

/// Mezdra has no place: it declines at once, before either acknowledgement.
async fn mezdra_declines_at_once(web: &Web, id: &str) {
    let declined = (web.fixture.clients.referrals.clone())
        .decline_referral(as_agency(
            web.fixture.agency("provider-mezdra"),
            DeclineReferralRequest {
                referral_id: id.to_string(),
                reason: DeclineReason::AtCapacity as i32,
                comment: String::new(),
            },
        ))
        .await
        .expect("a decline before the acknowledgements")
        .into_inner();
    assert_eq!(declined.status, ReferralStatus::Declined as i32);
}

/// The centre's director may decline before the acknowledgements (and may not accept yet); the centre and
/// the district's foster-care team acknowledge on the request's page, and the director accepts.
async fn the_centre_offers_a_place(web: &Web, director: &Client, foster: &Client, id: &str) {
    let page = format!("/referrals/{id}");
    web.sign_in(director, "vratsa-director", &page).await;
    wait_for_text(director, "#referral-status", "Изпратено", WAIT).await;
    assert!(
        exists(director, "#decline").await,
        "a decline offered at once"
    );
    assert!(!exists(director, "#accept").await, "nothing to accept yet");
    assert!(
        !exists(director, "#referral-search").await,
        "the search's page is its sender's"
    );
    click(director, "#acknowledge").await;
    wait_gone(director, "#acknowledge", WAIT).await;
    web.sign_in(foster, "vratsa-foster-team", &page).await;
    click(foster, "#acknowledge").await;
    wait_for_text(foster, "#referral-status", "Потвърдено", WAIT).await;
    director.goto(&web.at(&page)).await.expect("open");
    click(director, "#accept").await;
    wait_for_text(director, "#referral-status", "Прието", WAIT).await;
}

/// The foster-care team, asked for its own foster care, cannot acknowledge yet: it gives a coded reason,
/// a comment, and the page and the service keep them.
async fn the_foster_team_waits_with_a_reason(web: &Web, foster: &Client, id: &str) {
    foster
        .goto(&web.at(&format!("/referrals/{id}")))
        .await
        .expect("open");
    wait_for_text(foster, "#referral-status", "Изпратено", WAIT).await;
    assert!(!exists(foster, "#referral-waiting").await);
    let reason = WaitingReason::DocumentsMissing as i32;
    select(foster, "#waiting-reason", &reason.to_string()).await;
    fill(
        foster,
        "#waiting-comment",
        "Медицинските документи идват от Златица",
    )
    .await;
    click(foster, "#postpone").await;
    wait_for_text(foster, "#referral-waiting", "Липсва", WAIT).await;
    assert_eq!(
        text_of(foster, "#referral-waiting").await,
        "Липсват документи: Медицинските документи идват от Златица"
    );
    wait_for_text(foster, "#timeline", "Отложено с причина", WAIT).await;
    screenshot(foster, "referral-waiting").await;
    let r = web
        .fixture
        .referral(web.fixture.agency("foster-vratsa"), id)
        .await;
    assert_eq!((r.waiting_reason, r.postponements), (reason, 1));
}

/// The supervisor finds the search from the case's page, compares the answers, confirms the one offer;
/// the waiting request is then closed as placed elsewhere, the decline stays a decline, and a closed
/// request's page links back to the search.
async fn the_supervisor_confirms_the_offer(
    web: &Web,
    supervisor: &Client,
    case_id: &str,
    search_id: &str,
    ids: &[String],
) {
    web.sign_in(
        supervisor,
        "pirdop-supervisor",
        &format!("/cases/{case_id}"),
    )
    .await;
    click(
        supervisor,
        &format!("#case-searches a[href='/searches/{search_id}']"),
    )
    .await;
    let row = |i: usize| format!("#search-requests tr[data-id='{}']", ids[i]);
    wait_for_text(
        supervisor,
        &format!("{} .answer", row(0)),
        "Предлага място",
        WAIT,
    )
    .await;
    assert_eq!(
        text_of(supervisor, &format!("{} .answer", row(1))).await,
        "Няма свободни места"
    );
    let waiting = text_of(supervisor, &format!("{} .waiting", row(2))).await;
    assert!(waiting.starts_with("Липсват документи"), "{waiting}");
    assert_eq!(
        text_of(supervisor, &format!("{} .answer", row(2))).await,
        "Без отговор"
    );
    assert_eq!(count(supervisor, "button.confirm").await, 1, "one offer");
    screenshot(supervisor, "search-answers").await;
    click(supervisor, &format!("{} button.confirm", row(0))).await;
    wait_for_text(supervisor, "#search-placed", "", WAIT).await;
    wait_for_text(
        supervisor,
        &format!("{} .answer", row(2)),
        "Настанени другаде",
        WAIT,
    )
    .await;
    assert_eq!(
        text_of(supervisor, &format!("{} .answer", row(1))).await,
        "Няма свободни места"
    );
    assert!(
        exists(
            supervisor,
            &format!("{}[data-status='REFERRAL_STATUS_PLACED']", row(0))
        )
        .await
    );
    assert!(
        !exists(supervisor, "button.confirm").await,
        "nothing left to confirm"
    );
    screenshot(supervisor, "search-placed").await;
    the_service_closed_the_others(web, supervisor, search_id, ids).await;
}

/// The service holds what the page shows: the offer placed, the waiting request withdrawn as placed
/// elsewhere, the decline a decline; a closed request's page links back to the search.
async fn the_service_closed_the_others(
    web: &Web,
    supervisor: &Client,
    search_id: &str,
    ids: &[String],
) {
    let search = search_of(web, search_id).await;
    assert_eq!(search.placed_referral_id, ids[0]);
    let status = |i: usize| {
        let r = (search.referrals.iter())
            .find(|r| r.id == ids[i])
            .expect("a referral");
        (r.status, r.withdraw_reason)
    };
    assert_eq!(status(1).0, ReferralStatus::Declined as i32);
    assert_eq!(
        status(2),
        (
            ReferralStatus::Withdrawn as i32,
            WithdrawReason::PlacedElsewhere as i32
        )
    );
    supervisor
        .goto(&web.at(&format!("/referrals/{}", ids[2])))
        .await
        .expect("open");
    click(supervisor, "#referral-search").await;
    wait_for_text(supervisor, "#search-placed", "", WAIT).await;
}

/// The children arrived: the centre records it on the placed referral's page, once.
async fn the_centre_records_the_arrival(web: &Web, director: &Client, id: &str) {
    director
        .goto(&web.at(&format!("/referrals/{id}")))
        .await
        .expect("open");
    wait_for_text(director, "#referral-status", "Настанени", WAIT).await;
    click(director, "#record-arrival").await;
    wait_gone(director, "#record-arrival", WAIT).await;
    wait_for_text(director, "#timeline", "Децата пристигнаха", WAIT).await;
    let r = web
        .fixture
        .referral(web.fixture.agency("provider-vratsa"), id)
        .await;
    assert!(r.arrived_at.is_some(), "the arrival is recorded");
}

async fn count(client: &Client, css: &str) -> usize {
    client
        .find_all(Locator::Css(css))
        .await
        .map_or(0, |v| v.len())
}
