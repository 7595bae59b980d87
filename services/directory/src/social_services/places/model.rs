//! What a referral's step does to its service's places, given what its earlier steps did: decided here,
//! without the database, so that the same or an older event never applies twice.

use placement_proto::v1::{CapacityChange, ReferralStatus};
use uuid::Uuid;

/// The steps of a referral that move its service's places (routed here by [`crate::events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralStep {
    Accepted,
    Withdrawn,
    Placed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    Held,
    Released,
    Occupied,
}

impl HoldState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "HELD",
            Self::Released => "RELEASED",
            Self::Occupied => "OCCUPIED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HELD" => Some(Self::Held),
            "RELEASED" => Some(Self::Released),
            "OCCUPIED" => Some(Self::Occupied),
            _ => None,
        }
    }
}

/// The places a referral holds at its service, as `place_holds` records them.
#[derive(Debug, Clone, Copy)]
pub struct Hold<'a> {
    pub referral_id: Uuid,
    pub service_id: Uuid,
    pub places: i32,
    pub state: &'a str,
    /// The version of the referral whose event recorded this.
    pub referral_version: i64,
}

/// What an event does to a referral's places, given what was done before: (new state, held delta,
/// occupied delta, the change to announce). None: nothing to do.
pub fn transition(
    step: ReferralStep,
    previous: Option<HoldState>,
    withdrawn_from: ReferralStatus,
) -> Option<(HoldState, i32, i32, CapacityChange)> {
    use HoldState::*;
    use ReferralStep::*;
    match (step, previous) {
        (Accepted, None) => Some((Held, 1, 0, CapacityChange::Held)),
        (Withdrawn, Some(Held)) => Some((Released, -1, 0, CapacityChange::Released)),
        // Withdrawn after acceptance, but the acceptance has not arrived yet: remember, so it holds nothing.
        (Withdrawn, None) if withdrawn_from == ReferralStatus::Accepted => {
            Some((Released, 0, 0, CapacityChange::Unspecified))
        }
        (Placed, Some(Held)) => Some((Occupied, -1, 1, CapacityChange::Occupied)),
        (Placed, None) => Some((Occupied, 0, 1, CapacityChange::Occupied)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HoldState::*;
    use ReferralStep::{Accepted, Placed, Withdrawn};

    #[test]
    fn accepted_then_placed_holds_then_occupies() {
        let (s, h, o, _) = transition(Accepted, None, ReferralStatus::Unspecified).unwrap();
        assert_eq!((s, h, o), (Held, 1, 0));
        let (s, h, o, _) = transition(Placed, Some(Held), ReferralStatus::Unspecified).unwrap();
        assert_eq!((s, h, o), (Occupied, -1, 1));
    }

    #[test]
    fn stale_or_repeated_events_do_nothing() {
        assert!(transition(Accepted, Some(Held), ReferralStatus::Unspecified).is_none());
        assert!(transition(Accepted, Some(Released), ReferralStatus::Unspecified).is_none());
        assert!(transition(Accepted, Some(Occupied), ReferralStatus::Unspecified).is_none());
        assert!(transition(Withdrawn, Some(Released), ReferralStatus::Accepted).is_none());
        assert!(transition(Placed, Some(Occupied), ReferralStatus::Unspecified).is_none());
    }

    #[test]
    fn withdrawal_before_acceptance_arrives_blocks_the_late_hold() {
        let (s, h, _, change) = transition(Withdrawn, None, ReferralStatus::Accepted).unwrap();
        assert_eq!((s, h, change), (Released, 0, CapacityChange::Unspecified));
        assert!(transition(Accepted, Some(Released), ReferralStatus::Unspecified).is_none());
        // A referral withdrawn before it was ever accepted held nothing.
        assert!(transition(Withdrawn, None, ReferralStatus::Submitted).is_none());
    }
}
