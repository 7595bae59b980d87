//! Who may do what with a case: the one place the cases service decides it (deny by default).
//!
//! The owning DSA works its cases (caseworker, supervisor; closing is a supervisor's decision; its systems
//! read with `integration`). The receiving side of a referral (the agency that runs the service and the
//! district's foster-care team) reads a reduced view (the children, without names, personal numbers, current
//! setting or placement history) while that referral is open or placed with them. Anyone else gets
//! NOT_FOUND, so nobody learns whether another agency's case exists.

use placement_platform::{
    caller::Caller,
    error::{ServiceError, ServiceResult},
};
use sqlx::PgConnection;
use uuid::Uuid;

pub use placement_platform::caller::Act;

pub fn require(caller: &Caller, act: Act) -> ServiceResult<()> {
    caller.require(act.roles())
}

/// How much of a case the caller may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The owner: everything.
    Full,
    /// The receiving side of an open or placed referral: the children as the placement needs them.
    Receiving,
}

/// The view the caller has of a case owned by `owner`, or NOT_FOUND.
pub async fn view(
    conn: &mut PgConnection,
    caller: &Caller,
    case_id: Uuid,
    owner: Uuid,
) -> ServiceResult<View> {
    if caller.agency_id == owner {
        return Ok(View::Full);
    }
    if crate::placements::store::receives_case(conn, case_id, caller.agency_id).await? {
        Ok(View::Receiving)
    } else {
        Err(hidden())
    }
}

/// Only the owner changes a case; to anyone else it does not exist.
pub fn require_owner(caller: &Caller, owner: Uuid) -> ServiceResult<()> {
    if caller.agency_id == owner {
        Ok(())
    } else {
        Err(hidden())
    }
}

pub fn hidden() -> ServiceError {
    ServiceError::not_found("case")
}
