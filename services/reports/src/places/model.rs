//! A service's places as the reports keep them.

use placement_proto::v1::{ServiceStatus, ServiceType};
use uuid::Uuid;

use crate::steps::model::age;

/// A service's places as a directory event (or the directory itself) describes them.
pub struct ServiceNow {
    pub id: Uuid,
    pub provider_agency_id: Uuid,
    pub region_code: String,
    pub service_type: ServiceType,
    pub status: ServiceStatus,
    pub capacity: i32,
    pub free_places: i32,
    pub held_places: i32,
    pub occupied_places: i32,
    pub version: i64,
    /// The ages it takes; `None` when not told.
    pub min_age: Option<i32>,
    pub max_age: Option<i32>,
}

impl ServiceNow {
    /// The same with the ages it takes, when they were told.
    pub fn taking_ages(self, min_age: Option<u32>, max_age: Option<u32>) -> ServiceNow {
        ServiceNow {
            min_age: age(min_age),
            max_age: age(max_age),
            ..self
        }
    }

    /// A service as the directory describes it, in its events and its records alike: ids parsed, type
    /// and status known, `places` (capacity, free, held, occupied) within INT. The error names what is
    /// wrong.
    pub fn checked(
        id: &str,
        provider_agency_id: &str,
        region_code: &str,
        service_type: i32,
        status: i32,
        places: [u32; 4],
        version: u64,
    ) -> Result<ServiceNow, String> {
        let uuid = |v: &str, field: &str| {
            Uuid::parse_str(v).map_err(|_| format!("service {field} is not a UUID"))
        };
        let [capacity, free_places, held_places, occupied_places] =
            places.map(|n| i32::try_from(n).map_err(|_| "service places beyond INT".to_string()));
        Ok(ServiceNow {
            id: uuid(id, "id")?,
            provider_agency_id: uuid(provider_agency_id, "provider_agency_id")?,
            region_code: region_code.to_string(),
            service_type: ServiceType::try_from(service_type)
                .map_err(|_| "unknown service type".to_string())?,
            status: ServiceStatus::try_from(status)
                .map_err(|_| "unknown service status".to_string())?,
            capacity: capacity?,
            free_places: free_places?,
            held_places: held_places?,
            occupied_places: occupied_places?,
            version: i64::try_from(version).map_err(|_| "service version beyond BIGINT")?,
            min_age: None,
            max_age: None,
        })
    }
}
