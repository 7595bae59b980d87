//! Earlier runs' headline figures, kept in `docs/bench-history.tsv` (committed), printed beside this run's so
//! that a change's effect reads from one run's output. A run does not write the file: its row is printed
//! last, ready to be appended when it is worth keeping.

use super::Report;

/// Where the earlier runs are kept.
const FILE: &str = "docs/bench-history.tsv";

/// [`FILE`] wherever the program runs from (the tests run it from `tests/`).
fn kept_runs() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(FILE)).unwrap_or_default()
}

/// The services in the order of the file's columns.
const SERVICES: [&str; 5] = [
    "referrals",
    "cases",
    "directory",
    "notifications",
    "reports",
];

/// One run's headline figures.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub label: String,
    pub flows_per_s: Option<f64>,
    pub ceiling_flows_per_s: Option<f64>,
    /// CPU ms per flow of each of [`SERVICES`], at the peak (or the lowest load when none held).
    pub cpu_ms: [Option<f64>; 5],
    /// Database round trips per flow, every service together (the counted run's).
    pub round_trips: Option<f64>,
    /// A search to five services: p50 and p99 ms from when it was due to its first offer.
    pub first_offer_ms: [Option<f64>; 2],
    /// CPU ms per search of each of [`SERVICES`].
    pub search_cpu_ms: [Option<f64>; 5],
}

impl Row {
    /// This run's figures, labelled by today's date and the run's `--label` (e.g. a commit).
    pub fn of(r: &Report) -> Self {
        let step = r.peak.as_ref().or(r.steps.first());
        let cpu = |name: &str| -> Option<f64> {
            step.and_then(|s| s.cpu_seconds_per_flow.get(name))
                .map(|v| v * 1000.0)
        };
        let label = if r.label.is_empty() {
            "this run"
        } else {
            &r.label
        };
        Self {
            label: format!("{} {label}", chrono::Utc::now().format("%Y-%m-%d")),
            flows_per_s: r.peak.as_ref().map(|p| p.flows_per_s),
            ceiling_flows_per_s: step.map(|s| s.work_per_flow.ceiling(&r.raw)),
            cpu_ms: SERVICES.map(cpu),
            round_trips: (r.costs.as_ref()).and_then(|c| {
                (c.services.values())
                    .map(|s| s.round_trips_per_flow)
                    .sum::<Option<f64>>()
            }),
            first_offer_ms: search_figure(r, |s| {
                let l = &s.time_to_first_offer;
                [l.p50_ms, l.p99_ms]
            }),
            search_cpu_ms: SERVICES.map(|name| {
                (r.search.searches > 0)
                    .then(|| r.search.cpu_ms_per_search.get(name).copied())
                    .flatten()
            }),
        }
    }

    fn sum(values: &[Option<f64>]) -> Option<f64> {
        let all = values.iter().flatten().sum::<f64>();
        (all > 0.0).then_some(all)
    }

    fn cells(&self) -> Vec<String> {
        let f = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
        let share = match (self.flows_per_s, self.ceiling_flows_per_s) {
            (Some(f), Some(c)) if c > 0.0 => Some(100.0 * f / c),
            _ => None,
        };
        let mut cells = vec![
            self.label.clone(),
            f(self.flows_per_s, 1),
            f(self.ceiling_flows_per_s, 0),
            f(share, 1),
        ];
        cells.extend(self.cpu_ms.iter().map(|v| f(*v, 1)));
        cells.push(f(Self::sum(&self.cpu_ms), 1));
        cells.push(f(self.round_trips, 1));
        cells.extend(self.first_offer_ms.iter().map(|v| f(*v, 1)));
        cells.extend(self.search_cpu_ms.iter().map(|v| f(*v, 1)));
        cells.push(f(Self::sum(&self.search_cpu_ms), 1));
        cells
    }
}

/// The figures `of` a run's searches, each `None` when none was placed (a run that measured none).
fn search_figure<const N: usize>(
    r: &Report,
    of: impl Fn(&super::SearchFigures) -> [f64; N],
) -> [Option<f64>; N] {
    if r.search.searches == 0 {
        return [None; N];
    }
    of(&r.search).map(Some)
}

const HEADER: [&str; 19] = [
    "date and label",
    "flows/s",
    "ceiling/s",
    "share %",
    "referrals ms",
    "cases ms",
    "directory ms",
    "notifications ms",
    "reports ms",
    "all ms",
    "round trips",
    "first offer p50 ms",
    "first offer p99 ms",
    "search referrals ms",
    "search cases ms",
    "search directory ms",
    "search notifications ms",
    "search reports ms",
    "search all ms",
];

/// The kept rows, then this run's, aligned; then this run's as a line of the file.
pub fn table(this_run: &Row) -> String {
    let kept = kept_runs();
    let mut rows: Vec<Vec<String>> = vec![HEADER.map(String::from).to_vec()];
    rows.extend(
        (kept.lines())
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| l.split('\t').map(String::from).collect()),
    );
    let own = this_run.cells();
    rows.push(own.clone());
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(String::len).max())
        .map(|w| w.unwrap_or(0))
        .collect();
    let mut t = format!(
        "Headline figures, earlier runs ({FILE}) and this one (CPU ms per flow at the peak; the share is of the design's ceiling; a search to five services: its first offer, its CPU ms per search)\n"
    );
    for row in &rows {
        let cells: Vec<String> = (row.iter().zip(&widths))
            .enumerate()
            .map(|(i, (c, &w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        t += &format!("  {}\n", cells.join("  "));
    }
    t += &format!(
        "To keep this run's row, append to {FILE}:\n{}\n",
        own.join("\t")
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_without_a_peak_shows_dashes_where_figures_are_missing() {
        let row = Row {
            label: "2026-12-03 x".into(),
            cpu_ms: [Some(9.2), Some(3.0), None, None, None],
            ..Default::default()
        };
        let cells = row.cells();
        assert_eq!(cells[1], "-");
        assert_eq!(cells[3], "-");
        assert_eq!(cells[4], "9.2");
        assert_eq!(cells[9], "12.2");
        assert!(table(&row).ends_with(
            "2026-12-03 x\t-\t-\t-\t9.2\t3.0\t-\t-\t-\t12.2\t-\t-\t-\t-\t-\t-\t-\t-\t-\n"
        ));
    }

    #[test]
    fn a_run_s_searches_are_kept_beside_its_flows() {
        let mut report = Report::default();
        report.search.searches = 3;
        report.search.time_to_first_offer.p50_ms = 41.0;
        report.search.time_to_first_offer.p99_ms = 97.5;
        report.search.cpu_ms_per_search = [
            ("referrals".to_string(), 20.0),
            ("reports".to_string(), 4.5),
        ]
        .into();
        let cells = Row::of(&report).cells();
        assert_eq!(cells.len(), HEADER.len());
        assert_eq!(
            cells[11..],
            ["41.0", "97.5", "20.0", "-", "-", "-", "4.5", "24.5"]
        );
        // A run without searches (or an earlier one) shows dashes there.
        report.search.searches = 0;
        assert!(Row::of(&report).cells()[11..].iter().all(|c| c == "-"));
    }
}
