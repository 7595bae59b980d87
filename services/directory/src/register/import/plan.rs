//! What an import will do with each row, decided before anything is written (a dry run stops here): the
//! row refused, the service created, updated (with what changes) or left as it is, and the providers to
//! register. Pure: the directory's current services and providers are handed in.

use std::collections::HashMap;

use placement_proto::v1::{AgencyKind, ServiceStatus, ServiceType};
use uuid::Uuid;

use super::entry::{self, Entry, Refusal};
use super::model::{ImportedService, ProviderRow};
use crate::register::file::{Column, Row};
use crate::social_services::model::ServiceRow;

/// The provider a row's service is run by: one the directory has, or one this import registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Known(Uuid),
    New(Uuid),
}

impl Provider {
    pub fn id(self) -> Uuid {
        match self {
            Provider::Known(id) | Provider::New(id) => id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewProvider {
    pub id: Uuid,
    pub kind: AgencyKind,
    pub name: String,
    pub region_code: String,
    pub municipality_code: String,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Action {
    Create(Entry, Provider),
    /// Created by the import, with its new id.
    Created(Uuid, Entry, Provider),
    Update {
        entry: Entry,
        provider: Provider,
        service: Uuid,
        changes: Vec<String>,
    },
    Unchanged(Uuid),
    Refuse(Refusal),
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub row: u32,
    pub register_id: String,
    pub action: Action,
}

/// The districts an importer may import into: every one, or its own.
#[derive(Debug, Clone)]
pub enum Scope {
    Country,
    District(String),
}

pub struct Planner<'a> {
    scope: Scope,
    municipalities: &'a HashMap<String, String>,
    existing: HashMap<String, ImportedService>,
    by_register_id: HashMap<String, Uuid>,
    by_name: HashMap<(String, String), Uuid>,
    seen: HashMap<String, u32>,
    pub new_providers: Vec<NewProvider>,
}

impl<'a> Planner<'a> {
    pub fn new(
        scope: Scope,
        municipalities: &'a HashMap<String, String>,
        existing: Vec<ImportedService>,
        providers: Vec<ProviderRow>,
    ) -> Self {
        let mut by_register_id = HashMap::new();
        let mut by_name = HashMap::new();
        for p in providers {
            if let Some(ext) = &p.external_id {
                by_register_id.insert(ext.clone(), p.id);
            }
            by_name.insert(
                provider_key(p.region_code.as_deref().unwrap_or(""), &p.name),
                p.id,
            );
        }
        Self {
            scope,
            municipalities,
            existing: existing
                .into_iter()
                .map(|s| (s.external_id.clone(), s))
                .collect(),
            by_register_id,
            by_name,
            seen: HashMap::new(),
            new_providers: Vec::new(),
        }
    }

    pub fn plan(&mut self, row: &Row) -> Planned {
        let register_id = row.get(Column::RegisterId).to_string();
        let action = self.decide(row).unwrap_or_else(Action::Refuse);
        Planned {
            row: row.number,
            register_id,
            action,
        }
    }

    fn decide(&mut self, row: &Row) -> Result<Action, Refusal> {
        let register_id = row.get(Column::RegisterId);
        if let Some(first) = self.seen.get(register_id) {
            return Err(Refusal::new(
                Column::RegisterId,
                format!("{register_id:?} is also in row {first}"),
            ));
        }
        if !register_id.is_empty() {
            self.seen.insert(register_id.to_string(), row.number);
        }
        let entry = entry::parse(row, self.municipalities)?;
        if let Scope::District(own) = &self.scope
            && *own != entry.region_code
        {
            return Err(Refusal::new(
                Column::Municipality,
                format!("in district {}, not yours ({own})", entry.region_code),
            ));
        }
        let provider = self.provider(&entry);
        let Some(existing) = self.existing.get(&entry.register_id) else {
            return Ok(Action::Create(entry, provider));
        };
        check_update(&existing.row, &entry)?;
        let changes = changes(existing, &entry, provider);
        if changes.is_empty() {
            return Ok(Action::Unchanged(existing.row.id));
        }
        Ok(Action::Update {
            service: existing.row.id,
            entry,
            provider,
            changes,
        })
    }

    /// The provider named by the row's provider id, else by its name in the service's district; registered
    /// by this import when the directory has neither.
    fn provider(&mut self, entry: &Entry) -> Provider {
        if let Some(ext) = &entry.provider_id
            && let Some(id) = self.by_register_id.get(ext)
        {
            return self.known_or_new(*id);
        }
        let key = provider_key(&entry.region_code, &entry.provider_name);
        if let Some(id) = self.by_name.get(&key) {
            return self.known_or_new(*id);
        }
        let id = Uuid::now_v7();
        self.new_providers.push(NewProvider {
            id,
            kind: if entry.service_type == ServiceType::FosterCare {
                AgencyKind::FosterCareTeam
            } else {
                AgencyKind::ServiceProvider
            },
            name: entry.provider_name.clone(),
            region_code: entry.region_code.clone(),
            municipality_code: entry.municipality_code.clone(),
            external_id: entry.provider_id.clone(),
        });
        if let Some(ext) = &entry.provider_id {
            self.by_register_id.insert(ext.clone(), id);
        }
        self.by_name.insert(key, id);
        Provider::New(id)
    }

    fn known_or_new(&self, id: Uuid) -> Provider {
        if self.new_providers.iter().any(|p| p.id == id) {
            Provider::New(id)
        } else {
            Provider::Known(id)
        }
    }

    /// The imported services of the scope that no row of the file named.
    pub fn missing(&self) -> Vec<&ImportedService> {
        let mut missing: Vec<&ImportedService> = (self.existing.values())
            .filter(|s| !self.seen.contains_key(&s.external_id))
            .collect();
        missing.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        missing
    }
}

fn provider_key(region: &str, name: &str) -> (String, String) {
    (region.to_string(), name.trim().to_lowercase())
}

/// An import never shrinks a service below the places it holds and the children living there, and never
/// closes one that has either.
pub fn check_update(current: &ServiceRow, entry: &Entry) -> Result<(), Refusal> {
    let occupied = entry.occupied.unwrap_or(current.occupied_places);
    let taken = current.held_places + current.occupied_places.max(occupied);
    if entry.capacity < taken {
        return Err(Refusal::new(
            Column::Capacity,
            format!(
                "{} is below the {} places held ({}) or occupied ({}) now",
                entry.capacity,
                taken,
                current.held_places,
                current.occupied_places.max(occupied)
            ),
        ));
    }
    let holds = current.held_places + current.occupied_places;
    if entry.status == ServiceStatus::Closed && current.status != ServiceStatus::Closed && holds > 0
    {
        return Err(Refusal::new(
            Column::Status,
            format!(
                "the service holds {holds} places or children: it is closed once they have left"
            ),
        ));
    }
    Ok(())
}

/// What the row changes, field by field ("capacity: 10 -> 12").
fn changes(existing: &ImportedService, entry: &Entry, provider: Provider) -> Vec<String> {
    let s = &existing.row;
    let mut out = Vec::new();
    let mut differ = |field: &str, old: String, new: String| {
        if old != new {
            out.push(format!("{field}: {old} -> {new}"));
        }
    };
    differ("name", s.name.clone(), entry.name.clone());
    differ(
        "type",
        type_name(s.service_type),
        type_name(entry.service_type),
    );
    differ(
        "municipality_code",
        s.municipality_code.clone(),
        entry.municipality_code.clone(),
    );
    differ(
        "provider",
        s.provider_agency_id.to_string(),
        provider.id().to_string(),
    );
    differ(
        "capacity",
        s.capacity.to_string(),
        entry.capacity.to_string(),
    );
    let occupied = entry.occupied.unwrap_or(s.occupied_places);
    differ(
        "occupied",
        s.occupied_places.to_string(),
        occupied.to_string(),
    );
    differ("min_age", s.min_age.to_string(), entry.min_age.to_string());
    differ("max_age", s.max_age.to_string(), entry.max_age.to_string());
    differ("status", status_name(s.status), status_name(entry.status));
    differ("address", existing.address.clone(), entry.address.clone());
    out
}

fn type_name(t: ServiceType) -> String {
    t.as_str_name()
        .trim_start_matches("SERVICE_TYPE_")
        .to_string()
}

fn status_name(s: ServiceStatus) -> String {
    s.as_str_name()
        .trim_start_matches("SERVICE_STATUS_")
        .to_lowercase()
}
