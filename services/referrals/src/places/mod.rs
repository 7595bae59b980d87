//! The services' free places, as this service keeps them from the directory's events, and which
//! acceptances the directory has applied: an acceptance is checked against them (see `steps`). The events
//! also say what each service is and where, so the services that fit a search are found here.

pub mod model;
pub(crate) mod store;

use placement_messaging::{HandleError, IncomingEvent};
use placement_platform::error::{ServiceError, ServiceResult};
use placement_proto::v1::{CapacityChange, ServiceCapacityChanged};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::record::model::ReferralRow;
use model::{FitQuery, MAX_FITTING, ServiceFacts, ServiceFitRow};

/// Why an acceptance cannot take its places now.
#[derive(Debug, thiserror::Error)]
pub enum PlacesError {
    /// No event of the directory told this service's places yet; one soon will.
    #[error("the service's places are not known yet; retry")]
    NotKnownYet,
    #[error("the service has {free} free places; the referral needs {needed}")]
    TooFew { free: i64, needed: i32 },
}

impl From<PlacesError> for ServiceError {
    fn from(e: PlacesError) -> Self {
        match e {
            PlacesError::NotKnownYet => ServiceError::Unavailable(e.to_string()),
            PlacesError::TooFew { .. } => ServiceError::precondition(e.to_string()),
        }
    }
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
    let facts = ServiceFacts::of(change, service_id, free_places);
    let applied_hold = matches!(
        CapacityChange::try_from(change.change),
        Ok(CapacityChange::Held | CapacityChange::Occupied)
    );
    let held = (applied_hold)
        .then(|| Uuid::parse_str(&change.referral_id).ok())
        .flatten();
    store::note_service(tx, &facts, version, held).await?;
    Ok(())
}

/// The services that fit (see [`FitQuery`]) whose age ranges take the children, as this service knows them
/// from the directory's events: most free places first, then by id, at most [`MAX_FITTING`].
pub async fn fitting(
    conn: &mut PgConnection,
    asked: &FitQuery<'_>,
) -> Result<Vec<ServiceFitRow>, sqlx::Error> {
    let mut found = store::candidates(conn, asked).await?;
    found.retain(|s| s.takes(asked.ages));
    found.truncate(MAX_FITTING);
    Ok(found)
}

/// Free places as the directory last announced them, less the places of acceptances the directory has
/// not applied yet. The service's row is locked, so concurrent acceptances for it queue up here.
pub(crate) async fn check_free_places(
    conn: &mut PgConnection,
    row: &ReferralRow,
) -> ServiceResult<()> {
    let Some((announced, pending)) = store::free_places_of(conn, row.service_id).await? else {
        return Err(PlacesError::NotKnownYet.into());
    };
    let free = i64::from(announced) - pending;
    if free < i64::from(row.places) {
        return Err(PlacesError::TooFew {
            free: free.max(0),
            needed: row.places,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal is answered as before its enum: the same code and text.
    #[test]
    fn refusals_keep_their_codes_and_text() {
        let cases = [
            (
                PlacesError::NotKnownYet,
                "UNAVAILABLE",
                "the service's places are not known yet; retry",
            ),
            (
                PlacesError::TooFew { free: 1, needed: 2 },
                "FAILED_PRECONDITION",
                "the service has 1 free places; the referral needs 2",
            ),
        ];
        for (refusal, code, message) in cases {
            let e = ServiceError::from(refusal);
            assert_eq!(e.code_name(), code, "{message}");
            assert_eq!(tonic::Status::from(e).message(), message);
        }
    }
}
