//! The district's figures for its coordination mechanism: what the reports service counts, with charts
//! drawn on the server and the stalled referrals linking to their pages. An RDSA sees its own district; a
//! national authority chooses one. The reports service decides who may; this page only asks.

use askama::Template;
use axum::{
    extract::{Query, State},
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{Duration, Utc};
use placement_model::figures::{FIGURES, FigureValue, median_and_p90};
use placement_platform::time::timestamp;
use placement_proto::v1::{
    AgencyKind, Count, DistrictReport, DistrictSide, DistrictTotals, ExportDistrictReportRequest,
    GetDistrictReportRequest, GetNationalReportRequest, ReferralStatus, ReportFormat, ReportTable,
    WeekFigures,
};
use serde::Deserialize;

use super::{Chrome, Standing, cases::regions, render, standing};
use crate::{
    AppState, WebError,
    charts::{self, Bar},
    i18n::Lang,
    session::Session,
    views,
};

#[derive(Deserialize, Default)]
pub struct FiguresQuery {
    #[serde(default)]
    region: String,
    #[serde(default)]
    days: Option<u32>,
    /// For an export: `csv` or `xlsx`, and the CSV's table.
    #[serde(default)]
    format: String,
    #[serde(default)]
    table: String,
    /// For a national authority: the country's counts as published (those below 5 suppressed).
    #[serde(default)]
    published: bool,
}

/// One district of the country's table (the last row: the country).
pub struct CountryRow {
    pub region: String,
    pub name: String,
    /// Submitted, accepted, declined, placed in the period; stalled now.
    pub counts: [String; 5],
}

/// One row of the table: a figure as sender and as receiver.
pub struct Row {
    /// The figure's key in the catalogue (and the export), for whoever reads the page's markup.
    pub key: &'static str,
    pub name: String,
    /// How to read it, shown when the name is pointed at.
    pub meaning: &'static str,
    pub sent: String,
    pub received: String,
}

pub struct Stalled {
    pub id: String,
    pub short: String,
    pub route: String,
    pub deadline: String,
    /// The step past its deadline, and why its holder said it waits (empty if it did not say).
    pub step: String,
    pub waiting_reason: String,
    pub waiting_for: String,
    /// Services elsewhere with the places free now: "name (district): n".
    pub free_elsewhere: String,
}

#[derive(Template)]
#[template(path = "figures.html")]
struct FiguresView {
    c: Chrome,
    region: String,
    region_name: String,
    days: u32,
    /// The districts a national authority may choose from; empty for an RDSA.
    regions: Vec<(String, String)>,
    rows: Vec<Row>,
    status_chart: String,
    weeks_chart: String,
    flow_chart: String,
    stalled: Vec<Stalled>,
    /// Whether the stalled referrals link to their pages: a national authority reads none of them.
    links: bool,
    /// The country by receiving district, for a national authority; empty for an RDSA.
    country: Vec<CountryRow>,
    published: bool,
    /// The CSV downloads: each table's name in the export, and in the page's language.
    exports: Vec<(&'static str, String)>,
}

/// The tables a CSV download may hold, as the export names them.
const EXPORTS: [&str; 6] = [
    "figures", "reasons", "flows", "services", "stalled", "places",
];

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Query(q): Query<FiguresQuery>,
) -> Result<Response, WebError> {
    let (standing, all, region, days) = chosen(&app, &session, lang, &q).await?;
    let length = Duration::days(i64::from(days));
    let report = district(&app, &session, &region, length).await?;
    let national = standing.kind == AgencyKind::NationalAuthority;
    let country = match national {
        true => country(&app, &session, lang, &all, length, q.published).await?,
        false => Vec::new(),
    };
    let (flow_chart, region_name) = (
        flow_chart(lang, &report, &all),
        district_name(&all, &region),
    );
    let stalled = stalled(&app, &session, lang, &report, &all).await;
    let view = FiguresView {
        c: Chrome::of(
            &app,
            &session,
            lang,
            &format!("/figures?region={region}&days={days}"),
        )
        .await,
        region_name,
        regions: if standing.kind == AgencyKind::Rdsa {
            Vec::new()
        } else {
            all
        },
        rows: rows(lang, &report),
        status_chart: status_chart(lang, report.as_receiver.as_ref()),
        weeks_chart: weeks_chart(lang, &report.weeks),
        flow_chart,
        stalled,
        exports: (EXPORTS.iter())
            .map(|t| (*t, lang.t(&format!("figures-export-{t}"))))
            .collect(),
        links: !national,
        country,
        published: q.published,
        region,
        days,
    };
    render(&view)
}

/// Who is asking, the districts, the district shown and the period's days.
async fn chosen(
    app: &AppState,
    session: &Session,
    lang: Lang,
    q: &FiguresQuery,
) -> Result<(Standing, Vec<(String, String)>, String, u32), WebError> {
    let Some(standing) = standing(app, session).await.filter(|s| s.sees_figures()) else {
        return Err(WebError::Forbidden(
            "the figures are for RDSAs and national authorities".into(),
        ));
    };
    let all = regions(app, session, lang).await;
    let region = match standing.kind {
        AgencyKind::Rdsa => standing.region_code.clone(),
        _ if all.iter().any(|r| r.0 == q.region) => q.region.clone(),
        _ => all.first().map(|r| r.0.clone()).unwrap_or_default(),
    };
    let days = q
        .days
        .filter(|d| [7, 30, 90, 365].contains(d))
        .unwrap_or(30);
    Ok((standing, all, region, days))
}

/// The figures as a file, from the reports service: XLSX with every table, or one table as CSV.
pub async fn export(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Query(q): Query<FiguresQuery>,
) -> Result<Response, WebError> {
    let (_, _, region, days) = chosen(&app, &session, lang, &q).await?;
    let format = match q.format.as_str() {
        "xlsx" => ReportFormat::Xlsx,
        "csv" => ReportFormat::Csv,
        _ => return Err(WebError::NotFound),
    };
    let table = match q.table.as_str() {
        "figures" => ReportTable::Sides,
        "reasons" => ReportTable::Reasons,
        "flows" => ReportTable::Flows,
        "services" => ReportTable::Services,
        "stalled" => ReportTable::Stalled,
        "places" => ReportTable::Places,
        _ if format == ReportFormat::Xlsx => ReportTable::Unspecified,
        _ => return Err(WebError::NotFound),
    };
    let end = Utc::now();
    let asked = ExportDistrictReportRequest {
        report: Some(GetDistrictReportRequest {
            region_code: region,
            period_start: Some(timestamp(end - Duration::days(i64::from(days)))),
            period_end: Some(timestamp(end)),
        }),
        format: format as i32,
        table: table as i32,
    };
    let file = (app.clients.reports.clone())
        .export_district_report(session.request(asked))
        .await?
        .into_inner();
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file.file_name.replace('"', "")
    );
    Ok((
        [
            (header::CONTENT_TYPE, file.content_type),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        file.content,
    )
        .into_response())
}

/// The report of the `length` up to now (with the eight weeks before, for the weekly chart).
async fn district(
    app: &AppState,
    session: &Session,
    region: &str,
    length: Duration,
) -> Result<DistrictReport, WebError> {
    let end = Utc::now();
    let asked = GetDistrictReportRequest {
        region_code: region.to_string(),
        period_start: Some(timestamp(end - length)),
        period_end: Some(timestamp(end)),
    };
    Ok((app.clients.reports.clone())
        .get_district_report(session.request(asked))
        .await?
        .into_inner())
}

/// The table: every figure of the catalogue, as sender and as receiver.
fn rows(lang: Lang, r: &DistrictReport) -> Vec<Row> {
    let (s, v) = (
        r.as_sender.clone().unwrap_or_default(),
        r.as_receiver.clone().unwrap_or_default(),
    );
    let shown = |value: FigureValue| match value {
        FigureValue::Count(n) => n.to_string(),
        FigureValue::Durations(f) => {
            median_and_p90(f, lang.language()).unwrap_or_else(|| "—".into())
        }
    };
    (FIGURES.iter())
        .map(|figure| Row {
            key: figure.key(),
            name: lang.t(figure.label_key()),
            meaning: figure.meaning(lang.language()),
            sent: shown(figure.value(&s)),
            received: shown(figure.value(&v)),
        })
        .collect()
}

fn status_chart(lang: Lang, side: Option<&DistrictSide>) -> String {
    let bars: Vec<Bar> = side
        .map(|s| s.by_status_now.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| Bar {
            label: lang.t(&views::key(
                ReferralStatus::try_from(c.status)
                    .unwrap_or_default()
                    .as_str_name(),
            )),
            value: f64::from(c.count),
            shown: c.count.to_string(),
        })
        .collect();
    charts::bars(&lang.t("figures-status-chart"), &bars)
}

fn weeks_chart(lang: Lang, weeks: &[WeekFigures]) -> String {
    let last = i64::try_from(weeks.len()).unwrap_or(0) - 1;
    let columns: Vec<Bar> = weeks
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let median = (w.time_to_first_response.as_ref())
                .filter(|f| f.count > 0)
                .and_then(|f| f.median.as_ref());
            Bar {
                label: lang.t1("figures-week", "n", i64::try_from(i).unwrap_or(0) - last),
                value: median.map_or(0.0, |d| d.seconds as f64 / 3600.0),
                shown: median
                    .map(|d| views::span_of(lang, Some(d)))
                    .unwrap_or_default(),
            }
        })
        .collect();
    charts::columns(&lang.t("figures-weeks-chart"), &columns)
}

/// The district of `code` by name, from `regions` (code, name); the code if it is not there.
fn district_name(regions: &[(String, String)], code: &str) -> String {
    (regions.iter().find(|r| r.0 == code)).map_or_else(|| code.to_string(), |r| r.1.clone())
}

fn flow_chart(lang: Lang, r: &DistrictReport, regions: &[(String, String)]) -> String {
    let bars: Vec<Bar> = r
        .flows
        .iter()
        .map(|f| Bar {
            label: format!(
                "{} → {}",
                district_name(regions, &f.sender_region_code),
                district_name(regions, &f.receiving_region_code)
            ),
            value: f64::from(f.submitted),
            shown: lang.t1(
                "figures-flow-shown",
                "rate",
                format!("{} · {:.0}%", f.submitted, 100.0 * f.acceptance_rate),
            ),
        })
        .collect();
    charts::bars(&lang.t("figures-flow-chart"), &bars)
}

/// The country's counts by receiving district, then the country's own, as the reports service gives them.
async fn country(
    app: &AppState,
    session: &Session,
    lang: Lang,
    names: &[(String, String)],
    length: Duration,
    published: bool,
) -> Result<Vec<CountryRow>, WebError> {
    let end = Utc::now();
    let asked = GetNationalReportRequest {
        period_start: Some(timestamp(end - length)),
        period_end: Some(timestamp(end)),
        published,
    };
    let national = (app.clients.reports.clone())
        .get_national_report(session.request(asked))
        .await?
        .into_inner();
    let shown = |c: &Option<Count>| match c {
        Some(c) if c.suppressed => lang.t("figures-suppressed"),
        Some(c) => c.value.to_string(),
        None => "0".into(),
    };
    let row = |t: &DistrictTotals, name: String| CountryRow {
        region: t.region_code.clone(),
        name,
        counts: [
            &t.submitted,
            &t.accepted,
            &t.declined,
            &t.placed,
            &t.stalled_now,
        ]
        .map(shown),
    };
    let mut rows: Vec<CountryRow> = (national.districts.iter())
        .map(|t| row(t, district_name(names, &t.region_code)))
        .collect();
    rows.extend(
        national
            .country
            .as_ref()
            .map(|t| row(t, lang.t("figures-country-total"))),
    );
    Ok(rows)
}

async fn stalled(
    app: &AppState,
    session: &Session,
    lang: Lang,
    r: &DistrictReport,
    regions: &[(String, String)],
) -> Vec<Stalled> {
    let mut out = Vec::with_capacity(r.stalled_now.len());
    for s in &r.stalled_now {
        let mut waiting = Vec::new();
        for agency in &s.not_answered_agency_ids {
            waiting.push(super::agency_name(app, session, lang, agency).await);
        }
        let mut free = Vec::new();
        for f in &s.free_elsewhere {
            let name = super::service_name(app, session, lang, &f.service_id).await;
            let region = district_name(regions, &f.region_code);
            free.push(format!("{name} ({region}): {}", f.free_places));
        }
        out.push(Stalled {
            free_elsewhere: free.join("; "),
            short: views::named(&s.reference, &s.referral_id),
            id: s.referral_id.clone(),
            route: format!(
                "{} → {}",
                district_name(regions, &s.sender_region_code),
                district_name(regions, &s.receiving_region_code)
            ),
            deadline: views::countdown(lang, s.step_deadline.as_ref(), Utc::now()).0,
            step: placement_wording::step(lang.language(), s.step),
            waiting_reason: match s.waiting_reason {
                0 => String::new(),
                reason => placement_wording::waiting(lang.language(), reason),
            },
            waiting_for: waiting.join(", "),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_proto::{prost_types::Duration as Span, v1::DurationFigures};

    fn report() -> DistrictReport {
        let seconds = |seconds| Some(Span { seconds, nanos: 0 });
        DistrictReport {
            as_receiver: Some(DistrictSide {
                placed: 1,
                unanswered: 5,
                working_time_to_placement: Some(DurationFigures {
                    count: 2,
                    median: seconds(5400),
                    p90: seconds(2 * 86400 + 4 * 3600),
                    slowest: seconds(3 * 86400),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn every_figure_has_its_row_named_as_the_catalogue_names_it() {
        for lang in [Lang::Bg, Lang::En] {
            let rows = rows(lang, &report());
            assert_eq!(rows.len(), FIGURES.len());
            for (row, figure) in rows.iter().zip(&FIGURES) {
                assert_eq!(row.key, figure.key());
                assert_eq!(row.name, figure.label(lang.language()), "{}", row.key);
                assert_eq!(row.meaning, figure.meaning(lang.language()));
            }
        }
    }

    #[test]
    fn a_row_shows_its_figure_on_both_sides() {
        let rows = rows(Lang::En, &report());
        let row = |key: &str| {
            (rows.iter())
                .find(|r| r.key == key)
                .map(|r| (r.sent.as_str(), r.received.as_str()))
        };
        assert_eq!(row("unanswered"), Some(("0", "5")));
        assert_eq!(
            row("working_placement"),
            Some(("—", "1 h 30 min / 2 d 4 h"))
        );
        // The browser test reads the sixth row as the placed referrals.
        assert_eq!(rows[5].key, "placed");
        assert_eq!(rows[5].received, "1");
    }
}
