//! A service as the directory's events describe it, and the question "which services fit these
//! children", with its answer's rows and wire form.

use placement_proto::v1::{ServiceCapacityChanged, ServiceFit, ServiceStatus, ServiceType};
use sqlx::FromRow;
use uuid::Uuid;

use crate::referral::ChildrenAges;

/// The most services suggested or previewed at once: as many as one search asks.
pub const MAX_FITTING: usize = 10;

/// What an event of the directory says of a service.
pub struct ServiceFacts {
    pub service_id: Uuid,
    pub provider: Option<Uuid>,
    pub free_places: i32,
    pub region_code: String,
    pub service_type: Option<ServiceType>,
    pub status: Option<ServiceStatus>,
    pub min_age: Option<i16>,
    pub max_age: Option<i16>,
}

impl ServiceFacts {
    /// The facts of `change` about `service_id` with `free_places`, each checked by the caller. An unset
    /// type or status, or an age beyond SMALLINT, is not known: such a service is never suggested.
    pub fn of(change: &ServiceCapacityChanged, service_id: Uuid, free_places: i32) -> Self {
        let age = |a: Option<u32>| a.and_then(|a| i16::try_from(a).ok());
        ServiceFacts {
            service_id,
            provider: Uuid::parse_str(&change.provider_agency_id).ok(),
            free_places,
            region_code: change.region_code.clone(),
            service_type: ServiceType::try_from(change.service_type)
                .ok()
                .filter(|t| *t != ServiceType::Unspecified),
            status: ServiceStatus::try_from(change.status)
                .ok()
                .filter(|s| *s != ServiceStatus::Unspecified),
            min_age: age(change.min_age),
            max_age: age(change.max_age),
        }
    }
}

/// Which services fit: of these types, in these districts (any when empty), with room for `places`
/// children of `ages`, none of `except`.
pub struct FitQuery<'a> {
    pub types: &'a [ServiceType],
    pub districts: &'a [String],
    pub places: i32,
    pub ages: ChildrenAges,
    pub except: &'a [Uuid],
}

#[derive(Debug, Clone, FromRow)]
pub struct ServiceFitRow {
    pub service_id: Uuid,
    pub provider_agency_id: Uuid,
    pub region_code: String,
    pub service_type: ServiceType,
    pub free_places: i32,
    pub min_age: i16,
    pub max_age: i16,
}

impl ServiceFitRow {
    /// Whether the service takes children of `ages` (the rule submission applies).
    pub fn takes(&self, ages: ChildrenAges) -> bool {
        let bound = |a: i16| u32::try_from(a).unwrap_or(0);
        ages.fit(bound(self.min_age), bound(self.max_age))
    }

    pub fn into_proto(self) -> ServiceFit {
        let count = |n: i32| u32::try_from(n).unwrap_or(0);
        ServiceFit {
            service_id: self.service_id.to_string(),
            provider_agency_id: self.provider_agency_id.to_string(),
            region_code: self.region_code,
            service_type: self.service_type as i32,
            free_places: count(self.free_places),
            min_age: count(i32::from(self.min_age)),
            max_age: count(i32::from(self.max_age)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(min_age: i16, max_age: i16) -> ServiceFitRow {
        ServiceFitRow {
            service_id: Uuid::nil(),
            provider_agency_id: Uuid::nil(),
            region_code: "VRC".into(),
            service_type: ServiceType::CrisisCentre,
            free_places: 3,
            min_age,
            max_age,
        }
    }

    #[test]
    fn a_service_takes_children_whose_ages_its_range_holds() {
        // Twins born five years ago are 4 or 5.
        let twins = ChildrenAges::of(2026, [2021, 2021]).expect("children");
        assert!(row(0, 17).takes(twins));
        assert!(row(5, 5).takes(twins));
        assert!(!row(6, 17).takes(twins), "the twins may be 4 or 5");
        assert!(!row(0, 3).takes(twins), "the twins are at least 4");
    }

    #[test]
    fn unknown_facts_stay_unknown() {
        let change = ServiceCapacityChanged {
            provider_agency_id: "not-a-uuid".into(),
            service_type: 0,
            status: 99,
            min_age: Some(u32::MAX),
            max_age: None,
            ..Default::default()
        };
        let facts = ServiceFacts::of(&change, Uuid::nil(), 2);
        assert!(facts.provider.is_none() && facts.service_type.is_none());
        assert!(facts.status.is_none() && facts.min_age.is_none() && facts.max_age.is_none());
    }
}
