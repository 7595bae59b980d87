//! A step as asked for and as announced: the validation of a step's particulars, the RPC it comes from,
//! the status of a refusal, and the event each action announces.

use chrono::{DateTime, NaiveDate, Utc};
use placement_messaging::Event;
use placement_platform::{
    error::{ServiceError, ServiceResult, check_text},
    time::{from_date, past_act_date},
};
use placement_proto::v1::{
    Date, DeclineReason, LegalBasis, LegalBasisKind, ReferralAction, ReferralEvent, WaitingReason,
    WithdrawReason,
};
use uuid::Uuid;

use crate::referral::{CourtDecision, Postponement, Step, StepTimes, TransitionError};

/// Why a step is refused.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The state machine's verdict: no standing, the wrong status, or particulars that contradict the
    /// referral.
    #[error(transparent)]
    Refused(#[from] TransitionError),
    #[error("reason: required")]
    ReasonMissing,
    #[error("decision: required")]
    DecisionMissing,
    #[error("decision.kind: must be COURT_DECISION")]
    DecisionNotByCourt,
    /// The search this referral is one of has placed its children already.
    #[error("the search this referral is one of is already placed")]
    SearchPlaced,
    /// The fallback named is no other referral of the confirmed one's search.
    #[error("keep_as_fallback_referral_id: {0}")]
    FallbackInvalid(&'static str),
    /// The fallback named may not be kept (not ACCEPTED).
    #[error("keep_as_fallback_referral_id: {0}")]
    FallbackNotKept(TransitionError),
    /// The state machine named an action that has no event: a bug, caught before anything is written.
    #[error("the action {0:?} announces no event")]
    Unannounced(ReferralAction),
}

impl From<StepError> for ServiceError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::Refused(TransitionError::NotAllowed(m)) => ServiceError::denied(m),
            StepError::Refused(TransitionError::WrongState(m)) => ServiceError::precondition(m),
            StepError::Refused(TransitionError::Invalid(field, why)) => {
                ServiceError::invalid(field, why)
            }
            StepError::ReasonMissing => ServiceError::invalid("reason", "required"),
            StepError::DecisionMissing => ServiceError::invalid("decision", "required"),
            StepError::DecisionNotByCourt => {
                ServiceError::invalid("decision.kind", "must be COURT_DECISION")
            }
            StepError::SearchPlaced | StepError::FallbackNotKept(_) => {
                ServiceError::precondition(e.to_string())
            }
            StepError::FallbackInvalid(why) => {
                ServiceError::invalid("keep_as_fallback_referral_id", why)
            }
            StepError::Unannounced(_) => ServiceError::Internal(e.to_string()),
        }
    }
}

/// The event each action announces, made from the referral's payload: one arm per action, no default.
pub fn event_of(action: ReferralAction) -> Option<fn(ReferralEvent) -> Event> {
    Some(match action {
        ReferralAction::Submitted => Event::ReferralSubmitted,
        ReferralAction::Acknowledged => Event::ReferralAcknowledged,
        ReferralAction::Accepted => Event::ReferralAccepted,
        ReferralAction::Declined => Event::ReferralDeclined,
        ReferralAction::Withdrawn => Event::ReferralWithdrawn,
        ReferralAction::Placed => Event::ReferralPlaced,
        ReferralAction::Escalated => Event::ReferralEscalated,
        ReferralAction::Reminded => Event::ReferralReminded,
        ReferralAction::CourtDecisionDue => Event::ReferralCourtDecisionDue,
        ReferralAction::CourtDecisionRecorded => Event::ReferralCourtDecisionRecorded,
        ReferralAction::Arrived => Event::ReferralArrived,
        ReferralAction::Postponed => Event::ReferralPostponed,
        ReferralAction::Unspecified => return None,
    })
}

/// On whose request a step is taken, and when (`at`: `None` for the database's clock, see `clock`), with
/// the steps' times as configured, which date the deadline of a step it opens or moves.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub correlation: Uuid,
    pub at: Option<DateTime<Utc>>,
    pub times: StepTimes,
}

/// A decline as asked for: a reason, and a comment of up to 2,000 characters.
pub fn decline(reason: i32, comment: &str) -> ServiceResult<Step> {
    let reason = DeclineReason::try_from(reason)
        .ok()
        .filter(|r| *r != DeclineReason::Unspecified)
        .ok_or(StepError::ReasonMissing)?;
    check_text("comment", comment, 0, 2000)?;
    Ok(Step::Decline(reason, comment.trim().to_string()))
}

/// A withdrawal as asked for: a reason, and a comment of up to 2,000 characters.
pub fn withdraw(reason: i32, comment: &str) -> ServiceResult<Step> {
    let reason = WithdrawReason::try_from(reason)
        .ok()
        .filter(|r| *r != WithdrawReason::Unspecified)
        .ok_or(StepError::ReasonMissing)?;
    check_text("comment", comment, 0, 2000)?;
    Ok(Step::Withdraw(reason, comment.trim().to_string()))
}

/// The furthest ahead a wait may be said to last: a year, so that a mistyped year is caught.
const LONGEST_WAIT_DAYS: u64 = 366;

/// A postponement as asked for on `today`: a coded reason, a comment of up to 2,000 characters (required
/// for OTHER), and the day the holder expects to go on, from today to a year ahead (required for
/// PLACE_FREEING).
pub fn postpone(
    reason: i32,
    comment: &str,
    until: Option<&Date>,
    today: NaiveDate,
) -> ServiceResult<Step> {
    let reason = WaitingReason::try_from(reason)
        .ok()
        .filter(|r| *r != WaitingReason::Unspecified)
        .ok_or(StepError::ReasonMissing)?;
    let comment = comment.trim();
    check_text("comment", comment, 0, 2000)?;
    if reason == WaitingReason::Other && comment.is_empty() {
        return Err(ServiceError::invalid("comment", "required for OTHER"));
    }
    let until = match until {
        None if reason == WaitingReason::PlaceFreeing => {
            return Err(ServiceError::invalid("until", "required for PLACE_FREEING"));
        }
        None => None,
        Some(d) => Some(
            from_date(d).ok_or_else(|| ServiceError::invalid("until", "not a calendar date"))?,
        ),
    };
    if let Some(day) = until {
        if day < today {
            return Err(ServiceError::invalid("until", "in the past"));
        }
        if day > today + chrono::Days::new(LONGEST_WAIT_DAYS) {
            return Err(ServiceError::invalid("until", "more than a year ahead"));
        }
    }
    Ok(Step::Postpone(Postponement {
        reason,
        comment: comment.to_string(),
        until,
    }))
}

/// The court decision a step records, as asked for.
pub fn validate_court_decision(decision: Option<&LegalBasis>) -> ServiceResult<CourtDecision> {
    let d = decision.ok_or(StepError::DecisionMissing)?;
    if d.kind != LegalBasisKind::CourtDecision as i32 {
        return Err(StepError::DecisionNotByCourt.into());
    }
    check_text("decision.number", d.number.trim(), 1, 64)?;
    check_text("decision.court", d.court.trim(), 1, 200)?;
    let date = past_act_date("decision.issued_on", d.issued_on.as_ref())?;
    Ok(CourtDecision {
        number: d.number.trim().to_string(),
        date,
        court: d.court.trim().to_string(),
    })
}

/// The RPC a step comes from, for the audit trail.
pub(crate) fn rpc_of(step: &Step) -> &'static str {
    match step {
        Step::Acknowledge => "AcknowledgeReferral",
        Step::Accept => "AcceptReferral",
        Step::Decline(..) => "DeclineReferral",
        Step::Withdraw(..) => "WithdrawReferral",
        Step::ConfirmPlacement => "ConfirmPlacement",
        Step::RecordCourtDecision(_) => "RecordCourtDecision",
        Step::RecordArrival => "RecordArrival",
        Step::Postpone(_) => "PostponeStep",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::referral::{Party, ReferralFacts, ReferralState};
    use chrono::Datelike;
    use placement_messaging::EventType;
    use placement_proto::v1::{LegalBasisKind, ReferralStatus};

    #[test]
    fn every_action_announces_its_own_event() {
        let (sender, provider) = (Uuid::new_v4(), Uuid::new_v4());
        let acknowledged = ReferralState::of(ReferralFacts {
            status: ReferralStatus::Acknowledged,
            sender,
            receiving_agency: provider,
            parties: vec![Party {
                agency: provider,
                acknowledged: true,
            }],
            legal_basis: LegalBasisKind::CourtDecision,
            legal_basis_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            court_decision_recorded: false,
            escalated: false,
            reminded: false,
            court_reminded: false,
            arrived: false,
            step_reminded: false,
            step_escalated: false,
            postponements: 0,
            held_as_fallback: false,
        });
        let event = |step: &Step| {
            event_of(acknowledged.decide(step, provider).unwrap().action)
                .map(|announce| announce(ReferralEvent::default()).event_type())
        };
        assert_eq!(event(&Step::Accept), Some(EventType::ReferralAccepted));
        let decline = Step::Decline(placement_proto::v1::DeclineReason::Other, String::new());
        assert_eq!(event(&decline), Some(EventType::ReferralDeclined));
        assert!(event_of(ReferralAction::Unspecified).is_none());
    }

    fn field<T>(result: ServiceResult<T>) -> String {
        match result {
            Err(ServiceError::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_decline_or_withdrawal_needs_a_reason_and_a_short_comment() {
        let other = DeclineReason::Other as i32;
        assert!(
            decline(other, "  full  ")
                .is_ok_and(|s| s == Step::Decline(DeclineReason::Other, "full".into()))
        );
        assert_eq!(
            field(decline(DeclineReason::Unspecified as i32, "")),
            "reason"
        );
        assert_eq!(field(decline(other, &"x".repeat(2001))), "comment");
        assert_eq!(field(withdraw(-1, "")), "reason");
        assert_eq!(
            field(withdraw(WithdrawReason::Other as i32, &"x".repeat(2001))),
            "comment"
        );
    }

    #[test]
    fn a_postponement_needs_a_reason_and_what_the_reason_asks_for() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let day = |d: NaiveDate| Date {
            year: d.year(),
            month: i32::try_from(d.month()).unwrap(),
            day: i32::try_from(d.day()).unwrap(),
        };
        let code = |r: WaitingReason| r as i32;
        let ok = postpone(code(WaitingReason::DocumentsMissing), " ", None, today);
        assert!(ok.is_ok_and(|s| s
            == Step::Postpone(Postponement {
                reason: WaitingReason::DocumentsMissing,
                comment: String::new(),
                until: None,
            })));
        assert_eq!(field(postpone(0, "", None, today)), "reason");
        assert_eq!(field(postpone(99, "", None, today)), "reason");
        assert_eq!(
            field(postpone(code(WaitingReason::Other), "  ", None, today)),
            "comment"
        );
        assert_eq!(
            field(postpone(
                code(WaitingReason::AwaitingCourt),
                &"x".repeat(2001),
                None,
                today
            )),
            "comment"
        );
        let freeing = code(WaitingReason::PlaceFreeing);
        assert_eq!(field(postpone(freeing, "", None, today)), "until");
        let yesterday = today.pred_opt().unwrap();
        assert_eq!(
            field(postpone(freeing, "", Some(&day(yesterday)), today)),
            "until"
        );
        let far = today + chrono::Days::new(400);
        assert_eq!(
            field(postpone(freeing, "", Some(&day(far)), today)),
            "until"
        );
        let no_day = Date {
            year: 2026,
            month: 2,
            day: 30,
        };
        assert_eq!(field(postpone(freeing, "", Some(&no_day), today)), "until");
        assert!(postpone(freeing, "", Some(&day(today)), today).is_ok());
    }

    /// Each refusal is answered as before its enum: the same code, field and text.
    #[test]
    fn refusals_keep_their_codes_fields_and_text() {
        let cases = [
            (
                StepError::Refused(TransitionError::NotAllowed("only the sender withdraws")),
                "PERMISSION_DENIED",
                "only the sender withdraws",
            ),
            (
                StepError::Refused(TransitionError::WrongState("the referral is closed".into())),
                "FAILED_PRECONDITION",
                "the referral is closed",
            ),
            (
                StepError::Refused(TransitionError::Invalid("decision.issued_on", "too early")),
                "INVALID_ARGUMENT",
                "decision.issued_on: too early",
            ),
            (
                StepError::ReasonMissing,
                "INVALID_ARGUMENT",
                "reason: required",
            ),
            (
                StepError::DecisionMissing,
                "INVALID_ARGUMENT",
                "decision: required",
            ),
            (
                StepError::DecisionNotByCourt,
                "INVALID_ARGUMENT",
                "decision.kind: must be COURT_DECISION",
            ),
            (
                StepError::SearchPlaced,
                "FAILED_PRECONDITION",
                "the search this referral is one of is already placed",
            ),
            (
                StepError::Unannounced(ReferralAction::Unspecified),
                "INTERNAL",
                "internal error",
            ),
            (
                StepError::FallbackInvalid("not a referral of this search"),
                "INVALID_ARGUMENT",
                "keep_as_fallback_referral_id: not a referral of this search",
            ),
            (
                StepError::FallbackNotKept(TransitionError::WrongState(
                    "cannot keep as a fallback a referral in status SUBMITTED".into(),
                )),
                "FAILED_PRECONDITION",
                "keep_as_fallback_referral_id: cannot keep as a fallback a referral in status SUBMITTED",
            ),
        ];
        for (refusal, code, message) in cases {
            let e = ServiceError::from(refusal);
            assert_eq!(e.code_name(), code, "{message}");
            assert_eq!(tonic::Status::from(e).message(), message);
        }
        assert_eq!(
            field::<()>(Err(StepError::DecisionNotByCourt.into())),
            "decision.kind"
        );
        assert!(matches!(
            ServiceError::from(StepError::Unannounced(ReferralAction::Unspecified)),
            ServiceError::Internal(m) if m == "the action Unspecified announces no event"
        ));
    }

    mod fuzz {
        use super::super::*;
        use placement_proto::v1::RecordCourtDecisionRequest;
        use proptest::prelude::*;
        use prost::Message;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Whatever bytes arrive as a court decision, validation answers (and never panics).
            #[test]
            fn random_bytes_as_a_court_decision(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
                if let Ok(req) = RecordCourtDecisionRequest::decode(bytes.as_slice()) {
                    let _ = validate_court_decision(req.decision.as_ref());
                }
            }
        }
    }
}
