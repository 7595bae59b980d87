//! The directory in Open Referral's Human Services Data Specification (HSDS 3.0): each service as an HSDS
//! `service` with its `organization` (the provider), its `service_at_locations` (one physical location in
//! its municipality, with the address the register gave) and its `capacities` (free places out of its
//! capacity). Identifiers are stable across exports: a service's and an organization's are their ids here;
//! the others are UUIDv5 of the service's id and what they are.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use placement_proto::v1::{AgencyKind, ServiceStatus, ServiceType};
use serde_json::{Value, json};
use uuid::Uuid;

use super::model::{ExportedAgency, ExportedService};

/// The namespace of the identifiers derived from a service's.
const NAMESPACE: Uuid = Uuid::from_u128(0x6d1f_4c2e_8a0b_4f5e_9c3d_2b1a_0e9f_8d7c);

/// The unit capacities are counted in.
fn places_unit() -> Value {
    json!({
        "id": Uuid::new_v5(&NAMESPACE, b"unit:places").to_string(),
        "name": "places",
        "scheme": "placement-exchange",
        "identifier": "places",
    })
}

fn derived(service: Uuid, what: &str) -> String {
    Uuid::new_v5(&NAMESPACE, format!("{service}:{what}").as_bytes()).to_string()
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Names of districts and municipalities, by code (in Bulgarian: the directory's own language).
pub struct PlaceNames {
    regions: HashMap<String, String>,
    municipalities: HashMap<String, String>,
}

impl PlaceNames {
    /// Read once from the embedded reference data, not on every page.
    pub fn get() -> &'static PlaceNames {
        static NAMES: std::sync::LazyLock<PlaceNames> = std::sync::LazyLock::new(PlaceNames::load);
        &NAMES
    }

    fn load() -> Self {
        let rows = crate::reference::model::rows();
        Self {
            regions: (rows.iter())
                .map(|r| (r.oblast_code.clone(), r.oblast_name_bg.clone()))
                .collect(),
            municipalities: (rows.iter())
                .map(|r| (r.municipality_code.clone(), r.municipality_name_bg.clone()))
                .collect(),
        }
    }
}

/// One service as an HSDS `service` object.
pub fn service(
    s: &ExportedService,
    provider: Option<&ExportedAgency>,
    places: &PlaceNames,
) -> Value {
    let r = &s.row;
    let updated = time(r.updated_at);
    let mut out = json!({
        "id": r.id.to_string(),
        "organization_id": r.provider_agency_id.to_string(),
        "name": r.name,
        "description": type_description(r.service_type),
        "status": status(r.status),
        "minimum_age": r.min_age,
        "maximum_age": r.max_age,
        "eligibility_description": format!("Children aged {} to {}", r.min_age, r.max_age),
        "last_modified": updated,
        "capacities": [{
            "id": derived(r.id, "capacity"),
            "service_id": r.id.to_string(),
            "unit": places_unit(),
            "available": r.free_places(),
            "maximum": r.capacity,
            "description": "Places for children: free now, out of the service's capacity",
            "updated": updated,
        }],
        "service_at_locations": [service_at_location(s, places)],
    });
    if let Some(p) = provider {
        out["organization"] = organization(p);
    }
    if let Some(id) = &s.external_id {
        out["alternate_name"] = json!(format!("register {id}"));
    }
    out
}

fn service_at_location(s: &ExportedService, places: &PlaceNames) -> Value {
    let r = &s.row;
    let location_id = derived(r.id, "location");
    let municipality = places
        .municipalities
        .get(&r.municipality_code)
        .cloned()
        .unwrap_or_default();
    let region = places
        .regions
        .get(&r.region_code)
        .cloned()
        .unwrap_or_default();
    let mut location = json!({
        "id": location_id,
        "location_type": "physical",
        "name": r.name,
        "description": format!("{municipality}, {region}"),
        "external_identifier": r.municipality_code,
        "external_identifier_type": "EKATTE municipality code",
    });
    if !s.address.is_empty() {
        location["addresses"] = json!([{
            "id": derived(r.id, "address"),
            "location_id": location_id,
            "address_1": s.address,
            "city": municipality,
            "region": region,
            "state_province": region,
            "postal_code": "",
            "country": "BG",
            "address_type": "physical",
        }]);
    }
    json!({
        "id": derived(r.id, "service_at_location"),
        "service_id": r.id.to_string(),
        "location_id": location_id,
        "location": location,
    })
}

fn organization(
    ExportedAgency {
        agency,
        register_id,
    }: &ExportedAgency,
) -> Value {
    let mut org = json!({
        "id": agency.id.to_string(),
        "name": agency.name,
        "description": match agency.kind() {
            AgencyKind::FosterCareTeam => "Foster-care team",
            _ => "Provider of social services for children",
        },
    });
    if let Some(eik) = register_id {
        org["organization_identifiers"] = json!([{
            "id": Uuid::new_v5(&NAMESPACE, format!("{}:eik", agency.id).as_bytes()).to_string(),
            "organization_id": agency.id.to_string(),
            "identifier_scheme": "BG-EIK",
            "identifier_type": "EIK (Bulgarian unified identification code)",
            "identifier": eik,
        }]);
    }
    org
}

fn status(s: ServiceStatus) -> &'static str {
    match s {
        ServiceStatus::Active => "active",
        ServiceStatus::Suspended => "temporarily closed",
        ServiceStatus::Closed => "defunct",
        ServiceStatus::Unspecified => "inactive",
    }
}

fn type_description(t: ServiceType) -> &'static str {
    match t {
        ServiceType::FamilyTypePlacementCentre => "Family-type placement centre for children",
        ServiceType::FamilyTypePlacementCentreDisabilities => {
            "Family-type placement centre for children with disabilities"
        }
        ServiceType::CrisisCentre => "Crisis centre for children",
        ServiceType::FosterCare => "Foster care",
        ServiceType::Unspecified => "Social service for children",
    }
}

/// An HSDS page of `contents`.
pub fn page(contents: Vec<Value>, total: i64, page_number: i64, size: i64, last: bool) -> Value {
    let size = size.max(1);
    json!({
        "total_items": total,
        "total_pages": (total + size - 1) / size,
        "page_number": page_number,
        "size": contents.len(),
        "first_page": page_number == 1,
        "last_page": last,
        "empty": contents.is_empty(),
        "contents": contents,
    })
}
