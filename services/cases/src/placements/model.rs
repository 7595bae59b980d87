//! The steps of a referral a case follows, and what the case knows of each of its referrals.

use uuid::Uuid;

/// The steps of a referral the case follows (routed here by [`crate::events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralStep {
    Submitted,
    Declined,
    Withdrawn,
    Placed,
}

impl ReferralStep {
    /// Whether the referral is still in progress after this step.
    pub fn active(self) -> bool {
        self == ReferralStep::Submitted
    }

    /// Open from submission; placed stays readable; declined or withdrawn is closed to the receiving side.
    pub fn open_or_placed(self) -> bool {
        matches!(self, ReferralStep::Submitted | ReferralStep::Placed)
    }
}

/// What the cases service knows of one referral of a case, as of the referral's `version`.
pub struct CaseReferral {
    pub referral_id: Uuid,
    pub case_id: Uuid,
    pub active: bool,
    pub version: i64,
    pub receiving_agency_id: Option<Uuid>,
    pub foster_team_agency_id: Option<Uuid>,
    pub open_or_placed: bool,
}
