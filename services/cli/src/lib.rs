//! Clients of the Placement Exchange API: the demo data set, the cross-region placement scenario and
//! readiness checks. The end-to-end tests use the same pieces.

mod channels;
pub mod clients;
pub mod demo;
pub mod devkeys;
pub mod import;
pub mod report;
pub mod scenario;
pub mod sign_in;
pub mod token_cache;
