//! Rows of the directory's tables and their wire form.

use chrono::{DateTime, Utc};
use placement_platform::time::timestamp;
use placement_proto::v1::{
    Agency, AgencyKind, ContactEndpoint, ServiceCapacityChanged, ServiceStatus, ServiceType,
    SocialService,
};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use uuid::Uuid;

pub const AGENCY_COLUMNS: &str =
    "id, kind, name, region_code, municipality_code, contacts, created_at";
pub const SERVICE_COLUMNS: &str = "id, provider_agency_id, type, name, region_code, municipality_code, \
     capacity, held_places, occupied_places, min_age, max_age, status, version, updated_at";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contact {
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct AgencyRow {
    pub id: Uuid,
    pub kind: AgencyKind,
    pub name: String,
    pub region_code: Option<String>,
    pub municipality_code: Option<String>,
    pub contacts: sqlx::types::Json<Vec<Contact>>,
    pub created_at: DateTime<Utc>,
}

impl AgencyRow {
    pub fn kind(&self) -> AgencyKind {
        self.kind
    }

    pub fn into_proto(self) -> Agency {
        Agency {
            id: self.id.to_string(),
            kind: self.kind() as i32,
            name: self.name,
            region_code: self.region_code.unwrap_or_default(),
            municipality_code: self.municipality_code.unwrap_or_default(),
            contacts: self
                .contacts
                .0
                .into_iter()
                .map(|c| ContactEndpoint {
                    kind: c.kind,
                    value: c.value,
                })
                .collect(),
            created_at: Some(timestamp(self.created_at)),
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct ServiceRow {
    pub id: Uuid,
    pub provider_agency_id: Uuid,
    #[sqlx(rename = "type")]
    pub service_type: ServiceType,
    pub name: String,
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
        }
    }
}
