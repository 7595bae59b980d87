//! What this service keeps of the directory, from its events: the services' free places and which
//! acceptances the directory has applied (acceptance checks against these, see `workflow`), and the agencies'
//! kinds and districts (submission finds the parties with them, see `api`).

use placement_messaging::{HandleError, IncomingEvent};
use placement_proto::v1::{AgencyKind, AgencyRegistered, CapacityChange, ServiceCapacityChanged};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// Remembers a registered agency's kind and district.
pub async fn remember_agency(
    tx: &mut Transaction<'_, Postgres>,
    agency: &AgencyRegistered,
) -> Result<(), HandleError> {
    let id = placement_messaging::payload_id("agency_id", &agency.agency_id)?;
    let kind = AgencyKind::try_from(agency.kind).unwrap_or(AgencyKind::Unspecified);
    crate::store::remember_agency(tx, id, kind, &agency.region_code).await?;
    Ok(())
}

/// Notes a service's free places (only a newer figure replaces the one we have), and whether the
/// directory applied an acceptance's hold.
pub async fn note_places(
    tx: &mut Transaction<'_, Postgres>,
    change: &ServiceCapacityChanged,
    event: &IncomingEvent,
) -> Result<(), HandleError> {
    let service_id = placement_messaging::payload_id("service_id", &change.service_id)?;
    let free_places = i32::try_from(change.free_places)
        .map_err(|_| HandleError::permanent("free_places beyond INTEGER"))?;
    let version = event.version()?;
    crate::store::note_free_places(tx, service_id, free_places, version).await?;
    let applied_hold = matches!(
        CapacityChange::try_from(change.change),
        Ok(CapacityChange::Held | CapacityChange::Occupied)
    );
    if applied_hold && let Ok(referral_id) = Uuid::parse_str(&change.referral_id) {
        crate::store::note_hold_applied(tx, referral_id).await?;
    }
    Ok(())
}
