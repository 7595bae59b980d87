//! Who may read what of the notifications: the one place the notifications service decides it.
//!
//! An agency reads, marks and watches its own inbox (caseworker, supervisor, or its own systems with
//! `integration`) and the deliveries of its own notifications; operators list every delivery and retry
//! failed ones. Another agency's notification is NOT_FOUND.

use placement_platform::{
    caller::{Caller, Role},
    error::ServiceResult,
};

pub fn require_inbox(caller: &Caller) -> ServiceResult<()> {
    caller.require(&[Role::Caseworker, Role::Supervisor, Role::Integration])
}

pub fn is_operator(caller: &Caller) -> bool {
    caller.has(Role::Operator)
}

pub fn require_operator(caller: &Caller) -> ServiceResult<()> {
    caller.require(&[Role::Operator])
}
