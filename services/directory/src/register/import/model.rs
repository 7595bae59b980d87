//! What an import is asked (its options, the largest file), why one is refused, and the rows it reads and
//! writes: the imported services and the providers it finds, the providers and services it registers, its
//! record.

use placement_platform::error::ServiceError;
use placement_proto::v1::{AgencyKind, ServiceStatus, ServiceType};
use sqlx::FromRow;
use uuid::Uuid;

use crate::register::file::RegisterError;
use crate::social_services::model::ServiceRow;

/// The largest register file an import takes.
pub const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;

/// Why an import is refused, or stops.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("only a national authority, or an RDSA for its district, imports the register")]
    NotEntitled,
    /// One import at a time per process, so that two files are never held and read at once.
    #[error("another register import is running in this directory")]
    AlreadyRunning,
    #[error("the first message carries the options")]
    OptionsNotFirst,
    #[error("options sent more than once")]
    OptionsTwice,
    #[error("the file is larger than 32 MiB")]
    TooLarge,
    #[error(transparent)]
    Unreadable(#[from] RegisterError),
    /// The reader panicked: a file it was not written for.
    #[error("the file cannot be read as a register")]
    ReaderFailed,
    /// A service the plan counted on was deleted while the import ran.
    #[error("service not found")]
    ServiceGone,
}

impl From<ImportError> for ServiceError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::NotEntitled => ServiceError::denied(e.to_string()),
            ImportError::AlreadyRunning => ServiceError::Conflict(e.to_string()),
            ImportError::OptionsNotFirst => {
                ServiceError::invalid("options", "the first message carries the options")
            }
            ImportError::OptionsTwice => ServiceError::invalid("options", "sent more than once"),
            ImportError::TooLarge => ServiceError::invalid("data", e.to_string()),
            ImportError::Unreadable(why) => ServiceError::invalid("data", why.to_string()),
            ImportError::ReaderFailed => ServiceError::invalid("data", e.to_string()),
            ImportError::ServiceGone => ServiceError::not_found("service"),
        }
    }
}

pub struct Options {
    pub file_name: String,
    pub dry_run: bool,
    pub close_missing: bool,
}

/// A service imported from the register, with the register's id and its address.
#[derive(Debug, Clone, FromRow)]
pub struct ImportedService {
    #[sqlx(flatten)]
    pub row: ServiceRow,
    pub external_id: String,
    pub address: String,
}

/// An agency that may run services, as an import finds it: by its register id, else by name in its district.
#[derive(Debug, Clone, FromRow)]
pub struct ProviderRow {
    pub id: Uuid,
    pub name: String,
    pub region_code: Option<String>,
    pub external_id: Option<String>,
}

/// A provider the register names, to be registered.
pub struct NewProvider<'a> {
    pub id: Uuid,
    pub kind: AgencyKind,
    pub name: &'a str,
    pub region_code: &'a str,
    pub municipality_code: &'a str,
    pub external_id: Option<&'a str>,
}

/// A service as the register describes it.
pub struct RegisterService<'a> {
    pub id: Uuid,
    pub provider: Uuid,
    pub external_id: &'a str,
    pub service_type: ServiceType,
    pub name: &'a str,
    pub region_code: &'a str,
    pub municipality_code: &'a str,
    pub capacity: i32,
    pub occupied: i32,
    pub min_age: i32,
    pub max_age: i32,
    pub status: ServiceStatus,
    pub address: &'a str,
}

/// What one import did, for its record.
pub struct ImportRecord<'a> {
    pub id: Uuid,
    pub agency_id: Uuid,
    pub file_name: &'a str,
    pub file_sha256: &'a str,
    pub counts: [i32; 7],
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal is answered as before its enum: the same code, field and text.
    #[test]
    fn refusals_keep_their_codes_fields_and_text() {
        let cases = [
            (
                ImportError::NotEntitled,
                "PERMISSION_DENIED",
                "only a national authority, or an RDSA for its district, imports the register",
            ),
            (
                ImportError::AlreadyRunning,
                "ABORTED",
                "conflict with a concurrent change (another register import is running in this directory); retry",
            ),
            (
                ImportError::OptionsTwice,
                "INVALID_ARGUMENT",
                "options: sent more than once",
            ),
            (
                ImportError::TooLarge,
                "INVALID_ARGUMENT",
                "data: the file is larger than 32 MiB",
            ),
            (
                RegisterError::Empty.into(),
                "INVALID_ARGUMENT",
                "data: the file is empty",
            ),
            (ImportError::ServiceGone, "NOT_FOUND", "service not found"),
        ];
        for (refusal, code, message) in cases {
            let e = ServiceError::from(refusal);
            assert_eq!(e.code_name(), code, "{message}");
            assert_eq!(tonic::Status::from(e).message(), message);
        }
    }
}
