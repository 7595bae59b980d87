//! A page of the export as read: each service with its register id and address, its provider with the
//! provider's register id; and where a page starts, from its token.

use chrono::{DateTime, Utc};
use placement_platform::error::{ServiceError, ServiceResult};
use sqlx::FromRow;
use uuid::Uuid;

use crate::{agencies::model::AgencyRow, social_services::model::ServiceRow};

/// A service as the export shows it: its row, register id and address.
#[derive(Debug, Clone, FromRow)]
pub struct ExportedService {
    #[sqlx(flatten)]
    pub row: ServiceRow,
    pub external_id: Option<String>,
    pub address: String,
}

/// An agency as the export shows it: its row and its id in the register (the provider's EIK), if any.
#[derive(Debug, Clone, FromRow)]
pub struct ExportedAgency {
    #[sqlx(flatten)]
    pub agency: AgencyRow,
    #[sqlx(rename = "external_id")]
    pub register_id: Option<String>,
}

/// Where an export's page starts: after this change and service id.
pub type ExportPosition = Option<(DateTime<Utc>, Uuid)>;

/// (where the page starts, the page's number) of an export's page token.
pub fn decode_export_token(token: &str) -> ServiceResult<(ExportPosition, i64)> {
    if token.is_empty() {
        return Ok((None, 1));
    }
    let bad = || ServiceError::invalid("page.page_token", "not a page token from this service");
    let mut parts = token.split('.');
    let (Some(micros), Some(id), Some(number), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    let number: i64 = number.parse().map_err(|_| bad())?;
    if number < 2 {
        return Err(bad());
    }
    Ok((Some((at, id)), number))
}
