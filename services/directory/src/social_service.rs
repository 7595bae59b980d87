//! A social service's places and ages: the bounds that hold however a service is registered (through
//! the API or the register import) or moved by referral events, and the checked places of a new service.

use placement_platform::{
    error::ServiceResult,
    numbers::{at_most, within},
};
use placement_proto::v1::CreateServiceRequest;

/// The most places one service may have (also bounds the places an event may hold or release).
pub(crate) const MAX_SERVICE_CAPACITY: u32 = 1000;
pub(crate) const MAX_CHILD_AGE: u32 = 17;

/// The places and ages of a new service.
pub(crate) struct Places {
    pub capacity: i32,
    pub occupied: i32,
    pub min_age: i32,
    pub max_age: i32,
}

pub(crate) fn validate_places(req: &CreateServiceRequest) -> ServiceResult<Places> {
    let capacity = within("capacity", req.capacity, 1..=MAX_SERVICE_CAPACITY, || {
        format!("between 1 and {MAX_SERVICE_CAPACITY}")
    })?;
    let occupied = within(
        "occupied_places",
        req.occupied_places,
        0..=req.capacity,
        || "more than capacity".into(),
    )?;
    let max_age = at_most("max_age", req.max_age, MAX_CHILD_AGE)?;
    let min_age = within("min_age", req.min_age, 0..=req.max_age, || {
        "greater than max_age".into()
    })?;
    Ok(Places {
        capacity,
        occupied,
        min_age,
        max_age,
    })
}
