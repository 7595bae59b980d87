//! Who is calling. The one place that turns request metadata into the acting agency: when calls carry
//! verified credentials, only this module changes.

use tonic::{Request, Status, metadata::MetadataValue};
use uuid::Uuid;

/// The metadata key naming the agency a call acts for.
pub const AGENCY_HEADER: &str = "x-agency-id";

/// The national Agency for Social Assistance: it operates the system (created by the directory's first
/// migration; registers the first agencies; sees delivery status and dead letters).
pub const NATIONAL_AUTHORITY: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_000000000001);

/// The agency on whose behalf a call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub agency_id: Uuid,
}

/// A tonic interceptor: reads the caller from the metadata into the request's extensions.
/// A malformed header is refused here; an absent one is refused by the RPCs that need a caller.
#[allow(clippy::result_large_err)]
pub fn identify(mut request: Request<()>) -> Result<Request<()>, Status> {
    if let Some(value) = request.metadata().get(AGENCY_HEADER) {
        let agency_id = value
            .to_str()
            .ok()
            .and_then(|v| Uuid::parse_str(v.trim()).ok())
            .ok_or_else(|| Status::unauthenticated(format!("{AGENCY_HEADER} is not a UUID")))?;
        request.extensions_mut().insert(Caller { agency_id });
    }
    Ok(request)
}

pub trait CallerExt {
    /// The calling agency, or UNAUTHENTICATED when the call names none.
    #[allow(clippy::result_large_err)]
    fn caller(&self) -> Result<Caller, Status>;
}

impl<T> CallerExt for Request<T> {
    fn caller(&self) -> Result<Caller, Status> {
        self.extensions()
            .get::<Caller>()
            .copied()
            .ok_or_else(|| Status::unauthenticated(format!("missing {AGENCY_HEADER}")))
    }
}

impl Caller {
    /// Makes an outgoing request to another service act for the same agency.
    pub fn forward<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let value =
            MetadataValue::try_from(self.agency_id.to_string()).expect("a UUID is valid metadata");
        request.metadata_mut().insert(AGENCY_HEADER, value);
        request
    }
}

/// The metadata key carrying a correlation id chosen by the client, propagated into events.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The request's correlation id, or a fresh one.
pub fn correlation_id<T>(request: &Request<T>) -> Uuid {
    request
        .metadata()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or_else(Uuid::now_v7)
}
