//! A social service's places and ages: the bounds that hold however a service is registered (through
//! the API or the register import) or moved by referral events, and the checked places of a new service.

use placement_platform::{
    error::{ServiceError, ServiceResult},
    numbers::{at_most, within},
};
use placement_proto::v1::CreateServiceRequest;

/// The most places one service may have (also bounds the places an event may hold or release).
pub(crate) const MAX_SERVICE_CAPACITY: u32 = 1000;
pub(crate) const MAX_CHILD_AGE: u32 = 17;

/// Why registering a social service, or changing its capacity, is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SocialServiceError {
    #[error("service not found")]
    NotFound,
    #[error("type: required")]
    TypeRequired,
    #[error("municipality_code: required")]
    MunicipalityRequired,
    #[error("status: unknown status")]
    UnknownStatus,
    #[error("provider agency not found")]
    ProviderNotFound,
    #[error("provider_agency_id must be a service provider or a foster-care team")]
    NotAProvider,
    #[error(
        "only a national authority, the RDSA of the district or the provider registers a service"
    )]
    MayNotRegister,
    #[error("only the agency that runs the service, or a national authority, changes its capacity")]
    MayNotChangeCapacity,
    #[error("the service is at version {current}, not {expected}")]
    VersionMismatch { current: i64, expected: u64 },
    #[error("capacity {capacity} is below occupied ({occupied}) plus held ({held}) places")]
    BelowPlacesTaken {
        capacity: u32,
        occupied: i32,
        held: i32,
    },
}

impl From<SocialServiceError> for ServiceError {
    fn from(e: SocialServiceError) -> Self {
        use SocialServiceError as E;
        match e {
            E::NotFound => ServiceError::not_found("service"),
            E::TypeRequired => ServiceError::invalid("type", "required"),
            E::MunicipalityRequired => ServiceError::invalid("municipality_code", "required"),
            E::UnknownStatus => ServiceError::invalid("status", "unknown status"),
            E::ProviderNotFound => ServiceError::not_found("provider agency"),
            E::MayNotRegister | E::MayNotChangeCapacity => ServiceError::denied(e.to_string()),
            E::NotAProvider | E::VersionMismatch { .. } | E::BelowPlacesTaken { .. } => {
                ServiceError::precondition(e.to_string())
            }
        }
    }
}

/// The places and ages of a new service.
pub(crate) struct PlacesAndAges {
    pub capacity: i32,
    pub occupied: i32,
    pub min_age: i32,
    pub max_age: i32,
}

pub(crate) fn validate_places(req: &CreateServiceRequest) -> ServiceResult<PlacesAndAges> {
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
    Ok(PlacesAndAges {
        capacity,
        occupied,
        min_age,
        max_age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal is answered as before its enum: the same code, field and text.
    #[test]
    fn refusals_keep_their_codes_fields_and_text() {
        let cases = [
            (
                SocialServiceError::NotFound,
                "NOT_FOUND",
                "service not found",
            ),
            (
                SocialServiceError::ProviderNotFound,
                "NOT_FOUND",
                "provider agency not found",
            ),
            (
                SocialServiceError::MunicipalityRequired,
                "INVALID_ARGUMENT",
                "municipality_code: required",
            ),
            (
                SocialServiceError::MayNotChangeCapacity,
                "PERMISSION_DENIED",
                "only the agency that runs the service, or a national authority, changes its capacity",
            ),
            (
                SocialServiceError::VersionMismatch {
                    current: 3,
                    expected: 2,
                },
                "FAILED_PRECONDITION",
                "the service is at version 3, not 2",
            ),
            (
                SocialServiceError::BelowPlacesTaken {
                    capacity: 4,
                    occupied: 3,
                    held: 2,
                },
                "FAILED_PRECONDITION",
                "capacity 4 is below occupied (3) plus held (2) places",
            ),
        ];
        for (refusal, code, message) in cases {
            let e = ServiceError::from(refusal);
            assert_eq!(e.code_name(), code, "{message}");
            assert_eq!(tonic::Status::from(e).message(), message);
        }
    }
}
