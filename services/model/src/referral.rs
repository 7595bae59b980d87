//! The referral's life, free of I/O: who may do what, in which status, and everything that follows from
//! it. A [`Transition`] carries the action (whose event the referrals service announces), the new status,
//! what to record, whom to tell, which of the referral's timers stop and which start; the store applies it
//! and decides nothing.
//!
//! ```text
//! SUBMITTED --every party acknowledged--> ACKNOWLEDGED --accept--> ACCEPTED --confirm--> PLACED --arrived--> PLACED, arrived
//!     \--decline (the service)--> DECLINED    \--decline--> DECLINED
//! SUBMITTED | ACKNOWLEDGED | ACCEPTED --withdraw (sender)--> WITHDRAWN
//! each timed step (below) at half its time --remind (system)--> same status, reminded
//! each timed step past its deadline --escalate (system)--> same status, escalated
//! each timed step --postpone (its holder)--> same status; the first moves the deadline once, the second
//!     escalates at once
//! ACCEPTED, kept as a fallback when another referral of its search was placed: its confirmation waits on
//!     no one; when its hold ends --release (system)--> WITHDRAWN, placed elsewhere
//! any but DECLINED | WITHDRAWN, on a director's order without a court decision:
//!     three weeks after the order --remind of the court (system)--> same status
//!     --record the court decision (sender)--> same status
//! ```
//!
//! The timed steps ([`TimedStep`]) are the four waits someone holds: the acknowledgement (SUBMITTED, the
//! parties that have not acknowledged), the decision (ACKNOWLEDGED, the receiving service's agency), the
//! confirmation (ACCEPTED, the sender) and the arrival (PLACED until the children arrived, the receiving
//! service's agency). Each has a time by urgency ([`TimedStep::time`]); the store dates its deadline
//! ([`StepTimes::deadline`]) when a transition enters it.
//!
//! Deadlines are written once. A referral's [`Timer`]s say only *when* a system step falls due; *whether*
//! it may still happen is [`ReferralState::decide_system`], the same function that decides every other step.
//! Submission sets the timers whose step would be allowed ([`ReferralState::timers_at_submission`]); every
//! transition stops the timers whose step it made impossible ([`Transition::stopped_timers`]) and starts
//! those of the step it enters ([`Transition::started_timers`]), so the query that finds due referrals is
//! `due_at <= now()` and nothing else.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use placement_proto::v1::{
    DeclineReason, LegalBasisKind, ReferralAction, ReferralStatus, WithdrawReason,
};
pub use placement_proto::v1::{ReferralStepName, Urgency, WaitingReason};
use uuid::Uuid;

use crate::working;

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
    /// The acknowledgement's deadline passed (or its second postponement escalated).
    pub escalated: bool,
    /// The parties that had not acknowledged at half the deadline were reminded.
    pub reminded: bool,
    /// The sender was reminded to apply to the court.
    pub court_reminded: bool,
    /// The receiving service's agency recorded the children's arrival.
    pub arrived: bool,
    /// The current step, when it is a later one than the acknowledgement, was reminded or escalated
    /// (the acknowledgement's are `reminded` and `escalated`, which the referral keeps after it).
    pub step_reminded: bool,
    pub step_escalated: bool,
    /// How often the current step was postponed.
    pub postponements: u32,
    /// The sender placed the children through another referral of the search and kept this accepted one
    /// as a fallback ([`ReferralState::hold_as_fallback`]).
    pub held_as_fallback: bool,
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
    arrived: bool,
    step_reminded: bool,
    step_escalated: bool,
    postponements: u32,
    held_as_fallback: bool,
}

/// A court decision as recorded by the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourtDecision {
    pub number: String,
    pub date: NaiveDate,
    pub court: String,
}

/// Why the holder of a step waits, as it said (the particulars checked by the service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postponement {
    pub reason: WaitingReason,
    pub comment: String,
    /// The day the holder expects to go on.
    pub until: Option<NaiveDate>,
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
    RecordArrival,
    Postpone(Postponement),
}

/// A wait someone holds, with a time of its own: its reminder falls at half of it, its escalation at its
/// end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimedStep {
    /// SUBMITTED: the parties that have not acknowledged.
    Acknowledgement,
    /// ACKNOWLEDGED: the receiving service's agency accepts or declines.
    Decision,
    /// ACCEPTED: the sender confirms the placement.
    Confirmation,
    /// PLACED until the children arrived: the receiving service's agency records their arrival.
    Arrival,
}

/// How long a timed step may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepTime {
    /// Working days of the Bulgarian calendar ([`crate::working`]): office hours, no weekends or holidays.
    WorkingDays(u32),
    /// Hours on the clock, nights and holidays included: an emergency does not wait for the office.
    Hours(u32),
}

impl TimedStep {
    pub const ALL: [TimedStep; 4] = [
        TimedStep::Acknowledgement,
        TimedStep::Decision,
        TimedStep::Confirmation,
        TimedStep::Arrival,
    ];

    /// The status the step is held in.
    pub const fn status(self) -> ReferralStatus {
        match self {
            TimedStep::Acknowledgement => ReferralStatus::Submitted,
            TimedStep::Decision => ReferralStatus::Acknowledged,
            TimedStep::Confirmation => ReferralStatus::Accepted,
            TimedStep::Arrival => ReferralStatus::Placed,
        }
    }

    /// The step's name on the wire.
    pub const fn name(self) -> ReferralStepName {
        match self {
            TimedStep::Acknowledgement => ReferralStepName::Acknowledgement,
            TimedStep::Decision => ReferralStepName::Decision,
            TimedStep::Confirmation => ReferralStepName::Confirmation,
            TimedStep::Arrival => ReferralStepName::Arrival,
        }
    }

    /// The one table of the steps' times, by urgency (UNSPECIFIED is ROUTINE). Why these numbers:
    /// acknowledging is only "we have it", and Kentucky's centralised referral gives programmes two
    /// business days to answer: 2 working days. Deciding needs the service's team to read the file and
    /// often to meet the children or their social worker: a working week. Confirming is the sender's
    /// arrangement of the move and of its own order: 3 days. The arrival waits on transport, school and
    /// doctor's transfers: a working week. An urgent referral roughly halves each (at least a day); an
    /// emergency (children removed today) is counted in clock hours: acknowledged within a shift (4 h),
    /// decided the same day or night (8 h), confirmed within a shift, the children there the next day.
    pub const fn time(self, urgency: Urgency) -> StepTime {
        use StepTime::{Hours, WorkingDays};
        match (self, urgency) {
            (TimedStep::Acknowledgement, Urgency::Emergency) => Hours(4),
            (TimedStep::Acknowledgement, Urgency::Urgent) => WorkingDays(1),
            (TimedStep::Acknowledgement, _) => WorkingDays(2),
            (TimedStep::Decision, Urgency::Emergency) => Hours(8),
            (TimedStep::Decision, Urgency::Urgent) => WorkingDays(2),
            (TimedStep::Decision, _) => WorkingDays(5),
            (TimedStep::Confirmation, Urgency::Emergency) => Hours(4),
            (TimedStep::Confirmation, Urgency::Urgent) => WorkingDays(1),
            (TimedStep::Confirmation, _) => WorkingDays(3),
            (TimedStep::Arrival, Urgency::Emergency) => Hours(24),
            (TimedStep::Arrival, Urgency::Urgent) => WorkingDays(2),
            (TimedStep::Arrival, _) => WorkingDays(5),
        }
    }
}

/// The steps' times as configured: the calendar's ([`TimedStep::time`]) unless a fixed time overrides it,
/// for tests and demos (`PLACEMENT_ACK_DEADLINE` for the acknowledgement, `PLACEMENT_STEP_DEADLINE` for
/// every later step).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepTimes {
    pub acknowledgement: Option<Duration>,
    pub later: Option<Duration>,
}

impl StepTimes {
    /// When `step`, entered at `from` by a referral of `urgency`, is due.
    pub fn deadline(
        &self,
        step: TimedStep,
        urgency: Urgency,
        from: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let fixed = match step {
            TimedStep::Acknowledgement => self.acknowledgement,
            _ => self.later,
        };
        if let Some(time) = fixed {
            return from + time;
        }
        match step.time(urgency) {
            StepTime::Hours(h) => from + Duration::hours(h.into()),
            // Past the calendar's last year (2099), calendar days.
            StepTime::WorkingDays(n) => working::after_working_days(from, n)
                .unwrap_or_else(|| from + Duration::days(n.into())),
        }
    }

    /// The deadline of `step`, due at `deadline`, once its holder postponed it: the close of `until` if
    /// given, but never before the deadline it had nor more than the step's own time after it.
    pub fn postponed(
        &self,
        step: TimedStep,
        urgency: Urgency,
        deadline: DateTime<Utc>,
        until: Option<NaiveDate>,
    ) -> DateTime<Utc> {
        let latest = self.deadline(step, urgency, deadline);
        until.map_or(latest, |day| working::closing(day).clamp(deadline, latest))
    }
}

/// What keeping an offer as a fallback does to its timers ([`ReferralState::hold_as_fallback`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackHold {
    pub stopped_timers: Vec<Timer>,
    /// The release's timer.
    pub started_timers: Vec<Timer>,
}

/// A step the system takes when a timer falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemStep {
    /// Half a timed step's time passed: its holders are reminded.
    Remind(TimedStep),
    /// A timed step's deadline passed: the receiving district's RDSA is told.
    Escalate(TimedStep),
    /// Three weeks after a director's order without a court decision.
    RemindOfCourt,
    /// The hold of an offer kept as a fallback ended: it is withdrawn as placed elsewhere.
    ReleaseFallback,
}

/// The system steps, each with the timer that triggers it.
pub type Timer = SystemStep;

impl SystemStep {
    pub const ALL: [SystemStep; 10] = [
        SystemStep::Remind(TimedStep::Acknowledgement),
        SystemStep::Escalate(TimedStep::Acknowledgement),
        SystemStep::RemindOfCourt,
        SystemStep::Remind(TimedStep::Decision),
        SystemStep::Escalate(TimedStep::Decision),
        SystemStep::Remind(TimedStep::Confirmation),
        SystemStep::Escalate(TimedStep::Confirmation),
        SystemStep::Remind(TimedStep::Arrival),
        SystemStep::Escalate(TimedStep::Arrival),
        SystemStep::ReleaseFallback,
    ];

    /// How the timer is stored. The acknowledgement's keep the names they had before every step was timed,
    /// so stored timers stay readable.
    pub const fn stored(self) -> &'static str {
        use TimedStep as T;
        match self {
            SystemStep::Remind(T::Acknowledgement) => "REMIND",
            SystemStep::Escalate(T::Acknowledgement) => "ESCALATE",
            SystemStep::RemindOfCourt => "REMIND_OF_COURT",
            SystemStep::Remind(T::Decision) => "REMIND_DECISION",
            SystemStep::Escalate(T::Decision) => "ESCALATE_DECISION",
            SystemStep::Remind(T::Confirmation) => "REMIND_CONFIRMATION",
            SystemStep::Escalate(T::Confirmation) => "ESCALATE_CONFIRMATION",
            SystemStep::Remind(T::Arrival) => "REMIND_ARRIVAL",
            SystemStep::Escalate(T::Arrival) => "ESCALATE_ARRIVAL",
            SystemStep::ReleaseFallback => "RELEASE_FALLBACK",
        }
    }

    /// The timer stored as `name`; `None` for a name this release does not know.
    pub fn from_stored(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.stored() == name)
    }

    /// When a timer started with a step falls due, the step running from `from` to `deadline`: a reminder
    /// half way, the rest at the deadline.
    pub fn due(self, from: DateTime<Utc>, deadline: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            SystemStep::Remind(_) => from + (deadline - from) / 2,
            SystemStep::Escalate(_) | SystemStep::RemindOfCourt | SystemStep::ReleaseFallback => {
                deadline
            }
        }
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
    Escalated(TimedStep),
    Reminded(TimedStep),
    CourtReminded,
    CourtDecision(CourtDecision),
    Arrived,
    /// The holder of `step` said why it waits; `escalates` when this (a second postponement) escalates it.
    Postponed {
        step: TimedStep,
        postponement: Postponement,
        escalates: bool,
    },
}

/// What a transition does to the timed step the referral is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepChange {
    /// The same step goes on (or none was open), its deadline as it was.
    Keeps,
    /// A new step opens: the store dates its deadline from now and the urgency, and clears what the last
    /// step's holder said of its wait.
    Enters(TimedStep),
    /// The step's first postponement: the store moves its deadline ([`StepTimes::postponed`]).
    Moves(TimedStep),
    /// No step is open any more.
    Ends,
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
    /// The agencies that hold the step a reminder or escalation is about (its recipients besides the RDSA).
    pub outstanding: Vec<Uuid>,
    /// The timers whose step this transition made impossible.
    pub stopped_timers: Vec<Timer>,
    /// What happens to the timed step, and with it the step's deadline.
    pub step_change: StepChange,
    /// The timers of the step entered or moved, to start (or move) once the store dated its deadline
    /// ([`SystemStep::due`]).
    pub started_timers: Vec<Timer>,
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
    RecordArrival,
    Postpone,
}

/// What a kind of step is to the agency taking it, which decides whose roles may take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepWeight {
    /// Day-to-day work: acknowledging, recording an arrival, saying why a step waits.
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
            Step::RecordArrival => StepKind::RecordArrival,
            Step::Postpone(_) => StepKind::Postpone,
        }
    }
}

impl StepKind {
    pub const ALL: [StepKind; 8] = [
        StepKind::Acknowledge,
        StepKind::Accept,
        StepKind::Decline,
        StepKind::Withdraw,
        StepKind::ConfirmPlacement,
        StepKind::RecordCourtDecision,
        StepKind::RecordArrival,
        StepKind::Postpone,
    ];

    /// Acknowledging, recording an arrival and saying why a step waits are work; every other step a
    /// decision.
    pub fn weight(self) -> StepWeight {
        match self {
            StepKind::Acknowledge | StepKind::RecordArrival | StepKind::Postpone => {
                StepWeight::Work
            }
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
        // A status is entered once, and reminders and escalations keep it: one of either in the current
        // status is the current step's, while a later step is open (the acknowledgement's have their own
        // fields; the arrival's end with it).
        let later_step_open = [ReferralStatus::Acknowledged, ReferralStatus::Accepted]
            .map(|s| s as i32)
            .contains(&r.status)
            || (r.status == ReferralStatus::Placed as i32 && r.arrived_at.is_none());
        let in_this_step = |action: ReferralAction| {
            later_step_open
                && r.history
                    .iter()
                    .any(|h| h.action == action as i32 && h.to_status == r.status)
        };
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
            arrived: r.arrived_at.is_some(),
            step_reminded: in_this_step(ReferralAction::Reminded),
            step_escalated: in_this_step(ReferralAction::Escalated),
            postponements: r.postponements,
            held_as_fallback: r.fallback_until.is_some(),
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
            arrived: facts.arrived,
            step_reminded: facts.step_reminded,
            step_escalated: facts.step_escalated,
            postponements: facts.postponements,
            held_as_fallback: facts.held_as_fallback,
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

    /// The timed step the referral is in, if any.
    pub fn current_step(&self) -> Option<TimedStep> {
        TimedStep::ALL
            .into_iter()
            .find(|s| s.status() == self.status && !(*s == TimedStep::Arrival && self.arrived))
    }

    /// The agencies that hold `step`: whose move the referral waits for.
    pub fn holders(&self, step: TimedStep) -> Vec<Uuid> {
        match step {
            TimedStep::Acknowledgement => self
                .parties
                .iter()
                .filter(|p| !p.acknowledged)
                .map(|p| p.agency)
                .collect(),
            TimedStep::Decision | TimedStep::Arrival => vec![self.receiving_agency],
            TimedStep::Confirmation => vec![self.sender],
        }
    }

    fn reminded_in(&self, step: TimedStep) -> bool {
        match step {
            TimedStep::Acknowledgement => self.reminded,
            _ => self.step_reminded,
        }
    }

    fn escalated_in(&self, step: TimedStep) -> bool {
        match step {
            TimedStep::Acknowledgement => self.escalated,
            _ => self.step_escalated,
        }
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
                    SystemStep::RemindOfCourt => self
                        .legal_basis_date
                        .checked_add_days(chrono::Days::new(COURT_REMINDER_DAYS))
                        .unwrap_or(self.legal_basis_date)
                        .and_time(chrono::NaiveTime::MIN)
                        .and_utc(),
                    timed => timed.due(submitted_at, ack_deadline),
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
            Step::RecordArrival => self.to(ReferralAction::Arrived, S::Placed, Record::Arrived),
            Step::Postpone(postponement) => self.postponed(postponement)?,
        })
    }

    /// A postponement by the holder of the current step: the first moves the step's deadline once (and its
    /// timers with it); a later one escalates at once, unless the step has escalated already, when it only
    /// records why it waits.
    fn postponed(&self, postponement: &Postponement) -> Result<Transition, TransitionError> {
        let step = self
            .current_step()
            .ok_or_else(|| no_open_step(self.status))?;
        let escalates = self.postponements > 0 && !self.escalated_in(step);
        let record = Record::Postponed {
            step,
            postponement: postponement.clone(),
            escalates,
        };
        if escalates {
            let mut t = self.to(ReferralAction::Escalated, self.status, record);
            t.outstanding = self.holders(step);
            return Ok(t);
        }
        let mut t = self.to(ReferralAction::Postponed, self.status, record);
        if self.postponements == 0 {
            t.step_change = StepChange::Moves(step);
            t.started_timers = self.timers_of(step, &self.after(self.status, &t.record));
        }
        Ok(t)
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
                self.require(&[S::Accepted], "confirm the placement of")?;
                self.require_not_held()
            }
            StepKind::RecordCourtDecision => {
                self.require_sender(actor, "only the sender records the court decision")?;
                self.require_awaiting_court("record a court decision on")
            }
            StepKind::RecordArrival => {
                if actor != self.receiving_agency {
                    return Err(TransitionError::NotAllowed(
                        "only the agency that runs the receiving service records the children's arrival",
                    ));
                }
                self.require_step(TimedStep::Arrival, "record the arrival of")
            }
            StepKind::Postpone => self.guard_postponement(actor),
        }
    }

    /// Only the holder of the current step postpones it; an agency of the referral that does not hold it is
    /// refused for standing, unless no step is open at all.
    fn guard_postponement(&self, actor: Uuid) -> Result<(), TransitionError> {
        const NOT_HOLDER: &str = "only the agency that holds the current step postpones it";
        let stands = actor == self.sender
            || actor == self.receiving_agency
            || self.parties.iter().any(|p| p.agency == actor);
        if !stands {
            return Err(TransitionError::NotAllowed(NOT_HOLDER));
        }
        self.require_not_held()?;
        let step = self
            .current_step()
            .ok_or_else(|| no_open_step(self.status))?;
        if self.holders(step).contains(&actor) {
            Ok(())
        } else {
            Err(TransitionError::NotAllowed(NOT_HOLDER))
        }
    }

    /// Decides a system step (a timer fell due).
    pub fn decide_system(&self, step: SystemStep) -> Result<Transition, TransitionError> {
        let (action, record) = self.system_guard(step)?;
        let to = match step {
            SystemStep::ReleaseFallback => ReferralStatus::Withdrawn,
            _ => self.status,
        };
        let mut t = self.to(action, to, record);
        if let SystemStep::Remind(timed) | SystemStep::Escalate(timed) = step {
            t.outstanding = self.holders(timed);
        }
        Ok(t)
    }

    /// Whether `step` may happen now, and what it records.
    fn system_guard(&self, step: SystemStep) -> Result<(ReferralAction, Record), TransitionError> {
        match step {
            SystemStep::Escalate(timed) => {
                self.require_step(timed, "escalate")?;
                self.require_not_held()?;
                if self.escalated_in(timed) {
                    return Err(TransitionError::WrongState("already escalated".into()));
                }
                Ok((ReferralAction::Escalated, Record::Escalated(timed)))
            }
            SystemStep::Remind(timed) => {
                self.require_step(timed, "remind of")?;
                self.require_not_held()?;
                if self.reminded_in(timed) || self.escalated_in(timed) {
                    return Err(TransitionError::WrongState(
                        "already reminded or escalated".into(),
                    ));
                }
                Ok((ReferralAction::Reminded, Record::Reminded(timed)))
            }
            SystemStep::RemindOfCourt => {
                self.require_awaiting_court("remind of the court for")?;
                if self.court_reminded {
                    return Err(TransitionError::WrongState("already reminded".into()));
                }
                Ok((ReferralAction::CourtDecisionDue, Record::CourtReminded))
            }
            SystemStep::ReleaseFallback => {
                self.require(&[ReferralStatus::Accepted], "release")?;
                if !self.held_as_fallback {
                    return Err(TransitionError::WrongState(
                        "the referral is not kept as a fallback".into(),
                    ));
                }
                let record = Record::Withdrawn(WithdrawReason::PlacedElsewhere, String::new());
                Ok((ReferralAction::Withdrawn, record))
            }
        }
    }

    /// Refuses what waits on the sender's choice once it has chosen: a referral kept as a fallback is
    /// neither confirmed, nor reminded, escalated or postponed (it only waits for its hold to end).
    fn require_not_held(&self) -> Result<(), TransitionError> {
        if self.held_as_fallback {
            return Err(TransitionError::WrongState(
                "the children were placed through another referral of the search; this one is only kept as a fallback".into(),
            ));
        }
        Ok(())
    }

    /// Keeps this accepted offer as a fallback, its children placed through another referral of its
    /// search: it goes on holding its places, the timers of what no longer waits on anyone stop, and the
    /// timer that releases it starts (the store dates it: the configured hold from now). Refused for a
    /// referral not ACCEPTED, or kept already.
    pub fn hold_as_fallback(&self) -> Result<FallbackHold, TransitionError> {
        self.require(&[ReferralStatus::Accepted], "keep as a fallback")?;
        self.require_not_held()?;
        let mut held = self.clone();
        held.held_as_fallback = true;
        let allowed = |s: &ReferralState, t: &SystemStep| s.system_guard(*t).is_ok();
        Ok(FallbackHold {
            stopped_timers: (SystemStep::ALL.into_iter())
                .filter(|t| allowed(self, t) && !allowed(&held, t))
                .collect(),
            started_timers: (SystemStep::ALL.into_iter())
                .filter(|t| !allowed(self, t) && allowed(&held, t))
                .collect(),
        })
    }

    /// The referral is in `step` now: in its status and, for the arrival, before it was recorded.
    fn require_step(&self, step: TimedStep, verb: &str) -> Result<(), TransitionError> {
        self.require(&[step.status()], verb)?;
        if step == TimedStep::Arrival && self.arrived {
            return Err(TransitionError::WrongState(
                "the children's arrival is already recorded".into(),
            ));
        }
        Ok(())
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
        let step_change = match (self.current_step(), after.current_step()) {
            (before, now) if before == now => StepChange::Keeps,
            (_, Some(entered)) => StepChange::Enters(entered),
            (_, None) => StepChange::Ends,
        };
        let started_timers = match step_change {
            StepChange::Enters(step) => self.timers_of(step, &after),
            StepChange::Keeps | StepChange::Moves(_) | StepChange::Ends => Vec::new(),
        };
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
            step_change,
            started_timers,
            record,
        }
    }

    /// The timers of `step` that may fire in the state `after` a transition.
    fn timers_of(&self, step: TimedStep, after: &ReferralState) -> Vec<Timer> {
        [SystemStep::Remind(step), SystemStep::Escalate(step)]
            .into_iter()
            .filter(|t| after.system_guard(*t).is_ok())
            .collect()
    }

    /// The state once a step with `record` moved the referral to `to`. A new timed step starts with
    /// nothing reminded, escalated or postponed.
    fn after(&self, to: ReferralStatus, record: &Record) -> ReferralState {
        let mut next = self.clone();
        next.status = to;
        match record {
            Record::Acknowledged(agency) => {
                for party in next.parties.iter_mut().filter(|p| p.agency == *agency) {
                    party.acknowledged = true;
                }
            }
            Record::Escalated(step) => next.mark_escalated(*step),
            Record::Reminded(TimedStep::Acknowledgement) => next.reminded = true,
            Record::Reminded(_) => next.step_reminded = true,
            Record::CourtReminded => next.court_reminded = true,
            Record::CourtDecision(_) => next.awaiting_court = false,
            Record::Arrived => next.arrived = true,
            Record::Postponed {
                step, escalates, ..
            } => {
                next.postponements += 1;
                if *escalates {
                    next.mark_escalated(*step);
                }
            }
            Record::Status | Record::Declined(..) | Record::Withdrawn(..) => {}
        }
        if next.current_step() != self.current_step() {
            next.step_reminded = false;
            next.step_escalated = false;
            next.postponements = 0;
        }
        next
    }

    fn mark_escalated(&mut self, step: TimedStep) {
        match step {
            TimedStep::Acknowledgement => self.escalated = true,
            _ => self.step_escalated = true,
        }
    }
}

/// The refusal of a step that needs an open timed step, in a status that has none.
fn no_open_step(status: ReferralStatus) -> TransitionError {
    TransitionError::WrongState(format!(
        "no step of a referral in status {} waits on anyone",
        status.as_str_name().trim_start_matches("REFERRAL_STATUS_")
    ))
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
        /// The acknowledgement's escalation and reminder (the later steps' are `EscalateStep`, `RemindStep`).
        Escalate,
        Remind,
        EscalateStep(TimedStep),
        RemindStep(TimedStep),
        RemindOfCourt,
        RecordCourtDecision,
        RecordArrival,
        Postpone,
    }

    fn order_date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 2).unwrap()
    }

    fn waiting() -> Postponement {
        Postponement {
            reason: WaitingReason::AssessmentUnderWay,
            comment: String::new(),
            until: None,
        }
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
                Escalate => system(SystemStep::Escalate(TimedStep::Acknowledgement)),
                Remind => system(SystemStep::Remind(TimedStep::Acknowledgement)),
                EscalateStep(step) => system(SystemStep::Escalate(step)),
                RemindStep(step) => system(SystemStep::Remind(step)),
                RemindOfCourt => system(SystemStep::RemindOfCourt),
                RecordArrival => user(Step::RecordArrival),
                Postpone => user(Step::Postpone(waiting())),
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
            arrived: false,
            step_reminded: false,
            step_escalated: false,
            postponements: 0,
            held_as_fallback: false,
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
            (EscalateStep(step) | RemindStep(step), _)
                if actor.is_none() && step.status() == status =>
            {
                Some(status)
            }
            (RecordArrival, S::Placed) if actor == Some(p.provider) => Some(S::Placed),
            // The holder of the open step: with no party acknowledged, both parties hold the first.
            (Postpone, S::Submitted) if actor == Some(p.provider) || actor == Some(p.foster) => {
                Some(status)
            }
            (Postpone, S::Acknowledged | S::Placed) if actor == Some(p.provider) => Some(status),
            (Postpone, S::Accepted) if actor == Some(p.sender) => Some(status),
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
        let mut commands = vec![
            Acknowledge,
            Accept,
            Decline,
            Withdraw,
            ConfirmPlacement,
            Escalate,
            Remind,
            RemindOfCourt,
            RecordCourtDecision,
            RecordArrival,
            Postpone,
        ];
        for step in TimedStep::ALL {
            commands.extend([EscalateStep(step), RemindStep(step)]);
        }
        let mut allowed = 0;
        for status in ALL_STATUSES {
            for &command in &commands {
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
        // + confirm + escalate + remind + 4 court reminders + 4 court decisions + the arrival + 5
        // postponements (both parties while neither acknowledged, then one holder a step) + every timed
        // step's escalation and reminder, named by their step.
        assert_eq!(allowed, 33);
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
                (
                    SystemStep::Remind(TimedStep::Acknowledgement),
                    submitted + chrono::Duration::hours(24)
                ),
                (SystemStep::Escalate(TimedStep::Acknowledgement), deadline),
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
        assert_eq!(
            timers,
            vec![
                SystemStep::Remind(TimedStep::Acknowledgement),
                SystemStep::Escalate(TimedStep::Acknowledgement)
            ]
        );
    }

    #[test]
    fn each_step_stops_the_timers_it_makes_pointless() {
        use SystemStep as T;
        use TimedStep::{Acknowledgement as Ack, Arrival, Confirmation, Decision};
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
            vec![T::Remind(Ack), T::Escalate(Ack)]
        );
        assert_eq!(stopped(&submitted, Remind, None), vec![T::Remind(Ack)]);
        assert_eq!(
            stopped(&submitted, Escalate, None),
            vec![T::Remind(Ack), T::Escalate(Ack)]
        );
        assert_eq!(
            stopped(&submitted, Withdraw, Some(p.sender)),
            vec![T::Remind(Ack), T::Escalate(Ack), T::RemindOfCourt]
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
            vec![T::Remind(Ack), T::Escalate(Ack), T::RemindOfCourt]
        );
        let acknowledged = state(&p, S::Acknowledged, (true, true));
        assert_eq!(
            stopped(&acknowledged, Decline, Some(p.provider)),
            vec![T::RemindOfCourt, T::Remind(Decision), T::Escalate(Decision)]
        );
        assert_eq!(
            stopped(&acknowledged, Accept, Some(p.provider)),
            vec![T::Remind(Decision), T::Escalate(Decision)]
        );
        let accepted = state(&p, S::Accepted, (true, true));
        assert_eq!(
            stopped(&accepted, ConfirmPlacement, Some(p.sender)),
            vec![T::Remind(Confirmation), T::Escalate(Confirmation)]
        );
        assert_eq!(
            stopped(&accepted, Withdraw, Some(p.sender)),
            vec![
                T::RemindOfCourt,
                T::Remind(Confirmation),
                T::Escalate(Confirmation)
            ]
        );
        let placed = state(&p, S::Placed, (true, true));
        assert_eq!(
            stopped(&placed, RecordArrival, Some(p.provider)),
            vec![T::Remind(Arrival), T::Escalate(Arrival)]
        );
        assert_eq!(
            stopped(&placed, RemindStep(Arrival), None),
            vec![T::Remind(Arrival)]
        );
        assert_eq!(
            stopped(&placed, EscalateStep(Arrival), None),
            vec![T::Remind(Arrival), T::Escalate(Arrival)]
        );
    }

    #[test]
    fn each_step_entered_starts_its_timers_and_the_last_ends_them() {
        use SystemStep as T;
        use TimedStep::{Arrival, Confirmation, Decision};
        let p = parties();
        let change = |s: &ReferralState, c: Command, actor: Option<Uuid>| {
            let t = s.decide_cmd(c, actor).unwrap();
            (t.step_change, t.started_timers)
        };
        let half = state(&p, S::Submitted, (true, false));
        assert_eq!(
            change(&half, Acknowledge, Some(p.foster)),
            (
                StepChange::Enters(Decision),
                vec![T::Remind(Decision), T::Escalate(Decision)]
            )
        );
        let submitted = state(&p, S::Submitted, (false, false));
        assert_eq!(
            change(&submitted, Acknowledge, Some(p.provider)),
            (StepChange::Keeps, vec![])
        );
        let acknowledged = state(&p, S::Acknowledged, (true, true));
        assert_eq!(
            change(&acknowledged, Accept, Some(p.provider)),
            (
                StepChange::Enters(Confirmation),
                vec![T::Remind(Confirmation), T::Escalate(Confirmation)]
            )
        );
        assert_eq!(
            change(&acknowledged, Decline, Some(p.provider)),
            (StepChange::Ends, vec![])
        );
        // A step entered after the last one escalated starts afresh: its own reminder and escalation.
        let mut accepted = state(&p, S::Accepted, (true, true));
        accepted.step_reminded = true;
        accepted.step_escalated = true;
        accepted.postponements = 1;
        let t = accepted
            .decide_cmd(ConfirmPlacement, Some(p.sender))
            .unwrap();
        assert_eq!(t.step_change, StepChange::Enters(Arrival));
        assert_eq!(
            t.started_timers,
            vec![T::Remind(Arrival), T::Escalate(Arrival)]
        );
        let placed = state(&p, S::Placed, (true, true));
        assert_eq!(placed.current_step(), Some(Arrival));
        let t = placed.decide_cmd(RecordArrival, Some(p.provider)).unwrap();
        assert_eq!((t.action, t.to), (ReferralAction::Arrived, S::Placed));
        assert_eq!(
            (t.step_change, t.started_timers),
            (StepChange::Ends, vec![])
        );
        // Once arrived, nothing waits on anyone, and the arrival is not recorded twice.
        let arrived = ReferralState::of(ReferralFacts {
            arrived: true,
            ..facts(&p, S::Placed, (true, true))
        });
        assert_eq!(arrived.current_step(), None);
        assert!(matches!(
            arrived.decide_cmd(RecordArrival, Some(p.provider)),
            Err(TransitionError::WrongState(_))
        ));
        assert!(arrived.decide_cmd(EscalateStep(Arrival), None).is_err());
    }

    #[test]
    fn later_steps_remind_and_escalate_once_and_tell_their_holders() {
        use TimedStep::{Arrival, Confirmation, Decision};
        let p = parties();
        for (status, step, holder) in [
            (S::Acknowledged, Decision, p.provider),
            (S::Accepted, Confirmation, p.sender),
            (S::Placed, Arrival, p.provider),
        ] {
            let mut s = state(&p, status, (true, true));
            let reminded = s.decide_cmd(RemindStep(step), None).unwrap();
            assert_eq!(reminded.action, ReferralAction::Reminded);
            assert_eq!(reminded.outstanding, vec![holder], "{step:?}");
            s.step_reminded = true;
            assert!(s.decide_cmd(RemindStep(step), None).is_err());
            let escalated = s.decide_cmd(EscalateStep(step), None).unwrap();
            assert_eq!(
                (escalated.action, escalated.to, escalated.outstanding),
                (ReferralAction::Escalated, status, vec![holder])
            );
            s.step_escalated = true;
            assert!(s.decide_cmd(EscalateStep(step), None).is_err());
            // The acknowledgement's own flags are not the later step's.
            assert!(!s.escalated && !s.reminded);
        }
    }

    #[test]
    fn the_first_postponement_moves_the_deadline_and_the_second_escalates() {
        use SystemStep as T;
        use TimedStep::Decision;
        let p = parties();
        let mut s = state(&p, S::Acknowledged, (true, true));
        let first = s.decide_cmd(Postpone, Some(p.provider)).unwrap();
        assert_eq!(
            (first.action, first.to, first.step_change),
            (
                ReferralAction::Postponed,
                S::Acknowledged,
                StepChange::Moves(Decision)
            )
        );
        // Both timers move with the deadline; none stops.
        assert_eq!(
            first.started_timers,
            vec![T::Remind(Decision), T::Escalate(Decision)]
        );
        assert_eq!(first.stopped_timers, vec![]);
        s.postponements = 1;
        s.step_reminded = true;
        let second = s.decide_cmd(Postpone, Some(p.provider)).unwrap();
        assert_eq!(
            (second.action, second.step_change),
            (ReferralAction::Escalated, StepChange::Keeps)
        );
        assert_eq!(second.outstanding, vec![p.provider]);
        assert_eq!(second.stopped_timers, vec![T::Escalate(Decision)]);
        assert!(matches!(
            second.record,
            Record::Postponed {
                escalates: true,
                step: Decision,
                ..
            }
        ));
        // Once escalated, a third postponement only records why the step waits.
        s.postponements = 2;
        s.step_escalated = true;
        let third = s.decide_cmd(Postpone, Some(p.provider)).unwrap();
        assert_eq!(
            (third.action, third.step_change, third.started_timers),
            (ReferralAction::Postponed, StepChange::Keeps, vec![])
        );
        // An escalated acknowledgement postponed for the first time moves its deadline, and nothing fires.
        let mut late = state(&p, S::Submitted, (false, false));
        late.escalated = true;
        let t = late.decide_cmd(Postpone, Some(p.foster)).unwrap();
        assert_eq!(t.step_change, StepChange::Moves(TimedStep::Acknowledgement));
        assert_eq!(t.started_timers, vec![]);
    }

    #[test]
    fn only_the_holder_postpones_and_only_an_open_step() {
        let p = parties();
        let refused = |s: &ReferralState, actor| s.decide_cmd(Postpone, Some(actor)).unwrap_err();
        // A party that already acknowledged no longer holds the acknowledgement.
        let half = state(&p, S::Submitted, (true, false));
        assert!(matches!(
            refused(&half, p.provider),
            TransitionError::NotAllowed(_)
        ));
        assert!(matches!(
            refused(&half, p.sender),
            TransitionError::NotAllowed(_)
        ));
        assert!(matches!(
            refused(&half, p.stranger),
            TransitionError::NotAllowed(_)
        ));
        let accepted = state(&p, S::Accepted, (true, true));
        assert!(matches!(
            refused(&accepted, p.provider),
            TransitionError::NotAllowed(_)
        ));
        for closed in [S::Declined, S::Withdrawn] {
            let s = state(&p, closed, (true, true));
            assert!(matches!(
                refused(&s, p.provider),
                TransitionError::WrongState(_)
            ));
            assert!(matches!(
                refused(&s, p.stranger),
                TransitionError::NotAllowed(_)
            ));
        }
    }

    #[test]
    fn step_times_scale_with_urgency_and_overrides_replace_them() {
        use TimedStep::{Acknowledgement as Ack, Arrival, Confirmation, Decision};
        // Wednesday 2 December 2026, 10:00 in Sofia.
        let from = DateTime::parse_from_rfc3339("2026-12-02T08:00:00Z")
            .unwrap()
            .to_utc();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let calendar = StepTimes::default();
        assert_eq!(
            calendar.deadline(Ack, Urgency::Routine, from),
            at("2026-12-04T08:00:00Z")
        );
        assert_eq!(
            calendar.deadline(Ack, Urgency::Unspecified, from),
            calendar.deadline(Ack, Urgency::Routine, from)
        );
        assert_eq!(
            calendar.deadline(Decision, Urgency::Routine, from),
            at("2026-12-09T08:00:00Z")
        );
        assert_eq!(
            calendar.deadline(Confirmation, Urgency::Urgent, from),
            at("2026-12-03T08:00:00Z")
        );
        assert_eq!(
            calendar.deadline(Arrival, Urgency::Emergency, from),
            from + Duration::hours(24)
        );
        for step in TimedStep::ALL {
            let [routine, urgent, emergency] =
                [Urgency::Routine, Urgency::Urgent, Urgency::Emergency]
                    .map(|u| calendar.deadline(step, u, from));
            assert!(emergency < urgent && urgent < routine, "{step:?}");
        }
        let fixed = StepTimes {
            acknowledgement: Some(Duration::seconds(2)),
            later: Some(Duration::seconds(3)),
        };
        assert_eq!(
            fixed.deadline(Ack, Urgency::Routine, from),
            from + Duration::seconds(2)
        );
        assert_eq!(
            fixed.deadline(Arrival, Urgency::Emergency, from),
            from + Duration::seconds(3)
        );
        // A postponement moves the deadline by at most the step's own time, to `until` within that.
        let deadline = at("2026-12-09T08:00:00Z");
        assert_eq!(
            calendar.postponed(Decision, Urgency::Routine, deadline, None),
            at("2026-12-16T08:00:00Z")
        );
        let friday = NaiveDate::from_ymd_opt(2026, 12, 11).unwrap();
        assert_eq!(
            calendar.postponed(Decision, Urgency::Routine, deadline, Some(friday)),
            at("2026-12-11T15:30:00Z")
        );
        let far = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
        assert_eq!(
            calendar.postponed(Decision, Urgency::Routine, deadline, Some(far)),
            at("2026-12-16T08:00:00Z")
        );
        let before = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        assert_eq!(
            calendar.postponed(Decision, Urgency::Routine, deadline, Some(before)),
            deadline
        );
    }

    #[test]
    fn an_offer_kept_as_a_fallback_holds_until_released_or_withdrawn() {
        use SystemStep as T;
        use TimedStep::Confirmation;
        let p = parties();
        let accepted = state(&p, S::Accepted, (true, true));
        let hold = accepted
            .hold_as_fallback()
            .expect("an accepted offer is kept");
        // Nothing waits on the sender any more; only the release is timed.
        assert_eq!(
            hold.stopped_timers,
            vec![T::Remind(Confirmation), T::Escalate(Confirmation)]
        );
        assert_eq!(hold.started_timers, vec![T::ReleaseFallback]);
        assert!(matches!(
            accepted.decide_system(T::ReleaseFallback),
            Err(TransitionError::WrongState(_))
        ));
        let held = ReferralState::of(ReferralFacts {
            held_as_fallback: true,
            ..facts(&p, S::Accepted, (true, true))
        });
        assert!(held.hold_as_fallback().is_err(), "kept once");
        for refused in [
            held.decide_cmd(ConfirmPlacement, Some(p.sender)),
            held.decide_cmd(Postpone, Some(p.sender)),
            held.decide_cmd(RemindStep(Confirmation), None),
            held.decide_cmd(EscalateStep(Confirmation), None),
        ] {
            assert!(matches!(refused, Err(TransitionError::WrongState(_))));
        }
        // Its hold ends: withdrawn as placed elsewhere by the system, its places released with the status.
        let released = held.decide_system(T::ReleaseFallback).expect("released");
        assert_eq!(
            (released.action, released.from, released.to),
            (ReferralAction::Withdrawn, S::Accepted, S::Withdrawn)
        );
        assert_eq!(
            released.record,
            Record::Withdrawn(WithdrawReason::PlacedElsewhere, String::new())
        );
        assert_eq!(released.step_change, StepChange::Ends);
        // The sender may withdraw it before, which stops the release's timer.
        let withdrawn = held
            .decide_cmd(Withdraw, Some(p.sender))
            .expect("withdrawn");
        assert!(withdrawn.stopped_timers.contains(&T::ReleaseFallback));
        for status in [S::Submitted, S::Acknowledged, S::Placed, S::Withdrawn] {
            let s = state(&p, status, (true, true));
            assert!(matches!(
                s.hold_as_fallback(),
                Err(TransitionError::WrongState(_))
            ));
        }
    }

    #[test]
    fn timers_keep_their_stored_names() {
        let names: Vec<&str> = SystemStep::ALL.iter().map(|t| t.stored()).collect();
        assert_eq!(&names[..3], ["REMIND", "ESCALATE", "REMIND_OF_COURT"]);
        for t in SystemStep::ALL {
            assert_eq!(SystemStep::from_stored(t.stored()), Some(t));
        }
        let distinct: std::collections::HashSet<&str> = names.iter().copied().collect();
        assert_eq!(distinct.len(), SystemStep::ALL.len());
        assert_eq!(SystemStep::from_stored("REMIND_LATER"), None);
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
                    vec![K::Acknowledge, K::Decline, K::Postpone],
                    vec![K::Acknowledge, K::Postpone],
                    vec![],
                ],
            ),
            (
                S::Submitted,
                (true, false),
                [
                    vec![K::Withdraw, K::RecordCourtDecision],
                    vec![K::Decline],
                    vec![K::Acknowledge, K::Postpone],
                    vec![],
                ],
            ),
            (
                S::Acknowledged,
                (true, true),
                [
                    vec![K::Withdraw, K::RecordCourtDecision],
                    vec![K::Accept, K::Decline, K::Postpone],
                    vec![],
                    vec![],
                ],
            ),
            (
                S::Accepted,
                (true, true),
                [
                    vec![
                        K::Withdraw,
                        K::ConfirmPlacement,
                        K::RecordCourtDecision,
                        K::Postpone,
                    ],
                    vec![],
                    vec![],
                    vec![],
                ],
            ),
            (
                S::Placed,
                (true, true),
                [
                    vec![K::RecordCourtDecision],
                    vec![K::RecordArrival, K::Postpone],
                    vec![],
                    vec![],
                ],
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
            StepKind::RecordArrival => RecordArrival,
            StepKind::Postpone => Postpone,
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
            history: vec![
                ReferralHistoryEntry {
                    action: ReferralAction::CourtDecisionDue as i32,
                    ..Default::default()
                },
                // The acknowledgement's escalation is not the confirmation's; its reminder is.
                ReferralHistoryEntry {
                    action: ReferralAction::Escalated as i32,
                    to_status: S::Submitted as i32,
                    ..Default::default()
                },
                ReferralHistoryEntry {
                    action: ReferralAction::Reminded as i32,
                    to_status: S::Accepted as i32,
                    ..Default::default()
                },
            ],
            postponements: 1,
            ..Default::default()
        };
        let expected = ReferralFacts {
            court_reminded: true,
            step_reminded: true,
            postponements: 1,
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
