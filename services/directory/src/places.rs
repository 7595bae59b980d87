//! Places follow referrals: accepted holds them, withdrawn releases them, placed turns held into occupied.
//! Each referral's effect is recorded in `place_holds`, so the same or an older event never applies twice,
//! even when events arrive out of order.

use placement_messaging::{Event, HandleError, IncomingEvent, Outbox};
use placement_proto::v1::{CapacityChange, ReferralEvent, ReferralStatus};
use sqlx::{Postgres, Transaction};

use crate::{EVENTS, store};

/// The steps of a referral that move its service's places (routed here by [`crate::events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralStep {
    Accepted,
    Withdrawn,
    Placed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldState {
    Held,
    Released,
    Occupied,
}

impl HoldState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Held => "HELD",
            Self::Released => "RELEASED",
            Self::Occupied => "OCCUPIED",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "HELD" => Some(Self::Held),
            "RELEASED" => Some(Self::Released),
            "OCCUPIED" => Some(Self::Occupied),
            _ => None,
        }
    }
}

/// What an event does to a referral's places, given what was done before: (new state, held delta,
/// occupied delta, the change to announce). None: nothing to do.
fn transition(
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

/// Moves the places of the referral's service as `step` says, once per referral and state.
pub async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    step: ReferralStep,
    referral: &ReferralEvent,
    event: &IncomingEvent,
) -> Result<(), HandleError> {
    let referral_id = placement_messaging::payload_id("referral_id", &referral.referral_id)?;
    let service_id = placement_messaging::payload_id("service_id", &referral.service_id)?;
    let places = (1..=crate::social_service::MAX_SERVICE_CAPACITY)
        .contains(&referral.places)
        .then(|| i32::try_from(referral.places).ok())
        .flatten()
        .ok_or_else(|| HandleError::permanent(format!("places is {}", referral.places)))?;
    let version = event.version()?;

    if store::lock_service(tx, service_id).await?.is_none() {
        return Err(HandleError::missing(format!(
            "unknown service {service_id}"
        )));
    }
    let previous = store::lock_hold_state(tx, referral_id)
        .await?
        .as_deref()
        .and_then(HoldState::parse);
    let withdrawn_from =
        ReferralStatus::try_from(referral.previous_status).unwrap_or(ReferralStatus::Unspecified);
    let Some((state, held, occupied, change)) = transition(step, previous, withdrawn_from) else {
        tracing::debug!(%referral_id, ?step, ?previous, "no change to places");
        return Ok(());
    };
    store::set_hold(tx, referral_id, service_id, places, state.as_str(), version).await?;
    if change == CapacityChange::Unspecified {
        return Ok(());
    }
    let row = store::move_places(tx, service_id, held * places, occupied * places).await?;
    if row.held_places + row.occupied_places > row.capacity {
        // An acceptance raced a capacity cut; the places were promised, so they are kept.
        tracing::warn!(%service_id, capacity = row.capacity, held = row.held_places,
            occupied = row.occupied_places, "service is over capacity");
    }
    let announcement = EVENTS.build(
        Event::ServiceCapacityChanged(row.capacity_event(
            change,
            Some(referral_id),
            referral.places,
        )),
        service_id,
        placement_platform::numbers::serial(row.version),
        event.correlation_id(),
    );
    Outbox::enqueue(tx, &announcement).await?;
    tracing::info!(%service_id, %referral_id, change = change.as_str_name(), places, "places updated");
    Ok(())
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
