//! An agency as the directory keeps it, its wire form, and the checks of a new agency's contacts.

use chrono::{DateTime, Utc};
use placement_platform::{
    error::{ServiceError, ServiceResult, check_text},
    time::timestamp,
};
use placement_proto::v1::{Agency, AgencyKind, AgencyRegistered, ContactEndpoint};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use uuid::Uuid;

/// The columns an [`AgencyRow`] is read from (other features' statements read agencies too).
pub const AGENCY_COLUMNS: &str =
    "id, kind, name, name_en, region_code, municipality_code, contacts, created_at";

const MAX_CONTACTS: usize = 20;

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
    pub name_en: String,
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
            name_en: self.name_en,
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

    /// The event announcing this agency: at its registration, and again when every agency is announced.
    pub fn registration(&self) -> AgencyRegistered {
        AgencyRegistered {
            agency_id: self.id.to_string(),
            kind: self.kind() as i32,
            region_code: self.region_code.clone().unwrap_or_default(),
            municipality_code: self.municipality_code.clone().unwrap_or_default(),
            name: self.name.clone(),
            name_en: self.name_en.clone(),
        }
    }
}

pub struct NewAgency<'a> {
    pub id: Uuid,
    pub kind: AgencyKind,
    pub name: &'a str,
    /// Empty when the agency has no English name.
    pub name_en: &'a str,
    /// Empty for the national authority.
    pub region_code: &'a str,
    /// Empty when the agency is not tied to one municipality.
    pub municipality_code: &'a str,
    pub contacts: Vec<Contact>,
}

pub fn validate_contacts(contacts: &[ContactEndpoint]) -> ServiceResult<Vec<Contact>> {
    if contacts.len() > MAX_CONTACTS {
        return Err(ServiceError::invalid(
            "contacts",
            format!("at most {MAX_CONTACTS}"),
        ));
    }
    contacts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if !matches!(c.kind.as_str(), "email" | "phone" | "webhook") {
                return Err(ServiceError::invalid(
                    format!("contacts[{i}].kind"),
                    "one of email, phone, webhook",
                ));
            }
            check_text(&format!("contacts[{i}].value"), &c.value, 1, 320)?;
            if c.kind == "email" && !c.value.contains('@') {
                return Err(ServiceError::invalid(
                    format!("contacts[{i}].value"),
                    "not an e-mail address",
                ));
            }
            if c.kind == "webhook"
                && !c.value.starts_with("https://")
                && !c.value.starts_with("http://")
            {
                return Err(ServiceError::invalid(
                    format!("contacts[{i}].value"),
                    "not an http(s) URL",
                ));
            }
            Ok(Contact {
                kind: c.kind.clone(),
                value: c.value.clone(),
            })
        })
        .collect()
}
