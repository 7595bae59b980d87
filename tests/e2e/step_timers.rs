//! A timer on every open step (issue #27): the acknowledgement, the decision, the confirmation and the
//! arrival each remind their holders at half their time and escalate at their deadline, once each with two
//! referrals instances claiming due timers side by side; the holder of a step says why it waits, which moves
//! the deadline once, and a second postponement escalates at once; recording the arrival stops the last
//! step's timers. One process stack with a second referrals instance and short step times
//! (`PLACEMENT_ACK_DEADLINE`, `PLACEMENT_STEP_DEADLINE`).

use placement_cli::{
    clients::{as_agency, as_agency_with},
    scenario::eventually,
};
use placement_e2e::StackOptions;
use placement_platform::caller::Role;
use placement_proto::prost_types::Timestamp;
use placement_proto::v1::{
    AcceptReferralRequest, ConfirmPlacementRequest, Date, NotificationKind, PostponeStepRequest,
    RecordArrivalRequest, Referral, ReferralAction, ReferralStatus, ReferralStepName, Urgency,
    WaitingReason,
};
use tonic::Code;
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

const ACK_SECONDS: i64 = 5;
const STEP_SECONDS: i64 = 3;

fn micros(t: Option<&Timestamp>) -> i64 {
    let t = t.expect("a time");
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000
}

/// How many `action` entries the referral's history holds while it was in `status`.
fn entries(r: &Referral, action: ReferralAction, status: ReferralStatus) -> usize {
    (r.history.iter())
        .filter(|h| h.action == action as i32 && h.to_status == status as i32)
        .count()
}

/// The step a referral's history entered `status` with: when it happened.
fn entered(r: &Referral, status: ReferralStatus) -> i64 {
    let h = (r.history.iter())
        .find(|h| h.to_status == status as i32 && h.from_status != status as i32)
        .unwrap_or_else(|| panic!("never entered {status:?}: {:?}", r.history));
    micros(h.at.as_ref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_on_every_step_fire_once_with_two_instances() {
    let mut f = Fixture::with(StackOptions {
        ack_deadline: Some(format!("{ACK_SECONDS}s")),
        escalation_interval: Some("100ms".into()),
        env: vec![("PLACEMENT_STEP_DEADLINE".into(), format!("{STEP_SECONDS}s"))],
        ..Default::default()
    })
    .await;
    // A second referrals instance claims due timers beside the first.
    let second = f.stack.add_instance("referrals");
    f.stack.wait_ready(WAIT).await;
    assert!(!second.is_empty());
    let sender = f.agency("dsa-pirdop");
    let service = f.demo.service("ftpc-vratsa");

    let quick = submit(&f, sender, service, Urgency::Emergency).await;
    assert_eq!(quick.urgency, Urgency::Emergency as i32);
    arrival_recorded_before_its_timers(&f, sender, &quick.id).await;
    let postponed = submit(&f, sender, service, Urgency::Unspecified).await;
    assert_eq!(
        postponed.urgency,
        Urgency::Routine as i32,
        "unspecified is routine"
    );
    postponing_moves_the_deadline_once_and_then_escalates(&f, sender, &postponed).await;

    let walked = submit(&f, sender, service, Urgency::Routine).await;
    let walked = every_step_reminds_and_escalates_once(&f, sender, &walked.id).await;
    assert_each_holder_told_once_per_step(&f, &walked.id).await;

    // Long after the quick referral's arrival deadline: its recorded arrival left nothing to fire.
    let quick = f.referral(sender, &quick.id).await;
    let arrived_at = quick
        .history
        .iter()
        .position(|h| h.action == ReferralAction::Arrived as i32);
    let after_arrival = &quick.history[arrived_at.expect("arrived") + 1..];
    assert!(after_arrival.is_empty(), "{after_arrival:?}");
    assert_eq!(
        timers(&f, &quick.id).await,
        vec!["REMIND_OF_COURT".to_string()]
    );
    f.assert_no_dead_letters().await;
}

async fn submit(f: &Fixture, sender: Uuid, service: Uuid, urgency: Urgency) -> Referral {
    let case = f.open_twins_case(sender).await;
    let request = placement_proto::v1::SubmitReferralRequest {
        urgency: urgency as i32,
        ..f.submission(&case, service, &Uuid::new_v4().to_string())
    };
    let r = (f.clients.referrals.clone())
        .submit_referral(as_agency(sender, request))
        .await
        .expect("SubmitReferral")
        .into_inner();
    // The acknowledgement's time is the fixed one, whatever the urgency; it is the open step's deadline.
    assert_eq!(r.step, ReferralStepName::Acknowledgement as i32);
    assert_eq!(
        micros(r.step_deadline.as_ref()),
        micros(r.acknowledgement_deadline.as_ref())
    );
    assert_eq!(
        micros(r.acknowledgement_deadline.as_ref()) - micros(r.created_at.as_ref()),
        ACK_SECONDS * 1_000_000
    );
    r
}

/// The stored timers of a referral, by name.
async fn timers(f: &Fixture, referral_id: &str) -> Vec<String> {
    let mut db = f.stack.db().await;
    sqlx::query_scalar(
        "SELECT step FROM referrals.referral_timers WHERE referral_id = $1 ORDER BY step",
    )
    .bind(Uuid::parse_str(referral_id).expect("an id"))
    .fetch_all(&mut db)
    .await
    .expect("the timers")
}

async fn accept_and_confirm(f: &Fixture, sender: Uuid, id: &str) -> Referral {
    let provider = f.agency("provider-vratsa");
    let referral_id = id.to_string();
    (f.clients.referrals.clone())
        .accept_referral(as_agency(provider, AcceptReferralRequest { referral_id }))
        .await
        .expect("AcceptReferral");
    confirm(f, sender, id).await
}

async fn confirm(f: &Fixture, sender: Uuid, id: &str) -> Referral {
    let referral_id = id.to_string();
    (f.clients.referrals.clone())
        .confirm_placement(as_agency(
            sender,
            ConfirmPlacementRequest {
                referral_id,
                ..Default::default()
            },
        ))
        .await
        .expect("ConfirmPlacement")
        .into_inner()
}

async fn record_arrival(f: &Fixture, agency: Uuid, id: &str) -> Result<Referral, tonic::Status> {
    let referral_id = id.to_string();
    (f.clients.referrals.clone())
        .record_arrival(as_agency(agency, RecordArrivalRequest { referral_id }))
        .await
        .map(tonic::Response::into_inner)
}

/// Through every step at once: the placement opens the arrival with its two timers; recording the arrival
/// (only by the receiving service's agency, only once) stops them and closes the last step.
async fn arrival_recorded_before_its_timers(f: &Fixture, sender: Uuid, id: &str) {
    let provider = f.agency("provider-vratsa");
    let early = record_arrival(f, provider, id)
        .await
        .expect_err("not placed yet");
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    f.acknowledge(id, &["provider-vratsa", "foster-vratsa"])
        .await;
    let placed = accept_and_confirm(f, sender, id).await;
    assert_eq!(placed.step, ReferralStepName::Arrival as i32);
    assert_eq!(
        micros(placed.step_deadline.as_ref()) - entered(&placed, ReferralStatus::Placed),
        STEP_SECONDS * 1_000_000
    );
    let by_sender = record_arrival(f, sender, id).await.expect_err("the sender");
    assert_eq!(by_sender.code(), Code::PermissionDenied, "{by_sender:?}");
    let reader = as_agency_with(
        provider,
        &[Role::Integration],
        RecordArrivalRequest {
            referral_id: id.to_string(),
        },
    );
    let without_role = (f.clients.referrals.clone()).record_arrival(reader).await;
    assert_eq!(
        without_role.expect_err("no role").code(),
        Code::PermissionDenied
    );
    let arrived = record_arrival(f, provider, id)
        .await
        .expect("RecordArrival");
    assert_eq!(arrived.status, ReferralStatus::Placed as i32);
    assert!(arrived.arrived_at.is_some());
    assert_eq!(arrived.step, ReferralStepName::Unspecified as i32);
    assert!(arrived.step_deadline.is_none());
    let last = arrived.history.last().expect("history");
    assert_eq!(
        (last.action, last.actor_agency_id.as_str()),
        (
            ReferralAction::Arrived as i32,
            provider.to_string().as_str()
        )
    );
    let again = record_arrival(f, provider, id).await.expect_err("twice");
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    let left = timers(f, id).await;
    assert!(
        !left.iter().any(|t| t.ends_with("_ARRIVAL")),
        "the arrival's timers stopped: {left:?}"
    );
    // The sender is told the children arrived, once.
    let told = eventually("the arrival told", WAIT, || async {
        let kinds = Fixture::kinds(&f.notifications(sender, id).await);
        kinds
            .contains(&NotificationKind::ReferralArrived)
            .then_some(kinds)
    })
    .await
    .expect("told");
    let arrivals = told
        .iter()
        .filter(|k| **k == NotificationKind::ReferralArrived);
    assert_eq!(arrivals.count(), 1, "{told:?}");
}

fn postponement(
    id: &str,
    reason: WaitingReason,
    comment: &str,
    until: Option<Date>,
) -> PostponeStepRequest {
    PostponeStepRequest {
        referral_id: id.to_string(),
        reason: reason as i32,
        comment: comment.into(),
        until,
    }
}

async fn postpone(
    f: &Fixture,
    agency: Uuid,
    request: PostponeStepRequest,
) -> Result<Referral, tonic::Status> {
    (f.clients.referrals.clone())
        .postpone_step(as_agency(agency, request))
        .await
        .map(tonic::Response::into_inner)
}

/// Bad postponements name their field and change nothing; a sender or a stranger may not postpone the
/// acknowledgement; the provider's first postponement moves the deadline by the step's time and both the
/// sender and the RDSA see why; the foster-care team's (the second of the step) escalates at once, and
/// nothing escalates again.
async fn postponing_moves_the_deadline_once_and_then_escalates(
    f: &Fixture,
    sender: Uuid,
    r: &Referral,
) {
    let (provider, foster) = (f.agency("provider-vratsa"), f.agency("foster-vratsa"));
    let rdsa = f.agency("rdsa-vratsa");
    let id = r.id.as_str();
    bad_postponements_change_nothing(f, sender, r).await;
    let waiting = postponement(
        id,
        WaitingReason::DocumentsMissing,
        "awaiting the file",
        None,
    );
    let first = postpone(f, provider, waiting)
        .await
        .expect("the first postponement");
    assert_eq!(
        micros(first.step_deadline.as_ref()) - micros(r.step_deadline.as_ref()),
        ACK_SECONDS * 1_000_000,
        "moved by the step's own time"
    );
    assert_eq!(first.acknowledgement_deadline, first.step_deadline);
    let postponed = entries(&first, ReferralAction::Postponed, ReferralStatus::Submitted);
    assert_eq!(postponed, 1);
    for viewer in [sender, rdsa] {
        let seen = f.referral(viewer, id).await;
        assert_eq!(
            (
                seen.waiting_reason,
                seen.waiting_comment.as_str(),
                seen.postponements
            ),
            (
                WaitingReason::DocumentsMissing as i32,
                "awaiting the file",
                1
            )
        );
    }
    let court = postponement(id, WaitingReason::AwaitingCourt, "", None);
    let second = postpone(f, foster, court)
        .await
        .expect("the second postponement");
    assert!(second.escalated, "a second postponement escalates");
    assert_eq!(second.step_deadline, first.step_deadline, "not moved again");
    assert_eq!(second.postponements, 2);
    let last = second.history.last().expect("history");
    assert_eq!(
        (last.action, last.actor_agency_id.as_str()),
        (
            ReferralAction::Escalated as i32,
            foster.to_string().as_str()
        )
    );
    let left = timers(f, id).await;
    assert_eq!(
        left,
        vec!["REMIND_OF_COURT".to_string()],
        "the escalation and reminder stopped"
    );
    postponement_and_escalation_told_once(f, [sender, rdsa], id).await;
}

/// Each refused postponement names its field (when the input is at fault) and leaves the referral as it was.
async fn bad_postponements_change_nothing(f: &Fixture, sender: Uuid, r: &Referral) {
    let provider = f.agency("provider-vratsa");
    let id = r.id.as_str();
    let past = Date {
        year: 2020,
        month: 1,
        day: 1,
    };
    let (invalid, denied) = (Code::InvalidArgument, Code::PermissionDenied);
    let refusals = [
        (
            provider,
            WaitingReason::Unspecified,
            "",
            None,
            invalid,
            "reason",
        ),
        (
            provider,
            WaitingReason::Other,
            " ",
            None,
            invalid,
            "comment",
        ),
        (
            provider,
            WaitingReason::PlaceFreeing,
            "",
            None,
            invalid,
            "until",
        ),
        (
            provider,
            WaitingReason::PlaceFreeing,
            "",
            Some(past),
            invalid,
            "until",
        ),
        (
            sender,
            WaitingReason::DocumentsMissing,
            "",
            None,
            denied,
            "",
        ),
        (
            f.agency("dsa-pravets"),
            WaitingReason::DocumentsMissing,
            "",
            None,
            Code::NotFound,
            "",
        ),
    ];
    for (agency, reason, comment, until, code, field) in refusals {
        let request = postponement(id, reason, comment, until);
        let refused = postpone(f, agency, request).await.expect_err("refused");
        assert_eq!(refused.code(), code, "{refused:?}");
        assert!(refused.message().starts_with(field), "{refused:?}");
    }
    let now = f.referral(sender, id).await;
    assert_eq!(now.version, r.version, "refusals change nothing");
}

/// `agencies` are told of the first postponement and of the escalation, once each.
async fn postponement_and_escalation_told_once(f: &Fixture, agencies: [Uuid; 2], id: &str) {
    for agency in agencies {
        let kinds = eventually("postponement and escalation told", WAIT, || async {
            let kinds = Fixture::kinds(&f.notifications(agency, id).await);
            (kinds.contains(&NotificationKind::ReferralPostponed)
                && kinds.contains(&NotificationKind::ReferralEscalated))
            .then_some(kinds)
        })
        .await
        .expect("told");
        for kind in [
            NotificationKind::ReferralPostponed,
            NotificationKind::ReferralEscalated,
        ] {
            let n = kinds.iter().filter(|k| **k == kind).count();
            assert_eq!(n, 1, "{agency}: {kinds:?}");
        }
    }
}

/// Waits until the referral's step in `status` has escalated, then checks it was reminded before and
/// both happened once.
async fn escalated_in(f: &Fixture, sender: Uuid, id: &str, status: ReferralStatus) -> Referral {
    let r = eventually("the step's escalation", WAIT, || async {
        let r = f.referral(sender, id).await;
        (entries(&r, ReferralAction::Escalated, status) > 0).then_some(r)
    })
    .await
    .expect("escalated");
    assert_eq!(
        entries(&r, ReferralAction::Reminded, status),
        1,
        "{status:?} {:?}",
        r.history
    );
    assert_eq!(
        entries(&r, ReferralAction::Escalated, status),
        1,
        "{status:?} {:?}",
        r.history
    );
    r
}

/// The referral waits out every step: each reminds, then escalates, once; the next step's deadline is its
/// time after the step that opened it. Returns the referral once its children arrived.
async fn every_step_reminds_and_escalates_once(f: &Fixture, sender: Uuid, id: &str) -> Referral {
    let provider = f.agency("provider-vratsa");
    escalated_in(f, sender, id, ReferralStatus::Submitted).await;
    f.acknowledge(id, &["provider-vratsa", "foster-vratsa"])
        .await;
    let acknowledged = f.referral(sender, id).await;
    assert_eq!(acknowledged.step, ReferralStepName::Decision as i32);
    assert_eq!(
        micros(acknowledged.step_deadline.as_ref())
            - entered(&acknowledged, ReferralStatus::Acknowledged),
        STEP_SECONDS * 1_000_000
    );
    assert_eq!(acknowledged.postponements, 0);
    escalated_in(f, sender, id, ReferralStatus::Acknowledged).await;
    let referral_id = id.to_string();
    let accepted = (f.clients.referrals.clone())
        .accept_referral(as_agency(provider, AcceptReferralRequest { referral_id }))
        .await
        .expect("AcceptReferral")
        .into_inner();
    assert_eq!(accepted.step, ReferralStepName::Confirmation as i32);
    escalated_in(f, sender, id, ReferralStatus::Accepted).await;
    let placed = confirm(f, sender, id).await;
    assert_eq!(placed.step, ReferralStepName::Arrival as i32);
    escalated_in(f, sender, id, ReferralStatus::Placed).await;
    let arrived = record_arrival(f, provider, id)
        .await
        .expect("RecordArrival");
    // Every step's timers fired or stopped: only the court's reminder is left.
    assert_eq!(timers(f, id).await, vec!["REMIND_OF_COURT".to_string()]);
    for status in [
        ReferralStatus::Submitted,
        ReferralStatus::Acknowledged,
        ReferralStatus::Accepted,
        ReferralStatus::Placed,
    ] {
        assert_eq!(
            entries(&arrived, ReferralAction::Reminded, status),
            1,
            "{status:?}"
        );
        assert_eq!(
            entries(&arrived, ReferralAction::Escalated, status),
            1,
            "{status:?}"
        );
    }
    arrived
}

/// Who was told of each step's reminder and escalation: the holders are reminded (both parties of the
/// acknowledgement, the provider to decide and for the arrival, the sender to confirm); the sender and the
/// RDSA are told of each escalation, the provider of its own steps'.
async fn assert_each_holder_told_once_per_step(f: &Fixture, id: &str) {
    let expected = [
        ("provider-vratsa", 3, 2),
        ("foster-vratsa", 1, 0),
        ("dsa-pirdop", 1, 4),
        ("rdsa-vratsa", 0, 4),
    ];
    for (key, reminders, escalations) in expected {
        let agency = f.agency(key);
        let count = |kinds: &[NotificationKind], kind| kinds.iter().filter(|k| **k == kind).count();
        let kinds = eventually("every reminder and escalation told", WAIT, || async {
            let kinds = Fixture::kinds(&f.notifications(agency, id).await);
            (count(&kinds, NotificationKind::ReferralReminder) >= reminders
                && count(&kinds, NotificationKind::ReferralEscalated) >= escalations)
                .then_some(kinds)
        })
        .await
        .expect("told");
        assert_eq!(
            count(&kinds, NotificationKind::ReferralReminder),
            reminders,
            "{key}: {kinds:?}"
        );
        assert_eq!(
            count(&kinds, NotificationKind::ReferralEscalated),
            escalations,
            "{key}: {kinds:?}"
        );
    }
}
