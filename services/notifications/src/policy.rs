//! Who may read what of the notifications: the one place the notifications service decides it.
//!
//! An agency reads and watches its own inbox (caseworker, supervisor, or its own systems with
//! `integration`) and the deliveries of its own notifications; its staff mark notifications read
//! (`integration` changes nothing, here as everywhere). The national authority's operators (and no other
//! agency's, whatever its token says) list every delivery and retry failed ones. Another agency's
//! notification is NOT_FOUND.

use placement_platform::{
    caller::{Act, Caller, Role},
    error::{ServiceError, ServiceResult},
};

pub fn require_inbox(caller: &Caller) -> ServiceResult<()> {
    caller.require(&[Role::Caseworker, Role::Supervisor, Role::Integration])
}

/// Marking read is a change, made by the agency's staff; its systems (`integration`) only read.
pub fn require_inbox_change(caller: &Caller) -> ServiceResult<()> {
    caller.require(Act::Work.roles())
}

/// Whose deliveries a caller may list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryScope {
    /// Every delivery: the national authority's operators.
    Every,
    /// The deliveries of the caller's agency's own notifications, one notification at a time.
    OwnNotifications,
}

pub fn delivery_scope(caller: &Caller) -> ServiceResult<DeliveryScope> {
    if caller.is_operator() {
        return Ok(DeliveryScope::Every);
    }
    require_inbox(caller).map_err(|_| {
        ServiceError::denied(
            "needs the role caseworker, supervisor or integration (the deliveries of the agency's own \
             notifications), or operator of the national authority (every delivery)",
        )
    })?;
    Ok(DeliveryScope::OwnNotifications)
}

/// Retrying a delivery: the national authority's operators only. Another agency learns nothing of whether a
/// delivery exists, as the refusal comes before the lookup.
pub fn require_retry(caller: &Caller) -> ServiceResult<()> {
    caller.require_operator()
}
