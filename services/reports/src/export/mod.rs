//! A district's report as files: every table (see [`model`]) written as CSV (one table) or XLSX (a sheet
//! each).

pub mod model;

use chrono::{DateTime, Utc};
use placement_platform::error::{ServiceError, ServiceResult};
use placement_proto::v1::{DistrictReport, ReportFile, ReportFormat, ReportTable};
use rust_xlsxwriter::{Workbook, XlsxError};

use model::{Cell, Table, tables};

/// Why the report cannot be made a file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The CSV asked for a table the report does not have.
    #[error("table: not a table of the report")]
    NotATable,
    #[error("writing the file: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing the file: {0}")]
    Xlsx(#[from] XlsxError),
}

impl From<ExportError> for ServiceError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::NotATable => ServiceError::invalid("table", "not a table of the report"),
            ExportError::Csv(_) | ExportError::Xlsx(_) => ServiceError::Internal(e.to_string()),
        }
    }
}

/// The report as the file asked for.
pub fn file(
    report: &DistrictReport,
    period: (DateTime<Utc>, DateTime<Utc>),
    format: ReportFormat,
    table: ReportTable,
) -> ServiceResult<ReportFile> {
    let tables = tables(report);
    let stem = format!(
        "placement-{}-{}-{}",
        report.region_code,
        period.0.format("%Y-%m-%d"),
        period.1.format("%Y-%m-%d")
    );
    if format == ReportFormat::Xlsx {
        return Ok(ReportFile {
            content_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                .into(),
            file_name: format!("{stem}.xlsx"),
            content: xlsx(&tables).map_err(ExportError::from)?,
        });
    }
    let chosen = (tables.iter())
        .find(|t| t.kind == table)
        .ok_or(ExportError::NotATable)?;
    Ok(ReportFile {
        content_type: "text/csv; charset=utf-8".into(),
        file_name: format!("{stem}-{}.csv", chosen.sheet_name()),
        content: csv(chosen).map_err(ExportError::from)?,
    })
}

/// One table as CSV (RFC 4180, UTF-8).
pub fn csv(table: &Table) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(table.header)?;
    for row in &table.rows {
        w.write_record(row.iter().map(|c| match c {
            Cell::Text(t) => t.clone(),
            Cell::Number(n) => n.to_string(),
        }))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Every table as a sheet of one workbook.
pub fn xlsx(tables: &[Table]) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    for table in tables {
        let sheet = workbook.add_worksheet();
        sheet.set_name(table.sheet_name())?;
        for (col, name) in (0u16..).zip(table.header) {
            sheet.write_string(0, col, *name)?;
        }
        for (row, cells) in (1u32..).zip(&table.rows) {
            for (col, cell) in (0u16..).zip(cells) {
                match cell {
                    Cell::Text(t) => sheet.write_string(row, col, t)?,
                    Cell::Number(n) => sheet.write_number(row, col, *n)?,
                };
            }
        }
    }
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal is answered as before its enum: the same code, field and text; a writer's failure
    /// keeps its cause for the log and tells the caller nothing of it.
    #[test]
    fn refusals_keep_their_codes_fields_and_text() {
        let e = ServiceError::from(ExportError::NotATable);
        assert!(matches!(&e, ServiceError::InvalidArgument { field, .. } if field == "table"));
        assert_eq!(e.code_name(), "INVALID_ARGUMENT");
        assert_eq!(
            tonic::Status::from(e).message(),
            "table: not a table of the report"
        );
        let failed = ExportError::from(XlsxError::SheetnameCannotBeBlank(String::new()));
        let cause = XlsxError::SheetnameCannotBeBlank(String::new()).to_string();
        assert!(std::error::Error::source(&failed).is_some());
        let e = ServiceError::from(failed);
        assert!(
            matches!(&e, ServiceError::Internal(m) if *m == format!("writing the file: {cause}"))
        );
        assert_eq!(e.code_name(), "INTERNAL");
        assert_eq!(tonic::Status::from(e).message(), "internal error");
    }
    use placement_model::figures::{FIGURES, FigureKind, STATUSES_NOW};
    use placement_proto::v1::{DistrictSide, DurationFigures};

    fn figures_csv(report: &DistrictReport) -> String {
        let tables = tables(report);
        let sides = (tables.iter())
            .find(|t| t.kind == ReportTable::Sides)
            .expect("the figures table");
        String::from_utf8(csv(sides).expect("CSV")).expect("UTF-8")
    }

    #[test]
    fn every_figure_has_its_rows_in_the_figures_table() {
        let receiver = DistrictSide {
            unanswered: 5,
            working_time_to_placement: Some(DurationFigures {
                count: 2,
                median: Some(prost_types::Duration {
                    seconds: 5400,
                    nanos: 500_000_000,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = figures_csv(&DistrictReport {
            as_receiver: Some(receiver),
            ..Default::default()
        });
        let names: Vec<&str> = (text.lines().skip(1))
            .filter_map(|l| l.split(',').next())
            .collect();
        for figure in &FIGURES {
            let key = figure.key();
            let expected = match figure.kind() {
                FigureKind::Count => vec![key.to_string()],
                FigureKind::Duration | FigureKind::WorkingDuration => {
                    ["count", "median_s", "p90_s", "slowest_s"]
                        .map(|s| format!("{key}_{s}"))
                        .to_vec()
                }
            };
            for name in expected {
                assert_eq!(
                    names.iter().filter(|n| **n == name).count(),
                    1,
                    "{name} in {text}"
                );
            }
        }
        assert!(text.lines().any(|l| l == "unanswered,0,5"), "{text}");
        assert!(
            text.lines().any(|l| l == "working_placement_count,0,2"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l == "working_placement_median_s,,5400.5"),
            "{text}"
        );
        assert!(text.lines().any(|l| l == "now_placed,0,0"), "{text}");
        // Thirteen counts and twelve durations of four rows each.
        assert_eq!(names.len(), STATUSES_NOW.len() + 13 + 12 * 4);
    }
}
