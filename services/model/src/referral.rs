//! The referral's life, free of I/O: who may do what, in which status, and everything that follows from
//! it. A [`Transition`] carries the action (whose event the referrals service announces), the new status,
//! what to record, whom to tell, and which of the referral's timers stop; the store applies it and decides
//! nothing.
//!
//! ```text
//! SUBMITTED --every party acknowledged--> ACKNOWLEDGED --accept--> ACCEPTED --confirm--> PLACED
//!                                              \--decline--> DECLINED
//! SUBMITTED | ACKNOWLEDGED | ACCEPTED --withdraw (sender)--> WITHDRAWN
//! SUBMITTED past its deadline --escalate (system)--> SUBMITTED, escalated
//! SUBMITTED at half its deadline --remind (system)--> SUBMITTED, reminded
//! any but DECLINED | WITHDRAWN, on a director's order without a court decision:
//!     three weeks after the order --remind of the court (system)--> same status
//!     --record the court decision (sender)--> same status
//! ```
//!
//! Deadlines are written once. A referral's [`Timer`]s say only *when* a system step falls due; *whether*
//! it may still happen is [`ReferralState::decide_system`], the same function that decides every other step.
//! Submission sets the timers whose step would be allowed ([`ReferralState::timers_at_submission`]); every
//! transition stops the timers whose step it made impossible ([`Transition::stopped_timers`]), so the query
//! that finds due referrals is `due_at <= now()` and nothing else.

use chrono::{DateTime, NaiveDate, Utc};
use placement_proto::v1::{
    DeclineReason, LegalBasisKind, ReferralAction, ReferralStatus, WithdrawReason,
};
use uuid::Uuid;

/// Days after a director's order when the sender is reminded (the law gives a month to go to court).
pub const COURT_REMINDER_DAYS: u64 = 21;

/// What a referral's state is built from, wherever the referral is read: the referrals service fills it
/// from its columns, a client from the wire ([`ReferralFacts::of_referral`]). Both go through
/// [`ReferralState::of`], so what follows from the facts (e.g. whether a court decision is awaited) is
/// decided once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralFacts {
    pub status: ReferralStatus,
    pub sender: Uuid,
    /// The agency that runs the receiving service.
    pub receiving_agency: Uuid,
    /// Every agency that must acknowledge.
    pub parties: Vec<Party>,
    pub legal_basis: LegalBasisKind,
    /// When the director's order (or other legal basis) was issued.
    pub legal_basis_date: NaiveDate,
    pub court_decision_recorded: bool,
    pub escalated: bool,
    /// The parties that had not acknowledged at half the deadline were reminded.
    pub reminded: bool,
    /// The sender was reminded to apply to the court.
    pub court_reminded: bool,
}

/// An agency that must acknowledge a referral, and whether it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Party {
    pub agency: Uuid,
    pub acknowledged: bool,
}

/// What the state machine needs to know of a referral; built only from [`ReferralFacts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralState {
    status: ReferralStatus,
    sender: Uuid,
    receiving_agency: Uuid,
    parties: Vec<Party>,
    escalated: bool,
    reminded: bool,
    /// The referral rests on a DSA director's order and no court decision is recorded yet.
    awaiting_court: bool,
    court_reminded: bool,
    legal_basis_date: NaiveDate,
}

/// A court decision as recorded by the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourtDecision {
    pub number: String,
    pub date: NaiveDate,
    pub court: String,
}

/// A step an agency takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Acknowledge,
    Accept,
    Decline(DeclineReason, String),
    Withdraw(WithdrawReason, String),
    ConfirmPlacement,
    RecordCourtDecision(CourtDecision),
}

/// A step the system takes when a timer falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemStep {
    /// The parties that have not acknowledged, at half the acknowledgement time.
    Remind,
    /// The acknowledgement deadline passed.
    Escalate,
    /// Three weeks after a director's order without a court decision.
    RemindOfCourt,
}

/// The system steps, each with the timer that triggers it.
pub type Timer = SystemStep;

impl SystemStep {
    pub const ALL: [SystemStep; 3] = [
        SystemStep::Remind,
        SystemStep::Escalate,
        SystemStep::RemindOfCourt,
    ];

    /// How the timer is stored.
    pub const fn stored(self) -> &'static str {
        match self {
            SystemStep::Remind => "REMIND",
            SystemStep::Escalate => "ESCALATE",
            SystemStep::RemindOfCourt => "REMIND_OF_COURT",
        }
    }

    /// The timer stored as `name`; `None` for a name this release does not know.
    pub fn from_stored(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.stored() == name)
    }
}

/// What a step writes besides the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Nothing but the status (and, for an acknowledgement, the party's time).
    Status,
    Acknowledged(Uuid),
    Declined(DeclineReason, String),
    Withdrawn(WithdrawReason, String),
    Escalated,
    Reminded,
    CourtReminded,
    CourtDecision(CourtDecision),
}

/// The outcome of an allowed step: everything that follows from it. The event announcing it follows from
/// `action`; the service that announces it names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub action: ReferralAction,
    pub from: ReferralStatus,
    pub to: ReferralStatus,
    /// What to write besides the status.
    pub record: Record,
    /// Acceptance holds places: the store checks the service's free places first.
    pub needs_free_places: bool,
    /// The agencies told that they have not acknowledged yet (a reminder's recipients).
    pub outstanding: Vec<Uuid>,
    /// The timers whose step this transition made impossible.
    pub stopped_timers: Vec<Timer>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The actor has no standing for this step on this referral.
    #[error("{0}")]
    NotAllowed(&'static str),
    /// The actor may, but not in this status.
    #[error("{0}")]
    WrongState(String),
    /// What the step carries contradicts the referral (field, why).
    #[error("{0}: {1}")]
    Invalid(&'static str, &'static str),
}

/// A step a person may be offered, without its particulars (reason, comment, decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Acknowledge,
    Accept,
    Decline,
    Withdraw,
    ConfirmPlacement,
    RecordCourtDecision,
}

/// What a kind of step is to the agency taking it, which decides whose roles may take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepWeight {
    /// Day-to-day work: acknowledging.
    Work,
    /// A decision that commits the agency.
    Decision,
}

impl Step {
    pub fn kind(&self) -> StepKind {
        match self {
            Step::Acknowledge => StepKind::Acknowledge,
            Step::Accept => StepKind::Accept,
            Step::Decline(..) => StepKind::Decline,
            Step::Withdraw(..) => StepKind::Withdraw,
            Step::ConfirmPlacement => StepKind::ConfirmPlacement,
            Step::RecordCourtDecision(_) => StepKind::RecordCourtDecision,
        }
    }
}

impl StepKind {
    pub const ALL: [StepKind; 6] = [
        StepKind::Acknowledge,
        StepKind::Accept,
        StepKind::Decline,
        StepKind::Withdraw,
        StepKind::ConfirmPlacement,
        StepKind::RecordCourtDecision,
    ];

    /// Acknowledging is work; every other step a decision.
    pub fn weight(self) -> StepWeight {
        match self {
            StepKind::Acknowledge => StepWeight::Work,
            StepKind::Accept
            | StepKind::Decline
            | StepKind::Withdraw
            | StepKind::ConfirmPlacement
            | StepKind::RecordCourtDecision => StepWeight::Decision,
        }
    }
}

impl ReferralFacts {
    /// The facts of a referral as the referrals service answers it (for clients that offer its steps);
    /// `None` when the answer lacks one.
    pub fn of_referral(r: &placement_proto::v1::Referral) -> Option<ReferralFacts> {
        let uuid = |s: &str| Uuid::parse_str(s).ok();
        let basis = r.legal_basis.as_ref()?;
        Some(ReferralFacts {
            status: ReferralStatus::try_from(r.status).ok()?,
            sender: uuid(&r.sender_agency_id)?,
            receiving_agency: uuid(&r.receiving_agency_id)?,
            parties: r
                .acknowledgements
                .iter()
                .map(|a| {
                    Some(Party {
                        agency: uuid(&a.agency_id)?,
                        acknowledged: a.acknowledged_at.is_some(),
                    })
                })
                .collect::<Option<_>>()?,
            legal_basis: LegalBasisKind::try_from(basis.kind).ok()?,
            legal_basis_date: basis.issued_on.as_ref().and_then(date_of)?,
            court_decision_recorded: r.court_decision.is_some(),
            escalated: r.escalated,
            reminded: r.reminded_at.is_some(),
            // The wire keeps no time of the court reminder; its history entry says it happened.
            court_reminded: r
                .history
                .iter()
                .any(|h| h.action == ReferralAction::CourtDecisionDue as i32),
        })
    }
}

/// A wire date as a calendar date; `None` for one that does not exist.
fn date_of(d: &placement_proto::v1::Date) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        d.year,
        u32::try_from(d.month).ok()?,
        u32::try_from(d.day).ok()?,
    )
}

impl ReferralState {
    /// The one way to a referral's state.
    pub fn of(facts: ReferralFacts) -> ReferralState {
        ReferralState {
            status: facts.status,
            sender: facts.sender,
            receiving_agency: facts.receiving_agency,
            parties: facts.parties,
            escalated: facts.escalated,
            reminded: facts.reminded,
            awaiting_court: facts.legal_basis == LegalBasisKind::DsaDirectorOrder
                && !facts.court_decision_recorded,
            court_reminded: facts.court_reminded,
            legal_basis_date: facts.legal_basis_date,
        }
    }

    /// The state of a referral as the referrals service answers it.
    pub fn of_referral(r: &placement_proto::v1::Referral) -> Option<ReferralState> {
        ReferralFacts::of_referral(r).map(ReferralState::of)
    }

    /// The kinds of step `agency` may take now, whatever its roles (which decide, through
    /// [`StepKind::weight`], whether a person of the agency may). Asked without particulars: a court
    /// decision may be recorded once one can exist, dated from the order to `now`.
    pub fn open_steps(&self, agency: Uuid, now: DateTime<Utc>) -> Vec<StepKind> {
        StepKind::ALL
            .into_iter()
            .filter(|kind| self.guard(*kind, agency).is_ok())
            .filter(|kind| {
                *kind != StepKind::RecordCourtDecision || self.legal_basis_date <= now.date_naive()
            })
            .collect()
    }
}

impl ReferralState {
    /// When each timer of a new referral falls due, for the steps that may happen to it at all.
    pub fn timers_at_submission(
        &self,
        submitted_at: DateTime<Utc>,
        ack_deadline: DateTime<Utc>,
    ) -> Vec<(Timer, DateTime<Utc>)> {
        SystemStep::ALL
            .into_iter()
            .filter(|step| self.system_guard(*step).is_ok())
            .map(|step| {
                let due = match step {
                    SystemStep::Remind => submitted_at + (ack_deadline - submitted_at) / 2,
                    SystemStep::Escalate => ack_deadline,
                    SystemStep::RemindOfCourt => self
                        .legal_basis_date
                        .checked_add_days(chrono::Days::new(COURT_REMINDER_DAYS))
                        .unwrap_or(self.legal_basis_date)
                        .and_time(chrono::NaiveTime::MIN)
                        .and_utc(),
                };
                (step, due)
            })
            .collect()
    }

    /// Decides `step` by `actor`: first whether the agency may take a step of its kind now ([`Self::guard`],
    /// the same answer [`Self::open_steps`] gives), then what the step carries.
    pub fn decide(&self, step: &Step, actor: Uuid) -> Result<Transition, TransitionError> {
        use ReferralStatus as S;
        self.guard(step.kind(), actor)?;
        Ok(match step {
            Step::Acknowledge => self.acknowledged_by(actor),
            Step::Accept => {
                let mut t = self.to(ReferralAction::Accepted, S::Accepted, Record::Status);
                t.needs_free_places = true;
                t
            }
            Step::Decline(reason, comment) => {
                let record = Record::Declined(*reason, comment.clone());
                self.to(ReferralAction::Declined, S::Declined, record)
            }
            Step::Withdraw(reason, comment) => {
                let record = Record::Withdrawn(*reason, comment.clone());
                self.to(ReferralAction::Withdrawn, S::Withdrawn, record)
            }
            Step::ConfirmPlacement => self.to(ReferralAction::Placed, S::Placed, Record::Status),
            Step::RecordCourtDecision(decision) => {
                if decision.date < self.legal_basis_date {
                    return Err(TransitionError::Invalid(
                        "decision.issued_on",
                        "before the director's order",
                    ));
                }
                let record = Record::CourtDecision(decision.clone());
                self.to(ReferralAction::CourtDecisionRecorded, self.status, record)
            }
        })
    }

    /// Whether `actor` may take a step of `kind` now, whatever it carries. Standing is checked before
    /// status, so a stranger learns nothing of the referral's progress.
    fn guard(&self, kind: StepKind, actor: Uuid) -> Result<(), TransitionError> {
        use ReferralStatus as S;
        match kind {
            StepKind::Acknowledge => {
                let party = self.parties.iter().find(|p| p.agency == actor).ok_or(
                    TransitionError::NotAllowed(
                        "only the receiving service's agency and the district's foster-care team acknowledge",
                    ),
                )?;
                self.require(&[S::Submitted], "acknowledge")?;
                if party.acknowledged {
                    return Err(TransitionError::WrongState(
                        "this agency has already acknowledged the referral".into(),
                    ));
                }
                Ok(())
            }
            StepKind::Accept | StepKind::Decline => {
                if actor != self.receiving_agency {
                    return Err(TransitionError::NotAllowed(
                        "only the agency that runs the receiving service accepts or declines",
                    ));
                }
                // Accepting holds places, so both parties must have the request first; a service with no
                // place may say so at once, and its decline is an answer the sender can act on.
                if kind == StepKind::Accept {
                    self.require(&[S::Acknowledged], "accept")
                } else {
                    self.require(&[S::Submitted, S::Acknowledged], "decline")
                }
            }
            StepKind::Withdraw => {
                self.require_sender(actor, "only the sender withdraws a referral")?;
                self.require(&[S::Submitted, S::Acknowledged, S::Accepted], "withdraw")
            }
            StepKind::ConfirmPlacement => {
                self.require_sender(actor, "only the sender confirms a placement")?;
                self.require(&[S::Accepted], "confirm the placement of")
            }
            StepKind::RecordCourtDecision => {
                self.require_sender(actor, "only the sender records the court decision")?;
                self.require_awaiting_court("record a court decision on")
            }
        }
    }

    /// Decides a system step (a timer fell due).
    pub fn decide_system(&self, step: SystemStep) -> Result<Transition, TransitionError> {
        let (action, record) = self.system_guard(step)?;
        let mut t = self.to(action, self.status, record);
        if step == SystemStep::Remind {
            t.outstanding = self
                .parties
                .iter()
                .filter(|p| !p.acknowledged)
                .map(|p| p.agency)
                .collect();
        }
        Ok(t)
    }

    /// Whether `step` may happen now, and what it records.
    fn system_guard(&self, step: SystemStep) -> Result<(ReferralAction, Record), TransitionError> {
        use ReferralStatus as S;
        match step {
            SystemStep::Escalate => {
                self.require(&[S::Submitted], "escalate")?;
                if self.escalated {
                    return Err(TransitionError::WrongState("already escalated".into()));
                }
                Ok((ReferralAction::Escalated, Record::Escalated))
            }
            SystemStep::Remind => {
                self.require(&[S::Submitted], "remind of")?;
                if self.reminded || self.escalated {
                    return Err(TransitionError::WrongState(
                        "already reminded or escalated".into(),
                    ));
                }
                Ok((ReferralAction::Reminded, Record::Reminded))
            }
            SystemStep::RemindOfCourt => {
                self.require_awaiting_court("remind of the court for")?;
                if self.court_reminded {
                    return Err(TransitionError::WrongState("already reminded".into()));
                }
                Ok((ReferralAction::CourtDecisionDue, Record::CourtReminded))
            }
        }
    }

    /// The acknowledgement by `actor`, a party that has not acknowledged yet: the last one moves the
    /// referral on.
    fn acknowledged_by(&self, actor: Uuid) -> Transition {
        let outstanding = self.parties.iter().filter(|p| !p.acknowledged).count();
        let to = if outstanding == 1 {
            ReferralStatus::Acknowledged
        } else {
            ReferralStatus::Submitted
        };
        self.to(
            ReferralAction::Acknowledged,
            to,
            Record::Acknowledged(actor),
        )
    }

    fn require_sender(&self, actor: Uuid, why: &'static str) -> Result<(), TransitionError> {
        if actor == self.sender {
            Ok(())
        } else {
            Err(TransitionError::NotAllowed(why))
        }
    }

    fn require_awaiting_court(&self, verb: &str) -> Result<(), TransitionError> {
        use ReferralStatus as S;
        self.require(
            &[S::Submitted, S::Acknowledged, S::Accepted, S::Placed],
            verb,
        )?;
        if !self.awaiting_court {
            return Err(TransitionError::WrongState(
                "the referral does not rest on a director's order awaiting a court decision".into(),
            ));
        }
        Ok(())
    }

    fn require(&self, allowed: &[ReferralStatus], verb: &str) -> Result<(), TransitionError> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(TransitionError::WrongState(format!(
                "cannot {verb} a referral in status {}",
                self.status
                    .as_str_name()
                    .trim_start_matches("REFERRAL_STATUS_")
            )))
        }
    }

    fn to(&self, action: ReferralAction, to: ReferralStatus, record: Record) -> Transition {
        let after = self.after(to, &record);
        Transition {
            action,
            from: self.status,
            to,
            needs_free_places: false,
            outstanding: Vec::new(),
            stopped_timers: SystemStep::ALL
                .into_iter()
                .filter(|t| self.system_guard(*t).is_ok() && after.system_guard(*t).is_err())
                .collect(),
            record,
        }
    }

    /// The state once a step with `record` moved the referral to `to`.
    fn after(&self, to: ReferralStatus, record: &Record) -> ReferralState {
        let mut next = self.clone();
        next.status = to;
        match record {
            Record::Acknowledged(agency) => {
                for party in next.parties.iter_mut().filter(|p| p.agency == *agency) {
                    party.acknowledged = true;
                }
            }
            Record::Escalated => next.escalated = true,
            Record::Reminded => next.reminded = true,
            Record::CourtReminded => next.court_reminded = true,
            Record::CourtDecision(_) => next.awaiting_court = false,
            Record::Status | Record::Declined(..) | Record::Withdrawn(..) => {}
        }
        next
    }
}

/// A case's children's ages in whole years as their birth years give them: a child born in 2016 is 9 or 10
/// in 2026, so the youngest is at most `youngest`, the oldest at least `oldest`. What is kept with a
/// referral instead of the birth years, enough to tell which services fit the children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildrenAges {
    pub youngest: u32,
    pub oldest: u32,
}

impl ChildrenAges {
    /// `None` without children.
    pub fn of(this_year: i32, birth_years: impl IntoIterator<Item = i32>) -> Option<ChildrenAges> {
        let ages = birth_years.into_iter().map(|born| {
            let most = u32::try_from(this_year.saturating_sub(born)).unwrap_or(0);
            (most, most.saturating_sub(1))
        });
        ages.fold(None, |seen, (most, least)| {
            Some(match seen {
                None => ChildrenAges {
                    youngest: most,
                    oldest: least,
                },
                Some(a) => ChildrenAges {
                    youngest: a.youngest.min(most),
                    oldest: a.oldest.max(least),
                },
            })
        })
    }

    /// Whether a service taking ages `min_age` to `max_age` may take every child: refused only when
    /// neither of a child's two ages is in the range, as at submission.
    pub fn fit(self, min_age: u32, max_age: u32) -> bool {
        min_age <= self.youngest && max_age >= self.oldest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_ages_are_the_bounds_their_birth_years_allow() {
        let ages = ChildrenAges::of(2026, [2016, 2021, 2019]).expect("children");
        assert_eq!(
            ages,
            ChildrenAges {
                youngest: 5,
                oldest: 9
            }
        );
        assert!(ages.fit(5, 9), "the youngest may be 5, the oldest 9");
        assert!(!ages.fit(6, 17), "the youngest is 4 or 5");
        assert!(!ages.fit(0, 8), "the oldest is 9 or 10");
        assert_eq!(ChildrenAges::of(2026, []), None);
        let newborn = ChildrenAges::of(2026, [2026]).expect("a child");
        assert_eq!((newborn.youngest, newborn.oldest), (0, 0));
    }
    use Command::*;
    use ReferralStatus as S;

    /// Every step, user or system, so that tables can go through them all with every actor (`None`: the
    /// system). In the service the types keep them apart: agencies take `Step`s, timers `SystemStep`s.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Command {
        Acknowledge,
        Accept,
        Decline,
        Withdraw,
        ConfirmPlacement,
        Escalate,
        Remind,
        RemindOfCourt,
        RecordCourtDecision,
    }

    fn order_date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 2).unwrap()
    }

    impl ReferralState {
        fn decide_cmd(
            &self,
            command: Command,
            actor: Option<Uuid>,
        ) -> Result<Transition, TransitionError> {
            let user = |step: Step| match actor {
                Some(agency) => self.decide(&step, agency),
                None => Err(TransitionError::NotAllowed("the system takes no user step")),
            };
            let system = |step: SystemStep| match actor {
                None => self.decide_system(step),
                Some(_) => Err(TransitionError::NotAllowed("only the system")),
            };
            match command {
                Acknowledge => user(Step::Acknowledge),
                Accept => user(Step::Accept),
                Decline => user(Step::Decline(DeclineReason::AtCapacity, String::new())),
                Withdraw => user(Step::Withdraw(WithdrawReason::Other, String::new())),
                ConfirmPlacement => user(Step::ConfirmPlacement),
                RecordCourtDecision => user(Step::RecordCourtDecision(CourtDecision {
                    number: "1/2026".into(),
                    date: order_date(),
                    court: "Районен съд".into(),
                })),
                Escalate => system(SystemStep::Escalate),
                Remind => system(SystemStep::Remind),
                RemindOfCourt => system(SystemStep::RemindOfCourt),
            }
        }
    }

    const ALL_STATUSES: [S; 6] = [
        S::Submitted,
        S::Acknowledged,
        S::Accepted,
        S::Declined,
        S::Placed,
        S::Withdrawn,
    ];

    struct Parties {
        sender: Uuid,
        provider: Uuid,
        foster: Uuid,
        stranger: Uuid,
    }

    fn parties() -> Parties {
        Parties {
            sender: Uuid::new_v4(),
            provider: Uuid::new_v4(),
            foster: Uuid::new_v4(),
            stranger: Uuid::new_v4(),
        }
    }

    fn party(agency: Uuid, acknowledged: bool) -> Party {
        Party {
            agency,
            acknowledged,
        }
    }

    /// The facts of a referral on a director's order, awaiting the court, with `p.provider` and
    /// `p.foster` to acknowledge.
    fn facts(p: &Parties, status: S, acked: (bool, bool)) -> ReferralFacts {
        ReferralFacts {
            status,
            sender: p.sender,
            receiving_agency: p.provider,
            parties: vec![party(p.provider, acked.0), party(p.foster, acked.1)],
            legal_basis: LegalBasisKind::DsaDirectorOrder,
            legal_basis_date: order_date(),
            court_decision_recorded: false,
            escalated: false,
            reminded: false,
            court_reminded: false,
        }
    }

    fn state(p: &Parties, status: S, acked: (bool, bool)) -> ReferralState {
        ReferralState::of(facts(p, status, acked))
    }

    /// Which (command, actor, status) triples are allowed, and where they lead.
    fn expected(p: &Parties, command: Command, actor: Option<Uuid>, status: S) -> Option<S> {
        match (command, status) {
            (Acknowledge, S::Submitted) if actor == Some(p.provider) || actor == Some(p.foster) => {
                Some(S::Submitted)
            }
            (Accept, S::Acknowledged) if actor == Some(p.provider) => Some(S::Accepted),
            (Decline, S::Submitted | S::Acknowledged) if actor == Some(p.provider) => {
                Some(S::Declined)
            }
            (Withdraw, S::Submitted | S::Acknowledged | S::Accepted) if actor == Some(p.sender) => {
                Some(S::Withdrawn)
            }
            (ConfirmPlacement, S::Accepted) if actor == Some(p.sender) => Some(S::Placed),
            (Escalate | Remind, S::Submitted) if actor.is_none() => Some(S::Submitted),
            (RemindOfCourt, S::Submitted | S::Acknowledged | S::Accepted | S::Placed)
                if actor.is_none() =>
            {
                Some(status)
            }
            (RecordCourtDecision, S::Submitted | S::Acknowledged | S::Accepted | S::Placed)
                if actor == Some(p.sender) =>
            {
                Some(status)
            }
            _ => None,
        }
    }

    #[test]
    fn every_command_by_every_actor_in_every_status() {
        let p = parties();
        let actors = [
            Some(p.sender),
            Some(p.provider),
            Some(p.foster),
            Some(p.stranger),
            None,
        ];
        let commands = [
            Acknowledge,
            Accept,
            Decline,
            Withdraw,
            ConfirmPlacement,
            Escalate,
            Remind,
            RemindOfCourt,
            RecordCourtDecision,
        ];
        let mut allowed = 0;
        for status in ALL_STATUSES {
            for command in commands {
                for actor in actors {
                    let got = state(&p, status, (false, false)).decide_cmd(command, actor);
                    match expected(&p, command, actor, status) {
                        Some(to) => {
                            allowed += 1;
                            let t = got.unwrap_or_else(|e| {
                                panic!("{command:?} by {actor:?} in {status:?} refused: {e}")
                            });
                            assert_eq!((t.from, t.to), (status, to), "{command:?} in {status:?}");
                        }
                        None => assert!(
                            got.is_err(),
                            "{command:?} by {actor:?} in {status:?} should be refused"
                        ),
                    }
                }
            }
        }
        // 2 acknowledgers + accept + 2 declines (before and after the acknowledgements) + 3 withdrawals
        // + confirm + escalate + remind + 4 court reminders + 4 court decisions.
        assert_eq!(allowed, 19);
    }

    #[test]
    fn strangers_are_refused_for_standing_whatever_the_status() {
        let p = parties();
        for status in ALL_STATUSES {
            for command in [Acknowledge, Accept, Decline, Withdraw, ConfirmPlacement] {
                let got = state(&p, status, (false, false)).decide_cmd(command, Some(p.stranger));
                assert!(
                    matches!(got, Err(TransitionError::NotAllowed(_))),
                    "{command:?} {status:?}"
                );
            }
        }
        // The sender cannot accept its own referral; the provider cannot withdraw or confirm it.
        let s = state(&p, S::Acknowledged, (true, true));
        assert!(matches!(
            s.decide_cmd(Accept, Some(p.sender)),
            Err(TransitionError::NotAllowed(_))
        ));
        assert!(matches!(
            s.decide_cmd(Withdraw, Some(p.provider)),
            Err(TransitionError::NotAllowed(_))
        ));
        let s = state(&p, S::Accepted, (true, true));
        assert!(matches!(
            s.decide_cmd(ConfirmPlacement, Some(p.provider)),
            Err(TransitionError::NotAllowed(_))
        ));
        // The foster-care team acknowledges but does not accept.
        assert!(matches!(
            state(&p, S::Acknowledged, (true, true)).decide_cmd(Accept, Some(p.foster)),
            Err(TransitionError::NotAllowed(_))
        ));
    }

    #[test]
    fn the_last_acknowledgement_moves_to_acknowledged() {
        let p = parties();
        let s = state(&p, S::Submitted, (true, false));
        let t = s.decide_cmd(Acknowledge, Some(p.foster)).unwrap();
        assert_eq!(t.to, S::Acknowledged);
        assert_eq!(t.action, ReferralAction::Acknowledged);
        // The first of two leaves the status as it is.
        let s = state(&p, S::Submitted, (false, false));
        assert_eq!(
            s.decide_cmd(Acknowledge, Some(p.foster)).unwrap().to,
            S::Submitted
        );
    }

    #[test]
    fn acknowledging_twice_is_refused() {
        let p = parties();
        let s = state(&p, S::Submitted, (true, false));
        assert!(matches!(
            s.decide_cmd(Acknowledge, Some(p.provider)),
            Err(TransitionError::WrongState(_))
        ));
    }

    #[test]
    fn one_agency_in_both_roles_acknowledges_once_for_both() {
        let p = parties();
        let s = ReferralState::of(ReferralFacts {
            parties: vec![party(p.provider, false)],
            legal_basis: LegalBasisKind::CourtDecision,
            ..facts(&p, S::Submitted, (false, false))
        });
        assert_eq!(
            s.decide_cmd(Acknowledge, Some(p.provider)).unwrap().to,
            S::Acknowledged
        );
    }

    #[test]
    fn escalation_happens_once_and_keeps_the_status() {
        let p = parties();
        let mut s = state(&p, S::Submitted, (true, false));
        let t = s.decide_cmd(Escalate, None).unwrap();
        assert_eq!((t.to, t.action), (S::Submitted, ReferralAction::Escalated));
        s.escalated = true;
        assert!(matches!(
            s.decide_cmd(Escalate, None),
            Err(TransitionError::WrongState(_))
        ));
        assert!(matches!(
            s.decide_cmd(Escalate, Some(p.sender)),
            Err(TransitionError::NotAllowed(_))
        ));
    }

    #[test]
    fn reminders_happen_once_and_keep_the_status() {
        let p = parties();
        let mut s = state(&p, S::Submitted, (true, false));
        assert_eq!(
            s.decide_cmd(Remind, None).unwrap().action,
            ReferralAction::Reminded
        );
        s.reminded = true;
        assert!(matches!(
            s.decide_cmd(Remind, None),
            Err(TransitionError::WrongState(_))
        ));
        // Once escalated, a late reminder is pointless.
        let mut s = state(&p, S::Submitted, (false, false));
        s.escalated = true;
        assert!(s.decide_cmd(Remind, None).is_err());

        let mut s = state(&p, S::Placed, (true, true));
        assert_eq!(
            s.decide_cmd(RemindOfCourt, None).unwrap().action,
            ReferralAction::CourtDecisionDue
        );
        s.court_reminded = true;
        assert!(s.decide_cmd(RemindOfCourt, None).is_err());
        // Recording the decision is still possible after the reminder, and only while one is awaited.
        assert!(s.decide_cmd(RecordCourtDecision, Some(p.sender)).is_ok());
        s.awaiting_court = false;
        assert!(matches!(
            s.decide_cmd(RecordCourtDecision, Some(p.sender)),
            Err(TransitionError::WrongState(_))
        ));
        assert!(s.decide_cmd(RemindOfCourt, None).is_err());
    }

    #[test]
    fn a_court_decision_before_the_order_is_refused_naming_the_field() {
        let p = parties();
        let s = state(&p, S::Submitted, (false, false));
        let early = CourtDecision {
            number: "1/2026".into(),
            date: order_date().pred_opt().unwrap(),
            court: "Районен съд".into(),
        };
        assert_eq!(
            s.decide(&Step::RecordCourtDecision(early), p.sender),
            Err(TransitionError::Invalid(
                "decision.issued_on",
                "before the director's order"
            ))
        );
    }

    #[test]
    fn submission_sets_the_timers_of_the_steps_that_can_happen() {
        let p = parties();
        let submitted = DateTime::parse_from_rfc3339("2026-11-03T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let deadline = submitted + chrono::Duration::hours(48);
        let on_order = state(&p, S::Submitted, (false, false));
        assert_eq!(
            on_order.timers_at_submission(submitted, deadline),
            vec![
                (SystemStep::Remind, submitted + chrono::Duration::hours(24)),
                (SystemStep::Escalate, deadline),
                (
                    SystemStep::RemindOfCourt,
                    DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
                        .unwrap()
                        .with_timezone(&Utc)
                ),
            ]
        );
        // On a court decision already: no court reminder.
        let mut on_decision = on_order.clone();
        on_decision.awaiting_court = false;
        let timers: Vec<Timer> = on_decision
            .timers_at_submission(submitted, deadline)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(timers, vec![SystemStep::Remind, SystemStep::Escalate]);
    }

    #[test]
    fn each_step_stops_the_timers_it_makes_pointless() {
        use SystemStep as T;
        let p = parties();
        let stopped = |s: &ReferralState, c: Command, actor: Option<Uuid>| {
            s.decide_cmd(c, actor).unwrap().stopped_timers
        };
        let submitted = state(&p, S::Submitted, (false, false));
        // The first acknowledgement leaves the status, and the timers, as they are; the last stops the
        // acknowledgement timers.
        assert_eq!(stopped(&submitted, Acknowledge, Some(p.provider)), vec![]);
        let half = state(&p, S::Submitted, (true, false));
        assert_eq!(
            stopped(&half, Acknowledge, Some(p.foster)),
            vec![T::Remind, T::Escalate]
        );
        assert_eq!(stopped(&submitted, Remind, None), vec![T::Remind]);
        assert_eq!(
            stopped(&submitted, Escalate, None),
            vec![T::Remind, T::Escalate]
        );
        assert_eq!(
            stopped(&submitted, Withdraw, Some(p.sender)),
            vec![T::Remind, T::Escalate, T::RemindOfCourt]
        );
        assert_eq!(
            stopped(&submitted, RecordCourtDecision, Some(p.sender)),
            vec![T::RemindOfCourt]
        );
        assert_eq!(
            stopped(&submitted, RemindOfCourt, None),
            vec![T::RemindOfCourt]
        );
        // A decline before anyone acknowledged ends the wait for acknowledgements too.
        assert_eq!(
            stopped(&submitted, Decline, Some(p.provider)),
            vec![T::Remind, T::Escalate, T::RemindOfCourt]
        );
        let acknowledged = state(&p, S::Acknowledged, (true, true));
        assert_eq!(
            stopped(&acknowledged, Decline, Some(p.provider)),
            vec![T::RemindOfCourt]
        );
        assert_eq!(stopped(&acknowledged, Accept, Some(p.provider)), vec![]);
        let accepted = state(&p, S::Accepted, (true, true));
        assert_eq!(stopped(&accepted, ConfirmPlacement, Some(p.sender)), vec![]);
    }

    fn after_the_order() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-10T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn open_steps_are_what_each_party_may_take_in_each_status() {
        use StepKind as K;
        let p = parties();
        let now = after_the_order();
        let table = [
            (
                S::Submitted,
                (false, false),
                [
                    vec![K::Withdraw, K::RecordCourtDecision],
                    vec![K::Acknowledge, K::Decline],
                    vec![K::Acknowledge],
                    vec![],
                ],
            ),
            (
                S::Submitted,
                (true, false),
                [
                    vec![K::Withdraw, K::RecordCourtDecision],
                    vec![K::Decline],
                    vec![K::Acknowledge],
                    vec![],
                ],
            ),
            (
                S::Acknowledged,
                (true, true),
                [
                    vec![K::Withdraw, K::RecordCourtDecision],
                    vec![K::Accept, K::Decline],
                    vec![],
                    vec![],
                ],
            ),
            (
                S::Accepted,
                (true, true),
                [
                    vec![K::Withdraw, K::ConfirmPlacement, K::RecordCourtDecision],
                    vec![],
                    vec![],
                    vec![],
                ],
            ),
            (
                S::Placed,
                (true, true),
                [vec![K::RecordCourtDecision], vec![], vec![], vec![]],
            ),
            (S::Declined, (true, true), [vec![], vec![], vec![], vec![]]),
            (
                S::Withdrawn,
                (false, false),
                [vec![], vec![], vec![], vec![]],
            ),
        ];
        for (status, acked, expected) in table {
            let s = state(&p, status, acked);
            let actors = [p.sender, p.provider, p.foster, p.stranger];
            for (actor, kinds) in actors.into_iter().zip(expected) {
                assert_eq!(
                    s.open_steps(actor, now),
                    kinds,
                    "{status:?} {acked:?} {actor}"
                );
            }
        }
    }

    #[test]
    fn every_open_step_is_decided_as_allowed_and_no_other() {
        let p = parties();
        let now = after_the_order();
        let with_particulars = |kind: StepKind| match kind {
            StepKind::Acknowledge => Acknowledge,
            StepKind::Accept => Accept,
            StepKind::Decline => Decline,
            StepKind::Withdraw => Withdraw,
            StepKind::ConfirmPlacement => ConfirmPlacement,
            StepKind::RecordCourtDecision => RecordCourtDecision,
        };
        for status in ALL_STATUSES {
            for acked in [(false, false), (true, false), (true, true)] {
                let s = state(&p, status, acked);
                for actor in [p.sender, p.provider, p.foster, p.stranger] {
                    let open = s.open_steps(actor, now);
                    for kind in StepKind::ALL {
                        let decided = s.decide_cmd(with_particulars(kind), Some(actor));
                        assert_eq!(
                            open.contains(&kind),
                            decided.is_ok(),
                            "{kind:?} by {actor} in {status:?} {acked:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_court_decision_is_offered_only_while_one_is_awaited_and_can_exist() {
        let p = parties();
        let awaited = state(&p, S::Accepted, (true, true));
        let offered = |s: &ReferralState, now| {
            s.open_steps(p.sender, now)
                .contains(&StepKind::RecordCourtDecision)
        };
        assert!(offered(&awaited, after_the_order()));
        let the_order = order_date().and_time(chrono::NaiveTime::MIN).and_utc();
        assert!(
            offered(&awaited, the_order),
            "a decision of the order's day"
        );
        let before_the_order = the_order - chrono::Duration::seconds(1);
        assert!(
            !offered(&awaited, before_the_order),
            "no decision can exist yet"
        );
        let decided = ReferralState::of(ReferralFacts {
            court_decision_recorded: true,
            ..facts(&p, S::Accepted, (true, true))
        });
        assert!(!offered(&decided, after_the_order()));
        let on_a_decision = ReferralState::of(ReferralFacts {
            legal_basis: LegalBasisKind::CourtDecision,
            ..facts(&p, S::Accepted, (true, true))
        });
        assert!(!offered(&on_a_decision, after_the_order()));
    }

    #[test]
    fn the_wire_gives_the_facts_it_carries_and_none_without_them() {
        use placement_proto::v1::{
            Acknowledgement, Date, LegalBasis, Referral, ReferralHistoryEntry,
        };
        let p = parties();
        let mut wire = Referral {
            status: S::Accepted as i32,
            sender_agency_id: p.sender.to_string(),
            receiving_agency_id: p.provider.to_string(),
            acknowledgements: [(p.provider, true), (p.foster, false)]
                .map(|(agency, acked)| Acknowledgement {
                    agency_id: agency.to_string(),
                    acknowledged_at: acked.then(placement_proto::prost_types::Timestamp::default),
                    ..Default::default()
                })
                .to_vec(),
            legal_basis: Some(LegalBasis {
                kind: LegalBasisKind::DsaDirectorOrder as i32,
                issued_on: Some(Date {
                    year: 2026,
                    month: 11,
                    day: 2,
                }),
                ..Default::default()
            }),
            history: vec![ReferralHistoryEntry {
                action: ReferralAction::CourtDecisionDue as i32,
                ..Default::default()
            }],
            ..Default::default()
        };
        let expected = ReferralFacts {
            court_reminded: true,
            ..facts(&p, S::Accepted, (true, false))
        };
        assert_eq!(ReferralFacts::of_referral(&wire), Some(expected));
        wire.legal_basis.as_mut().unwrap().issued_on = Some(Date {
            year: 2026,
            month: 2,
            day: 30,
        });
        assert_eq!(ReferralFacts::of_referral(&wire), None, "no such day");
        wire.legal_basis = None;
        assert_eq!(ReferralFacts::of_referral(&wire), None, "no legal basis");
    }
}
