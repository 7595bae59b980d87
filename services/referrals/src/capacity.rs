//! What this service keeps of the directory, from its events: the services' free places and which
//! acceptances the directory has applied (acceptance checks against these, see `workflow`), and the agencies'
//! kinds and districts (submission finds the parties with them, see `api`).

use placement_messaging::{EventHandler, EventType, HandleError, IncomingEvent};
use placement_proto::v1::{AgencyKind, AgencyRegistered, CapacityChange, ServiceCapacityChanged};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

pub const BINDINGS: &[&str] = &[
    EventType::ServiceRegistered.as_str(),
    EventType::ServiceCapacityChanged.as_str(),
    EventType::AgencyRegistered.as_str(),
];

pub struct ServicePlaces;

impl EventHandler for ServicePlaces {
    type Applied = ();

    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        if !BINDINGS.contains(&event.event_type().as_str()) {
            return Err(HandleError::permanent(format!(
                "unexpected event type {}",
                event.event_type()
            )));
        }
        if event.event_type() == EventType::AgencyRegistered {
            let agency: AgencyRegistered = event.payload()?;
            let id = placement_messaging::payload_id("agency_id", &agency.agency_id)?;
            let kind = AgencyKind::try_from(agency.kind).unwrap_or(AgencyKind::Unspecified);
            crate::store::remember_agency(tx, id, kind, &agency.region_code).await?;
            return Ok(());
        }
        let change: ServiceCapacityChanged = event.payload()?;
        let service_id = placement_messaging::payload_id("service_id", &change.service_id)?;
        // Only a newer figure replaces the one we have.
        let free_places = i32::try_from(change.free_places)
            .map_err(|_| HandleError::permanent("free_places beyond INTEGER"))?;
        let version = i64::try_from(event.envelope.aggregate_version)
            .map_err(|_| HandleError::permanent("aggregate_version beyond BIGINT"))?;
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
}
