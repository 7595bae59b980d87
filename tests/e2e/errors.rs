//! Bad requests get a clear status naming what is wrong, and change nothing; retries and redeliveries
//! have no second effect; places are never promised twice.

use placement_cli::{clients::as_agency, scenario::eventually};
use placement_platform::services::NOTIFICATIONS;
use placement_proto::v1::{
    AcceptReferralRequest, AcknowledgeReferralRequest, AgencyKind, Case, ConfirmPlacementRequest,
    CreateAgencyRequest, GetCaseRequest, GetStatusRequest, ListDeadLettersRequest,
    ListReferralsRequest, NotificationKind, OpenCaseRequest, ReferralDirection, ReferralStatus,
    ReplayDeadLettersRequest, SearchServicesRequest, UpdateCapacityRequest,
    operator_service_client::OperatorServiceClient,
};
use tonic::Code;
use tonic_types_ext::field_of;
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

mod tonic_types_ext {
    /// The field named by an INVALID_ARGUMENT status.
    pub fn field_of(status: &tonic::Status) -> String {
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        status
            .message()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

fn code<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
    r.expect_err("the call should fail").code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_statuses_and_change_nothing() {
    let f = Fixture::start().await;
    let mut recorder = f.stack.record_events().await;
    who_is_calling_is_checked(&f).await;
    let case = cases_are_opened_by_a_dsa_and_read_by_their_owner(&f).await;
    failed_submissions_leave_no_trace(&f, &case).await;
    let referral_id = wrong_steps_are_refused(&f, &case).await;
    directory_writes_need_standing(&f).await;
    numbers_beyond_their_meaning_are_refused(&f).await;

    // Exactly the two successful steps were announced.
    f.settle(&mut recorder, &referral_id, 2).await;
    f.assert_no_dead_letters().await;
}

/// Who is calling: absent or malformed.
async fn who_is_calling_is_checked(f: &Fixture) {
    let mut cases = f.clients.cases.clone();
    let err = cases
        .get_case(tonic::Request::new(GetCaseRequest {
            case_id: Uuid::new_v4().to_string(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut bad = tonic::Request::new(GetCaseRequest {
        case_id: Uuid::new_v4().to_string(),
    });
    bad.metadata_mut()
        .insert("x-agency-id", "not-a-uuid".parse().unwrap());
    assert_eq!(code(cases.get_case(bad).await), Code::Unauthenticated);
}

/// Cases: only a DSA opens them; only the owner reads them.
async fn cases_are_opened_by_a_dsa_and_read_by_their_owner(f: &Fixture) -> Case {
    let (pirdop, pravets) = (f.agency("dsa-pirdop"), f.agency("dsa-pravets"));
    let provider = f.agency("provider-vratsa");
    let mut cases = f.clients.cases.clone();
    assert_eq!(
        code(
            cases
                .open_case(as_agency(provider, OpenCaseRequest::default()))
                .await
        ),
        Code::InvalidArgument
    );
    let case = f.open_twins_case(pirdop).await;
    let mut as_provider = OpenCaseRequest {
        children: case.children.clone(),
        current_setting: String::new(),
    };
    as_provider.children.iter_mut().for_each(|c| c.id.clear());
    assert_eq!(
        code(cases.open_case(as_agency(provider, as_provider)).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            cases
                .get_case(as_agency(
                    pravets,
                    GetCaseRequest {
                        case_id: case.id.clone()
                    }
                ))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            cases
                .get_case(as_agency(
                    pirdop,
                    GetCaseRequest {
                        case_id: Uuid::new_v4().to_string()
                    }
                ))
                .await
        ),
        Code::NotFound
    );
    let err = cases
        .get_case(as_agency(
            pirdop,
            GetCaseRequest {
                case_id: "42".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "case_id");
    case
}

/// Submissions that must fail, each for its own reason.
async fn failed_submissions_leave_no_trace(f: &Fixture, case: &Case) {
    let (pirdop, pravets) = (f.agency("dsa-pirdop"), f.agency("dsa-pravets"));
    let mut referrals = f.clients.referrals.clone();
    let vratsa = f.demo.service("ftpc-vratsa");
    let submit = |agency: Uuid, r| {
        let mut referrals = f.clients.referrals.clone();
        async move { referrals.submit_referral(as_agency(agency, r)).await }
    };
    // Another DSA's case: it does not exist for the caller.
    assert_eq!(
        code(submit(pravets, f.submission(case, vratsa, "a")).await),
        Code::NotFound
    );
    // Unknown service.
    assert_eq!(
        code(submit(pirdop, f.submission(case, Uuid::new_v4(), "b")).await),
        Code::NotFound
    );
    // The twins (5) are too young for Stara Zagora's centre (6-17).
    let err = submit(
        pirdop,
        f.submission(case, f.demo.service("ftpc-stara-zagora"), "c"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("age"));
    // Malformed fields, each named.
    let mut r = f.submission(case, vratsa, "d");
    r.legal_basis.as_mut().unwrap().number.clear();
    assert_eq!(
        field_of(&submit(pirdop, r).await.unwrap_err()),
        "legal_basis.number"
    );
    let mut r = f.submission(case, vratsa, "e");
    r.reason = String::new();
    assert_eq!(field_of(&submit(pirdop, r).await.unwrap_err()), "reason");
    let mut r = f.submission(case, vratsa, "");
    r.idempotency_key.clear();
    assert_eq!(
        field_of(&submit(pirdop, r).await.unwrap_err()),
        "idempotency_key"
    );
    let mut r = f.submission(case, vratsa, "f");
    r.legal_basis
        .as_mut()
        .unwrap()
        .issued_on
        .as_mut()
        .unwrap()
        .month = 13;
    assert_eq!(
        field_of(&submit(pirdop, r).await.unwrap_err()),
        "legal_basis.issued_on"
    );
    // None of them left a trace.
    let outgoing = referrals
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
        .unwrap()
        .into_inner();
    assert!(outgoing.referrals.is_empty());
    assert_eq!(
        code(
            referrals
                .list_referrals(as_agency(pirdop, ListReferralsRequest::default()))
                .await
        ),
        Code::InvalidArgument
    );
}

/// Steps by the wrong agency, in the wrong state, on unknown referrals.
/// Returns the id of the referral submitted and acknowledged once.
async fn wrong_steps_are_refused(f: &Fixture, case: &Case) -> String {
    let pirdop = f.agency("dsa-pirdop");
    let provider = f.agency("provider-vratsa");
    let vratsa = f.demo.service("ftpc-vratsa");
    let mut referrals = f.clients.referrals.clone();
    let r = f.submit(pirdop, case, vratsa).await;
    steps_out_of_turn_are_refused(f, &r.id).await;
    let id = || r.id.clone();
    referrals
        .acknowledge_referral(as_agency(
            provider,
            AcknowledgeReferralRequest { referral_id: id() },
        ))
        .await
        .expect("first acknowledgement");
    assert_eq!(
        code(
            referrals
                .acknowledge_referral(as_agency(
                    provider,
                    AcknowledgeReferralRequest { referral_id: id() }
                ))
                .await
        ),
        Code::FailedPrecondition
    );
    let now = f.referral(pirdop, &r.id).await;
    assert_eq!(
        now.version, 2,
        "only the submission and one acknowledgement changed it"
    );
    assert_eq!(now.status, ReferralStatus::Submitted as i32);
    r.id
}

/// Acknowledging another district's referral, accepting before the acknowledgements, confirming as the
/// provider or too early, accepting an unknown referral, reading another district's: each refused.
async fn steps_out_of_turn_are_refused(f: &Fixture, referral_id: &str) {
    let (pirdop, pravets) = (f.agency("dsa-pirdop"), f.agency("dsa-pravets"));
    let provider = f.agency("provider-vratsa");
    let mut referrals = f.clients.referrals.clone();
    let id = || referral_id.to_string();
    assert_eq!(
        code(
            referrals
                .acknowledge_referral(as_agency(
                    pravets,
                    AcknowledgeReferralRequest { referral_id: id() }
                ))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            referrals
                .accept_referral(as_agency(
                    provider,
                    AcceptReferralRequest { referral_id: id() }
                ))
                .await
        ),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(
            referrals
                .confirm_placement(as_agency(
                    provider,
                    ConfirmPlacementRequest {
                        referral_id: id(),
                        ..Default::default()
                    }
                ))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            referrals
                .confirm_placement(as_agency(
                    pirdop,
                    ConfirmPlacementRequest {
                        referral_id: id(),
                        ..Default::default()
                    }
                ))
                .await
        ),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(
            referrals
                .accept_referral(as_agency(
                    provider,
                    AcceptReferralRequest {
                        referral_id: Uuid::new_v4().to_string()
                    }
                ))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            referrals
                .get_referral(as_agency(
                    pravets,
                    placement_proto::v1::GetReferralRequest { referral_id: id() }
                ))
                .await
        ),
        Code::NotFound
    );
}

/// Directory: writes need standing; capacity cannot drop under what is taken; filters are checked.
async fn directory_writes_need_standing(f: &Fixture) {
    let (pirdop, provider) = (f.agency("dsa-pirdop"), f.agency("provider-vratsa"));
    let vratsa = f.demo.service("ftpc-vratsa");
    let mut directory = f.clients.directory.clone();
    let err = directory
        .create_agency(as_agency(
            pirdop,
            CreateAgencyRequest {
                kind: AgencyKind::Dsa as i32,
                name: "DSA X".into(),
                region_code: "SFO".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = directory
        .update_capacity(as_agency(
            provider,
            UpdateCapacityRequest {
                service_id: vratsa.to_string(),
                capacity: 3,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        code(
            directory
                .update_capacity(as_agency(
                    pirdop,
                    UpdateCapacityRequest {
                        service_id: vratsa.to_string(),
                        capacity: 30,
                        ..Default::default()
                    }
                ))
                .await
        ),
        Code::PermissionDenied
    );
    let err = directory
        .search_services(as_agency(
            pirdop,
            SearchServicesRequest {
                region_code: "XXX".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "region_code");
}

/// Numbers beyond their meaning: named, refused, nothing changed (a wrapping cast once made a huge
/// bound -1, matching every service, and a huge occupancy a constraint violation, INTERNAL).
async fn numbers_beyond_their_meaning_are_refused(f: &Fixture) {
    let (pirdop, provider) = (f.agency("dsa-pirdop"), f.agency("provider-vratsa"));
    let vratsa = f.demo.service("ftpc-vratsa");
    let mut directory = f.clients.directory.clone();
    let before = f.service(vratsa).await;
    let err = directory
        .search_services(as_agency(
            pirdop,
            SearchServicesRequest {
                min_free_places: u32::MAX,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "min_free_places");
    for (occupied, capacity) in [
        (u32::MAX, before.capacity),
        (i32::MAX as u32, before.capacity),
        (before.capacity + 1, before.capacity),
    ] {
        let err = directory
            .update_capacity(as_agency(
                provider,
                UpdateCapacityRequest {
                    service_id: vratsa.to_string(),
                    capacity,
                    occupied_places: Some(occupied),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(field_of(&err), "occupied_places", "occupied {occupied}");
    }
    let err = directory
        .update_capacity(as_agency(
            provider,
            UpdateCapacityRequest {
                service_id: vratsa.to_string(),
                capacity: u32::MAX,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "capacity");
    let after = f.service(vratsa).await;
    assert_eq!(
        (after.capacity, after.occupied_places, after.version),
        (before.capacity, before.occupied_places, before.version)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_submissions_and_redelivered_events_have_no_second_effect() {
    let f = Fixture::start().await;
    let mut recorder = f.stack.record_events().await;
    let pirdop = f.agency("dsa-pirdop");
    let provider = f.agency("provider-vratsa");
    let first = assert_a_retried_submission_is_one_referral(&f, &mut recorder).await;
    // The broker delivers the same event again (as after a lost ack): nobody is told twice.
    let (_, body) = recorder
        .events
        .iter()
        .find(|(e, _)| e.aggregate_id == first.id)
        .cloned()
        .expect("the submitted event");
    f.stack.publish_raw("referral.submitted", &body).await;
    // A poison message: it is dead-lettered and does not block what comes after it.
    f.stack
        .publish_raw("referral.submitted", b"\x00\x01 not an envelope")
        .await;
    f.clients
        .referrals
        .clone()
        .acknowledge_referral(as_agency(
            provider,
            AcknowledgeReferralRequest {
                referral_id: first.id.clone(),
            },
        ))
        .await
        .unwrap();
    assert_the_poison_message_dead_lettered_by_its_consumers(&f).await;
    f.settle(&mut recorder, &first.id, 3).await; // submitted (twice on the wire) and acknowledged
    assert_eq!(
        Fixture::kinds(&f.notifications(provider, &first.id).await),
        vec![NotificationKind::ReferralSubmitted]
    );
    assert_eq!(
        Fixture::kinds(&f.notifications(pirdop, &first.id).await),
        vec![NotificationKind::ReferralAcknowledged]
    );
    // Directory and referrals are not bound to referral.submitted: their dead-letter queues stay empty.
    for (queue, n) in f.stack.dead_letters().await {
        if queue.contains(".directory.") || queue.contains(".referrals.") {
            assert_eq!(n, 0, "{queue}");
        }
    }
}

/// A submission sent twice with one idempotency key is one referral, and the provider is told once; the
/// same key for a different request is refused. Returns the referral.
async fn assert_a_retried_submission_is_one_referral(
    f: &Fixture,
    recorder: &mut placement_e2e::EventRecorder,
) -> placement_proto::v1::Referral {
    let pirdop = f.agency("dsa-pirdop");
    let provider = f.agency("provider-vratsa");
    let case = f.open_twins_case(pirdop).await;
    let request = f.submission(&case, f.demo.service("ftpc-vratsa"), "retry-me");
    let mut referrals = f.clients.referrals.clone();
    let first = referrals
        .submit_referral(as_agency(pirdop, request.clone()))
        .await
        .unwrap()
        .into_inner();
    let again = referrals
        .submit_referral(as_agency(pirdop, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.id, again.id);
    assert_eq!(again.version, 1);
    // The same key for a different request is refused.
    let mut other = request.clone();
    other.reason = "Something else".into();
    assert_eq!(
        code(referrals.submit_referral(as_agency(pirdop, other)).await),
        Code::AlreadyExists
    );
    f.settle(recorder, &first.id, 1).await;
    assert_eq!(
        Fixture::kinds(&f.notifications(provider, &first.id).await),
        vec![NotificationKind::ReferralSubmitted]
    );
    first
}

/// The poison message is in the dead-letter queues of the services bound to its routing key.
async fn assert_the_poison_message_dead_lettered_by_its_consumers(f: &Fixture) {
    let stack = &f.stack;
    eventually(
        "the poison message in the dead-letter queues",
        WAIT,
        || async {
            let dl = stack.dead_letters().await;
            let count = |svc: &str| {
                dl.iter()
                    .find(|(q, _)| q.ends_with(&format!(".{svc}.dead-letter")))
                    .map(|(_, n)| *n)
            };
            (count("notifications") == Some(1) && count("cases") == Some(1)).then_some(())
        },
    )
    .await
    .expect("dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn places_are_never_promised_twice() {
    let f = Fixture::start().await;
    let provider = f.agency("provider-vratsa");
    let service = f.demo.service("ftpc-vratsa");
    let free = f.service(service).await.free_places;
    assert_eq!(free, 4);
    // Three sibling pairs from three DSAs want the same 4 places.
    let mut ids = Vec::new();
    for dsa in ["dsa-pirdop", "dsa-pravets", "dsa-dragoman"] {
        let case = f.open_twins_case(f.agency(dsa)).await;
        let r = f.submit(f.agency(dsa), &case, service).await;
        f.acknowledge(&r.id, &["provider-vratsa", "foster-vratsa"])
            .await;
        ids.push(r.id);
    }
    // Accepted back to back, before the directory has applied any hold.
    let mut referrals = f.clients.referrals.clone();
    let mut outcomes = Vec::new();
    for id in &ids {
        outcomes.push(
            referrals
                .accept_referral(as_agency(
                    provider,
                    AcceptReferralRequest {
                        referral_id: id.clone(),
                    },
                ))
                .await,
        );
    }
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok());
    let err = outcomes[2].as_ref().expect_err("no places left");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("free places"));
    assert_eq!(
        f.referral(f.agency("dsa-dragoman"), &ids[2]).await.status,
        ReferralStatus::Acknowledged as i32
    );
    let s = eventually("4 places held", WAIT, || async {
        let s = f.service(service).await;
        (s.held_places == 4).then_some(s)
    })
    .await
    .expect("held");
    assert_eq!(s.free_places, 0);
    // Mezdra's centre has 1 free place; a sibling pair cannot be accepted there either.
    let case = f.open_twins_case(f.agency("dsa-pirdop")).await;
    let r = f
        .submit(f.agency("dsa-pirdop"), &case, f.demo.service("ftpc-mezdra"))
        .await;
    f.acknowledge(&r.id, &["provider-mezdra", "foster-vratsa"])
        .await;
    assert_eq!(
        code(
            referrals
                .accept_referral(as_agency(
                    f.agency("provider-mezdra"),
                    AcceptReferralRequest {
                        referral_id: r.id.clone()
                    }
                ))
                .await
        ),
        Code::FailedPrecondition
    );
    assert_eq!(
        f.service(f.demo.service("ftpc-mezdra")).await.held_places,
        0
    );
    f.assert_no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_and_replay_dead_letters() {
    let f = Fixture::start().await;
    let mut recorder = f.stack.record_events().await;
    let operator_id = placement_cli::demo::NATIONAL_AUTHORITY;
    let mut operator = OperatorServiceClient::new(
        placement_cli::clients::channel(f.stack.endpoints.url(NOTIFICATIONS)).unwrap(),
    );
    let pirdop = f.agency("dsa-pirdop");
    let case = f.open_twins_case(pirdop).await;
    let r = f.submit(pirdop, &case, f.demo.service("ftpc-vratsa")).await;
    f.settle(&mut recorder, &r.id, 1).await;

    let lost = lose_an_event_and_poison_the_queue(&f, &recorder, &r.id).await;
    assert_both_listed_and_none_removed(&f, &operator, &lost).await;
    // Operators must say what to replay.
    let err = operator
        .replay_dead_letters(as_agency(operator_id, ReplayDeadLettersRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    assert_replaying_the_lost_event_applies_it(&f, &mut operator, &r.id, &lost).await;
    assert_the_poison_message_comes_back(&mut operator).await;
}

type Operator = OperatorServiceClient<tonic::transport::Channel>;

/// A good event that ended among the dead letters (say, before a bug was fixed), and a poison message.
/// Returns the good event's id.
async fn lose_an_event_and_poison_the_queue(
    f: &Fixture,
    recorder: &placement_e2e::EventRecorder,
    referral_id: &str,
) -> String {
    let mut lost = recorder.about(referral_id)[0].clone();
    lost.event_id = Uuid::now_v7().to_string();
    let dlq = placement_messaging::topology::dead_letter_queue(&f.stack.queue("notifications"));
    f.stack.put_event_in_queue(&dlq, &lost).await;
    f.stack.publish_to_queue("notifications", b"garbage").await;
    lost.event_id
}

/// Both dead letters listed, each as it is; listing removed nothing (peeked messages go back to the queue
/// as the peek's channel closes); status says the same.
async fn assert_both_listed_and_none_removed(f: &Fixture, operator: &Operator, lost: &str) {
    let operator_id = placement_cli::demo::NATIONAL_AUTHORITY;
    let listed = eventually("two dead letters", WAIT, || {
        let mut operator = operator.clone();
        async move {
            let l = operator
                .list_dead_letters(as_agency(operator_id, ListDeadLettersRequest { limit: 0 }))
                .await
                .ok()?
                .into_inner();
            (l.total == 2 && l.dead_letters.len() == 2).then_some(l)
        }
    })
    .await
    .expect("dead letters listed");
    let poison = listed
        .dead_letters
        .iter()
        .find(|d| d.event_id.is_empty())
        .expect("the poison message");
    assert_eq!(poison.reason, "rejected");
    assert_eq!(poison.routing_key, f.stack.queue("notifications"));
    let good = listed
        .dead_letters
        .iter()
        .find(|d| d.event_id == lost)
        .expect("the lost event");
    assert_eq!(good.event_type, "referral.submitted");
    let status = eventually("the peeked dead letters back in the queue", WAIT, || {
        let mut operator = operator.clone();
        async move {
            let status = operator
                .get_status(as_agency(operator_id, GetStatusRequest {}))
                .await
                .ok()?
                .into_inner();
            (status.dead_letters == 2).then_some(status)
        }
    })
    .await
    .expect("two dead letters in the status");
    assert!(status.database_ok && status.broker_ok);
    assert_eq!(status.service, "placement-notifications");
}

/// Replaying the lost event applies it: the provider is told (a second event, so a second notification).
async fn assert_replaying_the_lost_event_applies_it(
    f: &Fixture,
    operator: &mut Operator,
    referral_id: &str,
    lost: &str,
) {
    let operator_id = placement_cli::demo::NATIONAL_AUTHORITY;
    let provider = f.agency("provider-vratsa");
    let replayed = operator
        .replay_dead_letters(as_agency(
            operator_id,
            ReplayDeadLettersRequest {
                event_ids: vec![lost.to_string()],
                all: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.replayed, 1);
    let lost_id = Uuid::parse_str(lost).unwrap();
    let stack = &f.stack;
    eventually("the replayed event to be applied", WAIT, || async {
        stack
            .has_processed("notifications", &[lost_id])
            .await
            .then_some(())
    })
    .await
    .expect("applied");
    assert_eq!(
        Fixture::kinds(&f.notifications(provider, referral_id).await),
        vec![
            NotificationKind::ReferralSubmitted,
            NotificationKind::ReferralSubmitted
        ]
    );
}

/// The poison message is still there; replayed, it comes back to the dead letters.
async fn assert_the_poison_message_comes_back(operator: &mut Operator) {
    let operator_id = placement_cli::demo::NATIONAL_AUTHORITY;
    let replayed = operator
        .replay_dead_letters(as_agency(
            operator_id,
            ReplayDeadLettersRequest {
                event_ids: vec![],
                all: true,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.replayed, 1);
    eventually(
        "the poison message back among the dead letters",
        WAIT,
        || {
            let mut operator = operator.clone();
            async move {
                let l = operator
                    .list_dead_letters(as_agency(operator_id, ListDeadLettersRequest { limit: 10 }))
                    .await
                    .ok()?
                    .into_inner();
                (l.total == 1
                    && l.dead_letters
                        .first()
                        .is_some_and(|d| d.event_id.is_empty()))
                .then_some(())
            }
        },
    )
    .await
    .expect("poison dead-lettered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_about_an_unknown_service_is_retried_then_dead_lettered() {
    use placement_messaging::{Event, EventBuilder, EventType};
    use placement_proto::v1::ReferralEvent;
    use prost::Message;
    let f = Fixture::start().await;
    let referral_id = Uuid::new_v4();
    let event = EventBuilder::new("a-test").build(
        Event::ReferralAccepted(ReferralEvent {
            referral_id: referral_id.to_string(),
            service_id: Uuid::new_v4().to_string(),
            sender_agency_id: Uuid::new_v4().to_string(),
            places: 2,
            status: ReferralStatus::Accepted as i32,
            ..Default::default()
        }),
        referral_id,
        4,
        Uuid::new_v4(),
    );
    let published = std::time::Instant::now();
    f.stack
        .publish_raw(EventType::ReferralAccepted.as_str(), &event.encode_to_vec())
        .await;
    let stack = &f.stack;
    eventually(
        "the event in the directory's dead letters",
        WAIT,
        || async {
            stack
                .dead_letters()
                .await
                .iter()
                .any(|(q, n)| q.contains(".directory.") && *n == 1)
                .then_some(())
        },
    )
    .await
    .expect("dead-lettered");
    // It was retried for a while (in case the service's registration was late), not dropped at once.
    assert!(published.elapsed() >= std::time::Duration::from_millis(500));
    let logs = f.stack.logs();
    assert!(
        logs.contains("after 6 retries") && logs.contains(&event.event_id),
        "the reason and the event id are logged"
    );
    // It blocks nothing behind it: a whole referral still holds its places.
    let pirdop = f.agency("dsa-pirdop");
    let case = f.open_twins_case(pirdop).await;
    let service = f.demo.service("ftpc-haskovo");
    let r = f.submit(pirdop, &case, service).await;
    f.acknowledge(&r.id, &["provider-haskovo", "foster-haskovo"])
        .await;
    f.clients
        .referrals
        .clone()
        .accept_referral(as_agency(
            f.agency("provider-haskovo"),
            AcceptReferralRequest {
                referral_id: r.id.clone(),
            },
        ))
        .await
        .unwrap();
    eventually("the places to be held", WAIT, || async {
        (f.service(service).await.held_places == 2).then_some(())
    })
    .await
    .expect("held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_refused_before_decoding() {
    let f = Fixture::start().await;
    let pirdop = f.agency("dsa-pirdop");
    let mut cases = f.clients.cases.clone();
    let before = cases
        .list_cases(as_agency(
            pirdop,
            placement_proto::v1::ListCasesRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .cases
        .len();
    let mut huge = f.open_twins_case(pirdop).await;
    huge.children.iter_mut().for_each(|c| c.id.clear());
    let err = cases
        .open_case(as_agency(
            pirdop,
            OpenCaseRequest {
                children: huge.children.clone(),
                current_setting: "x".repeat(100 * 1024),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    // Just under the limit but over the field's own: INVALID_ARGUMENT naming it.
    let err = cases
        .open_case(as_agency(
            pirdop,
            OpenCaseRequest {
                children: huge.children,
                current_setting: "x".repeat(10 * 1024),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "current_setting");
    let after = cases
        .list_cases(as_agency(
            pirdop,
            placement_proto::v1::ListCasesRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .cases
        .len();
    assert_eq!(
        after,
        before + 1,
        "only the case opened to copy its children"
    );
}

/// A status this release does not know, in the database or on the wire, is refused loudly: never read
/// as UNSPECIFIED or skipped, never INTERNAL, and nothing is done with it.
#[tokio::test]
async fn unknown_statuses_and_event_types_are_refused_loudly() {
    use placement_proto::v1::GetReferralRequest;
    use sqlx::Executor;
    let f = Fixture::start().await;
    let pirdop = f.agency("dsa-pirdop");
    let case = f.open_twins_case(pirdop).await;
    let r = f
        .submit(pirdop, &case, f.demo.service("ftpc-haskovo"))
        .await;
    let mut db = f.stack.db().await;
    let set_status = |status: &'static str| {
        format!(
            "UPDATE referrals.referrals SET status = '{status}' WHERE id = '{}'",
            r.id
        )
    };
    db.execute(set_status("REFERRAL_STATUS_TRANSFERRED").as_str())
        .await
        .expect("a newer release's status");

    let mut referrals = f.clients.referrals.clone();
    let read = referrals
        .get_referral(as_agency(
            pirdop,
            GetReferralRequest {
                referral_id: r.id.clone(),
            },
        ))
        .await
        .expect_err("an unknown status is not read");
    assert_eq!(read.code(), Code::DataLoss, "{read:?}");
    assert!(
        read.message().contains("REFERRAL_STATUS_TRANSFERRED")
            && read.message().contains("ReferralStatus"),
        "the status names what it could not read: {read:?}"
    );
    let step = referrals
        .acknowledge_referral(as_agency(
            f.agency("provider-haskovo"),
            AcknowledgeReferralRequest {
                referral_id: r.id.clone(),
            },
        ))
        .await
        .expect_err("no step on a status this release does not know");
    assert_eq!(step.code(), Code::DataLoss, "{step:?}");
    db.execute(set_status("REFERRAL_STATUS_SUBMITTED").as_str())
        .await
        .expect("restore");
    let after = f.referral(pirdop, &r.id).await;
    assert_eq!(after.version, r.version, "the refused step changed nothing");
    assert!(
        after
            .acknowledgements
            .iter()
            .all(|a| a.acknowledged_at.is_none())
    );

    assert_an_unknown_event_type_is_dead_lettered(&f, &r).await;
}

/// On the wire: an event of a type this release does not know is dead-lettered, not skipped.
async fn assert_an_unknown_event_type_is_dead_lettered(
    f: &Fixture,
    r: &placement_proto::v1::Referral,
) {
    use placement_messaging::EventBuilder;
    use placement_proto::v1::ReferralEvent;
    use prost::Message;
    let mut event = EventBuilder::new("a-newer-release").build(
        placement_messaging::Event::ReferralSubmitted(ReferralEvent {
            referral_id: r.id.clone(),
            ..Default::default()
        }),
        Uuid::parse_str(&r.id).unwrap(),
        r.version + 1,
        Uuid::new_v4(),
    );
    event.event_type = "referral.transferred".into();
    f.stack
        .publish_to_queue("notifications", &event.encode_to_vec())
        .await;
    let stack = &f.stack;
    eventually(
        "the event in the notifications' dead letters",
        WAIT,
        || async {
            stack
                .dead_letters()
                .await
                .iter()
                .any(|(q, n)| q.contains(".notifications.") && *n == 1)
                .then_some(())
        },
    )
    .await
    .expect("dead-lettered");
    let logs = f.stack.logs();
    assert!(
        logs.contains("referral.transferred") && logs.contains("not one this release knows"),
        "the unknown type is logged by name"
    );
}
