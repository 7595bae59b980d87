//! Importing the national register of social services: the file read ([`crate::register::file`]), every row
//! checked ([`entry`]) and decided ([`plan`]) before anything is written, then the changes applied in
//! batches, one event per changed service, and the import recorded once in the audit trail with its
//! counts. Keyed on the register's id: the same file twice changes nothing the second time.

pub mod entry;
pub mod model;
pub mod plan;
pub mod store;

use std::collections::HashMap;

use placement_messaging::{Event, Outbox};
use placement_platform::{Caller, error::ServiceResult};
use placement_proto::v1::{
    AgencyKind, AgencyRegistered, CapacityChange, ImportOutcome, ImportRowResult,
    ImportServicesReport, MissingService, ServiceStatus,
};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    EVENTS,
    agencies::model::AgencyRow,
    register::file,
    social_services::{
        model::ServiceRow,
        store::{lock_service, set_capacity},
    },
};
use model::{ImportError, ImportedService, Options, RegisterService};
use plan::{Action, Planned, Planner, Provider, Scope};

/// Rows written per transaction.
const BATCH: usize = 500;

pub struct Importer<'a> {
    pub pool: &'a PgPool,
    pub outbox: &'a Outbox,
    pub caller: &'a Caller,
    pub agency: &'a AgencyRow,
    pub correlation: Uuid,
}

impl Importer<'_> {
    /// Imports the file; `progress` is told the rows done and the rows in all after each batch.
    pub async fn run(
        &self,
        options: &Options,
        bytes: Vec<u8>,
        progress: &(dyn Fn(u32, u32) + Sync),
    ) -> ServiceResult<ImportServicesReport> {
        // The agency's standing before the file: an agency that may not import costs no parsing.
        let scope = scope_of(self.agency)?;
        let (rows, bytes) = read_register(bytes).await?;
        let region = match &scope {
            Scope::Country => None,
            Scope::District(code) => Some(code.as_str()),
        };
        let municipalities: HashMap<String, String> = crate::reference::model::rows()
            .into_iter()
            .map(|r| (r.municipality_code, r.oblast_code))
            .collect();
        let existing = store::imported_services(self.pool, region).await?;
        let providers = store::providers(self.pool, region).await?;
        let mut planner = Planner::new(scope, &municipalities, existing, providers);
        let mut planned: Vec<Planned> = rows.iter().map(|r| planner.plan(r)).collect();
        let missing: Vec<ImportedService> = planner.missing().into_iter().cloned().collect();
        let mut report = ImportServicesReport {
            dry_run: options.dry_run,
            providers_created: placement_platform::numbers::len_u32(planner.new_providers.len()),
            ..Default::default()
        };
        let total = placement_platform::numbers::len_u32(planned.len());
        if !options.dry_run {
            self.register_providers(&planner.new_providers).await?;
            let mut done = 0;
            for batch in planned.chunks_mut(BATCH) {
                self.apply(batch).await?;
                done += placement_platform::numbers::len_u32(batch.len());
                progress(done, total);
            }
        }
        report.missing = self.missing(&missing, options).await?;
        report.results = planned.iter().map(result_of).collect();
        count(&mut report);
        if !options.dry_run {
            report.import_id = self.record(options, &bytes, &report).await?.to_string();
        }
        tracing::info!(
            rows = report.rows,
            created = report.created,
            updated = report.updated,
            unchanged = report.unchanged,
            refused = report.refused,
            dry_run = options.dry_run,
            "register imported"
        );
        Ok(report)
    }

    async fn register_providers(&self, providers: &[plan::NewProvider]) -> ServiceResult<()> {
        for chunk in providers.chunks(BATCH) {
            let rows: Vec<model::NewProvider<'_>> = (chunk.iter())
                .map(|p| model::NewProvider {
                    id: p.id,
                    kind: p.kind,
                    name: &p.name,
                    region_code: &p.region_code,
                    municipality_code: &p.municipality_code,
                    external_id: p.external_id.as_deref(),
                })
                .collect();
            let events: Vec<_> = (chunk.iter())
                .map(|p| {
                    EVENTS.build(
                        Event::AgencyRegistered(AgencyRegistered {
                            agency_id: p.id.to_string(),
                            kind: p.kind as i32,
                            region_code: p.region_code.clone(),
                            municipality_code: p.municipality_code.clone(),
                            name: p.name.clone(),
                            // A register names its providers in Bulgarian only.
                            name_en: String::new(),
                        }),
                        p.id,
                        1,
                        self.correlation,
                    )
                })
                .collect();
            let mut tx = placement_platform::db::begin(self.pool).await?;
            store::insert_providers(&mut tx, &rows).await?;
            Outbox::enqueue_all(&mut tx, &events).await?;
            self.outbox.commit(tx).await?;
        }
        Ok(())
    }

    /// Writes one batch in one transaction: the new services in one statement, each update on its own
    /// (checked again against the service as it is now, locked: places held since the plan was made turn
    /// it into a refusal), and every event in one statement.
    async fn apply(&self, batch: &mut [Planned]) -> ServiceResult<()> {
        let mut tx = placement_platform::db::begin(self.pool).await?;
        let mut events = Vec::new();
        let mut outcomes: Vec<(usize, Action)> = Vec::new();
        let mut created = Vec::new();
        for (i, planned) in batch.iter().enumerate() {
            match &planned.action {
                Action::Create(entry, provider) => {
                    let id = Uuid::now_v7();
                    created.push(described(id, entry, *provider, 0));
                    outcomes.push((i, Action::Created(id, entry.clone(), *provider)));
                }
                Action::Update {
                    entry,
                    provider,
                    service,
                    ..
                } => match self.update(&mut tx, entry, *provider, *service).await? {
                    Ok((row, renamed)) => {
                        events.push(announcement(
                            &row,
                            Event::ServiceCapacityChanged,
                            CapacityChange::Adjusted,
                            self.correlation,
                        ));
                        // The services naming it in words (notifications) take registrations, not
                        // every change of places: a new name is announced as one.
                        if renamed {
                            events.push(announcement(
                                &row,
                                Event::ServiceRegistered,
                                CapacityChange::Announced,
                                self.correlation,
                            ));
                        }
                    }
                    Err(refusal) => outcomes.push((i, Action::Refuse(refusal))),
                },
                Action::Created(..) | Action::Unchanged(_) | Action::Refuse(_) => {}
            }
        }
        let rows = store::insert_imported_services(&mut tx, &created).await?;
        events.extend(rows.iter().map(|row| {
            announcement(
                row,
                Event::ServiceRegistered,
                CapacityChange::Registered,
                self.correlation,
            )
        }));
        drop(created);
        Outbox::enqueue_all(&mut tx, &events).await?;
        self.outbox.commit(tx).await?;
        for (i, action) in outcomes {
            batch[i].action = action;
        }
        Ok(())
    }

    async fn update(
        &self,
        conn: &mut PgConnection,
        entry: &entry::Entry,
        provider: Provider,
        service: Uuid,
    ) -> ServiceResult<Result<(ServiceRow, bool), entry::Refusal>> {
        let current = lock_service(&mut *conn, service)
            .await?
            .ok_or(ImportError::ServiceGone)?;
        if let Err(refusal) = plan::check_update(&current, entry) {
            return Ok(Err(refusal));
        }
        let occupied = entry.occupied.unwrap_or(current.occupied_places);
        let row =
            store::update_imported_service(conn, &described(service, entry, provider, occupied))
                .await?;
        let renamed = row.name != current.name;
        Ok(Ok((row, renamed)))
    }

    /// Reports the services the file no longer lists, closing those that may be closed when asked to.
    async fn missing(
        &self,
        missing: &[ImportedService],
        options: &Options,
    ) -> ServiceResult<Vec<MissingService>> {
        let mut out = Vec::with_capacity(missing.len());
        let close = options.close_missing && !options.dry_run;
        let mut tx = placement_platform::db::begin(self.pool).await?;
        for s in missing {
            let mut report = MissingService {
                register_id: s.external_id.clone(),
                service_id: s.row.id.to_string(),
                closed: s.row.status == ServiceStatus::Closed,
                reason: String::new(),
            };
            if options.close_missing && !report.closed {
                match close_if_empty(&mut tx, s.row.id, close, self.correlation).await? {
                    Ok(()) => report.closed = close,
                    Err(reason) => report.reason = reason,
                }
            }
            out.push(report);
        }
        self.outbox.commit(tx).await?;
        Ok(out)
    }

    /// The import's own record and its one entry in the audit trail, with its counts.
    async fn record(
        &self,
        options: &Options,
        bytes: &[u8],
        report: &ImportServicesReport,
    ) -> ServiceResult<Uuid> {
        let id = Uuid::now_v7();
        let closed = report.missing.iter().filter(|m| m.closed).count();
        let to_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let counts = [
            to_i32(report.rows),
            to_i32(report.created),
            to_i32(report.updated),
            to_i32(report.unchanged),
            to_i32(report.refused),
            i32::try_from(closed).unwrap_or(i32::MAX),
            to_i32(report.providers_created),
        ];
        let sha = hex::encode(Sha256::digest(bytes));
        let mut tx = placement_platform::db::begin(self.pool).await?;
        store::record_import(
            &mut tx,
            &model::ImportRecord {
                id,
                agency_id: self.agency.id,
                file_name: &options.file_name,
                file_sha256: &sha,
                counts,
            },
        )
        .await?;
        let outcome = format!(
            "OK: {} rows, {} created, {} updated, {} unchanged, {} refused, {closed} closed, {} providers created",
            report.rows,
            report.created,
            report.updated,
            report.unchanged,
            report.refused,
            report.providers_created
        );
        placement_platform::audit::append(
            &mut tx,
            &placement_platform::audit::Entry {
                caller: self.caller,
                rpc: "placement.v1.DirectoryService/ImportServices",
                record_type: "service_import",
                record_ids: &[id],
                outcome: &outcome,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }
}

/// What `agency` may import: the whole country for a national authority, its own district for an RDSA;
/// any other agency nothing.
pub fn scope_of(agency: &AgencyRow) -> Result<Scope, ImportError> {
    match agency.kind() {
        AgencyKind::NationalAuthority => Ok(Scope::Country),
        AgencyKind::Rdsa => Ok(Scope::District(
            agency.region_code.clone().unwrap_or_default(),
        )),
        _ => Err(ImportError::NotEntitled),
    }
}

/// The file read on a blocking thread (a large workbook takes a while to read), handed back with its
/// rows. A panic in the reader is a file it was not written for (calamine's arithmetic on a row number
/// of ten digits): the file is refused and the directory goes on.
async fn read_register(bytes: Vec<u8>) -> Result<(Vec<file::Row>, Vec<u8>), ImportError> {
    match tokio::task::spawn_blocking(move || (file::read(&bytes), bytes)).await {
        Ok((Ok(rows), bytes)) => Ok((rows, bytes)),
        Ok((Err(e), _)) => Err(ImportError::Unreadable(e)),
        Err(e) => {
            tracing::error!(error = %e, "the register reader failed on a file");
            Err(ImportError::ReaderFailed)
        }
    }
}

fn described<'a>(
    id: Uuid,
    e: &'a entry::Entry,
    provider: Provider,
    occupied: i32,
) -> RegisterService<'a> {
    RegisterService {
        id,
        provider: provider.id(),
        external_id: &e.register_id,
        service_type: e.service_type,
        name: &e.name,
        region_code: &e.region_code,
        municipality_code: &e.municipality_code,
        capacity: e.capacity,
        occupied: e.occupied.unwrap_or(occupied),
        min_age: e.min_age,
        max_age: e.max_age,
        status: e.status,
        address: &e.address,
    }
}

/// A service's places announced as `event` (registered or changed).
fn announcement(
    row: &ServiceRow,
    event: fn(placement_proto::v1::ServiceCapacityChanged) -> Event,
    change: CapacityChange,
    correlation: Uuid,
) -> placement_proto::v1::EventEnvelope {
    EVENTS.build(
        event(row.capacity_event(change, None, 0)),
        row.id,
        placement_platform::numbers::serial(row.version),
        correlation,
    )
}

/// Closes the service (when `close`) unless it holds places or children; the reason it stays open if so.
async fn close_if_empty(
    conn: &mut PgConnection,
    id: Uuid,
    close: bool,
    correlation: Uuid,
) -> ServiceResult<Result<(), String>> {
    let current = lock_service(&mut *conn, id)
        .await?
        .ok_or(ImportError::ServiceGone)?;
    let holds = current.held_places + current.occupied_places;
    if holds > 0 {
        return Ok(Err(format!(
            "holds {holds} places or children: close it once they have left"
        )));
    }
    if close {
        let row = set_capacity(
            &mut *conn,
            id,
            current.capacity,
            current.occupied_places,
            ServiceStatus::Closed,
        )
        .await?;
        let event = announcement(
            &row,
            Event::ServiceCapacityChanged,
            CapacityChange::Adjusted,
            correlation,
        );
        Outbox::enqueue(conn, &event).await?;
    }
    Ok(Ok(()))
}

fn result_of(p: &Planned) -> ImportRowResult {
    let mut r = ImportRowResult {
        row: p.row,
        register_id: p.register_id.clone(),
        ..Default::default()
    };
    match &p.action {
        Action::Create(..) => r.outcome = ImportOutcome::Created as i32,
        Action::Created(id, ..) => {
            r.outcome = ImportOutcome::Created as i32;
            r.service_id = id.to_string();
        }
        Action::Update {
            service, changes, ..
        } => {
            r.outcome = ImportOutcome::Updated as i32;
            r.service_id = service.to_string();
            r.changes.clone_from(changes);
        }
        Action::Unchanged(service) => {
            r.outcome = ImportOutcome::Unchanged as i32;
            r.service_id = service.to_string();
        }
        Action::Refuse(refusal) => {
            r.outcome = ImportOutcome::Refused as i32;
            r.column = refusal.column.name().to_string();
            r.reason.clone_from(&refusal.reason);
        }
    }
    r
}

fn count(report: &mut ImportServicesReport) {
    report.rows = placement_platform::numbers::len_u32(report.results.len());
    let of = |o: ImportOutcome| {
        placement_platform::numbers::len_u32(
            report
                .results
                .iter()
                .filter(|r| r.outcome == o as i32)
                .count(),
        )
    };
    report.created = of(ImportOutcome::Created);
    report.updated = of(ImportOutcome::Updated);
    report.unchanged = of(ImportOutcome::Unchanged);
    report.refused = of(ImportOutcome::Refused);
}
