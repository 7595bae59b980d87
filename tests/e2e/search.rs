//! A search: one request for a case's children sent to several services at once (issue #27). A service
//! declines at once, two accept and hold places, one never answers; the foster-care team acknowledges once
//! per district; the DSA confirms one and the rest are withdrawn as placed elsewhere, their places released
//! and their parties told. The five-service scenario shows every answer side by side (a wait with
//! its reason too) and the late steps in the reports. Two confirmations racing on one search place the
//! children once. A bad search names the service at fault and creates nothing; an offer kept as a fallback
//! holds its places for a time, then is released once, and a bad fallback changes nothing.

use placement_cli::{
    clients::{as_agency, as_agency_with},
    scenario::eventually,
};
use placement_e2e::{EventRecorder, InProcessStack, StackOptions};
use placement_platform::{
    caller::Role,
    time::{from_timestamp, timestamp},
};
use placement_proto::prost_types::Timestamp;
use placement_proto::v1::{
    AcceptReferralRequest, Case, CaseStatus, ConfirmPlacementRequest, DeclineReason,
    DeclineReferralRequest, ExtendSearchRequest, GetAgencyReportRequest, GetCaseRequest,
    GetSearchRequest, Language, ListReferralsRequest, Notification, NotificationKind, PageRequest,
    PostponeStepRequest, PreviewSearchRequest, Referral, ReferralAction, ReferralDirection,
    ReferralStatus, ReferralStepName, Search, SearchServicesRequest, ServiceFit, ServiceStatus,
    ServiceType, SocialService, SubmitSearchRequest, WaitingReason, WithdrawReason,
    report_service_client::ReportServiceClient,
};
use tonic::Code;
use uuid::Uuid;

use crate::{
    notices::has_uuid,
    support::{Fixture, WAIT, submission},
};

/// A search of `case` to `services` (demo keys) with idempotency key `key`.
fn search_request(
    f: &Fixture<impl Sized>,
    case: &Case,
    services: &[&str],
    key: &str,
) -> SubmitSearchRequest {
    let ids = services
        .iter()
        .map(|s| f.demo.service(s).to_string())
        .collect();
    search_of(case, ids, key)
}

/// A search of `case` to the services `service_ids` as given, on a director's order of yesterday.
fn search_of(case: &Case, service_ids: Vec<String>, key: &str) -> SubmitSearchRequest {
    let one = submission(case, Uuid::nil(), key);
    SubmitSearchRequest {
        case_id: one.case_id,
        service_ids,
        legal_basis: one.legal_basis,
        reason: one.reason,
        idempotency_key: one.idempotency_key,
        ..Default::default()
    }
}

async fn submit_search(
    f: &Fixture<impl Sized>,
    dsa: Uuid,
    request: SubmitSearchRequest,
) -> Result<Search, tonic::Status> {
    (f.clients.referrals.clone())
        .submit_search(as_agency(dsa, request))
        .await
        .map(|r| r.into_inner())
}

async fn get_search(
    f: &Fixture<impl Sized>,
    agency: Uuid,
    id: &str,
) -> Result<Search, tonic::Status> {
    (f.clients.referrals.clone())
        .get_search(as_agency(
            agency,
            GetSearchRequest {
                search_id: id.to_string(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn accept(f: &Fixture<impl Sized>, provider: &str, referral: &Referral) {
    let accepted = (f.clients.referrals.clone())
        .accept_referral(as_agency(
            f.agency(provider),
            AcceptReferralRequest {
                referral_id: referral.id.clone(),
            },
        ))
        .await
        .expect("AcceptReferral")
        .into_inner();
    assert_eq!(accepted.status, ReferralStatus::Accepted as i32);
}

async fn confirm(
    f: &Fixture<impl Sized>,
    dsa: Uuid,
    referral_id: &str,
) -> Result<Referral, tonic::Status> {
    confirm_keeping(f, dsa, referral_id, "").await
}

/// Confirms `referral_id`, keeping `fallback` (empty: none) as a fallback.
async fn confirm_keeping(
    f: &Fixture<impl Sized>,
    dsa: Uuid,
    referral_id: &str,
    fallback: &str,
) -> Result<Referral, tonic::Status> {
    (f.clients.referrals.clone())
        .confirm_placement(as_agency(
            dsa,
            ConfirmPlacementRequest {
                referral_id: referral_id.to_string(),
                keep_as_fallback_referral_id: fallback.to_string(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

fn statuses(search: &Search) -> Vec<ReferralStatus> {
    (search.referrals.iter())
        .map(|r| ReferralStatus::try_from(r.status).expect("a known status"))
        .collect()
}

/// Whether `agency` has acknowledged `referral`.
fn acknowledged_by(referral: &Referral, agency: Uuid) -> bool {
    (referral.acknowledgements.iter())
        .any(|a| a.agency_id == agency.to_string() && a.acknowledged_at.is_some())
}

/// The directory's view of `service` once it holds `held` places.
async fn holding(f: &Fixture<impl Sized>, service: Uuid, held: u32) -> SocialService {
    eventually("the directory's held places", WAIT, || async {
        let s = f.service(service).await;
        (s.held_places == held).then_some(s)
    })
    .await
    .unwrap_or_else(|_| panic!("{held} places held at {service}"))
}

/// The case once it is placed, with the referral that placed it.
async fn placed_case(f: &Fixture<impl Sized>, dsa: Uuid, case: &Case) -> Case {
    eventually("the case to be placed", WAIT, || async {
        let c = (f.clients.cases.clone())
            .get_case(as_agency(
                dsa,
                GetCaseRequest {
                    case_id: case.id.clone(),
                },
            ))
            .await
            .ok()?
            .into_inner();
        (c.status == CaseStatus::Placed as i32).then_some(c)
    })
    .await
    .expect("case placed")
}

/// The four services asked in the first scenario, in the order asked: Mezdra's centre (declines at once),
/// Vratsa's (accepts; chosen), Haskovo's (accepts), and Mezdra's centre for children with disabilities
/// (never answers). Three are in Vratsa's district, so its foster-care team acknowledges once for them.
const FOUR: [&str; 4] = ["ftpc-mezdra", "ftpc-vratsa", "ftpc-haskovo", "ftpcd-mezdra"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_places_the_children_and_closes_the_rest() {
    let f = Fixture::start().await;
    let mut recorder = f.stack.record_events().await;
    let pirdop = f.agency("dsa-pirdop");
    let case = f.open_twins_case(pirdop).await;
    let mut before = Vec::new();
    for key in FOUR {
        before.push(f.service(f.demo.service(key)).await);
    }

    let search = sent_to_four(&f, pirdop, &case).await;
    let r = search.referrals.clone();
    mezdra_declines_at_once(&f, &r[0]).await;
    vratsa_s_foster_team_acknowledges_once(&f, pirdop, &r).await;
    f.acknowledge(&r[1].id, &["provider-vratsa"]).await;
    accept(&f, "provider-vratsa", &r[1]).await;
    f.acknowledge(&r[2].id, &["provider-haskovo", "foster-haskovo"])
        .await;
    accept(&f, "provider-haskovo", &r[2]).await;
    holding(&f, f.demo.service("ftpc-vratsa"), before[1].held_places + 2).await;
    holding(
        &f,
        f.demo.service("ftpc-haskovo"),
        before[2].held_places + 2,
    )
    .await;
    the_sender_sees_every_answer_side_by_side(&f, pirdop, &search).await;

    let placed = confirm(&f, pirdop, &r[1].id)
        .await
        .expect("ConfirmPlacement");
    assert_eq!(placed.status, ReferralStatus::Placed as i32);
    the_others_are_closed_as_placed_elsewhere(&f, pirdop, &search).await;
    let case_after = placed_case(&f, pirdop, &case).await;
    assert_eq!(
        case_after.placement.expect("placement").referral_id,
        r[1].id
    );
    places_add_up(&f, &before).await;
    let vratsa_sd = f.demo.service("foster-care-vratsa").to_string();
    let refused = extend(&f, pirdop, &search.id, vec![vratsa_sd], "after-placement")
        .await
        .expect_err("a placed search takes no new round");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    the_parties_of_each_closed_referral_are_told(&f, &mut recorder, &r).await;
    f.assert_no_dead_letters().await;
}

/// The search goes to the four services: a referral each, in the order asked, each with the search's id;
/// a retry with the same key answers with the same search.
async fn sent_to_four(f: &Fixture, pirdop: Uuid, case: &Case) -> Search {
    let request = search_request(f, case, &FOUR, "search-four");
    let search = submit_search(f, pirdop, request.clone())
        .await
        .expect("SubmitSearch");
    assert_eq!(search.case_id, case.id);
    assert_eq!(search.sender_agency_id, pirdop.to_string());
    assert!(search.placed_referral_id.is_empty());
    let asked: Vec<String> = search
        .referrals
        .iter()
        .map(|r| r.service_id.clone())
        .collect();
    assert_eq!(asked, request.service_ids);
    assert_eq!(statuses(&search), vec![ReferralStatus::Submitted; 4]);
    for r in &search.referrals {
        assert_eq!(r.search_id, search.id);
        assert_eq!(r.places, 2);
        assert_eq!(r.sender_agency_id, pirdop.to_string());
    }
    let again = submit_search(f, pirdop, request).await.expect("a retry");
    assert_eq!(again.id, search.id);
    let ids = |s: &Search| s.referrals.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&again), ids(&search));
    search
}

/// Mezdra's centre declines before anyone acknowledged.
async fn mezdra_declines_at_once(f: &Fixture, referral: &Referral) {
    let declined = (f.clients.referrals.clone())
        .decline_referral(as_agency(
            f.agency("provider-mezdra"),
            DeclineReferralRequest {
                referral_id: referral.id.clone(),
                reason: DeclineReason::AtCapacity as i32,
                comment: String::new(),
            },
        ))
        .await
        .expect("DeclineReferral at once")
        .into_inner();
    assert_eq!(declined.status, ReferralStatus::Declined as i32);
}

/// Vratsa's foster-care team acknowledges Vratsa's referral: that counts for the still-submitted one in
/// its district (Mezdra's second centre), not for the declined one; acknowledging it again is refused.
async fn vratsa_s_foster_team_acknowledges_once(f: &Fixture, pirdop: Uuid, r: &[Referral]) {
    let foster = f.agency("foster-vratsa");
    f.acknowledge(&r[1].id, &["foster-vratsa"]).await;
    let other = f.referral(pirdop, &r[3].id).await;
    assert!(acknowledged_by(&other, foster), "{other:?}");
    assert!(!acknowledged_by(&other, f.agency("provider-mezdra")));
    assert_eq!(other.status, ReferralStatus::Submitted as i32);
    assert!(!acknowledged_by(
        &f.referral(pirdop, &r[0].id).await,
        foster
    ));
    assert!(!acknowledged_by(
        &f.referral(pirdop, &r[2].id).await,
        foster
    ));
    let twice = (f.clients.referrals.clone())
        .acknowledge_referral(as_agency(
            foster,
            placement_proto::v1::AcknowledgeReferralRequest {
                referral_id: r[3].id.clone(),
            },
        ))
        .await
        .expect_err("already acknowledged for the district");
    assert_eq!(twice.code(), Code::FailedPrecondition, "{twice:?}");
}

/// The sender's view shows every answer; to anyone else the search is not there.
async fn the_sender_sees_every_answer_side_by_side(f: &Fixture, pirdop: Uuid, search: &Search) {
    use ReferralStatus as S;
    let seen = get_search(f, pirdop, &search.id).await.expect("GetSearch");
    assert_eq!(
        statuses(&seen),
        vec![S::Declined, S::Accepted, S::Accepted, S::Submitted]
    );
    assert_eq!(
        seen.referrals[0].decline_reason,
        DeclineReason::AtCapacity as i32
    );
    assert!(seen.placed_referral_id.is_empty());
    for stranger in [
        "provider-vratsa",
        "foster-vratsa",
        "rdsa-vratsa",
        "dsa-pravets",
    ] {
        let refused = get_search(f, f.agency(stranger), &search.id)
            .await
            .expect_err("only the sender sees a search");
        assert_eq!(refused.code(), Code::NotFound, "{stranger}: {refused:?}");
    }
}

/// Confirming Vratsa's referral withdrew the other open ones as placed elsewhere, by the sender; the
/// declined one stays declined; the search records its placement.
async fn the_others_are_closed_as_placed_elsewhere(f: &Fixture, pirdop: Uuid, search: &Search) {
    use ReferralStatus as S;
    let after = get_search(f, pirdop, &search.id).await.expect("GetSearch");
    assert_eq!(
        statuses(&after),
        vec![S::Declined, S::Placed, S::Withdrawn, S::Withdrawn]
    );
    assert_eq!(after.placed_referral_id, search.referrals[1].id);
    for closed in &after.referrals[2..] {
        assert_eq!(
            closed.withdraw_reason,
            WithdrawReason::PlacedElsewhere as i32
        );
        let last = closed.history.last().expect("history");
        assert_eq!(last.actor_agency_id, pirdop.to_string());
        assert_eq!(last.to_status, S::Withdrawn as i32);
    }
}

/// Haskovo's held places are released (free and held as before); Vratsa's became occupied; the others
/// never held any.
async fn places_add_up(f: &Fixture, before: &[SocialService]) {
    let haskovo = holding(f, f.demo.service("ftpc-haskovo"), before[2].held_places).await;
    assert_eq!(haskovo.free_places, before[2].free_places);
    let vratsa = holding(f, f.demo.service("ftpc-vratsa"), before[1].held_places).await;
    assert_eq!(vratsa.occupied_places, before[1].occupied_places + 2);
    assert_eq!(vratsa.free_places, before[1].free_places - 2);
    for i in [0, 3] {
        let s = f.service(f.demo.service(FOUR[i])).await;
        assert_eq!(
            (s.free_places, s.held_places),
            (before[i].free_places, before[i].held_places)
        );
    }
}

/// Each referral published its steps and nothing more (one placement in all), and the parties of each
/// referral closed as placed elsewhere were told of its withdrawal.
async fn the_parties_of_each_closed_referral_are_told(
    f: &Fixture,
    recorder: &mut EventRecorder,
    r: &[Referral],
) {
    // Submitted and declined; submitted, two acknowledgements, accepted, placed; the same but withdrawn;
    // submitted, the foster team's acknowledgement, withdrawn.
    for (referral, events) in r.iter().zip([2, 5, 5, 3]) {
        f.settle(recorder, &referral.id, events).await;
    }
    let placements = (recorder.events.iter())
        .filter(|(e, _)| e.event_type == "referral.placed")
        .count();
    assert_eq!(placements, 1);
    // Every step of every request names the search it belongs to.
    let search_ids: std::collections::BTreeSet<String> = (recorder.events.iter())
        .filter(|(e, _)| e.event_type.starts_with("referral."))
        .filter(|(e, _)| r.iter().any(|x| x.id == e.aggregate_id))
        .map(|(e, _)| {
            <placement_proto::v1::ReferralEvent as prost::Message>::decode(e.payload.as_slice())
                .expect("a referral event")
                .search_id
        })
        .collect();
    assert_eq!(
        search_ids.into_iter().collect::<Vec<_>>(),
        [r[0].search_id.clone()]
    );
    for (referral, parties) in [
        (&r[2], ["provider-haskovo", "foster-haskovo"]),
        (&r[3], ["provider-mezdra", "foster-vratsa"]),
    ] {
        for party in parties {
            let kinds = Fixture::kinds(&f.notifications(f.agency(party), &referral.id).await);
            assert_eq!(
                kinds.last(),
                Some(&NotificationKind::ReferralWithdrawn),
                "{party} on {}: {kinds:?}",
                referral.id
            );
            assert_eq!(
                kinds
                    .iter()
                    .filter(|k| **k == NotificationKind::ReferralWithdrawn)
                    .count(),
                1
            );
        }
    }
}

/// Five services that fit the twins outside the sender's district, each with room for two.
const FIVE: [&str; 5] = [
    "ftpc-vratsa",
    "ftpcd-mezdra",
    "crisis-stara-zagora",
    "ftpc-haskovo",
    "foster-care-vratsa",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_confirmations_racing_on_one_search_place_the_children_once() {
    let f = Fixture::start().await;
    let pirdop = f.agency("dsa-pirdop");
    let case = f.open_twins_case(pirdop).await;
    let mut before = Vec::new();
    for key in FIVE {
        before.push(f.service(f.demo.service(key)).await);
    }
    let search = submit_search(&f, pirdop, search_request(&f, &case, &FIVE, "search-five"))
        .await
        .expect("SubmitSearch");
    let r = &search.referrals;
    // Vratsa's foster-care team acknowledges once for its district; it runs the foster care itself, and
    // acknowledges that referral as its provider.
    f.acknowledge(&r[0].id, &["foster-vratsa", "provider-vratsa"])
        .await;
    f.acknowledge(&r[1].id, &["provider-mezdra"]).await;
    f.acknowledge(&r[2].id, &["provider-stara-zagora", "foster-stara-zagora"])
        .await;
    f.acknowledge(&r[3].id, &["provider-haskovo", "foster-haskovo"])
        .await;
    f.acknowledge(&r[4].id, &["foster-vratsa"]).await;
    let providers = [
        "provider-vratsa",
        "provider-mezdra",
        "provider-stara-zagora",
        "provider-haskovo",
        "foster-vratsa",
    ];
    for (referral, provider) in r.iter().zip(providers) {
        accept(&f, provider, referral).await;
    }
    for (key, service) in FIVE.iter().zip(&before) {
        holding(&f, f.demo.service(key), service.held_places + 2).await;
    }

    let (first, second) =
        tokio::join!(confirm(&f, pirdop, &r[0].id), confirm(&f, pirdop, &r[3].id));
    let chosen = match (&first, &second) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => {
            assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
            if first.is_ok() { 0 } else { 3 }
        }
        other => panic!("exactly one confirmation should succeed: {other:?}"),
    };
    only_the_chosen_one_is_placed(&f, pirdop, &search, chosen).await;
    let case_after = placed_case(&f, pirdop, &case).await;
    assert_eq!(
        case_after.placement.expect("placement").referral_id,
        r[chosen].id
    );
    for (i, (key, service)) in FIVE.iter().zip(&before).enumerate() {
        let now = holding(&f, f.demo.service(key), service.held_places).await;
        let taken = if i == chosen { 2 } else { 0 };
        assert_eq!(now.free_places, service.free_places - taken, "{key}");
        assert_eq!(
            now.occupied_places,
            service.occupied_places + taken,
            "{key}"
        );
    }
    f.assert_no_dead_letters().await;
}

/// Exactly one referral of the search is placed, the chosen one; every other is withdrawn as placed
/// elsewhere.
async fn only_the_chosen_one_is_placed(f: &Fixture, pirdop: Uuid, search: &Search, chosen: usize) {
    let after = get_search(f, pirdop, &search.id).await.expect("GetSearch");
    assert_eq!(after.placed_referral_id, search.referrals[chosen].id);
    for (i, r) in after.referrals.iter().enumerate() {
        if i == chosen {
            assert_eq!(r.status, ReferralStatus::Placed as i32);
        } else {
            assert_eq!(r.status, ReferralStatus::Withdrawn as i32, "referral {i}");
            assert_eq!(r.withdraw_reason, WithdrawReason::PlacedElsewhere as i32);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_search_creates_nothing_and_a_kept_fallback_holds_for_a_time() {
    let f = in_process_with("PLACEMENT_FALLBACK_HOLD", FALLBACK_HOLD).await;
    let pirdop = f.agency("dsa-pirdop");
    let case = f.open_twins_case(pirdop).await;
    let vratsa = f.demo.service("ftpc-vratsa").to_string();
    let haskovo = f.demo.service("ftpc-haskovo").to_string();
    let eleven: Vec<String> = (0..11).map(|_| Uuid::new_v4().to_string()).collect();
    let bad: [(Vec<String>, Code, &str); 6] = [
        (Vec::new(), Code::InvalidArgument, "service_ids:"),
        (eleven, Code::InvalidArgument, "service_ids:"),
        (
            vec![vratsa.clone(), haskovo.clone(), vratsa.clone()],
            Code::InvalidArgument,
            "service_ids[2]:",
        ),
        (
            vec![vratsa.clone(), "not-a-uuid".into()],
            Code::InvalidArgument,
            "service_ids[1]:",
        ),
        // A service the directory does not know.
        (
            vec![haskovo.clone(), Uuid::new_v4().to_string()],
            Code::InvalidArgument,
            "service_ids[1]:",
        ),
        // Stara Zagora's centre takes children from 6; the twins are 4 or 5.
        (
            vec![
                vratsa.clone(),
                haskovo.clone(),
                f.demo.service("ftpc-stara-zagora").to_string(),
            ],
            Code::FailedPrecondition,
            "service_ids[2]:",
        ),
    ];
    for (i, (services, code, field)) in bad.into_iter().enumerate() {
        let refused = submit_search(&f, pirdop, search_of(&case, services, &format!("bad-{i}")))
            .await
            .expect_err("a bad search is refused");
        assert_eq!(refused.code(), code, "{i}: {refused:?}");
        assert!(refused.message().starts_with(field), "{i}: {refused:?}");
    }
    // A district that is none of the 28 is named by its position.
    let mut unknown_district = search_of(&case, vec![vratsa.clone()], "bad-district");
    unknown_district.region_codes = vec!["VRC".into(), "XYZ".into()];
    let refused = submit_search(&f, pirdop, unknown_district)
        .await
        .expect_err("an unknown district");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().starts_with("region_codes[1]:"),
        "{refused:?}"
    );
    // A day already past, or years ahead, is no day to need a place by.
    for (days_ago, years) in [(3, 0), (0, 2)] {
        let mut when = search_of(&case, vec![vratsa.clone()], &format!("bad-day-{years}"));
        let day = chrono::Utc::now().date_naive() - chrono::Days::new(days_ago)
            + chrono::Months::new(12 * years);
        when.needed_by = Some(placement_platform::time::date(day));
        let refused = submit_search(&f, pirdop, when)
            .await
            .expect_err("a day outside the search's time");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().starts_with("needed_by:"), "{refused:?}");
    }
    a_bad_preview_or_round_names_the_field(&f, pirdop, &case).await;
    // Another DSA cannot search for Pirdop's case: it is not theirs to see.
    let theirs = submit_search(
        &f,
        f.agency("dsa-pravets"),
        search_of(&case, vec![vratsa], "k"),
    )
    .await
    .expect_err("not the case's owner");
    assert_eq!(theirs.code(), Code::NotFound, "{theirs:?}");
    nothing_was_sent(&f, pirdop).await;
    a_kept_fallback_holds_its_places_until_its_time_is_up(&f, pirdop).await;
}

/// The DSA has no referral out: no refused search sent any.
async fn nothing_was_sent(f: &Fixture<impl Sized>, pirdop: Uuid) {
    let sent = (f.clients.referrals.clone())
        .list_referrals(as_agency(
            pirdop,
            ListReferralsRequest {
                direction: ReferralDirection::Outgoing as i32,
                status: 0,
                page: None,
                ..Default::default()
            },
        ))
        .await
        .expect("ListReferrals")
        .into_inner();
    assert!(sent.referrals.is_empty(), "{:?}", sent.referrals);
}

async fn extend(
    f: &Fixture<impl Sized>,
    dsa: Uuid,
    search_id: &str,
    service_ids: Vec<String>,
    key: &str,
) -> Result<Search, tonic::Status> {
    (f.clients.referrals.clone())
        .extend_search(as_agency(
            dsa,
            ExtendSearchRequest {
                search_id: search_id.to_string(),
                service_ids,
                idempotency_key: key.to_string(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn preview(
    f: &Fixture<impl Sized>,
    dsa: Uuid,
    case: &Case,
    types: &[ServiceType],
    districts: &[&str],
) -> Result<Vec<ServiceFit>, tonic::Status> {
    (f.clients.referrals.clone())
        .preview_search(as_agency(
            dsa,
            PreviewSearchRequest {
                case_id: case.id.clone(),
                service_types: types.iter().map(|t| *t as i32).collect(),
                region_codes: districts.iter().map(|d| d.to_string()).collect(),
            },
        ))
        .await
        .map(|r| r.into_inner().services)
}

/// Bad previews and rounds are refused naming the field; another DSA's case or search is not found.
async fn a_bad_preview_or_round_names_the_field(
    f: &Fixture<impl Sized>,
    pirdop: Uuid,
    case: &Case,
) {
    let ftpc = [ServiceType::FamilyTypePlacementCentre];
    let bad_previews: [(&[ServiceType], &[&str], &str); 3] = [
        (&[], &[], "service_types:"),
        (&[ServiceType::Unspecified], &[], "service_types[0]:"),
        (&ftpc, &["HKV", "vrc"], "region_codes[1]:"),
    ];
    for (types, districts, field) in bad_previews {
        let refused = preview(f, pirdop, case, types, districts)
            .await
            .expect_err("a bad preview");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().starts_with(field), "{refused:?}");
    }
    let theirs = preview(f, f.agency("dsa-pravets"), case, &ftpc, &[])
        .await
        .expect_err("not the case's owner");
    assert_eq!(theirs.code(), Code::NotFound, "{theirs:?}");
    let service = f.demo.service("ftpc-vratsa").to_string();
    let bad_rounds: [(String, Vec<String>, &str, &str); 3] = [
        (
            "not-a-uuid".into(),
            vec![service.clone()],
            "k",
            "search_id:",
        ),
        (Uuid::new_v4().to_string(), Vec::new(), "k", "service_ids:"),
        (
            Uuid::new_v4().to_string(),
            vec![service.clone()],
            "",
            "idempotency_key:",
        ),
    ];
    for (search_id, services, key, field) in bad_rounds {
        let refused = extend(f, pirdop, &search_id, services, key)
            .await
            .expect_err("a bad round");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().starts_with(field), "{refused:?}");
    }
    let nowhere = extend(f, pirdop, &Uuid::new_v4().to_string(), vec![service], "k")
        .await
        .expect_err("no such search");
    assert_eq!(nowhere.code(), Code::NotFound, "{nowhere:?}");
}

/// The first round: Mezdra's centre (no room for twins; it declines at once) and Stara Zagora's crisis
/// centre (it never answers), with the districts the DSA would place the children in.
const ROUND_ONE: [&str; 2] = ["ftpc-mezdra", "crisis-stara-zagora"];
const DISTRICTS: [&str; 3] = ["VRC", "HKV", "SZR"];

/// A stack in this process whose requests pass their deadline in seconds.
async fn with_quick_deadlines() -> Fixture<InProcessStack> {
    let stack = InProcessStack::start(StackOptions {
        ack_deadline: Some("4s".into()),
        escalation_interval: Some("200ms".into()),
        ..Default::default()
    })
    .await;
    let clients = stack.clients();
    let demo = placement_cli::demo::seed(&clients)
        .await
        .expect("demo data loads");
    Fixture {
        stack,
        clients,
        demo,
    }
}

/// The directory's own answer to "which services could take the twins" (4 or 5 years old, two places):
/// every active service it lists, filtered and ordered here as the exchange promises (most free places
/// first, then by id; at most 10).
async fn directory_s_fits(
    f: &Fixture<InProcessStack>,
    types: &[ServiceType],
    districts: &[&str],
    asked: &[String],
) -> Vec<SocialService> {
    let mut all = (f.clients.directory.clone())
        .search_services(as_agency(
            f.agency("dsa-pirdop"),
            SearchServicesRequest {
                page: Some(PageRequest {
                    page_size: 500,
                    page_token: String::new(),
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("SearchServices")
        .into_inner()
        .services;
    all.retain(|s| {
        s.status == ServiceStatus::Active as i32
            && types.iter().any(|t| *t as i32 == s.r#type)
            && (districts.is_empty() || districts.contains(&s.region_code.as_str()))
            && s.free_places >= 2
            && s.min_age <= 5
            && s.max_age >= 4
            && !asked.contains(&s.id)
    });
    all.sort_by(|a, b| b.free_places.cmp(&a.free_places).then(a.id.cmp(&b.id)));
    all.truncate(10);
    all
}

/// The preview is the directory's answer, as the referrals service learnt it from the directory's events
/// (waited for: the events of the demo's services may still be arriving).
async fn the_preview_is_the_directory_s_own(
    f: &Fixture<InProcessStack>,
    pirdop: Uuid,
    case: &Case,
) {
    use ServiceType as T;
    let asked: [(&[T], &[&str]); 3] = [
        (&[T::FamilyTypePlacementCentre], &[]),
        (&[T::FamilyTypePlacementCentre], &["VRC"]),
        (&[T::CrisisCentre, T::FosterCare], &DISTRICTS),
    ];
    for (types, districts) in asked {
        let expected = directory_s_fits(f, types, districts, &[]).await;
        assert!(!expected.is_empty(), "the demo has services that fit");
        let shown = eventually("the preview to show the directory's fits", WAIT, || async {
            let shown = preview(f, pirdop, case, types, districts).await.ok()?;
            let ids: Vec<&String> = shown.iter().map(|s| &s.service_id).collect();
            (ids == expected.iter().map(|s| &s.id).collect::<Vec<_>>()).then_some(shown)
        })
        .await
        .unwrap_or_else(|_| panic!("preview of {types:?} in {districts:?}"));
        for (fit, service) in shown.iter().zip(&expected) {
            assert_eq!(fit.provider_agency_id, service.provider_agency_id);
            assert_eq!(fit.region_code, service.region_code);
            assert_eq!(fit.service_type, service.r#type);
            assert_eq!(fit.free_places, service.free_places);
            assert_eq!(
                (fit.min_age, fit.max_age),
                (service.min_age, service.max_age)
            );
        }
    }
}

async fn decline(f: &Fixture<impl Sized>, provider: Uuid, referral_id: &str) {
    let declined = (f.clients.referrals.clone())
        .decline_referral(as_agency(
            provider,
            DeclineReferralRequest {
                referral_id: referral_id.to_string(),
                reason: DeclineReason::AtCapacity as i32,
                comment: String::new(),
            },
        ))
        .await
        .expect("DeclineReferral")
        .into_inner();
    assert_eq!(declined.status, ReferralStatus::Declined as i32);
}

/// The search once its round `round` ran out.
async fn exhausted(f: &Fixture<InProcessStack>, pirdop: Uuid, id: &str, round: u32) -> Search {
    eventually("the search to run out", WAIT, || async {
        let s = get_search(f, pirdop, id).await.ok()?;
        (s.rounds == round && s.exhausted_at.is_some()).then_some(s)
    })
    .await
    .unwrap_or_else(|_| panic!("round {round} of search {id} ran out"))
}

/// The search's suggestions are the directory's own fits in the search's districts and types, less the
/// services asked already.
async fn the_suggestions_fit(f: &Fixture<InProcessStack>, search: &Search) -> Vec<String> {
    let types: Vec<ServiceType> = (search.service_types.iter())
        .map(|t| ServiceType::try_from(*t).expect("a known type"))
        .collect();
    let asked: Vec<String> = (search.referrals.iter())
        .map(|r| r.service_id.clone())
        .collect();
    let expected = directory_s_fits(f, &types, &DISTRICTS, &asked).await;
    let expected: Vec<String> = expected.into_iter().map(|s| s.id).collect();
    assert_eq!(search.suggested_service_ids, expected);
    assert!(
        (search.suggested_service_ids.iter()).all(|s| !asked.contains(s)),
        "an asked service is not suggested again"
    );
    expected
}

/// Exactly `rounds` notices in the sender's inbox say the search ran out: one per round, each naming
/// the search by the reference of its first referral, never by an id; listed in English, in English.
async fn the_sender_is_told_once_per_round(
    f: &Fixture<impl Sized>,
    pirdop: Uuid,
    search: &Search,
    rounds: usize,
) {
    let exhausted = |n: &Notification| n.kind == NotificationKind::SearchExhausted as i32;
    let told = eventually("the sender to be told", WAIT, || async {
        let told: Vec<Notification> = f
            .inbox(pirdop)
            .await
            .into_iter()
            .filter(exhausted)
            .collect();
        (told.len() >= rounds).then_some(told)
    })
    .await
    .expect("the sender told");
    assert_eq!(told.len(), rounds, "{told:?}");
    let first = search.referrals[0].reference.as_str();
    assert!(!first.is_empty(), "{search:?}");
    let english: Vec<Notification> = (f.inbox_in(pirdop, Language::En).await.into_iter())
        .filter(exhausted)
        .collect();
    assert_eq!(english.len(), rounds, "{english:?}");
    for (notice, english) in told.iter().zip(&english) {
        assert!(
            notice
                .title
                .starts_with(&format!("Търсенето по направления № {first} и още ")),
            "{notice:?}"
        );
        assert!(
            english
                .title
                .starts_with(&format!("The search for referrals {first} and "))
                && english.title.ends_with(" found no place"),
            "{english:?}"
        );
        assert!(
            english.body.starts_with("Every request of round "),
            "{english:?}"
        );
        for words in [&notice.title, &notice.body, &english.title, &english.body] {
            assert!(words.contains(first) && !has_uuid(words), "{words}");
        }
        assert!(notice.referral_id.is_empty());
    }
}

/// The district's foster-care team hears of a decline in its district, not only the sender.
async fn the_foster_team_hears_of_the_decline(f: &Fixture<impl Sized>, referral_id: &str) {
    let foster = f.agency("foster-vratsa");
    eventually("the foster team to hear of the decline", WAIT, || async {
        (f.notifications(foster, referral_id).await.iter())
            .any(|n| n.kind == NotificationKind::ReferralDeclined as i32)
            .then_some(())
    })
    .await
    .expect("the foster-care team told of the decline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_that_runs_out_is_told_once_and_goes_on_in_a_new_round() {
    let f = with_quick_deadlines().await;
    let pirdop = f.agency("dsa-pirdop");
    let case = f.open_twins_case(pirdop).await;
    the_preview_is_the_directory_s_own(&f, pirdop, &case).await;
    let mut request = search_request(&f, &case, &ROUND_ONE, "runs-out");
    request.region_codes = DISTRICTS.map(String::from).to_vec();
    let search = submit_search(&f, pirdop, request)
        .await
        .expect("SubmitSearch");
    assert_eq!(search.rounds, 1);
    assert_eq!(search.region_codes, DISTRICTS);
    assert_eq!(
        search.service_types,
        [
            ServiceType::FamilyTypePlacementCentre,
            ServiceType::CrisisCentre
        ]
        .map(|t| t as i32)
    );
    assert!(search.referrals.iter().all(|r| r.search_round == 1));

    let r = &search.referrals;
    decline(&f, f.agency("provider-mezdra"), &r[0].id).await;
    let waiting = get_search(&f, pirdop, &search.id).await.expect("GetSearch");
    assert!(
        waiting.exhausted_at.is_none() && waiting.suggested_service_ids.is_empty(),
        "the crisis centre's request is still in time: {waiting:?}"
    );
    the_foster_team_hears_of_the_decline(&f, &r[0].id).await;
    // The crisis centre's deadline passes.
    let ran_out = exhausted(&f, pirdop, &search.id, 1).await;
    assert!(ran_out.referrals[1].escalated, "{:?}", ran_out.referrals[1]);
    let suggested = the_suggestions_fit(&f, &ran_out).await;
    assert!(!suggested.is_empty(), "the demo has more services that fit");
    the_sender_is_told_once_per_round(&f, pirdop, &search, 1).await;

    let round_two = a_new_round_to_the_suggestions(&f, pirdop, &search, &suggested).await;
    // Every service of the second round declines at the same moment: the search runs out once.
    let declines = (round_two.iter()).map(|r| {
        let provider = Uuid::parse_str(&r.receiving_agency_id).expect("an agency id");
        decline(&f, provider, &r.id)
    });
    futures::future::join_all(declines).await;
    let ran_out_again = exhausted(&f, pirdop, &search.id, 2).await;
    the_suggestions_fit(&f, &ran_out_again).await;
    the_sender_is_told_once_per_round(&f, pirdop, &search, 2).await;
}

/// ExtendSearch sends round 2 to `suggested` in one step: the search waits again, the new referrals say
/// their round; a retry sends nothing again, the same key with other services is refused, and a service
/// asked already is named.
async fn a_new_round_to_the_suggestions(
    f: &Fixture<InProcessStack>,
    pirdop: Uuid,
    search: &Search,
    suggested: &[String],
) -> Vec<Referral> {
    let extended = extend(f, pirdop, &search.id, suggested.to_vec(), "round-2")
        .await
        .expect("ExtendSearch");
    assert_eq!(extended.rounds, 2);
    assert!(extended.exhausted_at.is_none() && extended.suggested_service_ids.is_empty());
    let asked = search.referrals.len();
    assert_eq!(extended.referrals.len(), asked + suggested.len());
    let new = extended.referrals[asked..].to_vec();
    let services: Vec<String> = new.iter().map(|r| r.service_id.clone()).collect();
    assert_eq!(services, suggested);
    for r in &new {
        assert_eq!(
            (r.search_id.as_str(), r.search_round),
            (search.id.as_str(), 2)
        );
        assert_eq!(r.status, ReferralStatus::Submitted as i32);
    }
    let again = extend(f, pirdop, &search.id, suggested.to_vec(), "round-2")
        .await
        .expect("a retry");
    assert_eq!(again.referrals.len(), extended.referrals.len());
    let reused = extend(f, pirdop, &search.id, suggested[..1].to_vec(), "round-2")
        .await
        .expect_err("the key of another round");
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
    let twice = extend(
        f,
        pirdop,
        &search.id,
        vec![search.referrals[0].service_id.clone()],
        "x",
    )
    .await
    .expect_err("a service asked already");
    assert_eq!(twice.code(), Code::InvalidArgument, "{twice:?}");
    assert!(twice.message().starts_with("service_ids[0]:"), "{twice:?}");
    let theirs = extend(
        f,
        f.agency("dsa-pravets"),
        &search.id,
        suggested.to_vec(),
        "y",
    )
    .await
    .expect_err("not the sender's");
    assert_eq!(theirs.code(), Code::NotFound, "{theirs:?}");
    new
}

/// A stack in this process with `variable` set to `value`, whose timers are looked for five times a second
/// (a fallback's hold or a step's time ends within the test).
async fn in_process_with(variable: &str, value: &str) -> Fixture<InProcessStack> {
    Fixture::in_process_with(StackOptions {
        escalation_interval: Some("200ms".into()),
        env: vec![(variable.into(), value.into())],
        ..Default::default()
    })
    .await
}

/// How long an offer kept as a fallback holds its places in the tests: long enough to see it held after
/// the placement, short enough to see it released.
const FALLBACK_HOLD: &str = "5s";

/// The services of the fallback scenario, in the order asked: Vratsa's centre (accepts; chosen), Haskovo's
/// (accepts; kept as a fallback) and Mezdra's centre for children with disabilities (never answers).
const WITH_FALLBACK: [&str; 3] = ["ftpc-vratsa", "ftpc-haskovo", "ftpcd-mezdra"];

/// The DSA confirms Vratsa's offer and keeps Haskovo's as a fallback: Mezdra's request is closed at once,
/// Haskovo's holds its places until its hold ends, and is then withdrawn as placed elsewhere, once, by no
/// one, after its `fallback_until`: its places released and its parties told once.
async fn a_kept_fallback_holds_its_places_until_its_time_is_up(
    f: &Fixture<InProcessStack>,
    pirdop: Uuid,
) {
    use ReferralStatus as S;
    let mut recorder = f.stack.record_events().await;
    let case = f.open_twins_case(pirdop).await;
    let mut before = Vec::new();
    for key in WITH_FALLBACK {
        before.push(f.service(f.demo.service(key)).await);
    }
    let request = search_request(f, &case, &WITH_FALLBACK, "with-fallback");
    let search = submit_search(f, pirdop, request)
        .await
        .expect("SubmitSearch");
    let r = search.referrals.clone();
    f.acknowledge(&r[0].id, &["provider-vratsa", "foster-vratsa"])
        .await;
    accept(f, "provider-vratsa", &r[0]).await;
    f.acknowledge(&r[1].id, &["provider-haskovo", "foster-haskovo"])
        .await;
    accept(f, "provider-haskovo", &r[1]).await;
    let haskovo = f.demo.service("ftpc-haskovo");
    holding(f, haskovo, before[1].held_places + 2).await;
    bad_fallbacks_change_nothing(f, pirdop, &search).await;

    let placed = confirm_keeping(f, pirdop, &r[0].id, &r[1].id)
        .await
        .expect("ConfirmPlacement keeping a fallback");
    assert_eq!(placed.status, S::Placed as i32);
    let kept = get_search(f, pirdop, &search.id).await.expect("GetSearch");
    assert_eq!(statuses(&kept), [S::Placed, S::Accepted, S::Withdrawn]);
    assert_eq!(kept.placed_referral_id, r[0].id);
    assert_eq!(kept.fallback_referral_id, r[1].id);
    let until = kept.fallback_until.expect("the fallback's end");
    assert_eq!(kept.referrals[1].fallback_until, Some(until));
    assert!(
        from_timestamp(&until).expect("a time") > chrono::Utc::now(),
        "the fallback holds its places for a while: {until:?}"
    );
    let fallback = f.referral(pirdop, &r[1].id).await;
    assert_eq!(fallback.status, S::Accepted as i32, "not withdrawn at once");

    let released = eventually("the fallback to be released", WAIT, || async {
        let s = get_search(f, pirdop, &search.id).await.ok()?;
        (s.referrals[1].status == S::Withdrawn as i32).then_some(s)
    })
    .await
    .expect("the fallback released when its hold ended");
    the_fallback_was_released_once(&released.referrals[1], &until);
    let freed = holding(f, haskovo, before[1].held_places).await;
    assert_eq!(freed.free_places, before[1].free_places);
    let vratsa = holding(f, f.demo.service("ftpc-vratsa"), before[0].held_places).await;
    assert_eq!(vratsa.occupied_places, before[0].occupied_places + 2);
    for party in ["provider-haskovo", "foster-haskovo"] {
        let told = notices_of(
            f,
            f.agency(party),
            &r[1].id,
            NotificationKind::ReferralWithdrawn,
        )
        .await;
        assert_eq!(told, 1, "{party} told once of the fallback's release");
    }
    assert_eq!(withdrawals_published(&mut recorder, &r[1].id).await, 1);
}

/// Withdrawn as placed elsewhere, by the system (no actor), once, not before its hold ended.
fn the_fallback_was_released_once(
    fallback: &Referral,
    until: &placement_proto::prost_types::Timestamp,
) {
    assert_eq!(
        fallback.withdraw_reason,
        WithdrawReason::PlacedElsewhere as i32
    );
    let withdrawals: Vec<_> = (fallback.history.iter())
        .filter(|h| h.action == ReferralAction::Withdrawn as i32)
        .collect();
    assert_eq!(withdrawals.len(), 1, "{:?}", fallback.history);
    let release = withdrawals[0];
    assert_eq!(release.actor_agency_id, "", "released by the system");
    let at = release
        .at
        .as_ref()
        .and_then(from_timestamp)
        .expect("a time");
    assert!(
        at >= from_timestamp(until).expect("a time"),
        "released at {at}, not before its hold ended at {until:?}"
    );
}

/// A bad fallback is refused naming `keep_as_fallback_referral_id`, and the search is as it was: no id,
/// the confirmed referral itself, a referral not of the search, one not ACCEPTED.
async fn bad_fallbacks_change_nothing(f: &Fixture<impl Sized>, pirdop: Uuid, search: &Search) {
    use ReferralStatus as S;
    let r = &search.referrals;
    let before = get_search(f, pirdop, &search.id).await.expect("GetSearch");
    assert_eq!(statuses(&before), [S::Accepted, S::Accepted, S::Submitted]);
    let bad = [
        ("not-a-uuid".to_string(), Code::InvalidArgument),
        (r[0].id.clone(), Code::InvalidArgument),
        (Uuid::new_v4().to_string(), Code::InvalidArgument),
        (r[2].id.clone(), Code::FailedPrecondition),
    ];
    for (fallback, code) in bad {
        let refused = confirm_keeping(f, pirdop, &r[0].id, &fallback)
            .await
            .expect_err("a bad fallback");
        assert_eq!(refused.code(), code, "{fallback}: {refused:?}");
        assert!(
            refused
                .message()
                .starts_with("keep_as_fallback_referral_id:"),
            "{fallback}: {refused:?}"
        );
    }
    let after = get_search(f, pirdop, &search.id).await.expect("GetSearch");
    let versions = |s: &Search| s.referrals.iter().map(|r| r.version).collect::<Vec<_>>();
    assert_eq!(versions(&after), versions(&before), "nothing changed");
    assert_eq!(statuses(&after), statuses(&before));
    assert!(after.placed_referral_id.is_empty() && after.fallback_referral_id.is_empty());
    assert!(after.fallback_until.is_none());
}

/// How many notices of `kind` about `referral_id` are in `agency`'s inbox, once there is one.
async fn notices_of(
    f: &Fixture<impl Sized>,
    agency: Uuid,
    referral_id: &str,
    kind: NotificationKind,
) -> usize {
    eventually("the notice", WAIT, || async {
        let told = (f.notifications(agency, referral_id).await.iter())
            .filter(|n| n.kind == kind as i32)
            .count();
        (told > 0).then_some(told)
    })
    .await
    .unwrap_or_else(|_| panic!("{agency} told {kind:?} of {referral_id}"))
}

/// How many `referral.withdrawn` events were published about `referral_id`, once there is one.
async fn withdrawals_published(recorder: &mut EventRecorder, referral_id: &str) -> usize {
    let withdrawn = |events: &[(placement_proto::v1::EventEnvelope, Vec<u8>)]| {
        (events.iter())
            .filter(|(e, _)| e.aggregate_id == referral_id && e.event_type == "referral.withdrawn")
            .count()
    };
    assert!(
        recorder
            .wait_until(WAIT, |events| withdrawn(events) > 0)
            .await,
        "the withdrawal of {referral_id} published"
    );
    withdrawn(&recorder.events)
}

/// The later steps' time in the five-answers scenario: an accepted offer not confirmed, and a decision
/// postponed once, pass their deadlines within the test, so that the reports list them as stalled.
const QUICK_STEP: &str = "3s";

/// The scenario through the real services, on one stack: a search to five services (`FIVE`, every
/// service of the demo that fits the twins outside Pirdop's district: active, with two places free and
/// ages 4 and 5, so the five are all the demo has) where two decline at once (Mezdra's centre for children
/// with disabilities, Stara Zagora's crisis centre), one accepts (Vratsa's centre), one says its decision
/// waits with a reason (Haskovo's centre) and one never answers (Vratsa's foster care). The DSA sees every
/// answer side by side, the reports list the late steps with who holds them and why, the DSA confirms the
/// offer, the others are closed as placed elsewhere and every party of each is told once, the declined stay
/// declined, and the places add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_answers_side_by_side_and_one_placement_closes_the_rest() {
    let f = in_process_with("PLACEMENT_STEP_DEADLINE", QUICK_STEP).await;
    let mut recorder = f.stack.record_events().await;
    let pirdop = f.agency("dsa-pirdop");
    let case = f.open_twins_case(pirdop).await;
    let mut before = Vec::new();
    for key in FIVE {
        before.push(f.service(f.demo.service(key)).await);
    }
    let mut asked = search_request(&f, &case, &FIVE, "five-answers");
    let needed_by =
        placement_platform::time::date(chrono::Utc::now().date_naive() + chrono::Days::new(14));
    asked.needed_by = Some(needed_by);
    let search = submit_search(&f, pirdop, asked)
        .await
        .expect("SubmitSearch");
    assert_eq!(
        search.needed_by,
        Some(needed_by),
        "the day it is needed by is kept"
    );
    let r = search.referrals.clone();
    decline_as(&f, "provider-mezdra", &r[1], DeclineReason::NeedsNotMet).await;
    decline_as(
        &f,
        "provider-stara-zagora",
        &r[2],
        DeclineReason::AtCapacity,
    )
    .await;
    // Vratsa's foster-care team acknowledges for its district; it also runs the foster care asked, whose
    // acknowledgement as provider stays its own to give, and it never gives it.
    f.acknowledge(&r[0].id, &["foster-vratsa", "provider-vratsa"])
        .await;
    accept(&f, "provider-vratsa", &r[0]).await;
    f.acknowledge(&r[3].id, &["provider-haskovo", "foster-haskovo"])
        .await;
    haskovo_waits_for_an_assessment(&f, &r[3]).await;
    holding(&f, f.demo.service(FIVE[0]), before[0].held_places + 2).await;

    every_answer_side_by_side(&f, pirdop, &search).await;
    let reports = reports_client(&f);
    let late = [
        (r[0].id.as_str(), ReferralStepName::Confirmation, pirdop, 0),
        (
            r[3].id.as_str(),
            ReferralStepName::Decision,
            f.agency("provider-haskovo"),
            WaitingReason::AssessmentUnderWay as i32,
        ),
    ];
    stalled_as(&reports, pirdop, &late).await;

    let placed = confirm(&f, pirdop, &r[0].id)
        .await
        .expect("ConfirmPlacement");
    assert_eq!(placed.status, ReferralStatus::Placed as i32);
    the_rest_are_closed_and_the_declined_stay_declined(&f, pirdop, &search).await;
    every_party_is_told_once(&f, &mut recorder, pirdop, &r).await;
    five_places_add_up(&f, &before).await;
    // The placed request's arrival is the step now late, held by the service; the closed ones are not.
    let arriving = [(
        r[0].id.as_str(),
        ReferralStepName::Arrival,
        f.agency("provider-vratsa"),
        0,
    )];
    stalled_as(&reports, pirdop, &arriving).await;
}

/// Confirming the offer closed the waiting and the silent requests as placed elsewhere; the declines kept
/// their status and reasons; the search records its placement.
async fn the_rest_are_closed_and_the_declined_stay_declined(
    f: &Fixture<impl Sized>,
    pirdop: Uuid,
    search: &Search,
) {
    use ReferralStatus as S;
    let after = get_search(f, pirdop, &search.id).await.expect("GetSearch");
    assert_eq!(
        statuses(&after),
        [
            S::Placed,
            S::Declined,
            S::Declined,
            S::Withdrawn,
            S::Withdrawn
        ]
    );
    assert_eq!(after.placed_referral_id, search.referrals[0].id);
    let reasons: Vec<i32> = after.referrals.iter().map(|x| x.decline_reason).collect();
    assert_eq!(
        reasons[1..3],
        [
            DeclineReason::NeedsNotMet as i32,
            DeclineReason::AtCapacity as i32
        ]
    );
    for closed in &after.referrals[3..] {
        assert_eq!(
            closed.withdraw_reason,
            WithdrawReason::PlacedElsewhere as i32
        );
    }
}

async fn decline_as(f: &Fixture<impl Sized>, provider: &str, r: &Referral, reason: DeclineReason) {
    let declined = (f.clients.referrals.clone())
        .decline_referral(as_agency(
            f.agency(provider),
            DeclineReferralRequest {
                referral_id: r.id.clone(),
                reason: reason as i32,
                comment: String::new(),
            },
        ))
        .await
        .expect("DeclineReferral at once")
        .into_inner();
    assert_eq!(declined.status, ReferralStatus::Declined as i32);
}

/// What Haskovo's centre says of its decision's wait.
const HASKOVO_WAITS: &str = "A visit to the children is booked for Thursday.";

async fn haskovo_waits_for_an_assessment(f: &Fixture<impl Sized>, r: &Referral) {
    let waiting = (f.clients.referrals.clone())
        .postpone_step(as_agency(
            f.agency("provider-haskovo"),
            PostponeStepRequest {
                referral_id: r.id.clone(),
                reason: WaitingReason::AssessmentUnderWay as i32,
                comment: HASKOVO_WAITS.into(),
                until: None,
            },
        ))
        .await
        .expect("PostponeStep")
        .into_inner();
    assert_eq!(waiting.status, ReferralStatus::Acknowledged as i32);
}

/// The sender's one view shows every answer: the offer waiting for its confirmation, the two declines with
/// their reasons, the decision that waits with its reason and comment, and the request nobody has
/// acknowledged, with the deadline it is held to.
async fn every_answer_side_by_side(f: &Fixture<impl Sized>, pirdop: Uuid, search: &Search) {
    use ReferralStatus as S;
    let seen = get_search(f, pirdop, &search.id).await.expect("GetSearch");
    assert_eq!(
        statuses(&seen),
        [
            S::Accepted,
            S::Declined,
            S::Declined,
            S::Acknowledged,
            S::Submitted
        ]
    );
    let r = &seen.referrals;
    assert_eq!(r[0].step, ReferralStepName::Confirmation as i32);
    assert_eq!(
        (r[1].decline_reason, r[2].decline_reason),
        (
            DeclineReason::NeedsNotMet as i32,
            DeclineReason::AtCapacity as i32
        )
    );
    let waiting = &r[3];
    assert_eq!(waiting.step, ReferralStepName::Decision as i32);
    assert_eq!(
        waiting.waiting_reason,
        WaitingReason::AssessmentUnderWay as i32
    );
    assert_eq!(waiting.waiting_comment, HASKOVO_WAITS);
    assert_eq!(waiting.postponements, 1);
    let silent = &r[4];
    assert_eq!(silent.step, ReferralStepName::Acknowledgement as i32);
    assert!(silent.step_deadline.is_some(), "how late it is: {silent:?}");
    assert!(
        (silent.acknowledgements.iter()).all(|a| a.acknowledged_at.is_none()),
        "{silent:?}"
    );
    assert!(seen.placed_referral_id.is_empty() && seen.exhausted_at.is_none());
}

fn reports_client(f: &Fixture<InProcessStack>) -> ReportServiceClient<tonic::transport::Channel> {
    let url = f.stack.endpoints.url(placement_platform::services::REPORTS);
    ReportServiceClient::new(placement_cli::clients::channel(url).expect("a channel"))
}

/// Waits until Pirdop's own report lists exactly `late` as stalled (each referral with its step, the
/// agency that holds it and the waiting reason given, 0 for none), each past its step's deadline.
async fn stalled_as(
    reports: &ReportServiceClient<tonic::transport::Channel>,
    pirdop: Uuid,
    late: &[(&str, ReferralStepName, Uuid, i32)],
) {
    let mut expected: Vec<Stalled> = (late.iter())
        .map(|(id, step, holder, reason)| {
            (
                id.to_string(),
                *step as i32,
                vec![holder.to_string()],
                *reason,
            )
        })
        .collect();
    expected.sort();
    let listed = || async {
        let asked = GetAgencyReportRequest {
            agency_id: pirdop.to_string(),
            period_start: Some(timestamp(chrono::Utc::now() - chrono::Duration::hours(1))),
            period_end: Some(timestamp(chrono::Utc::now() + chrono::Duration::hours(1))),
        };
        let request = as_agency_with(pirdop, &[Role::Supervisor], asked);
        let report = (reports.clone()).get_agency_report(request).await.ok()?;
        let mut listed: Vec<(Stalled, Option<Timestamp>)> = (report.into_inner().stalled_now)
            .into_iter()
            .map(|s| {
                let deadline = s.step_deadline;
                let holders = s.not_answered_agency_ids;
                ((s.referral_id, s.step, holders, s.waiting_reason), deadline)
            })
            .collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        Some(listed)
    };
    let shown = eventually("the reports to list the late steps", WAIT, || async {
        let listed = listed().await?;
        let only: Vec<&Stalled> = listed.iter().map(|(x, _)| x).collect();
        (only == expected.iter().collect::<Vec<_>>()).then_some(listed)
    })
    .await;
    let Ok(shown) = shown else {
        panic!(
            "stalled: expected {expected:?}, listed {:?}",
            listed().await
        );
    };
    for (stalled, deadline) in shown {
        let deadline = deadline
            .as_ref()
            .and_then(from_timestamp)
            .expect("a deadline");
        assert!(
            deadline < chrono::Utc::now(),
            "{stalled:?} is past {deadline}"
        );
    }
}

/// A stalled referral as the test compares it: its id, step, holders and waiting reason.
type Stalled = (String, i32, Vec<String>, i32);

/// Every party of each request is told of its end once, counted in the inboxes: the placed one's receiving
/// side of the placement, the declined ones' sender and foster-care team of the decline, the closed ones'
/// receiving side of the withdrawal; one placement and one withdrawal per closed request were published,
/// and none for the declined.
async fn every_party_is_told_once(
    f: &Fixture<impl Sized>,
    recorder: &mut EventRecorder,
    pirdop: Uuid,
    r: &[Referral],
) {
    use NotificationKind as K;
    let told: [(&Referral, K, &[Uuid]); 5] = [
        (
            &r[0],
            K::ReferralPlaced,
            &[f.agency("provider-vratsa"), f.agency("foster-vratsa")],
        ),
        (
            &r[1],
            K::ReferralDeclined,
            &[pirdop, f.agency("foster-vratsa")],
        ),
        (
            &r[2],
            K::ReferralDeclined,
            &[pirdop, f.agency("foster-stara-zagora")],
        ),
        (
            &r[3],
            K::ReferralWithdrawn,
            &[f.agency("provider-haskovo"), f.agency("foster-haskovo")],
        ),
        (&r[4], K::ReferralWithdrawn, &[f.agency("foster-vratsa")]),
    ];
    for (referral, kind, parties) in told {
        for party in parties {
            let n = notices_of(f, *party, &referral.id, kind).await;
            assert_eq!(n, 1, "{party} told {kind:?} of {} {n} times", referral.id);
        }
    }
    for closed in &r[3..] {
        assert_eq!(withdrawals_published(recorder, &closed.id).await, 1);
    }
    let placements = |events: &[(placement_proto::v1::EventEnvelope, Vec<u8>)]| {
        (events.iter())
            .filter(|(e, _)| e.event_type == "referral.placed")
            .filter(|(e, _)| r.iter().any(|x| x.id == e.aggregate_id))
            .count()
    };
    assert!(recorder.wait_until(WAIT, |e| placements(e) > 0).await);
    assert_eq!(placements(&recorder.events), 1, "one placement in all");
    let declined_withdrawn = (recorder.events.iter())
        .filter(|(e, _)| e.event_type == "referral.withdrawn")
        .filter(|(e, _)| e.aggregate_id == r[1].id || e.aggregate_id == r[2].id)
        .count();
    assert_eq!(declined_withdrawn, 0, "the declined stay declined");
}

/// The directory's places add up at each of the five: free, held and occupied make the capacity, nothing
/// is held any more, and only the chosen service has the children's two places occupied.
async fn five_places_add_up(f: &Fixture<impl Sized>, before: &[SocialService]) {
    for (i, (key, was)) in FIVE.iter().zip(before).enumerate() {
        let now = holding(f, f.demo.service(key), was.held_places).await;
        let taken = if i == 0 { 2 } else { 0 };
        assert_eq!(
            now.free_places + now.held_places + now.occupied_places,
            now.capacity,
            "{key}"
        );
        assert_eq!(now.free_places, was.free_places - taken, "{key}");
        assert_eq!(now.occupied_places, was.occupied_places + taken, "{key}");
    }
}
