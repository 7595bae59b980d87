//! The errors a service's domain code returns, and their one mapping to gRPC status codes.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Malformed input; `field` is the request field at fault (dotted path, e.g. `legal_basis.number`).
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// A dependency (database, another service) is down or timed out; the caller may retry.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// The transaction lost a race with another (serialization failure, deadlock) and was rolled back:
    /// running it again is safe.
    #[error("conflict with a concurrent change: {0}")]
    Conflict(String),
    /// The caller holds as much as one caller may at once (streams, expensive reads in progress).
    #[error("{0}")]
    ResourceExhausted(String),
    /// The database holds a value this release does not know (a newer release or a hand wrote it):
    /// refused loudly rather than read as something else.
    #[error("the stored data cannot be read: {0}")]
    DataLoss(String),
    /// A database call failed: what it means for the caller, with the database's own error kept for the
    /// one log line written where it becomes a status.
    #[error("database {verdict}: {source}")]
    Database {
        verdict: DatabaseVerdict,
        #[source]
        source: sqlx::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a failed database call means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseVerdict {
    /// The transaction lost a race with another and was rolled back: running it again is safe.
    Conflict,
    /// The database is down, restarting or out of connections: the caller may retry.
    Unavailable,
    /// A row holds a stored name this release does not know.
    UnknownStoredName,
    /// Anything else: a bug of ours (a query the schema does not fit, a constraint broken).
    Failed,
}

impl std::fmt::Display for DatabaseVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Conflict => "conflict",
            Self::Unavailable => "unavailable",
            Self::UnknownStoredName => "holds a value this release does not know",
            Self::Failed => "error",
        })
    }
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    pub fn denied(why: impl Into<String>) -> Self {
        Self::PermissionDenied(why.into())
    }

    pub fn precondition(why: impl Into<String>) -> Self {
        Self::FailedPrecondition(why.into())
    }

    /// The status code name this error is answered with (the audit trail records it).
    pub fn code_name(&self) -> &'static str {
        match self {
            Self::InvalidArgument { .. } => "INVALID_ARGUMENT",
            Self::NotFound(_) => "NOT_FOUND",
            Self::PermissionDenied(_) => "PERMISSION_DENIED",
            Self::FailedPrecondition(_) => "FAILED_PRECONDITION",
            Self::AlreadyExists(_) => "ALREADY_EXISTS",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::Conflict(_) => "ABORTED",
            Self::ResourceExhausted(_) => "RESOURCE_EXHAUSTED",
            Self::DataLoss(_) => "DATA_LOSS",
            Self::Database { verdict, .. } => match verdict {
                DatabaseVerdict::Conflict => "ABORTED",
                DatabaseVerdict::Unavailable => "UNAVAILABLE",
                DatabaseVerdict::UnknownStoredName => "DATA_LOSS",
                DatabaseVerdict::Failed => "INTERNAL",
            },
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        self.is_conflict()
            || matches!(
                self,
                Self::Unavailable(_)
                    | Self::Database {
                        verdict: DatabaseVerdict::Unavailable,
                        ..
                    }
            )
    }

    /// Whether the transaction lost a race with another and was rolled back: running it again is safe.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Self::Conflict(_)
                | Self::Database {
                    verdict: DatabaseVerdict::Conflict,
                    ..
                }
        )
    }
}

/// SQLSTATEs of a transaction that lost a race and was rolled back.
const CONFLICT_SQLSTATES: &[&str] = &[
    "40001", // serialization_failure
    "40P01", // deadlock_detected
    "55P03", // lock_not_available
];

/// SQLSTATEs after which the same transaction, run again, may succeed.
const TRANSIENT_SQLSTATES: &[&str] = &[
    "40001", // serialization_failure
    "40P01", // deadlock_detected
    "55P03", // lock_not_available
    "57P01", // admin_shutdown
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now
    "08000", "08003", "08006", "08001", "08004", // connection exceptions
    "53300", // too_many_connections
];

/// Whether a database error is worth retrying (connection lost, pool exhausted, serialization failure).
pub fn is_transient_db_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| TRANSIENT_SQLSTATES.contains(&c.as_ref())),
        _ => false,
    }
}

/// The value a row holds that this release does not know, if that is why `e` failed.
fn unknown_stored_name(e: &sqlx::Error) -> Option<&placement_proto::stored::UnknownStoredName> {
    match e {
        sqlx::Error::ColumnDecode { source, .. } | sqlx::Error::Decode(source) => {
            source.downcast_ref()
        }
        _ => None,
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        if matches!(e, sqlx::Error::PoolTimedOut) {
            metrics::counter!(crate::prometheus::DB_POOL_TIMEOUTS).increment(1);
        }
        let conflict = matches!(&e, sqlx::Error::Database(db)
            if db.code().is_some_and(|c| CONFLICT_SQLSTATES.contains(&c.as_ref())));
        let verdict = if conflict {
            DatabaseVerdict::Conflict
        } else if unknown_stored_name(&e).is_some() {
            DatabaseVerdict::UnknownStoredName
        } else if is_transient_db_error(&e) {
            DatabaseVerdict::Unavailable
        } else {
            DatabaseVerdict::Failed
        };
        Self::Database { verdict, source: e }
    }
}

impl From<Status> for ServiceError {
    /// A failed call to another service: its verdict on the input passes through, read from the status's
    /// code and structured details (never from its message's wording); an outage is UNAVAILABLE.
    fn from(s: Status) -> Self {
        let msg = s.message().to_string();
        match s.code() {
            // The other service names what it did not find in the status's resource detail.
            Code::NotFound => Self::NotFound(
                s.get_details_resource_info()
                    .map(|r| r.resource_type)
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "a record of another service".into()),
            ),
            Code::PermissionDenied => Self::PermissionDenied(msg),
            Code::FailedPrecondition => Self::FailedPrecondition(msg),
            Code::InvalidArgument => invalid_argument_of(&s),
            Code::Unauthenticated => Self::Unauthenticated(msg),
            // tonic reports a connection that broke mid-call (the peer died, or went away while stopping)
            // as UNKNOWN, or as INTERNAL made here from the transport's error (so with that error as its
            // source, which a status the peer sent never has): the peer's answer never came, an outage.
            Code::Internal if std::error::Error::source(&s).is_some() => {
                tracing::warn!(code = ?s.code(), message = %msg, "dependency connection broke");
                Self::Unavailable(format!("dependency: {msg}"))
            }
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::ResourceExhausted
            | Code::Unknown => {
                tracing::warn!(code = ?s.code(), message = %msg, "dependency unavailable");
                Self::Unavailable(format!("dependency: {msg}"))
            }
            _ => {
                tracing::error!(code = ?s.code(), message = %msg, "dependency failed");
                Self::Internal(format!("dependency: {} {msg}", s.code()))
            }
        }
    }
}

/// Another service's INVALID_ARGUMENT: the field and reason of its bad-request detail, else its message
/// as the reason, naming no field.
fn invalid_argument_of(s: &Status) -> ServiceError {
    let violation = s
        .get_details_bad_request()
        .and_then(|b| b.field_violations.into_iter().next());
    match violation {
        Some(v) => ServiceError::InvalidArgument {
            field: v.field,
            reason: v.description,
        },
        None => ServiceError::InvalidArgument {
            field: String::new(),
            reason: s.message().to_string(),
        },
    }
}

/// The status of a failed database call, logged here (once, with the database's error) because the
/// status carries none of it.
fn database_status(verdict: DatabaseVerdict, source: &sqlx::Error) -> Status {
    match verdict {
        DatabaseVerdict::Conflict => {
            tracing::info!(error = %source, "transaction conflict");
            Status::aborted("conflict with a concurrent change (database); retry")
        }
        DatabaseVerdict::Unavailable => {
            tracing::warn!(error = %source, "database unavailable");
            Status::unavailable("database")
        }
        DatabaseVerdict::UnknownStoredName => {
            tracing::error!(error = %source, "the database holds a value this release does not know");
            Status::data_loss(
                unknown_stored_name(source).map_or_else(|| source.to_string(), ToString::to_string),
            )
        }
        DatabaseVerdict::Failed => {
            tracing::error!(error = %source, "database error");
            Status::internal("internal error")
        }
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::InvalidArgument { field, reason } => {
                let message = if field.is_empty() {
                    reason.clone()
                } else {
                    format!("{field}: {reason}")
                };
                if field.is_empty() {
                    Status::invalid_argument(message)
                } else {
                    Status::with_error_details(
                        Code::InvalidArgument,
                        message,
                        ErrorDetails::with_bad_request_violation(field, reason),
                    )
                }
            }
            // The resource named in a detail as well, so a service that calls this one need not read the
            // message to say what was not found.
            ServiceError::NotFound(what) => Status::with_error_details(
                Code::NotFound,
                format!("{what} not found"),
                ErrorDetails::with_resource_info(what, "", "", ""),
            ),
            ServiceError::PermissionDenied(m) => Status::permission_denied(m),
            ServiceError::FailedPrecondition(m) => Status::failed_precondition(m),
            ServiceError::AlreadyExists(m) => Status::already_exists(m),
            ServiceError::Unauthenticated(m) => Status::unauthenticated(m),
            ServiceError::Unavailable(m) => Status::unavailable(m),
            ServiceError::Conflict(m) => {
                Status::aborted(format!("conflict with a concurrent change ({m}); retry"))
            }
            ServiceError::ResourceExhausted(m) => Status::resource_exhausted(m),
            ServiceError::DataLoss(m) => Status::data_loss(m),
            ServiceError::Database { verdict, source } => database_status(verdict, &source),
            // Our bug: its cause goes to the log, once, and the caller learns only that it happened.
            ServiceError::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// An RPC's answer: the domain result, with its error mapped to a status in the one place that does it.
#[allow(clippy::result_large_err)]
pub fn respond<T>(result: ServiceResult<T>) -> Result<tonic::Response<T>, Status> {
    result.map(tonic::Response::new).map_err(Status::from)
}

/// Runs `attempt` again (up to 4 times in all, with jittered backoff) while it fails with a conflict: a
/// rolled-back transaction that lost a race with another. Other errors, and success, return at once.
pub async fn retry_conflicts<T, F, Fut>(mut attempt: F) -> ServiceResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ServiceResult<T>>,
{
    let mut backoff = crate::backoff::Backoff::new(
        std::time::Duration::from_millis(5),
        std::time::Duration::from_millis(200),
    );
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(e) if e.is_conflict() && tries < 4 => {
                tries += 1;
                tokio::time::sleep(backoff.next_delay()).await;
            }
            other => return other,
        }
    }
}

/// Parses a UUID field of a request.
pub fn parse_id(field: &str, value: &str) -> ServiceResult<uuid::Uuid> {
    if value.is_empty() {
        return Err(ServiceError::invalid(field, "required"));
    }
    uuid::Uuid::parse_str(value).map_err(|_| ServiceError::invalid(field, "not a UUID"))
}

/// Checks a free-text field's length in characters.
pub fn check_text(field: &str, value: &str, min: usize, max: usize) -> ServiceResult<()> {
    let n = value.chars().count();
    if n < min {
        return Err(ServiceError::invalid(
            field,
            if min == 1 {
                "required".to_string()
            } else {
                format!("at least {min} characters")
            },
        ));
    }
    if n > max {
        return Err(ServiceError::invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(ServiceError::invalid(
            field,
            "control characters are not allowed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_the_field() {
        let status: Status = ServiceError::invalid("legal_basis.number", "required").into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("legal_basis.number"));
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request detail");
        assert_eq!(bad.field_violations[0].field, "legal_basis.number");
    }

    /// A status as tonic makes it from a transport error: with that error as its source.
    fn broken_connection(code: Code) -> Status {
        let mut status = Status::new(code, "h2 protocol error: http2 error");
        status.set_source(std::sync::Arc::new(std::io::Error::other(
            "connection reset",
        )));
        status
    }

    #[test]
    fn a_dependency_that_went_away_is_an_outage() {
        for status in [
            Status::unknown("transport error"),
            broken_connection(Code::Internal),
            Status::unavailable("tcp connect error"),
            Status::deadline_exceeded("timeout"),
        ] {
            assert!(ServiceError::from(status).is_transient());
        }
        assert!(!ServiceError::from(Status::internal("internal error")).is_transient());
        // The peer's own INTERNAL is its bug, whatever its message says.
        assert!(!ServiceError::from(Status::internal("h2 protocol error: x")).is_transient());
        assert!(matches!(
            ServiceError::from(Status::permission_denied("no")),
            ServiceError::PermissionDenied(_)
        ));
    }

    #[test]
    fn another_services_verdict_is_read_from_its_details_not_its_message() {
        let sent: Status = ServiceError::not_found("provider agency").into();
        assert_eq!(sent.message(), "provider agency not found");
        match ServiceError::from(sent) {
            ServiceError::NotFound(what) => assert_eq!(what, "provider agency"),
            other => panic!("{other:?}"),
        }
        let sent: Status = ServiceError::invalid("legal_basis.number", "required").into();
        match ServiceError::from(sent) {
            ServiceError::InvalidArgument { field, reason } => {
                assert_eq!(
                    (field.as_str(), reason.as_str()),
                    ("legal_basis.number", "required")
                );
            }
            other => panic!("{other:?}"),
        }
        // A status without details: its message is the reason, and no field is made up from it.
        match ServiceError::from(Status::invalid_argument("case_id: not a UUID")) {
            ServiceError::InvalidArgument { field, reason } => {
                assert_eq!(
                    (field.as_str(), reason.as_str()),
                    ("", "case_id: not a UUID")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ServiceError::from(Status::not_found("case not found")),
            ServiceError::NotFound(what) if !what.contains("not found")
        ));
    }

    #[test]
    fn a_database_error_keeps_its_source_and_keeps_its_status() {
        use std::error::Error as _;
        let unknown = placement_proto::stored::UnknownStoredName {
            kind: "Language",
            value: "LANGUAGE_XX".into(),
        };
        let e = ServiceError::from(sqlx::Error::ColumnDecode {
            index: "\"language\"".into(),
            source: Box::new(unknown),
        });
        assert_eq!(e.code_name(), "DATA_LOSS");
        assert!(
            e.source()
                .is_some_and(|s| s.to_string().contains("LANGUAGE_XX"))
        );
        let status = Status::from(e);
        assert_eq!(status.code(), Code::DataLoss);
        assert!(
            status.message().contains("\"LANGUAGE_XX\""),
            "{}",
            status.message()
        );

        let e = ServiceError::from(sqlx::Error::PoolTimedOut);
        assert!(e.is_transient() && !e.is_conflict());
        assert!(matches!(e.source(), Some(s) if s.downcast_ref::<sqlx::Error>().is_some()));
        assert_eq!(Status::from(e).message(), "database");

        let e = ServiceError::from(sqlx::Error::RowNotFound);
        assert_eq!(e.code_name(), "INTERNAL");
        let status = Status::from(e);
        assert_eq!(
            status.message(),
            "internal error",
            "the cause stays in the log"
        );
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let status: Status = ServiceError::Internal("relation foo does not exist".into()).into();
        assert_eq!(status.message(), "internal error");
    }

    #[tokio::test]
    async fn conflicts_are_retried_and_other_errors_are_not() {
        let mut calls = 0;
        let r = retry_conflicts(|| {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(ServiceError::Conflict("db".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        let mut calls = 0;
        let r: ServiceResult<()> = retry_conflicts(|| {
            calls += 1;
            async { Err(ServiceError::Conflict("db".into())) }
        })
        .await;
        assert!(matches!(r, Err(ServiceError::Conflict(_))));
        assert_eq!(calls, 4);
        let mut calls = 0;
        let r: ServiceResult<()> = retry_conflicts(|| {
            calls += 1;
            async { Err(ServiceError::precondition("no")) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
        let status: Status = ServiceError::Conflict("db".into()).into();
        assert_eq!(status.code(), Code::Aborted);
    }

    #[test]
    fn text_checks() {
        assert!(check_text("reason", "", 1, 10).is_err());
        assert!(check_text("reason", "абвгд", 1, 5).is_ok());
        assert!(check_text("reason", "абвгде", 1, 5).is_err());
        assert!(check_text("reason", "a\u{0}b", 1, 5).is_err());
        assert!(parse_id("case_id", "nope").is_err());
    }
}
