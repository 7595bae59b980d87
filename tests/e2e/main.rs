//! End-to-end tests: the four service binaries as separate processes, a real PostgreSQL and RabbitMQ,
//! gRPC only (plus the broker and the databases, read to check what the API cannot show).

mod audit;
mod authz;
mod bench_smoke;
mod delivery;
mod errors;
mod fhir;
mod flow;
mod paths;
mod personal_data;
mod reminders;
mod support;
