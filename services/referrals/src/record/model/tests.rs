//! The store and a client build a referral's state from different sources, its columns and its wire form;
//! walking referrals through every status, the two must agree at each step.

use chrono::{DateTime, NaiveDate, Utc};
use placement_proto::v1::{
    DeclineReason, LegalBasisKind, ReferralStatus, Urgency, WaitingReason, WithdrawReason,
};
use uuid::Uuid;

use super::{HistoryRow, PartyRow, ReferralRow};
use crate::referral::{
    CourtDecision, Postponement, Record, ReferralFacts, ReferralState, Step, StepChange,
    SystemStep, TimedStep, Transition,
};

/// A referral as the store holds it, changed in memory as `apply_transition` changes it in the database.
pub(crate) struct Stored {
    pub(crate) row: ReferralRow,
    pub(crate) parties: Vec<PartyRow>,
    pub(crate) history: Vec<HistoryRow>,
}

/// A step on the way: by an agency, or by the system.
enum Move {
    By(Step, Uuid),
    System(SystemStep),
}

pub(crate) struct Agencies {
    pub(crate) sender: Uuid,
    pub(crate) provider: Uuid,
    pub(crate) foster: Uuid,
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-03T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn order_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 2).unwrap()
}

pub(crate) fn submitted(a: &Agencies, basis: LegalBasisKind) -> Stored {
    let id = Uuid::new_v4();
    let row = ReferralRow {
        id,
        case_id: Uuid::new_v4(),
        sender_agency_id: a.sender,
        sender_region_code: "SOF".into(),
        service_id: Uuid::new_v4(),
        receiving_agency_id: a.provider,
        receiving_region_code: "PDV".into(),
        foster_team_agency_id: a.foster,
        receiving_rdsa_agency_id: None,
        places: 1,
        legal_basis_kind: basis,
        legal_basis_number: "1".into(),
        legal_basis_date: order_date(),
        legal_basis_court: String::new(),
        reason: String::new(),
        status: ReferralStatus::Submitted,
        ack_deadline: at() + chrono::Duration::hours(72),
        escalated_at: None,
        decline_reason: None,
        withdraw_reason: None,
        resolution_comment: String::new(),
        idempotency_key: "k".into(),
        created_at: at(),
        updated_at: at(),
        version: 1,
        reminded_at: None,
        court_reminded_at: None,
        court_decision_number: None,
        court_decision_date: None,
        court_decision_court: None,
        youngest_child_age: None,
        oldest_child_age: None,
        search_id: None,
        search_round: None,
        reference: "Н-СОФ-2026-00001".into(),
        urgency: Urgency::Routine,
        arrived_at: None,
        step_deadline: Some(at() + chrono::Duration::hours(72)),
        step_reminded_at: None,
        step_escalated_at: None,
        postponements: 0,
        waiting_reason: None,
        waiting_comment: String::new(),
        waiting_until: None,
        fallback_until: None,
    };
    let party = |agency_id, receiving_provider, foster_care_team| PartyRow {
        referral_id: id,
        agency_id,
        receiving_provider,
        foster_care_team,
        acknowledged_at: None,
    };
    let history = vec![HistoryRow {
        referral_id: id,
        version: 1,
        action: placement_proto::v1::ReferralAction::Submitted,
        from_status: None,
        to_status: ReferralStatus::Submitted,
        actor_agency_id: Some(a.sender),
        at: at(),
    }];
    Stored {
        row,
        parties: vec![party(a.provider, true, false), party(a.foster, false, true)],
        history,
    }
}

impl Stored {
    fn facts_from_the_wire(&self) -> Option<ReferralFacts> {
        let wire = (self.row.clone()).into_proto(self.parties.clone(), self.history.clone());
        ReferralFacts::of_referral(&wire)
    }

    fn take(&mut self, m: &Move) {
        let state = self.row.state(&self.parties);
        let (t, actor) = match m {
            Move::By(step, agency) => (state.decide(step, *agency), Some(*agency)),
            Move::System(step) => (state.decide_system(*step), None),
        };
        let t = t.expect("the walk takes allowed steps only");
        self.apply(&t, actor);
    }

    /// What `steps::take` writes for `t`, in memory.
    fn apply(&mut self, t: &Transition, actor: Option<Uuid>) {
        let r = &mut self.row;
        match &t.record {
            Record::Status => {}
            Record::Acknowledged(agency) => {
                for p in self.parties.iter_mut().filter(|p| p.agency_id == *agency) {
                    p.acknowledged_at = Some(at());
                }
            }
            Record::Declined(reason, _) => r.decline_reason = Some(*reason),
            Record::Withdrawn(reason, _) => r.withdraw_reason = Some(*reason),
            Record::Escalated(TimedStep::Acknowledgement) => r.escalated_at = Some(at()),
            Record::Escalated(_) => r.step_escalated_at = Some(at()),
            Record::Reminded(TimedStep::Acknowledgement) => r.reminded_at = Some(at()),
            Record::Reminded(_) => r.step_reminded_at = Some(at()),
            Record::CourtReminded => r.court_reminded_at = Some(at()),
            Record::CourtDecision(d) => {
                r.court_decision_number = Some(d.number.clone());
                r.court_decision_date = Some(d.date);
                r.court_decision_court = Some(d.court.clone());
            }
            Record::Arrived => r.arrived_at = Some(at()),
            Record::Postponed {
                step,
                postponement,
                escalates,
            } => {
                r.postponements += 1;
                r.waiting_reason = Some(postponement.reason);
                match (escalates, step) {
                    (false, _) => {}
                    (true, TimedStep::Acknowledgement) => r.escalated_at = Some(at()),
                    (true, _) => r.step_escalated_at = Some(at()),
                }
            }
        }
        // A step opened or closed starts afresh, as `store::apply_transition` writes it.
        if matches!(t.step_change, StepChange::Enters(_) | StepChange::Ends) {
            r.step_reminded_at = None;
            r.step_escalated_at = None;
            r.postponements = 0;
            r.waiting_reason = None;
        }
        r.status = t.to;
        r.version += 1;
        self.history.push(HistoryRow {
            referral_id: r.id,
            version: r.version,
            action: t.action,
            from_status: Some(t.from),
            to_status: t.to,
            actor_agency_id: actor,
            at: at(),
        });
    }
}

/// Takes `moves` one by one, checking after each that the columns and the wire give the same state.
fn walk(a: &Agencies, basis: LegalBasisKind, moves: &[Move]) -> ReferralStatus {
    let mut stored = submitted(a, basis);
    for m in std::iter::once(None).chain(moves.iter().map(Some)) {
        if let Some(m) = m {
            stored.take(m);
        }
        let from_columns = stored.row.facts(&stored.parties);
        let from_wire = stored.facts_from_the_wire();
        assert_eq!(
            Some(&from_columns),
            from_wire.as_ref(),
            "{:?}",
            stored.row.status
        );
        assert_eq!(
            Some(stored.row.state(&stored.parties)),
            from_wire.map(ReferralState::of)
        );
    }
    stored.row.status
}

#[test]
fn the_columns_and_the_wire_give_one_state_at_each_status() {
    use Move::{By, System};
    use ReferralStatus as S;
    let a = Agencies {
        sender: Uuid::new_v4(),
        provider: Uuid::new_v4(),
        foster: Uuid::new_v4(),
    };
    let order = LegalBasisKind::DsaDirectorOrder;
    let acknowledged = [
        By(Step::Acknowledge, a.provider),
        By(Step::Acknowledge, a.foster),
    ];
    let decision = Step::RecordCourtDecision(CourtDecision {
        number: "1/2026".into(),
        date: order_date(),
        court: "Районен съд".into(),
    });
    let late = [
        System(SystemStep::Remind(TimedStep::Acknowledgement)),
        By(Step::Acknowledge, a.foster),
        System(SystemStep::Escalate(TimedStep::Acknowledgement)),
    ];
    assert_eq!(walk(&a, order, &late), S::Submitted);
    let court = LegalBasisKind::CourtDecision;
    assert_eq!(walk(&a, court, &acknowledged), S::Acknowledged);
    let placed = [
        By(Step::Accept, a.provider),
        System(SystemStep::RemindOfCourt),
        By(Step::ConfirmPlacement, a.sender),
        By(decision, a.sender),
    ];
    let to_placed: Vec<Move> = acknowledged.into_iter().chain(placed).collect();
    assert_eq!(walk(&a, order, &to_placed), S::Placed);
    // Every later step reminded, postponed, escalated, then left; the arrival recorded at last.
    let wait = || {
        Step::Postpone(Postponement {
            reason: WaitingReason::DocumentsMissing,
            comment: String::new(),
            until: None,
        })
    };
    let timed = [
        By(Step::Acknowledge, a.provider),
        By(Step::Acknowledge, a.foster),
        System(SystemStep::Remind(TimedStep::Decision)),
        By(wait(), a.provider),
        By(wait(), a.provider),
        By(Step::Accept, a.provider),
        System(SystemStep::Escalate(TimedStep::Confirmation)),
        By(wait(), a.sender),
        By(Step::ConfirmPlacement, a.sender),
        System(SystemStep::Remind(TimedStep::Arrival)),
        By(wait(), a.provider),
        By(Step::RecordArrival, a.provider),
    ];
    assert_eq!(walk(&a, LegalBasisKind::CourtDecision, &timed), S::Placed);
    let [first, second] = [
        By(Step::Acknowledge, a.provider),
        By(Step::Acknowledge, a.foster),
    ];
    let decline = By(
        Step::Decline(DeclineReason::AtCapacity, String::new()),
        a.provider,
    );
    assert_eq!(walk(&a, order, &[first, second, decline]), S::Declined);
    let withdraw = By(
        Step::Withdraw(WithdrawReason::Other, String::new()),
        a.sender,
    );
    assert_eq!(walk(&a, order, &[withdraw]), S::Withdrawn);
}
