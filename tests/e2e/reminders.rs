//! Reminders and escalation that act by themselves: at half the acknowledgement time, at the deadline, and
//! three weeks after a director's order without a court decision; once each, with two referrals instances
//! claiming due work side by side; and escalation e-mailed to the receiving district's RDSA.

use chrono::{Datelike, Utc};
use placement_cli::{clients::as_agency, scenario::eventually};
use placement_e2e::{StackOptions, mail::SmtpSink};
use placement_proto::v1::{
    Date, LegalBasis, LegalBasisKind, NotificationKind, RecordCourtDecisionRequest, Referral,
    ReferralAction, SubmitReferralRequest,
};
use tonic::Code;
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

fn date(days_ago: u64) -> Date {
    let d = Utc::now().date_naive() - chrono::Days::new(days_ago);
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

fn actions(r: &Referral, action: ReferralAction) -> usize {
    r.history
        .iter()
        .filter(|h| h.action == action as i32)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_and_escalation_fire_once_with_two_instances() {
    let smtp = SmtpSink::start();
    let mut f = Fixture::with(StackOptions {
        ack_deadline: Some("3s".into()),
        escalation_interval: Some("100ms".into()),
        env: vec![("PLACEMENT_SMTP_URL".into(), smtp.url())],
        ..Default::default()
    })
    .await;
    // A second referrals instance runs the same schedulers on the same database.
    let second = f.stack.add_instance("referrals");
    f.stack.wait_ready(WAIT).await;
    assert!(!second.is_empty());
    let rdsa = f.agency("rdsa-vratsa");
    f.email_endpoint(rdsa, "rdsp.vratsa@example.bg", "referral.escalated")
        .await;

    let sender = f.agency("dsa-mezdra");
    let provider = f.agency("provider-vratsa");
    let foster = f.agency("foster-vratsa");
    let referrals = submit_four_on_old_orders(&f, sender).await;
    // On the first, the provider acknowledges at once; the foster-care team never does.
    f.acknowledge(&referrals[0].id, &["provider-vratsa"]).await;

    let done = assert_each_escalates_reminded_once(&f, sender, &referrals).await;
    // Who was reminded: the parties that had not acknowledged when the reminder fired.
    for r in &done {
        for party in [provider, foster] {
            assert_reminded_unless_acknowledged(&f, r, party).await;
        }
        assert_the_sender_told_once_each(&f, sender, &r.id).await;
    }
    // The RDSA got each escalation by e-mail, once, in Bulgarian.
    let mails = smtp.wait_for(WAIT, |m| m.len() >= 4).await;
    assert_eq!(mails.len(), 4, "{mails:#?}");
    for r in &done {
        // Notices name a referral by its reference (by its id's last digits before references).
        let named = if r.reference.is_empty() {
            &r.id[r.id.len() - 8..]
        } else {
            r.reference.as_str()
        };
        let about: Vec<_> = mails.iter().filter(|m| m.subject.contains(named)).collect();
        assert_eq!(about.len(), 1, "{about:#?}");
        assert_eq!(
            about[0].rcpt_tos,
            vec!["rdsp.vratsa@example.bg".to_string()]
        );
        assert!(
            about[0].subject.contains("ескалирано"),
            "{}",
            about[0].subject
        );
    }

    // The restart of an instance does not fire anything again.
    f.stack.restart("referrals");
    f.stack.wait_ready(WAIT).await;
    for r in &done {
        let again = f.referral(sender, &r.id).await;
        assert_eq!(
            again.history.len(),
            r.history.len(),
            "nothing new after a restart"
        );
    }
    f.assert_no_dead_letters().await;
}

/// Four referrals on orders three weeks and a day old: the court reminder is due at once.
async fn submit_four_on_old_orders(f: &Fixture, sender: Uuid) -> Vec<Referral> {
    let mut referrals = Vec::new();
    for i in 0..4 {
        let case = f.open_twins_case(sender).await;
        let mut request = f.submission(&case, f.demo.service("ftpc-vratsa"), &format!("k{i}"));
        request.legal_basis.as_mut().unwrap().issued_on = Some(date(22));
        let r = f
            .clients
            .referrals
            .clone()
            .submit_referral(as_agency(sender, request))
            .await
            .expect("SubmitReferral")
            .into_inner();
        referrals.push(r);
    }
    referrals
}

/// All four escalate (3 s); by then each was reminded once at half time, and the court reminder fired
/// once. Returns them as they are then.
async fn assert_each_escalates_reminded_once(
    f: &Fixture,
    sender: Uuid,
    referrals: &[Referral],
) -> Vec<Referral> {
    let mut done = Vec::new();
    for r in referrals {
        let now = eventually("escalation", WAIT, || async {
            let now = f.referral(sender, &r.id).await;
            now.escalated.then_some(now)
        })
        .await
        .expect("escalated");
        assert_eq!(
            actions(&now, ReferralAction::Reminded),
            1,
            "{:?}",
            now.history
        );
        assert_eq!(actions(&now, ReferralAction::Escalated), 1);
        assert_eq!(actions(&now, ReferralAction::CourtDecisionDue), 1);
        assert!(now.reminded_at.is_some());
        let due = now
            .court_application_due_on
            .expect("due date of the court application");
        let order = date(22);
        assert!(
            (due.year, due.month) > (order.year, order.month) || due.year > order.year,
            "a month after the order: {due:?}"
        );
        done.push(now);
    }
    done
}

/// `party` was reminded once about `r` if it had not acknowledged when the reminder fired, else never.
async fn assert_reminded_unless_acknowledged(f: &Fixture, r: &Referral, party: Uuid) {
    let reminded_at = r.reminded_at.as_ref().unwrap();
    let acked_before = |agency: Uuid| {
        r.acknowledgements.iter().any(|a| {
            a.agency_id == agency.to_string()
                && a.acknowledged_at.as_ref().is_some_and(|t| {
                    (t.seconds, t.nanos) < (reminded_at.seconds, reminded_at.nanos)
                })
        })
    };
    let kinds = Fixture::kinds(
        &eventually("notifications", WAIT, || async {
            let n = f.notifications(party, &r.id).await;
            n.iter()
                .any(|n| n.kind == NotificationKind::ReferralSubmitted as i32)
                .then_some(n)
        })
        .await
        .unwrap(),
    );
    let reminders = kinds
        .iter()
        .filter(|k| **k == NotificationKind::ReferralReminder)
        .count();
    if acked_before(party) {
        assert_eq!(reminders, 0, "{party} had acknowledged: {kinds:?}");
    } else {
        let n = eventually("the reminder", WAIT, || async {
            let n = Fixture::kinds(&f.notifications(party, &r.id).await);
            n.contains(&NotificationKind::ReferralReminder).then_some(n)
        })
        .await
        .expect("reminded");
        assert_eq!(
            n.iter()
                .filter(|k| **k == NotificationKind::ReferralReminder)
                .count(),
            1
        );
    }
}

/// The sender: escalation and the court reminder, once each.
async fn assert_the_sender_told_once_each(f: &Fixture, sender: Uuid, referral_id: &str) {
    let kinds = eventually("the sender's notices", WAIT, || async {
        let n = Fixture::kinds(&f.notifications(sender, referral_id).await);
        (n.contains(&NotificationKind::ReferralEscalated)
            && n.contains(&NotificationKind::CourtDecisionDue))
        .then_some(n)
    })
    .await
    .expect("sender told");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == NotificationKind::CourtDecisionDue)
            .count(),
        1
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == NotificationKind::ReferralEscalated)
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_records_the_court_decision() {
    let f = Fixture::start().await;
    let sender = f.agency("dsa-pravets");
    let case = f.open_twins_case(sender).await;
    let r = f.submit(sender, &case, f.demo.service("ftpc-vratsa")).await;
    assert!(r.court_application_due_on.is_some());
    assert!(r.court_decision.is_none());
    assert_bad_decisions_change_nothing(&f, sender, &r).await;
    assert_recorded_once_and_the_provider_told(&f, sender, &r.id).await;
    assert_a_court_referral_has_no_reminder_to_stop(&f, sender).await;
    f.assert_no_dead_letters().await;
}

fn decision(kind: LegalBasisKind, days_ago: u64) -> LegalBasis {
    LegalBasis {
        kind: kind as i32,
        number: "GD-77/2026".into(),
        issued_on: Some(date(days_ago)),
        court: "Vratsa District Court".into(),
    }
}

async fn record(
    f: &Fixture,
    agency: Uuid,
    d: Option<LegalBasis>,
    id: String,
) -> Result<tonic::Response<Referral>, tonic::Status> {
    f.clients
        .referrals
        .clone()
        .record_court_decision(as_agency(
            agency,
            RecordCourtDecisionRequest {
                referral_id: id,
                decision: d,
            },
        ))
        .await
}

/// Wrong kind, missing, before the order, by the provider: refused, nothing changes.
async fn assert_bad_decisions_change_nothing(f: &Fixture, sender: Uuid, r: &Referral) {
    let referral_id = r.id.as_str();
    let err = record(
        f,
        sender,
        Some(decision(LegalBasisKind::DsaDirectorOrder, 0)),
        referral_id.to_string(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err.code(), err.message().split(':').next().unwrap()),
        (Code::InvalidArgument, "decision.kind")
    );
    let err = record(f, sender, None, referral_id.to_string())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = record(
        f,
        sender,
        Some(decision(LegalBasisKind::CourtDecision, 5)),
        referral_id.to_string(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err.code(), err.message().split(':').next().unwrap()),
        (Code::InvalidArgument, "decision.issued_on")
    );
    let err = record(
        f,
        f.agency("provider-vratsa"),
        Some(decision(LegalBasisKind::CourtDecision, 0)),
        referral_id.to_string(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(f.referral(sender, &r.id).await.version, r.version);
}

/// The decision recorded and shown; once recorded, there is nothing left to record; the receiving side is
/// told.
async fn assert_recorded_once_and_the_provider_told(f: &Fixture, sender: Uuid, referral_id: &str) {
    let recorded = record(
        f,
        sender,
        Some(decision(LegalBasisKind::CourtDecision, 0)),
        referral_id.to_string(),
    )
    .await
    .expect("recorded")
    .into_inner();
    let d = recorded.court_decision.clone().expect("decision shown");
    assert_eq!(
        (d.number.as_str(), d.court.as_str()),
        ("GD-77/2026", "Vratsa District Court")
    );
    assert_eq!(actions(&recorded, ReferralAction::CourtDecisionRecorded), 1);
    // Once recorded, there is nothing left to record; the receiving side is told.
    let err = record(
        f,
        sender,
        Some(decision(LegalBasisKind::CourtDecision, 0)),
        referral_id.to_string(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    eventually("the provider to be told", WAIT, || async {
        Fixture::kinds(
            &f.notifications(f.agency("provider-vratsa"), referral_id)
                .await,
        )
        .contains(&NotificationKind::CourtDecisionRecorded)
        .then_some(())
    })
    .await
    .expect("told");
}

/// A referral on a court decision has no court reminder to stop.
async fn assert_a_court_referral_has_no_reminder_to_stop(f: &Fixture, sender: Uuid) {
    let case = f.open_twins_case(sender).await;
    let mut request: SubmitReferralRequest =
        f.submission(&case, f.demo.service("ftpc-vratsa"), "court");
    request.legal_basis = Some(decision(LegalBasisKind::CourtDecision, 1));
    let on_court = f
        .clients
        .referrals
        .clone()
        .submit_referral(as_agency(sender, request))
        .await
        .expect("submitted")
        .into_inner();
    assert!(on_court.court_application_due_on.is_none());
    let err = record(
        f,
        sender,
        Some(decision(LegalBasisKind::CourtDecision, 0)),
        on_court.id.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}
