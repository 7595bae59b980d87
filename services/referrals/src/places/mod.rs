//! The services' free places, as this service keeps them from the directory's events, and which
//! acceptances the directory has applied: an acceptance is checked against them (see `steps`).

pub(crate) mod store;

use placement_messaging::{HandleError, IncomingEvent};
use placement_platform::error::{ServiceError, ServiceResult};
use placement_proto::v1::{CapacityChange, ServiceCapacityChanged};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::record::model::ReferralRow;

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
    store::note_free_places(tx, service_id, free_places, version).await?;
    let applied_hold = matches!(
        CapacityChange::try_from(change.change),
        Ok(CapacityChange::Held | CapacityChange::Occupied)
    );
    if applied_hold && let Ok(referral_id) = Uuid::parse_str(&change.referral_id) {
        store::note_hold_applied(tx, referral_id).await?;
    }
    Ok(())
}

/// Free places as the directory last announced them, less the places of acceptances the directory has
/// not applied yet. The service's row is locked, so concurrent acceptances for it queue up here.
pub(crate) async fn check_free_places(
    conn: &mut PgConnection,
    row: &ReferralRow,
) -> ServiceResult<()> {
    let Some((announced, pending)) = store::free_places_of(conn, row.service_id).await? else {
        return Err(ServiceError::Unavailable(
            "the service's places are not known yet; retry".into(),
        ));
    };
    let free = i64::from(announced) - pending;
    if free < i64::from(row.places) {
        return Err(ServiceError::precondition(format!(
            "the service has {} free places; the referral needs {}",
            free.max(0),
            row.places
        )));
    }
    Ok(())
}
