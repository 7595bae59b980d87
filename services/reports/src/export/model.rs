//! A district's report as tables of cells: column names in English and durations in seconds, for whoever
//! reads them into another tool.

use placement_model::figures::{FIGURES, Figure, FigureKind, FigureValue, STATUSES_NOW, count_now};
use placement_proto::v1::{
    DeclineReason, DistrictReport, DistrictSide, ReferralStepName, ReportTable, ServiceType,
    WaitingReason, WithdrawReason,
};

pub enum Cell {
    Text(String),
    Number(f64),
}

pub struct Table {
    pub kind: ReportTable,
    pub header: &'static [&'static str],
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn sheet_name(&self) -> &'static str {
        match self.kind {
            ReportTable::Sides => "figures",
            ReportTable::Reasons => "reasons",
            ReportTable::Flows => "flows",
            ReportTable::Services => "services",
            ReportTable::Places => "places",
            ReportTable::Stalled | ReportTable::Unspecified => "stalled",
        }
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn number(n: impl Into<f64>) -> Cell {
    Cell::Number(n.into())
}

/// Every table of the report.
pub fn tables(r: &DistrictReport) -> Vec<Table> {
    let (s, v) = (
        r.as_sender.clone().unwrap_or_default(),
        r.as_receiver.clone().unwrap_or_default(),
    );
    vec![
        Table {
            kind: ReportTable::Sides,
            header: &["figure", "as_sender", "as_receiver"],
            rows: sides(&s, &v),
        },
        Table {
            kind: ReportTable::Reasons,
            header: &["side", "step", "reason", "count"],
            rows: reasons(&s, &v),
        },
        flows(r),
        services(r),
        stalled(r),
        places(r),
    ]
}

fn places(r: &DistrictReport) -> Table {
    let rows = (r.places.iter())
        .map(|p| {
            let kind = ServiceType::try_from(p.service_type).unwrap_or_default();
            vec![
                text(kind.as_str_name()),
                number(p.services),
                number(p.capacity),
                number(p.free_places),
                number(p.held_places),
                number(p.occupied_places),
            ]
        })
        .collect();
    Table {
        kind: ReportTable::Places,
        header: &[
            "service_type",
            "services",
            "capacity",
            "free_places",
            "held_places",
            "occupied_places",
        ],
        rows,
    }
}

fn flows(r: &DistrictReport) -> Table {
    let rows = (r.flows.iter())
        .map(|f| {
            vec![
                text(f.sender_region_code.clone()),
                text(f.receiving_region_code.clone()),
                number(f.submitted),
                number(f.accepted),
                number(f.declined),
                number(f.acceptance_rate),
            ]
        })
        .collect();
    Table {
        kind: ReportTable::Flows,
        header: &[
            "sender_region",
            "receiving_region",
            "submitted",
            "accepted",
            "declined",
            "acceptance_rate",
        ],
        rows,
    }
}

fn services(r: &DistrictReport) -> Table {
    let rows = (r.services.iter())
        .map(|x| {
            vec![
                text(x.service_id.clone()),
                number(x.submitted),
                number(x.accepted),
                number(x.declined),
                number(x.acceptance_rate),
                text(
                    (x.decline_reasons.iter())
                        .map(|d| {
                            let reason = DeclineReason::try_from(d.reason).unwrap_or_default();
                            let name = reason.as_str_name().trim_start_matches("DECLINE_REASON_");
                            format!("{name}:{}", d.count)
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            ]
        })
        .collect();
    Table {
        kind: ReportTable::Services,
        header: &[
            "service_id",
            "submitted",
            "accepted",
            "declined",
            "acceptance_rate",
            "decline_reasons",
        ],
        rows,
    }
}

fn stalled(r: &DistrictReport) -> Table {
    let rows = (r.stalled_now.iter())
        .map(|x| {
            vec![
                text(x.referral_id.clone()),
                text(x.reference.clone()),
                text(x.sender_region_code.clone()),
                text(x.receiving_region_code.clone()),
                text(time(x.submitted_at.as_ref())),
                text(time(x.acknowledgement_deadline.as_ref())),
                text(x.not_answered_agency_ids.join(" ")),
                text(
                    (x.free_elsewhere.iter())
                        .map(|f| format!("{}:{}:{}", f.service_id, f.region_code, f.free_places))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                text(step_code(x.step)),
                text(time(x.step_deadline.as_ref())),
                text(waiting_code(x.waiting_reason)),
            ]
        })
        .collect();
    Table {
        kind: ReportTable::Stalled,
        header: &[
            "referral_id",
            "reference",
            "sender_region",
            "receiving_region",
            "submitted_at",
            "acknowledgement_deadline",
            "not_answered",
            "free_elsewhere",
            "step",
            "step_deadline",
            "waiting_reason",
        ],
        rows,
    }
}

/// A step's code ("DECISION"); empty when none is told.
fn step_code(step: i32) -> String {
    (ReferralStepName::try_from(step).ok())
        .filter(|s| *s != ReferralStepName::Unspecified)
        .map(|s| s.as_str_name().trim_start_matches("REFERRAL_STEP_NAME_"))
        .unwrap_or_default()
        .to_string()
}

/// A waiting reason's code ("DOCUMENTS_MISSING"); empty when none was given.
fn waiting_code(reason: i32) -> String {
    (WaitingReason::try_from(reason).ok())
        .filter(|w| *w != WaitingReason::Unspecified)
        .map(|w| w.as_str_name().trim_start_matches("WAITING_REASON_"))
        .unwrap_or_default()
        .to_string()
}

fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(placement_platform::time::from_timestamp)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// The statuses now, then every figure of the catalogue: a count as one row, durations as four (how many
/// referrals, and the median, p90 and slowest in seconds).
fn sides(s: &DistrictSide, v: &DistrictSide) -> Vec<Vec<Cell>> {
    let mut rows: Vec<Vec<Cell>> = (STATUSES_NOW.iter())
        .map(|status| {
            let name = status
                .as_str_name()
                .trim_start_matches("REFERRAL_STATUS_")
                .to_lowercase();
            vec![
                text(format!("now_{name}")),
                number(count_now(s, *status)),
                number(count_now(v, *status)),
            ]
        })
        .collect();
    for figure in &FIGURES {
        let (a, b) = (cells(figure.value(s)), cells(figure.value(v)));
        for ((name, a), b) in row_names(figure).into_iter().zip(a).zip(b) {
            rows.push(vec![text(name), a, b]);
        }
    }
    rows
}

/// A figure's rows: its key for a count; for durations, how many referrals and three times in seconds.
fn row_names(figure: &Figure) -> Vec<String> {
    let key = figure.key();
    match figure.kind() {
        FigureKind::Count => vec![key.to_string()],
        FigureKind::Duration | FigureKind::WorkingDuration => {
            ["count", "median_s", "p90_s", "slowest_s"]
                .map(|suffix| format!("{key}_{suffix}"))
                .to_vec()
        }
    }
}

fn cells(value: FigureValue) -> Vec<Cell> {
    match value {
        FigureValue::Count(n) => vec![number(n)],
        FigureValue::Durations(f) => vec![
            number(f.count),
            seconds(f.median.as_ref()),
            seconds(f.p90.as_ref()),
            seconds(f.slowest.as_ref()),
        ],
    }
}

/// A duration in seconds (microsecond precision); empty when there is none.
fn seconds(d: Option<&prost_types::Duration>) -> Cell {
    d.map_or(Cell::Text(String::new()), |d| {
        // Seconds of a referral's life: far below 2^52, exact as floats.
        #[allow(clippy::cast_precision_loss)]
        let whole = d.seconds as f64;
        number(whole + f64::from(d.nanos) / 1e9)
    })
}

fn reasons(s: &DistrictSide, v: &DistrictSide) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for (side, x) in [("sender", s), ("receiver", v)] {
        for d in &x.decline_reasons {
            let reason = DeclineReason::try_from(d.reason)
                .unwrap_or_default()
                .as_str_name();
            rows.push(vec![
                text(side),
                text("declined"),
                text(reason),
                number(d.count),
            ]);
        }
        for w in &x.withdraw_reasons {
            let reason = WithdrawReason::try_from(w.reason)
                .unwrap_or_default()
                .as_str_name();
            rows.push(vec![
                text(side),
                text("withdrawn"),
                text(reason),
                number(w.count),
            ]);
        }
    }
    rows
}
