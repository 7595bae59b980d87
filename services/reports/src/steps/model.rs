//! A referral's step and where the referral stands after it, as the reports keep them, and which side of a
//! referral a district is on.

use chrono::{DateTime, Utc};
use placement_proto::v1::{ReferralAction, ReferralStatus, ReferralStepName, WaitingReason};
use uuid::Uuid;

/// A referral as an event describes it now.
pub struct ReferralNow {
    pub id: Uuid,
    pub sender_agency_id: Uuid,
    pub sender_region_code: String,
    pub receiving_agency_id: Uuid,
    pub receiving_region_code: String,
    pub foster_team_agency_id: Uuid,
    pub service_id: Uuid,
    pub status: ReferralStatus,
    pub ack_deadline: Option<DateTime<Utc>>,
    /// The places asked for (its children).
    pub places: i32,
    pub version: i64,
    /// The children's ages at submission (see `Referral.youngest_child_age`); `None` when not told.
    pub youngest_child_age: Option<i32>,
    pub oldest_child_age: Option<i32>,
    /// The search it is one request of; `None` for a referral sent alone.
    pub search_id: Option<Uuid>,
    /// The reference people say; empty when not told.
    pub reference: String,
    /// The step open now, when it is due, and why its holder said it waits; `None` when not told.
    pub step: Option<ReferralStepName>,
    pub step_deadline: Option<DateTime<Utc>>,
    pub waiting_reason: Option<WaitingReason>,
}

/// A told enum value, `None` for UNSPECIFIED (or a value this release does not know).
pub fn told<T: TryFrom<i32>>(value: i32) -> Option<T> {
    (value != 0).then(|| T::try_from(value).ok()).flatten()
}

pub struct Step {
    pub referral_id: Uuid,
    pub version: i64,
    pub action: ReferralAction,
    pub from_status: Option<ReferralStatus>,
    pub to_status: ReferralStatus,
    pub actor_agency_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    /// The DeclineReason or WithdrawReason of a decline or withdrawal; 0 otherwise.
    pub reason_code: i32,
    /// The referral's districts, so a district's steps are found without the referral.
    pub sender_region_code: String,
    pub receiving_region_code: String,
}

/// The milestones a step may be the first to reach (the earliest such step wins), each at the step's time,
/// and why its referral ended when it ends it; `None` where the step reaches nothing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Milestones {
    pub submitted_at: Option<DateTime<Utc>>,
    pub first_answer_at: Option<DateTime<Utc>>,
    pub all_acks_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub declined_at: Option<DateTime<Utc>>,
    pub placed_at: Option<DateTime<Utc>>,
    /// The DeclineReason or WithdrawReason: a referral ends once, and keeps why for the figures by reason.
    pub end_reason: Option<i32>,
}

impl Milestones {
    pub fn of(s: &Step) -> Milestones {
        let at = Some(s.at);
        match s.action {
            ReferralAction::Submitted => Milestones {
                submitted_at: at,
                ..Milestones::default()
            },
            ReferralAction::Acknowledged => Milestones {
                first_answer_at: at,
                all_acks_at: at.filter(|_| s.to_status == ReferralStatus::Acknowledged),
                ..Milestones::default()
            },
            ReferralAction::Accepted => Milestones {
                accepted_at: at,
                ..Milestones::default()
            },
            // A decline before any acknowledgement is the first answer too.
            ReferralAction::Declined => Milestones {
                declined_at: at,
                first_answer_at: at,
                end_reason: Some(s.reason_code),
                ..Milestones::default()
            },
            ReferralAction::Withdrawn => Milestones {
                end_reason: Some(s.reason_code),
                ..Milestones::default()
            },
            ReferralAction::Placed => Milestones {
                placed_at: at,
                ..Milestones::default()
            },
            _ => Milestones::default(),
        }
    }
}

/// An age as kept, when it was told (any real one fits an INT).
pub fn age(told: Option<u32>) -> Option<i32> {
    told.and_then(|a| i32::try_from(a).ok())
}

/// Which side of a referral a district is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Sender,
    Receiver,
}

impl Side {
    /// Its districts' column in `referrals` and `steps`.
    pub fn column(self) -> &'static str {
        match self {
            Side::Sender => "sender_region_code",
            Side::Receiver => "receiving_region_code",
        }
    }

    /// The side as the day counts name it.
    pub fn name(self) -> &'static str {
        match self {
            Side::Sender => "sender",
            Side::Receiver => "receiver",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(action: ReferralAction, to_status: ReferralStatus) -> Step {
        Step {
            referral_id: Uuid::nil(),
            version: 2,
            action,
            from_status: Some(ReferralStatus::Submitted),
            to_status,
            actor_agency_id: None,
            at: DateTime::from_timestamp(1_780_000_000, 0).expect("in range"),
            reason_code: 3,
            sender_region_code: "SFO".into(),
            receiving_region_code: "VRC".into(),
        }
    }

    /// Only the last acknowledgement (the one that makes the referral ACKNOWLEDGED) reaches every
    /// acknowledgement; any one is a first answer, and so is a decline, which also ends the referral.
    #[test]
    fn each_step_reaches_its_milestones() {
        use ReferralAction as A;
        use ReferralStatus as S;
        let at = step(A::Submitted, S::Submitted).at;
        let one_ack = Milestones::of(&step(A::Acknowledged, S::Submitted));
        assert_eq!(
            (one_ack.first_answer_at, one_ack.all_acks_at),
            (Some(at), None)
        );
        let last_ack = Milestones::of(&step(A::Acknowledged, S::Acknowledged));
        assert_eq!(
            (last_ack.first_answer_at, last_ack.all_acks_at),
            (Some(at), Some(at))
        );
        let declined = Milestones::of(&step(A::Declined, S::Declined));
        assert_eq!(
            declined,
            Milestones {
                declined_at: Some(at),
                first_answer_at: Some(at),
                end_reason: Some(3),
                ..Milestones::default()
            }
        );
        let withdrawn = Milestones::of(&step(A::Withdrawn, S::Withdrawn));
        assert_eq!(
            withdrawn,
            Milestones {
                end_reason: Some(3),
                ..Milestones::default()
            }
        );
        assert_eq!(
            Milestones::of(&step(A::Submitted, S::Submitted)).submitted_at,
            Some(at)
        );
        assert_eq!(
            Milestones::of(&step(A::Accepted, S::Accepted)).accepted_at,
            Some(at)
        );
        assert_eq!(
            Milestones::of(&step(A::Placed, S::Placed)).placed_at,
            Some(at)
        );
        for nothing in [A::Escalated, A::Reminded, A::Arrived, A::Postponed] {
            assert_eq!(
                Milestones::of(&step(nothing, S::Accepted)),
                Milestones::default()
            );
        }
    }
}
