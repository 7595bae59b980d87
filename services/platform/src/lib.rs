//! What every Placement Exchange service really shares: configuration from the environment, telemetry,
//! shutdown, the PostgreSQL pool and migrations, the caller's identity, the error-to-status mapping,
//! pagination tokens and the gRPC server with health and reflection.

pub mod admission;
pub mod audit;
pub mod backoff;
pub mod caller;
pub mod config;
pub mod config_reference;
pub mod db;
pub mod error;
pub mod grpc;
pub mod grpc_observed;
pub mod numbers;
pub mod page;
pub mod prometheus;
pub mod seal;
pub mod services;
pub mod shutdown;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod trace_context;
pub mod webhook;

pub use caller::{Caller, CallerExt};
pub use error::ServiceError;
