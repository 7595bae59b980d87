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
