//! `placement-cli directory import`: a register file sent to the directory in chunks, and its report
//! printed (and, with `--report-csv`, written row by row).

use std::path::Path;

use placement_proto::v1::{
    ImportOptions, ImportOutcome, ImportServicesChunk, ImportServicesReport,
    directory_service_client::DirectoryServiceClient, import_services_chunk::Part,
};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::clients::as_agency;

/// Bytes per message, well under the services' 64 KiB request limit.
const CHUNK: usize = 32 * 1024;

/// Sends `bytes` (the file `file_name`) to be imported as `agency`.
pub async fn import(
    directory: &mut DirectoryServiceClient<Channel>,
    agency: Uuid,
    file_name: &str,
    bytes: &[u8],
    dry_run: bool,
    close_missing: bool,
) -> Result<ImportServicesReport, tonic::Status> {
    import_with_progress(
        directory,
        agency,
        file_name,
        bytes,
        (dry_run, close_missing),
        |_, _| {},
    )
    .await
}

/// As [`import`], telling `progress` the rows written and the rows in all as the directory goes.
pub async fn import_with_progress(
    directory: &mut DirectoryServiceClient<Channel>,
    agency: Uuid,
    file_name: &str,
    bytes: &[u8],
    (dry_run, close_missing): (bool, bool),
    mut progress: impl FnMut(u32, u32),
) -> Result<ImportServicesReport, tonic::Status> {
    let mut messages = vec![ImportServicesChunk {
        part: Some(Part::Options(ImportOptions {
            file_name: file_name.to_string(),
            dry_run,
            close_missing,
        })),
    }];
    messages.extend(bytes.chunks(CHUNK).map(|c| ImportServicesChunk {
        part: Some(Part::Data(c.to_vec())),
    }));
    let mut request = as_agency(agency, tokio_stream::iter(messages));
    // A register of thousands of services takes seconds, not the few a call usually has.
    request.set_timeout(std::time::Duration::from_secs(300));
    let mut answers = directory.import_services(request).await?.into_inner();
    while let Some(answer) = answers.message().await? {
        progress(answer.rows_done, answer.rows_total);
        if let Some(report) = answer.report {
            return Ok(report);
        }
    }
    Err(tonic::Status::unavailable(
        "the import's answer ended before its report",
    ))
}

/// The file's name as the import records it.
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The summary, then every refused and updated row, then the services the file no longer lists.
pub fn text(r: &ImportServicesReport) -> String {
    let mut t = format!(
        "{}{} rows: {} created, {} updated, {} unchanged, {} refused; {} providers registered\n",
        if r.dry_run {
            "dry run (nothing changed): "
        } else {
            ""
        },
        r.rows,
        r.created,
        r.updated,
        r.unchanged,
        r.refused,
        r.providers_created
    );
    for row in &r.results {
        if row.outcome == ImportOutcome::Refused as i32 {
            t += &format!(
                "  row {} ({}): refused, {}: {}\n",
                row.row, row.register_id, row.column, row.reason
            );
        } else if row.outcome == ImportOutcome::Updated as i32 {
            t += &format!(
                "  row {} ({}): {}\n",
                row.row,
                row.register_id,
                row.changes.join("; ")
            );
        }
    }
    if !r.missing.is_empty() {
        t += &format!(
            "{} imported services are not in the file:\n",
            r.missing.len()
        );
        for m in &r.missing {
            let state = match (m.closed, m.reason.is_empty()) {
                (true, _) => "closed".to_string(),
                (false, true) => "left open (pass --close-missing to close)".to_string(),
                (false, false) => format!("left open: {}", m.reason),
            };
            t += &format!("  {} ({}): {state}\n", m.register_id, m.service_id);
        }
    }
    if !r.import_id.is_empty() {
        t += &format!(
            "import {} recorded in the directory's audit trail\n",
            r.import_id
        );
    }
    t
}

/// Every row as CSV: row, register_id, outcome, service_id, column, reason, changes.
pub fn csv(r: &ImportServicesReport) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "row",
        "register_id",
        "outcome",
        "service_id",
        "column",
        "reason",
        "changes",
    ])?;
    for row in &r.results {
        let outcome = ImportOutcome::try_from(row.outcome)
            .unwrap_or(ImportOutcome::Unspecified)
            .as_str_name()
            .trim_start_matches("IMPORT_OUTCOME_")
            .to_lowercase();
        w.write_record([
            row.row.to_string(),
            row.register_id.clone(),
            outcome,
            row.service_id.clone(),
            row.column.clone(),
            row.reason.clone(),
            row.changes.join("; "),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Every page of the directory's HSDS export changed after `modified_after`, as `agency`: the services
/// (HSDS `service` objects) and the latest change among them.
pub async fn export_hsds(
    directory: &mut DirectoryServiceClient<Channel>,
    agency: Uuid,
    modified_after: Option<prost_types::Timestamp>,
) -> Result<(Vec<serde_json::Value>, Option<prost_types::Timestamp>), tonic::Status> {
    let mut services = Vec::new();
    let mut last = None;
    let mut token = String::new();
    loop {
        let page = directory
            .export_directory(as_agency(
                agency,
                placement_proto::v1::ExportDirectoryRequest {
                    format: "hsds".into(),
                    page: Some(placement_proto::v1::PageRequest {
                        page_size: 500,
                        page_token: token,
                    }),
                    modified_after,
                },
            ))
            .await?
            .into_inner();
        let json: serde_json::Value = serde_json::from_str(&page.json)
            .map_err(|e| tonic::Status::internal(format!("the export is not JSON: {e}")))?;
        if let Some(contents) = json["contents"].as_array() {
            services.extend(contents.iter().cloned());
        }
        last = page.last_modified.or(last);
        if page.next_page_token.is_empty() {
            return Ok((services, last));
        }
        token = page.next_page_token;
    }
}
