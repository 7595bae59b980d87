//! Places follow referrals: accepted holds them, withdrawn releases them, placed turns held into occupied.
//! Each referral's effect is recorded in `place_holds`, so the same or an older event never applies twice,
//! even when events arrive out of order.

pub mod model;
pub mod store;

use placement_messaging::{Event, HandleError, IncomingEvent, Outbox};
use placement_proto::v1::{CapacityChange, ReferralEvent, ReferralStatus};
use sqlx::{Postgres, Transaction};

use crate::{
    EVENTS,
    social_services::{model::MAX_SERVICE_CAPACITY, store::lock_service},
};
pub use model::ReferralStep;
use model::{Hold, HoldState, transition};

/// Moves the places of the referral's service as `step` says, once per referral and state.
pub async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    step: ReferralStep,
    referral: &ReferralEvent,
    event: &IncomingEvent,
) -> Result<(), HandleError> {
    let referral_id = placement_messaging::payload_id("referral_id", &referral.referral_id)?;
    let service_id = placement_messaging::payload_id("service_id", &referral.service_id)?;
    let places = (1..=MAX_SERVICE_CAPACITY)
        .contains(&referral.places)
        .then(|| i32::try_from(referral.places).ok())
        .flatten()
        .ok_or_else(|| HandleError::permanent(format!("places is {}", referral.places)))?;
    let version = event.version()?;

    if lock_service(tx, service_id).await?.is_none() {
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
    let hold = Hold {
        referral_id,
        service_id,
        places,
        state: state.as_str(),
        referral_version: version,
    };
    if change == CapacityChange::Unspecified {
        store::set_hold(tx, &hold).await?;
        return Ok(());
    }
    let row = store::set_hold_and_move_places(tx, &hold, held * places, occupied * places).await?;
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
