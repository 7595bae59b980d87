//! A social service as the directory keeps it, and the bounds that hold however a service is registered
//! (through the API or the register import) or moved by referral events: its places and ages, the checked
//! places of a new service, its wire form and the event announcing its places.

use chrono::{DateTime, Utc};
use placement_platform::{
    error::{ServiceError, ServiceResult},
    numbers::{at_most, within},
    time::timestamp,
};
use placement_proto::v1::{
    CreateServiceRequest, ServiceCapacityChanged, ServiceStatus, ServiceType, SocialService,
};
use sqlx::FromRow;
use uuid::Uuid;

/// The columns a [`ServiceRow`] is read from (other features' statements read services too).
pub const SERVICE_COLUMNS: &str = "id, provider_agency_id, type, name, name_en, region_code, municipality_code, \
     capacity, held_places, occupied_places, min_age, max_age, status, version, updated_at";

/// The most places one service may have (also bounds the places an event may hold or release).
pub const MAX_SERVICE_CAPACITY: u32 = 1000;
pub const MAX_CHILD_AGE: u32 = 17;

/// Why registering a social service, or changing its capacity, is refused.
#[derive(Debug, thiserror::Error)]
pub enum SocialServiceError {
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
pub struct PlacesAndAges {
    pub capacity: i32,
    pub occupied: i32,
    pub min_age: i32,
    pub max_age: i32,
}

pub fn validate_places(req: &CreateServiceRequest) -> ServiceResult<PlacesAndAges> {
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

#[derive(Debug, Clone, FromRow)]
pub struct ServiceRow {
    pub id: Uuid,
    pub provider_agency_id: Uuid,
    #[sqlx(rename = "type")]
    pub service_type: ServiceType,
    pub name: String,
    pub name_en: String,
    pub region_code: String,
    pub municipality_code: String,
    pub capacity: i32,
    pub held_places: i32,
    pub occupied_places: i32,
    pub min_age: i32,
    pub max_age: i32,
    pub status: ServiceStatus,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl ServiceRow {
    /// Places neither held nor occupied. Never below zero, even when a capacity cut raced an acceptance.
    pub fn free_places(&self) -> u32 {
        placement_platform::numbers::count(self.capacity - self.held_places - self.occupied_places)
    }

    pub fn service_type(&self) -> ServiceType {
        self.service_type
    }

    pub fn status(&self) -> ServiceStatus {
        self.status
    }

    pub fn to_proto(&self) -> SocialService {
        SocialService {
            id: self.id.to_string(),
            provider_agency_id: self.provider_agency_id.to_string(),
            r#type: self.service_type() as i32,
            name: self.name.clone(),
            name_en: self.name_en.clone(),
            region_code: self.region_code.clone(),
            municipality_code: self.municipality_code.clone(),
            capacity: placement_platform::numbers::count(self.capacity),
            free_places: self.free_places(),
            held_places: placement_platform::numbers::count(self.held_places),
            occupied_places: placement_platform::numbers::count(self.occupied_places),
            min_age: placement_platform::numbers::count(self.min_age),
            max_age: placement_platform::numbers::count(self.max_age),
            status: self.status() as i32,
            version: placement_platform::numbers::serial(self.version),
            updated_at: Some(timestamp(self.updated_at)),
        }
    }

    /// The event announcing this row's places after a change.
    pub fn capacity_event(
        &self,
        change: placement_proto::v1::CapacityChange,
        referral_id: Option<Uuid>,
        places: u32,
    ) -> ServiceCapacityChanged {
        ServiceCapacityChanged {
            service_id: self.id.to_string(),
            provider_agency_id: self.provider_agency_id.to_string(),
            region_code: self.region_code.clone(),
            service_type: self.service_type() as i32,
            status: self.status() as i32,
            capacity: placement_platform::numbers::count(self.capacity),
            free_places: self.free_places(),
            held_places: placement_platform::numbers::count(self.held_places),
            occupied_places: placement_platform::numbers::count(self.occupied_places),
            change: change as i32,
            referral_id: referral_id.map(|r| r.to_string()).unwrap_or_default(),
            places,
            min_age: Some(placement_platform::numbers::count(self.min_age)),
            max_age: Some(placement_platform::numbers::count(self.max_age)),
            name: self.name.clone(),
            name_en: self.name_en.clone(),
        }
    }
}

pub struct NewService<'a> {
    pub id: Uuid,
    pub provider: Uuid,
    pub service_type: ServiceType,
    pub name: &'a str,
    /// Empty when the service has no English name.
    pub name_en: &'a str,
    pub region_code: &'a str,
    pub municipality_code: &'a str,
    pub places: PlacesAndAges,
}

/// What a search for services asks: most free places first.
pub struct ServiceSearch<'a> {
    pub status: ServiceStatus,
    pub region_code: &'a str,
    pub exclude_region_code: &'a str,
    pub service_type: Option<ServiceType>,
    pub min_free_places: i32,
    pub child_age: Option<i32>,
    /// After (free places, id) of the last one seen.
    pub after: Option<(i32, Uuid)>,
    pub limit: i64,
}

pub fn decode_search_token(token: &str) -> ServiceResult<Option<(i32, Uuid)>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || ServiceError::invalid("page.page_token", "not a page token from this service");
    let (free, id) = token.split_once('.').ok_or_else(bad)?;
    Ok(Some((
        free.parse().map_err(|_| bad())?,
        Uuid::parse_str(id).map_err(|_| bad())?,
    )))
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
