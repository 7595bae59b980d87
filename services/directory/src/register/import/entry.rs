//! One row of the register, checked: every value the directory needs, or the column at fault and why.

use std::collections::HashMap;

use placement_proto::v1::{ServiceStatus, ServiceType};

use crate::register::file::{Column, Row};

/// The same bounds as a service registered through the API.
const MAX_CAPACITY: i32 = crate::social_services::model::MAX_SERVICE_CAPACITY.cast_signed();
const MAX_AGE: i32 = crate::social_services::model::MAX_CHILD_AGE.cast_signed();

/// A row that can be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub register_id: String,
    pub name: String,
    pub service_type: ServiceType,
    pub municipality_code: String,
    pub region_code: String,
    pub provider_name: String,
    /// The provider's id in the register (its EIK), when the file gives it.
    pub provider_id: Option<String>,
    pub capacity: i32,
    /// `None` when the file leaves it out: a new service starts with none, an existing one keeps its figure.
    pub occupied: Option<i32>,
    pub min_age: i32,
    pub max_age: i32,
    pub status: ServiceStatus,
    pub address: String,
}

/// Why a row is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub column: Column,
    pub reason: String,
}

impl Refusal {
    pub fn new(column: Column, reason: impl Into<String>) -> Self {
        Self {
            column,
            reason: reason.into(),
        }
    }
}

/// Checks `row`; `municipalities` maps each EKATTE municipality code to its district's.
pub fn parse(row: &Row, municipalities: &HashMap<String, String>) -> Result<Entry, Refusal> {
    let register_id = text(row, Column::RegisterId, 64)?;
    let name = text(row, Column::Name, 200)?;
    let service_type = service_type(row.get(Column::Type)).ok_or_else(|| {
        Refusal::new(
            Column::Type,
            format!("unknown service type {:?}", row.get(Column::Type)),
        )
    })?;
    let municipality_code = row.get(Column::Municipality).to_uppercase();
    let region_code = municipalities
        .get(&municipality_code)
        .cloned()
        .ok_or_else(|| {
            Refusal::new(
                Column::Municipality,
                format!(
                    "unknown EKATTE municipality code {:?}",
                    row.get(Column::Municipality)
                ),
            )
        })?;
    let capacity = number(row, Column::Capacity, 1, MAX_CAPACITY)?;
    let occupied = match row.get(Column::Occupied) {
        "" => None,
        _ => Some(number(row, Column::Occupied, 0, capacity)?),
    };
    let max_age = number(row, Column::MaxAge, 0, MAX_AGE)?;
    let min_age = number(row, Column::MinAge, 0, max_age)?;
    let status = status(row.get(Column::Status)).ok_or_else(|| {
        Refusal::new(
            Column::Status,
            format!(
                "unknown status {:?} (active, suspended or closed)",
                row.get(Column::Status)
            ),
        )
    })?;
    let provider_id = Some(row.get(Column::ProviderId))
        .filter(|id| !id.is_empty())
        .map(str::to_string);
    Ok(Entry {
        register_id,
        name,
        service_type,
        municipality_code,
        region_code,
        provider_name: text(row, Column::Provider, 200)?,
        provider_id,
        capacity,
        occupied,
        min_age,
        max_age,
        status,
        address: row.get(Column::Address).chars().take(500).collect(),
    })
}

fn text(row: &Row, column: Column, max: usize) -> Result<String, Refusal> {
    let value = row.get(column);
    if value.is_empty() {
        return Err(Refusal::new(column, "required"));
    }
    if value.chars().count() > max {
        return Err(Refusal::new(
            column,
            format!("longer than {max} characters"),
        ));
    }
    Ok(value.to_string())
}

fn number(row: &Row, column: Column, min: i32, max: i32) -> Result<i32, Refusal> {
    let value = row.get(column);
    let n: i64 = value
        .parse()
        .map_err(|_| Refusal::new(column, format!("{value:?} is not a whole number")))?;
    if n < i64::from(min) || n > i64::from(max) {
        return Err(Refusal::new(
            column,
            format!("{n} is not between {min} and {max}"),
        ));
    }
    i32::try_from(n).map_err(|_| Refusal::new(column, "out of range"))
}

/// The service type a register names: our own names (`FAMILY_TYPE_PLACEMENT_CENTRE`, with or without the
/// `SERVICE_TYPE_` prefix) or the register's Bulgarian abbreviations and names.
pub fn service_type(text: &str) -> Option<ServiceType> {
    let upper = text.trim().to_uppercase();
    let bare = upper.strip_prefix("SERVICE_TYPE_").unwrap_or(&upper);
    let found = match bare {
        "FAMILY_TYPE_PLACEMENT_CENTRE" | "ЦНСТДБУ" | "ЦНСТ" | "ЦНСТ ЗА ДЕЦА БЕЗ УВРЕЖДАНИЯ" => {
            ServiceType::FamilyTypePlacementCentre
        }
        "FAMILY_TYPE_PLACEMENT_CENTRE_DISABILITIES"
        | "ЦНСТДМУ"
        | "ЦНСТДУ"
        | "ЦНСТ ЗА ДЕЦА С УВРЕЖДАНИЯ" => {
            ServiceType::FamilyTypePlacementCentreDisabilities
        }
        "CRISIS_CENTRE" | "КЦ" | "КРИЗИСЕН ЦЕНТЪР" | "КРИЗИСЕН ЦЕНТЪР ЗА ДЕЦА" => {
            ServiceType::CrisisCentre
        }
        "FOSTER_CARE" | "ПРИЕМНА ГРИЖА" => ServiceType::FosterCare,
        _ => return None,
    };
    Some(found)
}

/// Active when the file does not say.
fn status(text: &str) -> Option<ServiceStatus> {
    let status = match text.trim().to_lowercase().as_str() {
        "" | "active" | "активна" | "действаща" => ServiceStatus::Active,
        "suspended" | "спряна" | "временно спряна" => ServiceStatus::Suspended,
        "closed" | "закрита" => ServiceStatus::Closed,
        _ => return None,
    };
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[(Column, &str)]) -> Row {
        Row::new(2, cells.iter().map(|(c, v)| (*c, v.to_string())).collect())
    }

    fn good() -> Vec<(Column, &'static str)> {
        vec![
            (Column::RegisterId, "R-1"),
            (Column::Name, "ЦНСТ Враца 1"),
            (Column::Type, "ЦНСТДБУ"),
            (Column::Municipality, "vrc10"),
            (Column::Provider, "Фондация"),
            (Column::Capacity, "12"),
            (Column::Occupied, "4"),
            (Column::MinAge, "3"),
            (Column::MaxAge, "17"),
        ]
    }

    fn municipalities() -> HashMap<String, String> {
        HashMap::from([("VRC10".to_string(), "VRC".to_string())])
    }

    #[test]
    fn a_good_row_reads_every_value() {
        let e = parse(&row(&good()), &municipalities()).expect("entry");
        assert_eq!(e.region_code, "VRC");
        assert_eq!(e.municipality_code, "VRC10");
        assert_eq!(e.service_type, ServiceType::FamilyTypePlacementCentre);
        assert_eq!(
            (e.capacity, e.occupied, e.min_age, e.max_age),
            (12, Some(4), 3, 17)
        );
        assert_eq!(e.status, ServiceStatus::Active);
        assert_eq!(e.provider_id, None);
    }

    #[test]
    fn each_fault_names_its_column() {
        let cases = [
            (Column::Municipality, "XXX99", "unknown EKATTE"),
            (Column::Capacity, "-3", "not between 1 and 1000"),
            (Column::Capacity, "many", "not a whole number"),
            (Column::Occupied, "13", "not between 0 and 12"),
            (Column::Type, "orphanage", "unknown service type"),
            (Column::MinAge, "18", "not between 0 and 17"),
            (Column::Status, "maybe", "unknown status"),
            (Column::Name, "", "required"),
        ];
        for (column, value, reason) in cases {
            let mut cells = good();
            cells.retain(|(c, _)| *c != column);
            cells.push((column, value));
            let refusal = parse(&row(&cells), &municipalities()).expect_err(value);
            assert_eq!(refusal.column, column, "{value}");
            assert!(
                refusal.reason.contains(reason),
                "{value}: {}",
                refusal.reason
            );
        }
    }
}
