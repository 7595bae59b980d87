//! The agencies the reports know: each one's kind and district, learnt from the directory's events (or its
//! listing, when the read model is rebuilt), so that the figures know whose they are and the digest knows
//! each district's RDSAs.

pub mod store;

use placement_messaging::{HandleError, payload_id};
use placement_proto::v1::{AgencyKind, AgencyRegistered};
use sqlx::{Postgres, Transaction};

/// Notes which district an RDSA answers for (and every agency's kind).
pub async fn learn(
    tx: &mut Transaction<'_, Postgres>,
    agency: &AgencyRegistered,
) -> Result<(), HandleError> {
    let kind = AgencyKind::try_from(agency.kind)
        .map_err(|_| HandleError::permanent("unknown agency kind"))?;
    Ok(store::note_agency(
        tx,
        payload_id("agency_id", &agency.agency_id)?,
        kind,
        &agency.region_code,
    )
    .await?)
}
