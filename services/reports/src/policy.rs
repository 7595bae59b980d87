//! Who may see which figures: the one place the reports service decides it (deny by default). A district's
//! figures are its RDSA's and the national authorities'; an agency's (what a DSA sent) its own, its
//! district's RDSA's and the national authorities'; everyone else sees none.

use placement_platform::{
    caller::{Act, Caller, NATIONAL_AUTHORITY},
    error::{ServiceError, ServiceResult},
};
use placement_proto::v1::AgencyKind;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::agencies::store;

pub async fn may_see_district(
    conn: &mut PgConnection,
    caller: &Caller,
    region: &str,
) -> ServiceResult<()> {
    caller.require(Act::Read.roles())?;
    district_standing(conn, caller, region).await
}

/// Sending a district's digest is work, not reading (a system with only the `integration` role may
/// not), by those who may see the district's figures.
pub async fn may_send_digest(
    conn: &mut PgConnection,
    caller: &Caller,
    region: &str,
) -> ServiceResult<()> {
    caller.require(Act::Work.roles())?;
    district_standing(conn, caller, region).await
}

async fn district_standing(
    conn: &mut PgConnection,
    caller: &Caller,
    region: &str,
) -> ServiceResult<()> {
    if caller.agency_id == NATIONAL_AUTHORITY {
        return Ok(());
    }
    match store::agency(conn, caller.agency_id).await? {
        Some((AgencyKind::NationalAuthority, _)) => Ok(()),
        Some((AgencyKind::Rdsa, own)) if own == region => Ok(()),
        _ => Err(ServiceError::denied(
            "a district's figures are for its RDSA and the national authorities",
        )),
    }
}

/// One agency's figures: its own, its district's RDSA's and the national authorities'.
pub async fn may_see_agency(
    conn: &mut PgConnection,
    caller: &Caller,
    agency: Uuid,
) -> ServiceResult<()> {
    caller.require(Act::Read.roles())?;
    if caller.agency_id == NATIONAL_AUTHORITY || caller.agency_id == agency {
        return Ok(());
    }
    let theirs = store::agency(conn, agency).await?.map(|(_, region)| region);
    match store::agency(conn, caller.agency_id).await? {
        Some((AgencyKind::NationalAuthority, _)) => Ok(()),
        Some((AgencyKind::Rdsa, own)) if theirs.as_deref() == Some(own.as_str()) => Ok(()),
        _ => Err(ServiceError::denied(
            "an agency's figures are for it, its district's RDSA and the national authorities",
        )),
    }
}

/// Rebuilding the figures: an operator of the national authority.
pub fn may_rebuild(caller: &Caller) -> ServiceResult<()> {
    caller.require_operator()
}

/// The country's figures: the national authorities.
pub async fn may_see_country(conn: &mut PgConnection, caller: &Caller) -> ServiceResult<()> {
    caller.require(Act::Read.roles())?;
    if caller.agency_id == NATIONAL_AUTHORITY {
        return Ok(());
    }
    match store::agency(conn, caller.agency_id).await? {
        Some((AgencyKind::NationalAuthority, _)) => Ok(()),
        _ => Err(ServiceError::denied(
            "the country's figures are for the national authorities",
        )),
    }
}
