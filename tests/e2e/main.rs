//! End-to-end tests: the four service binaries as separate processes, a real PostgreSQL and RabbitMQ,
//! gRPC only (plus the broker and the databases, read to check what the API cannot show).

// Measuring and test code: the rule against wrapping casts guards what services do with requests.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

mod audit;
mod audit_checkpoint;
mod authz;
mod backup;
mod bench_smoke;
mod broker_nodes;
mod changes;
mod cli_sign_in;
mod config_reference;
mod database_roles;
mod delivery;
mod deploy_files;
mod digest;
mod docs_commands;
mod errors;
mod fhir;
mod flow;
mod fuzz;
mod group_commit;
mod history;
mod hsds;
mod import;
mod import_limits;
mod keys;
mod limits;
mod metrics;
mod module_direction;
mod names_backfill;
mod notices;
mod oidc;
mod operator_scope;
mod paths;
mod personal_data;
mod readme;
mod references;
mod reminders;
mod reports;
mod search;
mod step_timers;
mod support;
mod traces;
mod transactions;
mod web;
mod web_search;
mod web_sign_in;
mod web_words;
mod webhook_targets;
