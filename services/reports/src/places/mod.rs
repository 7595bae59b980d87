//! The services' places as the reports learn them from the directory's events (or its listing, when the
//! read model is rebuilt): the newest version of each service wins.

pub mod model;
pub mod store;

use placement_messaging::{HandleError, IncomingEvent};
use placement_proto::v1::ServiceCapacityChanged;
use sqlx::{Postgres, Transaction};

use model::ServiceNow;

/// Notes a service's places, the newest version winning.
pub async fn learn(
    tx: &mut Transaction<'_, Postgres>,
    change: &ServiceCapacityChanged,
    event: &IncomingEvent,
) -> Result<(), HandleError> {
    Ok(store::note_service(tx, &service_now(change, event)?).await?)
}

/// A service's places as its directory event tells them (the event's version is the service's).
fn service_now(
    s: &ServiceCapacityChanged,
    event: &IncomingEvent,
) -> Result<ServiceNow, HandleError> {
    let places = [s.capacity, s.free_places, s.held_places, s.occupied_places];
    ServiceNow::checked(
        &s.service_id,
        &s.provider_agency_id,
        &s.region_code,
        s.service_type,
        s.status,
        places,
        event.aggregate_version(),
    )
    .map(|service| service.taking_ages(s.min_age, s.max_age))
    .map_err(HandleError::permanent)
}
