//! Who may read what of the notifications: the one place the notifications service decides it.
//!
//! An agency reads and watches its own inbox (caseworker, supervisor, or its own systems with
//! `integration`) and the deliveries of its own notifications; its staff mark notifications read
//! (`integration` changes nothing, here as everywhere); operators list every delivery and retry failed
//! ones. Another agency's notification is NOT_FOUND.

use placement_platform::{
    caller::{Act, Caller, Role},
    error::ServiceResult,
};

pub fn require_inbox(caller: &Caller) -> ServiceResult<()> {
    caller.require(&[Role::Caseworker, Role::Supervisor, Role::Integration])
}

/// Marking read is a change, made by the agency's staff; its systems (`integration`) only read.
pub fn require_inbox_change(caller: &Caller) -> ServiceResult<()> {
    caller.require(Act::Work.roles())
}

pub fn is_operator(caller: &Caller) -> bool {
    caller.has(Role::Operator)
}

pub fn require_operator(caller: &Caller) -> ServiceResult<()> {
    caller.require(&[Role::Operator])
}
