//! Referral rows, their parties and history, and their wire and event forms.

use chrono::{DateTime, NaiveDate, Utc};
use placement_platform::time::{court_application_due, date, opt_timestamp, timestamp};
use placement_proto::v1::{
    Acknowledgement, DeclineReason, LegalBasis, LegalBasisKind, Referral, ReferralAction,
    ReferralEvent, ReferralHistoryEntry, ReferralStatus, ReferralStepName, Urgency, WaitingReason,
    WithdrawReason,
};
use sqlx::FromRow;
use uuid::Uuid;

use crate::referral::{Party, ReferralFacts, ReferralState, TimedStep};

/// The columns a [`ReferralRow`] is read from, in every statement that returns one.
pub const REFERRAL_COLUMNS: &str = "id, case_id, sender_agency_id, sender_region_code, service_id, \
     receiving_agency_id, receiving_region_code, foster_team_agency_id, receiving_rdsa_agency_id, places, \
     legal_basis_kind, legal_basis_number, legal_basis_date, legal_basis_court, reason, status, ack_deadline, \
     escalated_at, decline_reason, withdraw_reason, resolution_comment, idempotency_key, created_at, \
     updated_at, version, reminded_at, court_reminded_at, court_decision_number, court_decision_date, \
     court_decision_court, youngest_child_age, oldest_child_age, search_id, search_round, reference, \
     urgency, arrived_at, step_deadline, step_reminded_at, step_escalated_at, postponements, waiting_reason, \
     waiting_comment, waiting_until, fallback_until";

#[derive(Debug, Clone, FromRow)]
pub struct ReferralRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub sender_agency_id: Uuid,
    pub sender_region_code: String,
    pub service_id: Uuid,
    pub receiving_agency_id: Uuid,
    pub receiving_region_code: String,
    pub foster_team_agency_id: Uuid,
    pub receiving_rdsa_agency_id: Option<Uuid>,
    pub places: i32,
    pub legal_basis_kind: LegalBasisKind,
    pub legal_basis_number: String,
    pub legal_basis_date: NaiveDate,
    pub legal_basis_court: String,
    pub reason: String,
    pub status: ReferralStatus,
    pub ack_deadline: DateTime<Utc>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub decline_reason: Option<DeclineReason>,
    pub withdraw_reason: Option<WithdrawReason>,
    pub resolution_comment: String,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub reminded_at: Option<DateTime<Utc>>,
    pub court_reminded_at: Option<DateTime<Utc>>,
    pub court_decision_number: Option<String>,
    pub court_decision_date: Option<NaiveDate>,
    pub court_decision_court: Option<String>,
    pub youngest_child_age: Option<i16>,
    pub oldest_child_age: Option<i16>,
    /// The search this referral is one of; `None` for one sent alone.
    pub search_id: Option<Uuid>,
    /// The round of its search it was sent in; `None` for one sent alone.
    pub search_round: Option<i16>,
    /// What people say: see `submission::reference`.
    pub reference: String,
    pub urgency: Urgency,
    pub arrived_at: Option<DateTime<Utc>>,
    /// When the step now open is due; `None` when none is (or it opened before every step was timed).
    pub step_deadline: Option<DateTime<Utc>>,
    /// The step now open, when later than the acknowledgement, was reminded or escalated.
    pub step_reminded_at: Option<DateTime<Utc>>,
    pub step_escalated_at: Option<DateTime<Utc>>,
    /// How often the step now open was postponed, why, and until when.
    pub postponements: i32,
    pub waiting_reason: Option<WaitingReason>,
    pub waiting_comment: String,
    pub waiting_until: Option<NaiveDate>,
    /// Kept as a fallback by the sender until then (see `steps::hold_fallback`); `None` otherwise.
    pub fallback_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, FromRow)]
pub struct PartyRow {
    pub referral_id: Uuid,
    pub agency_id: Uuid,
    pub receiving_provider: bool,
    pub foster_care_team: bool,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

impl PartyRow {
    /// The order a referral's parties are shown in: the receiving provider first, then by agency.
    pub fn order(&self) -> (bool, Uuid) {
        (!self.receiving_provider, self.agency_id)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct HistoryRow {
    pub referral_id: Uuid,
    pub version: i64,
    pub action: ReferralAction,
    /// None for the submission.
    pub from_status: Option<ReferralStatus>,
    pub to_status: ReferralStatus,
    pub actor_agency_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

impl HistoryRow {
    /// The entry of the step that left the referral as `row` is, from `from`, by `actor` (`None`: a
    /// timer): what the history statement writes, so a step can answer without reading it back.
    pub fn of_step(
        row: &ReferralRow,
        action: ReferralAction,
        from: ReferralStatus,
        actor: Option<Uuid>,
    ) -> HistoryRow {
        HistoryRow {
            referral_id: row.id,
            version: row.version,
            action,
            from_status: Self::stored_from(from),
            to_status: row.status,
            actor_agency_id: actor,
            at: row.updated_at,
        }
    }

    /// The status an entry is from as stored: none for the submission.
    pub fn stored_from(from: ReferralStatus) -> Option<ReferralStatus> {
        (from != ReferralStatus::Unspecified).then_some(from)
    }
}

impl ReferralRow {
    pub fn status(&self) -> ReferralStatus {
        self.status
    }

    /// The state the model builds from this row's facts, as it builds a client's from the wire.
    pub fn state(&self, parties: &[PartyRow]) -> ReferralState {
        ReferralState::of(self.facts(parties))
    }

    fn facts(&self, parties: &[PartyRow]) -> ReferralFacts {
        ReferralFacts {
            status: self.status(),
            sender: self.sender_agency_id,
            receiving_agency: self.receiving_agency_id,
            parties: parties
                .iter()
                .map(|p| Party {
                    agency: p.agency_id,
                    acknowledged: p.acknowledged_at.is_some(),
                })
                .collect(),
            legal_basis: self.legal_basis_kind,
            legal_basis_date: self.legal_basis_date,
            court_decision_recorded: self.court_decision_date.is_some(),
            escalated: self.escalated_at.is_some(),
            reminded: self.reminded_at.is_some(),
            court_reminded: self.court_reminded_at.is_some(),
            arrived: self.arrived_at.is_some(),
            step_reminded: self.step_reminded_at.is_some(),
            step_escalated: self.step_escalated_at.is_some(),
            postponements: u32::try_from(self.postponements).unwrap_or(0),
            held_as_fallback: self.fallback_until.is_some(),
        }
    }

    pub fn rests_on_order(&self) -> bool {
        self.legal_basis_kind == LegalBasisKind::DsaDirectorOrder
    }

    pub fn into_proto(self, parties: Vec<PartyRow>, history: Vec<HistoryRow>) -> Referral {
        Referral {
            id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            sender_agency_id: self.sender_agency_id.to_string(),
            sender_region_code: self.sender_region_code.clone(),
            service_id: self.service_id.to_string(),
            receiving_agency_id: self.receiving_agency_id.to_string(),
            receiving_region_code: self.receiving_region_code.clone(),
            foster_care_team_agency_id: self.foster_team_agency_id.to_string(),
            receiving_rdsa_agency_id: self
                .receiving_rdsa_agency_id
                .map(|a| a.to_string())
                .unwrap_or_default(),
            places: placement_platform::numbers::count(self.places),
            legal_basis: Some(LegalBasis {
                kind: self.legal_basis_kind as i32,
                number: self.legal_basis_number.clone(),
                issued_on: Some(date(self.legal_basis_date)),
                court: self.legal_basis_court.clone(),
            }),
            reason: self.reason.clone(),
            status: self.status() as i32,
            acknowledgements: parties
                .into_iter()
                .map(|p| Acknowledgement {
                    agency_id: p.agency_id.to_string(),
                    receiving_provider: p.receiving_provider,
                    foster_care_team: p.foster_care_team,
                    acknowledged_at: opt_timestamp(p.acknowledged_at),
                })
                .collect(),
            acknowledgement_deadline: Some(timestamp(self.ack_deadline)),
            escalated: self.escalated_at.is_some(),
            escalated_at: opt_timestamp(self.escalated_at),
            decline_reason: self.decline_reason.unwrap_or(DeclineReason::Unspecified) as i32,
            withdraw_reason: self.withdraw_reason.unwrap_or(WithdrawReason::Unspecified) as i32,
            resolution_comment: self.resolution_comment.clone(),
            history: history
                .into_iter()
                .map(|h| ReferralHistoryEntry {
                    action: h.action as i32,
                    from_status: h.from_status.unwrap_or(ReferralStatus::Unspecified) as i32,
                    to_status: h.to_status as i32,
                    actor_agency_id: h.actor_agency_id.map(|a| a.to_string()).unwrap_or_default(),
                    at: Some(timestamp(h.at)),
                    version: placement_platform::numbers::serial(h.version),
                })
                .collect(),
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
            version: placement_platform::numbers::serial(self.version),
            court_decision: self.court_decision_date.map(|d| LegalBasis {
                kind: LegalBasisKind::CourtDecision as i32,
                number: self.court_decision_number.clone().unwrap_or_default(),
                issued_on: Some(date(d)),
                court: self.court_decision_court.clone().unwrap_or_default(),
            }),
            court_application_due_on: self
                .rests_on_order()
                .then(|| date(court_application_due(self.legal_basis_date))),
            reminded_at: opt_timestamp(self.reminded_at),
            youngest_child_age: self.youngest_child_age.map(age),
            oldest_child_age: self.oldest_child_age.map(age),
            search_id: self.search_id.map(|s| s.to_string()).unwrap_or_default(),
            search_round: self
                .search_round
                .map_or(0, |r| u32::try_from(r).unwrap_or(0)),
            urgency: self.urgency as i32,
            arrived_at: opt_timestamp(self.arrived_at),
            step: self.open_step_name() as i32,
            step_deadline: opt_timestamp(self.step_deadline),
            waiting_reason: self.waiting_reason.unwrap_or(WaitingReason::Unspecified) as i32,
            waiting_comment: self.waiting_comment.clone(),
            waiting_until: self.waiting_until.map(date),
            postponements: u32::try_from(self.postponements).unwrap_or(0),
            fallback_until: opt_timestamp(self.fallback_until),
            reference: self.reference,
        }
    }

    /// The event announcing this referral's latest step: identifiers and codes only, never the free-text
    /// reason or comment.
    pub fn event(
        &self,
        previous: ReferralStatus,
        actor: Option<Uuid>,
        reason_code: i32,
        outstanding: Vec<Uuid>,
    ) -> ReferralEvent {
        ReferralEvent {
            referral_id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            sender_agency_id: self.sender_agency_id.to_string(),
            sender_region_code: self.sender_region_code.clone(),
            service_id: self.service_id.to_string(),
            receiving_agency_id: self.receiving_agency_id.to_string(),
            receiving_region_code: self.receiving_region_code.clone(),
            foster_care_team_agency_id: self.foster_team_agency_id.to_string(),
            receiving_rdsa_agency_id: self
                .receiving_rdsa_agency_id
                .map(|a| a.to_string())
                .unwrap_or_default(),
            places: placement_platform::numbers::count(self.places),
            status: self.status() as i32,
            actor_agency_id: actor.map(|a| a.to_string()).unwrap_or_default(),
            reason_code,
            previous_status: previous as i32,
            acknowledgement_deadline: Some(timestamp(self.ack_deadline)),
            legal_basis_kind: self.legal_basis_kind as i32,
            outstanding_agency_ids: outstanding.iter().map(Uuid::to_string).collect(),
            order_issued_on: self.rests_on_order().then(|| date(self.legal_basis_date)),
            youngest_child_age: self.youngest_child_age.map(age),
            oldest_child_age: self.oldest_child_age.map(age),
            search_id: self.search_id.map(|s| s.to_string()).unwrap_or_default(),
            reference: self.reference.clone(),
            urgency: self.urgency as i32,
            step: self.open_step_name() as i32,
            step_deadline: opt_timestamp(self.step_deadline),
            waiting_reason: self.waiting_reason.unwrap_or(WaitingReason::Unspecified) as i32,
            waiting_until: self.waiting_until.map(date),
            postponements: u32::try_from(self.postponements).unwrap_or(0),
        }
    }

    /// The step now open, by the status alone: the parties are not needed to know it (the acknowledgement
    /// is open while SUBMITTED, whoever has acknowledged).
    fn open_step_name(&self) -> ReferralStepName {
        TimedStep::ALL
            .into_iter()
            .find(|s| {
                s.status() == self.status
                    && !(*s == TimedStep::Arrival && self.arrived_at.is_some())
            })
            .map_or(ReferralStepName::Unspecified, TimedStep::name)
    }
}

/// An age as stored (never negative: written from a `u32` bounded below 200).
fn age(stored: i16) -> u32 {
    u32::try_from(stored).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests;
