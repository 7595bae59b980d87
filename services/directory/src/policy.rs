//! Who may do what in the directory: the one place it is decided (deny by default).
//!
//! Reading the directory (districts, municipalities, agencies, services) is open to every authenticated
//! caller: agencies must find each other. Changing it needs the `directory_admin` role, and then the
//! agency's standing: a national authority changes anything; an RDSA registers agencies and services of its
//! district; an agency runs its own services' capacity and its own notification endpoints.

use placement_platform::{
    caller::{Caller, Role},
    error::{ServiceError, ServiceResult},
};

/// Creating agencies and services, changing capacity, managing notification endpoints.
pub fn require_admin(caller: &Caller) -> ServiceResult<()> {
    caller.require(&[Role::DirectoryAdmin])
}

/// Listing notification endpoints (they name addresses and URLs): the agency's admins, or the national
/// authority's operators.
pub fn require_endpoint_reader(caller: &Caller) -> ServiceResult<()> {
    if caller.has(Role::DirectoryAdmin) || caller.is_operator() {
        Ok(())
    } else {
        Err(ServiceError::denied(
            "needs the role directory_admin, or operator of the national authority",
        ))
    }
}
