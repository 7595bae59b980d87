//! Decline, withdrawal and escalation.

use placement_cli::{clients::as_agency, scenario::eventually};
use placement_e2e::StackOptions;
use placement_proto::v1::{
    AcceptReferralRequest, AcknowledgeReferralRequest, DeclineReason, DeclineReferralRequest,
    NotificationKind, Referral, ReferralAction, ReferralStatus, WithdrawReason,
    WithdrawReferralRequest,
};
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_referral_tells_the_sender_and_holds_nothing() {
    let f = Fixture::start().await;
    let mut recorder = f.stack.record_events().await;
    let sender = f.agency("dsa-dragoman");
    let provider = f.agency("provider-haskovo");
    let service = f.demo.service("ftpc-haskovo");
    let before = f.service(service).await;
    let case = f.open_twins_case(sender).await;
    let r = f.submit(sender, &case, service).await;
    f.acknowledge(&r.id, &["provider-haskovo", "foster-haskovo"])
        .await;

    decline_with_a_reason_and_nothing_after(&f, provider, &r.id).await;
    f.settle(&mut recorder, &r.id, 4).await;
    use NotificationKind as K;
    assert_eq!(
        Fixture::kinds(&f.notifications(sender, &r.id).await),
        vec![
            K::ReferralAcknowledged,
            K::ReferralAcknowledged,
            K::ReferralDeclined
        ]
    );
    assert_eq!(
        Fixture::kinds(&f.notifications(provider, &r.id).await),
        vec![K::ReferralSubmitted]
    );
    // The decline comment is free text: it stays in the referrals service.
    assert!(
        recorder
            .events
            .iter()
            .all(|(_, b)| !b.windows(5).any(|w| w == b"nurse"))
    );
    let after = f.service(service).await;
    assert_eq!(
        (after.free_places, after.held_places),
        (before.free_places, before.held_places)
    );
    f.assert_no_dead_letters().await;
}

/// A service with no place says so at once: it declines before anyone acknowledged, the wait for the
/// acknowledgements ends (no reminder, no escalation is due) and the sender is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_declines_at_once_without_waiting_for_the_acknowledgements() {
    let f = Fixture::start().await;
    let mut recorder = f.stack.record_events().await;
    let sender = f.agency("dsa-dragoman");
    let provider = f.agency("provider-haskovo");
    let case = f.open_twins_case(sender).await;
    let r = f
        .submit(sender, &case, f.demo.service("ftpc-haskovo"))
        .await;
    assert_eq!(r.status, ReferralStatus::Submitted as i32);

    decline_with_a_reason_and_nothing_after(&f, provider, &r.id).await;
    f.settle(&mut recorder, &r.id, 2).await;
    let mut db = f.stack.db().await;
    let timers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM referrals.referral_timers WHERE referral_id = $1::uuid",
    )
    .bind(&r.id)
    .fetch_one(&mut db)
    .await
    .expect("timers");
    assert_eq!(timers, 0, "no reminder or escalation is left to fire");
    assert_eq!(
        Fixture::kinds(&f.notifications(sender, &r.id).await),
        vec![NotificationKind::ReferralDeclined]
    );
    f.assert_no_dead_letters().await;
}

/// A reason is required; the decline is final: nothing more can happen to the referral.
async fn decline_with_a_reason_and_nothing_after(f: &Fixture, provider: Uuid, referral_id: &str) {
    let mut referrals = f.clients.referrals.clone();
    // A reason is required.
    let err = referrals
        .decline_referral(as_agency(
            provider,
            DeclineReferralRequest {
                referral_id: referral_id.to_string(),
                reason: 0,
                comment: String::new(),
            },
        ))
        .await
        .expect_err("decline without a reason");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("reason"));

    let declined = referrals
        .decline_referral(as_agency(
            provider,
            DeclineReferralRequest {
                referral_id: referral_id.to_string(),
                reason: DeclineReason::NeedsNotMet as i32,
                comment: "No nurse on staff at night.".into(),
            },
        ))
        .await
        .expect("DeclineReferral")
        .into_inner();
    assert_eq!(declined.status, ReferralStatus::Declined as i32);
    assert_eq!(declined.decline_reason, DeclineReason::NeedsNotMet as i32);
    assert_eq!(declined.resolution_comment, "No nurse on staff at night.");

    // Final: nothing more can happen to it.
    let err = referrals
        .accept_referral(as_agency(
            provider,
            AcceptReferralRequest {
                referral_id: referral_id.to_string(),
            },
        ))
        .await
        .expect_err("accept after decline");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawing_an_accepted_referral_releases_its_places() {
    let f = Fixture::start().await;
    let mut recorder = f.stack.record_events().await;
    let sender = f.agency("dsa-pravets");
    let provider = f.agency("provider-stara-zagora");
    let foster = f.agency("foster-stara-zagora");
    let service = f.demo.service("ftpc-stara-zagora");
    let before = f.service(service).await;
    let case = open_a_case_of_one_child_of_eight(&f, sender).await;
    let r = f.submit(sender, &case, service).await;
    assert_eq!(r.places, 1);
    f.acknowledge(&r.id, &["provider-stara-zagora", "foster-stara-zagora"])
        .await;
    accept_and_hold_one_place(&f, provider, &r.id, service).await;
    only_the_sender_withdraws(&f, sender, provider, &r.id).await;
    let after = eventually("the held place to be released", WAIT, || async {
        let s = f.service(service).await;
        (s.held_places == 0).then_some(s)
    })
    .await
    .expect("released");
    assert_eq!(after.free_places, before.free_places);
    assert_eq!(after.occupied_places, before.occupied_places);

    f.settle(&mut recorder, &r.id, 5).await;
    use NotificationKind as K;
    for agency in [provider, foster] {
        assert_eq!(
            Fixture::kinds(&f.notifications(agency, &r.id).await),
            vec![K::ReferralSubmitted, K::ReferralWithdrawn]
        );
    }
    assert_eq!(
        Fixture::kinds(&f.notifications(sender, &r.id).await),
        vec![
            K::ReferralAcknowledged,
            K::ReferralAcknowledged,
            K::ReferralAccepted
        ]
    );
    f.assert_no_dead_letters().await;
}

/// Stara Zagora's centre takes children from 6: this one is 8.
async fn open_a_case_of_one_child_of_eight(f: &Fixture, sender: Uuid) -> placement_proto::v1::Case {
    let year = chrono::Datelike::year(&chrono::Utc::now());
    f.clients
        .cases
        .clone()
        .open_case(as_agency(
            sender,
            placement_proto::v1::OpenCaseRequest {
                children: vec![placement_proto::v1::Child {
                    pseudonym: "Child S".into(),
                    birth_year: year - 8,
                    sex: placement_proto::v1::Sex::Male as i32,
                    needs: vec![],
                    ..Default::default()
                }],
                current_setting: String::new(),
            },
        ))
        .await
        .expect("OpenCase")
        .into_inner()
}

async fn accept_and_hold_one_place(f: &Fixture, provider: Uuid, referral_id: &str, service: Uuid) {
    f.clients
        .referrals
        .clone()
        .accept_referral(as_agency(
            provider,
            AcceptReferralRequest {
                referral_id: referral_id.to_string(),
            },
        ))
        .await
        .expect("AcceptReferral");
    eventually("1 place held", WAIT, || async {
        (f.service(service).await.held_places == 1).then_some(())
    })
    .await
    .expect("held");
}

/// Only the sender withdraws, and with a reason.
async fn only_the_sender_withdraws(f: &Fixture, sender: Uuid, provider: Uuid, referral_id: &str) {
    let mut referrals = f.clients.referrals.clone();
    let err = referrals
        .withdraw_referral(as_agency(
            provider,
            WithdrawReferralRequest {
                referral_id: referral_id.to_string(),
                reason: WithdrawReason::Other as i32,
                comment: String::new(),
            },
        ))
        .await
        .expect_err("the provider withdraws");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let withdrawn = referrals
        .withdraw_referral(as_agency(
            sender,
            WithdrawReferralRequest {
                referral_id: referral_id.to_string(),
                reason: WithdrawReason::PlacedElsewhere as i32,
                comment: String::new(),
            },
        ))
        .await
        .expect("WithdrawReferral")
        .into_inner();
    assert_eq!(withdrawn.status, ReferralStatus::Withdrawn as i32);
    assert_eq!(
        withdrawn.history.last().map(|h| h.action),
        Some(ReferralAction::Withdrawn as i32)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_referral_is_escalated_once_to_the_sender_and_the_rdsa() {
    let f = Fixture::with(StackOptions {
        ack_deadline: Some("1s".into()),
        escalation_interval: Some("100ms".into()),
        ..Default::default()
    })
    .await;
    let mut recorder = f.stack.record_events().await;
    let sender = f.agency("dsa-zlatitsa");
    let provider = f.agency("provider-vratsa");
    let rdsa = f.agency("rdsa-vratsa");
    let case = f.open_twins_case(sender).await;
    let r = f.submit(sender, &case, f.demo.service("ftpc-vratsa")).await;
    // Only one party acknowledges in time.
    f.clients
        .referrals
        .clone()
        .acknowledge_referral(as_agency(
            provider,
            AcknowledgeReferralRequest {
                referral_id: r.id.clone(),
            },
        ))
        .await
        .expect("AcknowledgeReferral");

    let escalated = eventually("the referral to be escalated", WAIT, || async {
        let now = f.referral(sender, &r.id).await;
        now.escalated.then_some(now)
    })
    .await
    .expect("escalated");
    // Escalation keeps the status and is recorded as a step of the system.
    assert_eq!(escalated.status, ReferralStatus::Submitted as i32);
    let last = escalated.history.last().expect("history");
    assert_eq!(last.action, ReferralAction::Escalated as i32);
    assert!(last.actor_agency_id.is_empty());
    // The RDSA of the receiving district may read it.
    assert!(f.referral(rdsa, &r.id).await.escalated);

    // submitted, acknowledged, reminded (half time), escalated: four events, each step once.
    f.settle(&mut recorder, &r.id, 4).await;
    use NotificationKind as K;
    assert_eq!(
        Fixture::kinds(&f.notifications(sender, &r.id).await),
        vec![K::ReferralAcknowledged, K::ReferralEscalated]
    );
    assert_eq!(
        Fixture::kinds(&f.notifications(rdsa, &r.id).await),
        vec![K::ReferralEscalated]
    );
    assert_reminded_unless_acknowledged_in_time(&f, &escalated, provider).await;
    // The late acknowledgement still counts: the referral goes on.
    let late = f
        .clients
        .referrals
        .clone()
        .acknowledge_referral(as_agency(
            f.agency("foster-vratsa"),
            AcknowledgeReferralRequest {
                referral_id: r.id.clone(),
            },
        ))
        .await
        .expect("late acknowledgement")
        .into_inner();
    assert_eq!(late.status, ReferralStatus::Acknowledged as i32);
    assert!(late.escalated);
    f.assert_no_dead_letters().await;
}

/// The reminder went to whoever had not acknowledged when it fired: always the foster-care team, and the
/// provider only if its acknowledgement came later.
async fn assert_reminded_unless_acknowledged_in_time(
    f: &Fixture,
    escalated: &Referral,
    provider: Uuid,
) {
    use NotificationKind as K;
    let reminded_at = escalated.reminded_at.expect("reminded at half time");
    let provider_acked = escalated
        .acknowledgements
        .iter()
        .find(|a| a.agency_id == provider.to_string())
        .and_then(|a| a.acknowledged_at)
        .expect("the provider acknowledged");
    let provider_expected = if (provider_acked.seconds, provider_acked.nanos)
        < (reminded_at.seconds, reminded_at.nanos)
    {
        vec![K::ReferralSubmitted]
    } else {
        vec![K::ReferralSubmitted, K::ReferralReminder]
    };
    assert_eq!(
        Fixture::kinds(&f.notifications(provider, &escalated.id).await),
        provider_expected
    );
    assert_eq!(
        Fixture::kinds(
            &f.notifications(f.agency("foster-vratsa"), &escalated.id)
                .await
        ),
        vec![K::ReferralSubmitted, K::ReferralReminder]
    );
}
