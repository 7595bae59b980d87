//! The agencies this service knows of from the directory's events: each one's kind and district.
//! Submission finds a referral's districts and parties with them (see `submission`), and the policy finds
//! the district an RDSA oversees (see `policy`).

pub(crate) mod store;

use placement_messaging::HandleError;
use placement_proto::v1::{AgencyKind, AgencyRegistered};
use sqlx::{Postgres, Transaction};

/// Remembers a registered agency's kind and district.
pub async fn remember_agency(
    tx: &mut Transaction<'_, Postgres>,
    agency: &AgencyRegistered,
) -> Result<(), HandleError> {
    let id = placement_messaging::payload_id("agency_id", &agency.agency_id)?;
    let kind = AgencyKind::try_from(agency.kind).unwrap_or(AgencyKind::Unspecified);
    store::remember_agency(tx, id, kind, &agency.region_code).await?;
    Ok(())
}
