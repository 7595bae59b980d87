//! Who may do what with a referral: the one place the referrals service decides it (deny by default).
//!
//! Two questions, asked in this order by every RPC: does the caller's token carry a role for this kind of
//! act ([`require`]), and does the caller's agency stand in this referral ([`may_read`] for reads; the state
//! machine in [`crate::referral`] for steps, which knows who acts at which point)? A referral the caller
//! may not see is NOT_FOUND, so nobody learns whether another agency's referral exists.

use placement_platform::{
    caller::{Caller, NATIONAL_AUTHORITY, Role},
    error::{ServiceError, ServiceResult},
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    agencies,
    record::model::{PartyRow, ReferralRow},
    referral::{Step, StepKind, StepWeight},
    search::model::SearchRow,
};

/// Kinds of act, each with the roles that may do it.
pub use placement_platform::caller::Act;

/// The kind of act a step is.
pub fn act_of(step: &Step) -> Act {
    act_of_kind(step.kind())
}

/// The kind of act a kind of step is, as the model weighs it.
pub fn act_of_kind(kind: StepKind) -> Act {
    match kind.weight() {
        StepWeight::Work => Act::Work,
        StepWeight::Decision => Act::Decide,
    }
}

/// PERMISSION_DENIED unless the caller's roles allow `act`.
pub fn require(caller: &Caller, act: Act) -> ServiceResult<()> {
    caller.require(act.roles())
}

/// Reading every referral's changes (to build a read model elsewhere): the national authority's systems and
/// operators only, as it is the whole country's traffic.
pub fn require_country_reader(caller: &Caller) -> ServiceResult<()> {
    if caller.is_operator()
        || (caller.has(Role::Integration) && caller.agency_id == NATIONAL_AUTHORITY)
    {
        Ok(())
    } else {
        Err(ServiceError::denied(
            "only the national authority's systems (integration) and operators read every referral's changes",
        ))
    }
}

/// Whether the caller's agency may see the referral: its sender, a party that must acknowledge it, or the
/// RDSA of either district it touches.
pub async fn may_read(
    conn: &mut PgConnection,
    agency: Uuid,
    row: &ReferralRow,
    parties: &[PartyRow],
) -> ServiceResult<bool> {
    if agency == row.sender_agency_id
        || row.receiving_rdsa_agency_id == Some(agency)
        || parties.iter().any(|p| p.agency_id == agency)
    {
        return Ok(true);
    }
    let rdsa_of = agencies::store::region_of_rdsa(conn, agency).await?;
    Ok(rdsa_of.is_some_and(|region| {
        region == row.sender_region_code || region == row.receiving_region_code
    }))
}

/// Whether the caller's agency may see a search whole (every referral of it side by side): its sender
/// only. Each party sees its own referral of it, as any referral.
pub fn may_read_search(agency: Uuid, search: &SearchRow) -> bool {
    agency == search.sender_agency_id
}

/// NOT_FOUND for a search the caller may not see.
pub fn hidden_search() -> ServiceError {
    ServiceError::not_found("search")
}

/// NOT_FOUND for a referral the caller may not see.
pub fn hidden() -> ServiceError {
    ServiceError::not_found("referral")
}

/// The agency acting in a step, for the state machine: standing is decided there.
pub fn actor(caller: &Caller) -> Uuid {
    caller.agency_id
}
