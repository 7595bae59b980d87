//! The scenario of the placement-flow issue, step by step, asserting every status, every notification,
//! the directory's places and the case's placement.

use futures::StreamExt;
use placement_cli::{clients::as_agency, scenario::eventually};
use placement_e2e::EventRecorder;
use placement_proto::v1::{
    AcceptReferralRequest, AcknowledgeReferralRequest, Case, CaseStatus, ConfirmPlacementRequest,
    GetCaseRequest, ListReferralsRequest, MarkReadRequest, Notification, NotificationKind,
    ReferralAction, ReferralDirection, ReferralStatus, SearchServicesRequest, ServiceType,
    SocialService,
};

use uuid::Uuid;

use crate::support::{Fixture, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_region_placement_from_pirdop_to_vratsa() {
    let f = Fixture::start().await;
    let mut recorder = f.stack.record_events().await;
    let p = Agencies {
        pirdop: f.agency("dsa-pirdop"),
        provider: f.agency("provider-vratsa"),
        foster: f.agency("foster-vratsa"),
        rdsa: f.agency("rdsa-vratsa"),
    };

    // The Vratsa provider watches its inbox from the start.
    let mut provider_stream = f.watch(p.provider, 0).await;

    // DSA Pirdop opens a case for twins from the home in Zlatitsa.
    let case = f.open_twins_case(p.pirdop).await;
    assert_eq!(case.status, CaseStatus::Open as i32);
    assert_eq!(case.children.len(), 2);
    assert_eq!(case.owner_agency_id, p.pirdop.to_string());

    let free_before = search_finds_the_vratsa_centre(&f, &p).await;
    let service_id = f.demo.service("ftpc-vratsa");
    let rid = submit_under_a_directors_order(&f, &p, &case, service_id).await;
    let streamed = the_provider_sees_it_at_once(&mut provider_stream, &rid).await;
    both_receiving_parties_acknowledge(&f, &p, &rid).await;
    let held =
        the_provider_accepts_and_places_are_held(&f, &p, &rid, service_id, free_before).await;
    the_sender_confirms_the_placement(&f, &p, &rid, &case, service_id, &held, free_before).await;
    the_history_says_what_who_when(&f, &p, &rid).await;
    each_agency_is_told_once_per_step(&f, &p, &mut recorder, &rid).await;
    marking_read_empties_the_unread_view(&f, &p, &rid).await;
    a_watcher_resumes_where_it_left_off(&f, &p, &rid, &streamed).await;
    no_personal_data_in_events_logs_or_notifications(&f, &p, &recorder, &rid).await;

    // Nothing is stuck: every outbox is drained and no dead-letter queue holds a message.
    eventually("every outbox to drain", WAIT, || async {
        (f.stack.outbox_backlog().await == 0).then_some(())
    })
    .await
    .expect("outboxes drained");
    f.assert_no_dead_letters().await;
}

/// The agencies of the placement.
struct Agencies {
    pirdop: Uuid,
    provider: Uuid,
    foster: Uuid,
    rdsa: Uuid,
}

/// Family-type placement centres outside Sofia Province with at least 2 free places.
/// Returns the free places of FTPC Vratsa 1 before the referral.
async fn search_finds_the_vratsa_centre(f: &Fixture, p: &Agencies) -> u32 {
    let pirdop = p.pirdop;
    let found = f
        .clients
        .directory
        .clone()
        .search_services(as_agency(
            pirdop,
            SearchServicesRequest {
                exclude_region_code: "SFO".into(),
                service_type: ServiceType::FamilyTypePlacementCentre as i32,
                min_free_places: 2,
                child_age: Some(5),
                ..Default::default()
            },
        ))
        .await
        .expect("SearchServices")
        .into_inner()
        .services;
    assert!(!found.is_empty());
    for s in &found {
        assert_ne!(s.region_code, "SFO", "{} is in Sofia Province", s.name);
        assert_eq!(s.r#type, ServiceType::FamilyTypePlacementCentre as i32);
        assert!(
            s.free_places >= 2,
            "{} has {} free places",
            s.name,
            s.free_places
        );
        assert!(s.min_age <= 5 && 5 <= s.max_age);
    }
    // The full centre at home (Zlatitsa) and Mezdra's (1 free place) are not offered.
    let not_offered = [
        f.demo.service("ftpc-zlatitsa"),
        f.demo.service("ftpc-mezdra"),
    ]
    .map(|id| id.to_string());
    assert!(found.iter().all(|s| !not_offered.contains(&s.id)));
    let vratsa = found
        .iter()
        .find(|s| s.region_code == "VRC")
        .expect("a centre in Vratsa");
    assert_eq!(vratsa.id, f.demo.service("ftpc-vratsa").to_string());
    vratsa.free_places
}

/// Submission under a DSA director's order.
async fn submit_under_a_directors_order(
    f: &Fixture,
    p: &Agencies,
    case: &Case,
    service_id: Uuid,
) -> String {
    let Agencies {
        pirdop,
        provider,
        foster,
        rdsa,
    } = *p;
    let referral = f.submit(pirdop, case, service_id).await;
    assert_eq!(referral.status, ReferralStatus::Submitted as i32);
    assert_eq!(referral.places, 2);
    assert_eq!(referral.sender_region_code, "SFO");
    assert_eq!(referral.receiving_region_code, "VRC");
    assert_eq!(referral.receiving_agency_id, provider.to_string());
    assert_eq!(referral.foster_care_team_agency_id, foster.to_string());
    assert_eq!(referral.receiving_rdsa_agency_id, rdsa.to_string());
    assert_eq!(referral.acknowledgements.len(), 2);
    assert!(!referral.escalated);
    referral.id
}

/// The provider's stream delivers the submission as it happens.
async fn the_provider_sees_it_at_once(
    provider_stream: &mut (impl futures::Stream<Item = Result<Notification, tonic::Status>> + Unpin),
    rid: &str,
) -> Notification {
    let streamed = tokio::time::timeout(WAIT, provider_stream.next())
        .await
        .expect("a streamed notification")
        .expect("stream open")
        .expect("no stream error");
    assert_eq!(streamed.kind, NotificationKind::ReferralSubmitted as i32);
    assert_eq!(streamed.referral_id, rid);
    streamed
}

/// Both receiving parties acknowledge; the second moves the referral to ACKNOWLEDGED.
async fn both_receiving_parties_acknowledge(f: &Fixture, p: &Agencies, rid: &str) {
    let Agencies {
        pirdop,
        provider,
        foster,
        ..
    } = *p;
    let mut referrals = f.clients.referrals.clone();
    let after_first = referrals
        .acknowledge_referral(as_agency(
            provider,
            AcknowledgeReferralRequest {
                referral_id: rid.to_string(),
            },
        ))
        .await
        .expect("provider acknowledges")
        .into_inner();
    assert_eq!(after_first.status, ReferralStatus::Submitted as i32);
    let after_second = referrals
        .acknowledge_referral(as_agency(
            foster,
            AcknowledgeReferralRequest {
                referral_id: rid.to_string(),
            },
        ))
        .await
        .expect("foster-care team acknowledges")
        .into_inner();
    assert_eq!(after_second.status, ReferralStatus::Acknowledged as i32);
    assert!(
        after_second
            .acknowledgements
            .iter()
            .all(|a| a.acknowledged_at.is_some())
    );

    // The incoming list of the provider and the outgoing list of the sender show it.
    for (agency, direction) in [
        (provider, ReferralDirection::Incoming),
        (foster, ReferralDirection::Incoming),
        (pirdop, ReferralDirection::Outgoing),
    ] {
        let listed = referrals
            .list_referrals(as_agency(
                agency,
                ListReferralsRequest {
                    direction: direction as i32,
                    status: ReferralStatus::Acknowledged as i32,
                    page: None,
                    ..Default::default()
                },
            ))
            .await
            .expect("ListReferrals")
            .into_inner()
            .referrals;
        assert!(
            listed.iter().any(|r| r.id == rid),
            "{direction:?} list of {agency}"
        );
    }
}

/// The provider accepts: 2 places are held in the directory.
async fn the_provider_accepts_and_places_are_held(
    f: &Fixture,
    p: &Agencies,
    rid: &str,
    service_id: Uuid,
    free_before: u32,
) -> SocialService {
    let provider = p.provider;
    let mut referrals = f.clients.referrals.clone();
    let accepted = referrals
        .accept_referral(as_agency(
            provider,
            AcceptReferralRequest {
                referral_id: rid.to_string(),
            },
        ))
        .await
        .expect("AcceptReferral")
        .into_inner();
    assert_eq!(accepted.status, ReferralStatus::Accepted as i32);
    let held = eventually("2 places held", WAIT, || async {
        let s = f.service(service_id).await;
        (s.held_places == 2).then_some(s)
    })
    .await
    .expect("places held");
    assert_eq!(held.free_places, free_before - 2);
    held
}

/// DSA Pirdop confirms the placement: the case shows it, held places become occupied.
async fn the_sender_confirms_the_placement(
    f: &Fixture,
    p: &Agencies,
    rid: &str,
    case: &Case,
    service_id: Uuid,
    held: &SocialService,
    free_before: u32,
) {
    let Agencies {
        pirdop, provider, ..
    } = *p;
    let mut referrals = f.clients.referrals.clone();
    let placed = referrals
        .confirm_placement(as_agency(
            pirdop,
            ConfirmPlacementRequest {
                referral_id: rid.to_string(),
                ..Default::default()
            },
        ))
        .await
        .expect("ConfirmPlacement")
        .into_inner();
    assert_eq!(placed.status, ReferralStatus::Placed as i32);
    let case_after = eventually("the case to be placed", WAIT, || async {
        let c = f
            .clients
            .cases
            .clone()
            .get_case(as_agency(
                pirdop,
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
    .expect("case placed");
    let placement = case_after.placement.expect("placement");
    assert_eq!(placement.referral_id, rid);
    assert_eq!(placement.service_id, service_id.to_string());
    assert_eq!(placement.provider_agency_id, provider.to_string());
    assert_eq!(placement.region_code, "VRC");
    let occupied = eventually("held places to become occupied", WAIT, || async {
        let s = f.service(service_id).await;
        (s.held_places == 0 && s.occupied_places == held.occupied_places + 2).then_some(s)
    })
    .await
    .expect("places occupied");
    assert_eq!(occupied.free_places, free_before - 2);
    assert_eq!(
        occupied.capacity,
        occupied.free_places + occupied.held_places + occupied.occupied_places
    );
}

/// The whole history: what, who, when.
async fn the_history_says_what_who_when(f: &Fixture, p: &Agencies, rid: &str) {
    let Agencies {
        pirdop,
        provider,
        foster,
        ..
    } = *p;
    let history = f.referral(pirdop, rid).await.history;
    let steps: Vec<(i32, String)> = history
        .iter()
        .map(|h| (h.action, h.actor_agency_id.clone()))
        .collect();
    assert_eq!(
        steps,
        vec![
            (ReferralAction::Submitted as i32, pirdop.to_string()),
            (ReferralAction::Acknowledged as i32, provider.to_string()),
            (ReferralAction::Acknowledged as i32, foster.to_string()),
            (ReferralAction::Accepted as i32, provider.to_string()),
            (ReferralAction::Placed as i32, pirdop.to_string()),
        ]
    );
    let at = |h: &placement_proto::v1::ReferralHistoryEntry| {
        h.at.map(|t| (t.seconds, t.nanos))
            .expect("time of each step")
    };
    assert!(
        history
            .windows(2)
            .all(|w| at(&w[0]) <= at(&w[1]) && w[0].version + 1 == w[1].version)
    );
}

/// Every agency concerned got exactly one notification per step that concerns it, and nobody else did.
async fn each_agency_is_told_once_per_step(
    f: &Fixture,
    p: &Agencies,
    recorder: &mut EventRecorder,
    rid: &str,
) {
    let Agencies {
        pirdop,
        provider,
        foster,
        rdsa,
    } = *p;
    f.settle(recorder, rid, 5).await;
    use NotificationKind as K;
    assert_eq!(
        Fixture::kinds(&f.notifications(pirdop, rid).await),
        vec![
            K::ReferralAcknowledged,
            K::ReferralAcknowledged,
            K::ReferralAccepted
        ]
    );
    for agency in [provider, foster] {
        assert_eq!(
            Fixture::kinds(&f.notifications(agency, rid).await),
            vec![K::ReferralSubmitted, K::ReferralPlaced]
        );
    }
    assert!(f.notifications(rdsa, rid).await.is_empty());
    assert!(
        f.notifications(f.agency("dsa-pravets"), rid)
            .await
            .is_empty()
    );
}

/// Marking read: the inbox's unread view empties.
async fn marking_read_empties_the_unread_view(f: &Fixture, p: &Agencies, rid: &str) {
    let provider = p.provider;
    let mine = f.notifications(provider, rid).await;
    let marked = f
        .clients
        .notifications
        .clone()
        .mark_read(as_agency(
            provider,
            MarkReadRequest {
                notification_ids: mine.iter().map(|n| n.id.clone()).collect(),
            },
        ))
        .await
        .expect("MarkRead")
        .into_inner();
    assert_eq!(marked.marked, 2);
    assert!(
        f.notifications(provider, rid)
            .await
            .iter()
            .all(|n| n.read_at.is_some())
    );
}

/// A watcher that reconnects after the first notification it saw gets the referral's later ones,
/// each once, and not that one again.
async fn a_watcher_resumes_where_it_left_off(
    f: &Fixture,
    p: &Agencies,
    rid: &str,
    streamed: &Notification,
) {
    let Agencies {
        pirdop, provider, ..
    } = *p;
    let mut later: Vec<String> = f
        .notifications(provider, rid)
        .await
        .into_iter()
        .filter(|n| n.id != streamed.id)
        .map(|n| n.id)
        .collect();
    assert!(!later.is_empty());
    let mut resumed = f.watch(provider, streamed.sequence).await;
    let mut seen = Vec::new();
    while seen.len() < later.len() {
        let n = tokio::time::timeout(WAIT, resumed.next())
            .await
            .expect("a resumed notification")
            .expect("stream open")
            .expect("no stream error");
        if n.referral_id == rid {
            seen.push(n.id);
        }
    }
    seen.sort();
    later.sort();
    assert_eq!(seen, later);
    // Resuming after another agency's notification is refused, naming the field.
    let theirs = f.notifications(pirdop, rid).await[0].sequence;
    let refused = f
        .watch(provider, theirs)
        .await
        .next()
        .await
        .expect("an answer")
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("after_sequence"), "{refused:?}");
}

/// Events carry identifiers, never the children's pseudonyms or where they live; nor do logs or notifications.
async fn no_personal_data_in_events_logs_or_notifications(
    f: &Fixture,
    p: &Agencies,
    recorder: &EventRecorder,
    rid: &str,
) {
    let Agencies {
        pirdop,
        provider,
        foster,
        ..
    } = *p;
    let events = recorder.about(rid);
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "referral.submitted",
            "referral.acknowledged",
            "referral.acknowledged",
            "referral.accepted",
            "referral.placed"
        ]
    );
    for (envelope, body) in &recorder.events {
        for secret in [
            "Twin A",
            "Twin B",
            "medical and social care",
            "No free places in the district",
        ] {
            assert!(
                !body.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "event {} carries {secret:?}",
                envelope.event_type
            );
        }
    }
    let logs = f.stack.logs();
    for secret in ["Twin A", "Twin B", "medical and social care"] {
        assert!(!logs.contains(secret), "a log line carries {secret:?}");
    }
    for agency in [pirdop, provider, foster] {
        for n in f.notifications(agency, rid).await {
            assert!(!n.title.contains("Twin") && !n.body.contains("Twin"));
        }
    }
}
