//! A search: one request for a case's children sent to several services at once (issue #27). A service
//! declines at once, two accept and hold places, one never answers; the foster-care team acknowledges once
//! per district; the DSA confirms one and the rest are withdrawn as placed elsewhere, their places released
//! and their parties told. Two confirmations racing on one search place the children once. A bad search
//! names the service at fault and creates nothing.

use placement_cli::{clients::as_agency, scenario::eventually};
use placement_e2e::{EventRecorder, InProcessStack};
use placement_proto::v1::{
    AcceptReferralRequest, Case, CaseStatus, ConfirmPlacementRequest, DeclineReason,
    DeclineReferralRequest, GetCaseRequest, GetSearchRequest, ListReferralsRequest,
    NotificationKind, Referral, ReferralDirection, ReferralStatus, Search, SocialService,
    SubmitSearchRequest, WithdrawReason,
};
use tonic::Code;
use uuid::Uuid;

use crate::support::{Fixture, WAIT, submission};

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

async fn get_search(f: &Fixture, agency: Uuid, id: &str) -> Result<Search, tonic::Status> {
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

async fn accept(f: &Fixture, provider: &str, referral: &Referral) {
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

async fn confirm(f: &Fixture, dsa: Uuid, referral_id: &str) -> Result<Referral, tonic::Status> {
    (f.clients.referrals.clone())
        .confirm_placement(as_agency(
            dsa,
            ConfirmPlacementRequest {
                referral_id: referral_id.to_string(),
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
async fn holding(f: &Fixture, service: Uuid, held: u32) -> SocialService {
    eventually("the directory's held places", WAIT, || async {
        let s = f.service(service).await;
        (s.held_places == held).then_some(s)
    })
    .await
    .unwrap_or_else(|_| panic!("{held} places held at {service}"))
}

/// The case once it is placed, with the referral that placed it.
async fn placed_case(f: &Fixture, dsa: Uuid, case: &Case) -> Case {
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
async fn a_bad_search_names_the_service_and_creates_nothing() {
    let f = Fixture::<InProcessStack>::in_process().await;
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
    // Another DSA cannot search for Pirdop's case: it is not theirs to see.
    let theirs = submit_search(
        &f,
        f.agency("dsa-pravets"),
        search_of(&case, vec![vratsa], "k"),
    )
    .await
    .expect_err("not the case's owner");
    assert_eq!(theirs.code(), Code::NotFound, "{theirs:?}");
    let sent = (f.clients.referrals.clone())
        .list_referrals(as_agency(
            pirdop,
            ListReferralsRequest {
                direction: ReferralDirection::Outgoing as i32,
                status: 0,
                page: None,
            },
        ))
        .await
        .expect("ListReferrals")
        .into_inner();
    assert!(sent.referrals.is_empty(), "{:?}", sent.referrals);
}
