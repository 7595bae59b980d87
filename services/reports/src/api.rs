//! The reports' gRPC API: input checked, the caller's standing asked of the policy, the figures read.

use std::{num::NonZeroUsize, sync::Arc, time::Duration};

use chrono::{DateTime, Datelike, Utc};
use placement_platform::{
    admission::{Admitted, Limit},
    caller::{Caller, CallerExt},
    error::{ServiceError, ServiceResult, respond},
    time::{from_timestamp, timestamp},
};
use placement_proto::v1::{
    AgencyReport, DistrictFlow, DistrictReport, DistrictSide, DistrictTotals,
    ExportDistrictReportRequest, FreePlaces, GetAgencyReportRequest, GetDistrictReportRequest,
    GetNationalReportRequest, NationalReport, PlacesByType, RebuildReadModelRequest,
    RebuildReadModelResponse, ReferralAction, ReportFile, ReportFormat, ReportTable,
    SendDistrictDigestRequest, SendDistrictDigestResponse, ServiceAcceptance, StalledReferral,
    StatusCount, WeekFigures, report_service_server::ReportService,
};
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};

use placement_messaging::Outbox;

use crate::{
    digest, export,
    figures::{self, StepCounts, acceptance_rate, count, durations, shown},
    policy,
    rebuild::{RebuildError, Source},
    store::{self, Side, StalledOf, Whose},
};

/// Stalled referrals listed at most.
const STALLED_SHOWN: i64 = 200;
/// The longest period asked for at once.
const LONGEST_PERIOD_DAYS: i64 = 400;

pub struct ReportApi {
    pool: PgPool,
    source: Arc<Source>,
    outbox: Outbox,
    district_reports: DistrictReportLimits,
}

impl ReportApi {
    pub fn new(
        pool: PgPool,
        source: Arc<Source>,
        outbox: Outbox,
        district_reports: DistrictReportLimits,
    ) -> Self {
        Self {
            pool,
            source,
            outbox,
            district_reports,
        }
    }
}

/// How long a district report waits for a place before it is refused.
const REPORT_WAIT: Duration = Duration::from_secs(5);

/// District reports in progress at once, per agency and in all: each holds four pooled connections for
/// up to 400 days of data, so a few callers asking again and again would take the pool from everyone.
pub struct DistrictReportLimits {
    per_agency: Limit<uuid::Uuid>,
    in_all: Limit<()>,
}

impl DistrictReportLimits {
    pub fn new(per_agency: NonZeroUsize, in_all: NonZeroUsize) -> Self {
        Self {
            per_agency: Limit::new(per_agency, "district reports per agency"),
            in_all: Limit::new(in_all, "district reports"),
        }
    }

    /// Places for one report of `caller`'s agency, waited for a little, else RESOURCE_EXHAUSTED.
    async fn admit(&self, caller: &Caller) -> ServiceResult<(Admitted<uuid::Uuid>, Admitted<()>)> {
        // The agency's own place first: a caller past its share never queues for the shared ones.
        let own = self
            .per_agency
            .admit_within(caller.agency_id, REPORT_WAIT)
            .await?;
        let shared = self.in_all.admit_within((), REPORT_WAIT).await?;
        Ok((own, shared))
    }
}

#[tonic::async_trait]
impl ReportService for ReportApi {
    async fn get_district_report(
        &self,
        request: Request<GetDistrictReportRequest>,
    ) -> Result<Response<DistrictReport>, Status> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let result = async {
            let region = check_region(&req.region_code)?;
            let period = check_period(req.period_start.as_ref(), req.period_end.as_ref())?;
            policy::may_see_district(&mut *self.pool.acquire().await?, &caller, &region).await?;
            let _places = self.district_reports.admit(&caller).await?;
            district_report(&self.pool, &region, period).await
        };
        respond(result.await)
    }

    async fn export_district_report(
        &self,
        request: Request<ExportDistrictReportRequest>,
    ) -> Result<Response<ReportFile>, Status> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let result = async {
            let asked = req.report.unwrap_or_default();
            let format = ReportFormat::try_from(req.format)
                .ok()
                .filter(|f| *f != ReportFormat::Unspecified)
                .ok_or_else(|| ServiceError::invalid("format", "CSV or XLSX"))?;
            let table = ReportTable::try_from(req.table).unwrap_or_default();
            if format == ReportFormat::Csv && table == ReportTable::Unspecified {
                return Err(ServiceError::invalid(
                    "table",
                    "a CSV file holds one table: choose it",
                ));
            }
            let region = check_region(&asked.region_code).map_err(in_report)?;
            let period = check_period(asked.period_start.as_ref(), asked.period_end.as_ref())
                .map_err(in_report)?;
            policy::may_see_district(&mut *self.pool.acquire().await?, &caller, &region).await?;
            let report = {
                let _places = self.district_reports.admit(&caller).await?;
                district_report(&self.pool, &region, period).await?
            };
            file(&report, period, format, table)
        };
        respond(result.await)
    }

    async fn get_national_report(
        &self,
        request: Request<GetNationalReportRequest>,
    ) -> Result<Response<NationalReport>, Status> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let result = async {
            let period = check_period(req.period_start.as_ref(), req.period_end.as_ref())?;
            let mut conn = self.pool.acquire().await?;
            policy::may_see_country(&mut conn, &caller).await?;
            let rows = store::national(&mut conn, period).await?;
            Ok(national_report(&rows, req.published))
        };
        respond(result.await)
    }

    async fn get_agency_report(
        &self,
        request: Request<GetAgencyReportRequest>,
    ) -> Result<Response<AgencyReport>, Status> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let result = async {
            let agency = uuid::Uuid::parse_str(&req.agency_id)
                .map_err(|_| ServiceError::invalid("agency_id", "a UUID"))?;
            let period = check_period(req.period_start.as_ref(), req.period_end.as_ref())?;
            let mut conn = self.pool.acquire().await?;
            policy::may_see_agency(&mut conn, &caller, agency).await?;
            let as_of = Utc::now();
            Ok(AgencyReport {
                agency_id: agency.to_string(),
                as_sender: Some(side_of(&mut conn, Whose::Sender(agency), period).await?.0),
                stalled_now: stalled_with_free_places(&mut conn, StalledOf::Sender(agency)).await?,
                as_of: Some(timestamp(as_of)),
            })
        };
        respond(result.await)
    }

    async fn send_district_digest(
        &self,
        request: Request<SendDistrictDigestRequest>,
    ) -> Result<Response<SendDistrictDigestResponse>, Status> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let result = async {
            let region = check_region(&req.region_code)?;
            let mut conn = self.pool.acquire().await?;
            policy::may_send_digest(&mut conn, &caller, &region).await?;
            let rdsas = store::rdsas_of(&mut conn, &region).await?;
            drop(conn);
            let Some(&agency) = rdsas.first() else {
                return Err(ServiceError::not_found(format!(
                    "region_code: no RDSA of district {region} is known"
                )));
            };
            let id = digest::send(&self.pool, &self.outbox, agency, &region, None)
                .await?
                .expect("a digest asked for has no slot to find taken");
            Ok(SendDistrictDigestResponse {
                digest_id: id.to_string(),
                rdsa_agency_id: agency.to_string(),
            })
        };
        respond(result.await)
    }

    async fn rebuild_read_model(
        &self,
        request: Request<RebuildReadModelRequest>,
    ) -> Result<Response<RebuildReadModelResponse>, Status> {
        let caller = request.caller()?;
        let result = async {
            policy::may_rebuild(&caller)?;
            let referrals_read = self.source.rebuild(&self.pool).await.map_err(|e| match e {
                RebuildError::Store(e) => ServiceError::from(e),
                RebuildError::NoCredential => ServiceError::precondition(e.to_string()),
                // The source is another service: its refusal or absence is not this one's bug.
                other => ServiceError::Unavailable(other.to_string()),
            })?;
            tracing::info!(referrals = referrals_read, subject = %caller.subject, "read model rebuilt");
            Ok(RebuildReadModelResponse { referrals_read })
        };
        respond(result.await)
    }
}

fn national_report(rows: &[store::Totals], published: bool) -> NationalReport {
    let totals = |region: &str, t: [i64; 5]| DistrictTotals {
        region_code: region.to_string(),
        submitted: Some(shown(t[0], published)),
        accepted: Some(shown(t[1], published)),
        declined: Some(shown(t[2], published)),
        placed: Some(shown(t[3], published)),
        stalled_now: Some(shown(t[4], published)),
    };
    let of = |r: &store::Totals| [r.submitted, r.accepted, r.declined, r.placed, r.stalled_now];
    let country = rows.iter().map(of).fold([0i64; 5], |mut acc, t| {
        for (a, b) in acc.iter_mut().zip(t) {
            *a += b;
        }
        acc
    });
    NationalReport {
        districts: rows.iter().map(|r| totals(&r.region_code, of(r))).collect(),
        country: Some(totals("", country)),
        small_counts_suppressed: published,
        as_of: Some(timestamp(Utc::now())),
    }
}

/// The report as the file asked for.
fn file(
    report: &DistrictReport,
    period: (DateTime<Utc>, DateTime<Utc>),
    format: ReportFormat,
    table: ReportTable,
) -> ServiceResult<ReportFile> {
    let tables = export::tables(report);
    let stem = format!(
        "placement-{}-{}-{}",
        report.region_code,
        period.0.format("%Y-%m-%d"),
        period.1.format("%Y-%m-%d")
    );
    let failed = |e: String| ServiceError::Internal(format!("writing the file: {e}"));
    if format == ReportFormat::Xlsx {
        return Ok(ReportFile {
            content_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                .into(),
            file_name: format!("{stem}.xlsx"),
            content: export::xlsx(&tables).map_err(|e| failed(e.to_string()))?,
        });
    }
    let chosen = (tables.iter())
        .find(|t| t.kind == table)
        .ok_or_else(|| ServiceError::invalid("table", "not a table of the report"))?;
    Ok(ReportFile {
        content_type: "text/csv; charset=utf-8".into(),
        file_name: format!("{stem}-{}.csv", chosen.sheet_name()),
        content: export::csv(chosen).map_err(|e| failed(e.to_string()))?,
    })
}

/// A refusal of the nested request, naming its field as `report.<field>`.
fn in_report(e: ServiceError) -> ServiceError {
    match e {
        ServiceError::InvalidArgument { field, reason } => {
            ServiceError::invalid(format!("report.{field}"), reason)
        }
        other => other,
    }
}

fn check_region(code: &str) -> ServiceResult<String> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code.to_string())
    } else {
        Err(ServiceError::invalid(
            "region_code",
            "a district's code: three capital letters (e.g. VRC)",
        ))
    }
}

/// A period from its two ends, as every report asks for it.
fn check_period(
    start: Option<&prost_types::Timestamp>,
    end: Option<&prost_types::Timestamp>,
) -> ServiceResult<(DateTime<Utc>, DateTime<Utc>)> {
    let time = |field: &str, t: Option<&prost_types::Timestamp>| {
        t.ok_or_else(|| ServiceError::invalid(field, "required"))
            .and_then(|t| {
                // Years the database holds and a referral can have: no figure lies outside them.
                from_timestamp(t)
                    .filter(|t| (1970..=9999).contains(&t.year()))
                    .ok_or_else(|| ServiceError::invalid(field, "not a time from 1970 to 9999"))
            })
    };
    let start = time("period_start", start)?;
    let end = time("period_end", end)?;
    if end <= start {
        return Err(ServiceError::invalid(
            "period_end",
            "must be after period_start",
        ));
    }
    if end - start > chrono::Duration::days(LONGEST_PERIOD_DAYS) {
        return Err(ServiceError::invalid(
            "period_end",
            format!("a period is at most {LONGEST_PERIOD_DAYS} days"),
        ));
    }
    Ok((start, end))
}

pub(crate) async fn district_report(
    pool: &PgPool,
    region: &str,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> ServiceResult<DistrictReport> {
    let as_of = Utc::now();
    // The parts each on its own connection at once: a year of a district is tens of thousands of
    // referrals on each side, and the parts do not wait for each other.
    let sides = |side| async move {
        side_of(
            &mut *pool.acquire().await?,
            Whose::District(side, region),
            period,
        )
        .await
    };
    let now = async {
        let mut conn = pool.acquire().await?;
        let stalled = stalled_with_free_places(&mut conn, StalledOf::District(region)).await?;
        let places = store::places(&mut conn, region).await?;
        ServiceResult::Ok((stalled, places.into_iter().map(places_by_type).collect()))
    };
    // The weeks' referrals are among the period's when it spans them; else they are read.
    let weeks = async {
        if period.1 - period.0 >= week() * WEEKS {
            return Ok(None);
        }
        let whose = Whose::District(Side::Receiver, region);
        let weeks = (period.1 - week() * WEEKS, period.1);
        ServiceResult::Ok(Some(
            store::milestones(&mut *pool.acquire().await?, whose, weeks).await?,
        ))
    };
    let ((as_sender, sent), (as_receiver, received), (stalled_now, places), weeks) =
        tokio::try_join!(sides(Side::Sender), sides(Side::Receiver), now, weeks)?;
    Ok(DistrictReport {
        region_code: region.to_string(),
        as_sender: Some(as_sender),
        as_receiver: Some(as_receiver),
        stalled_now,
        as_of: Some(timestamp(as_of)),
        flows: flows(region, &sent, &received),
        services: acceptance(&received),
        places,
        weeks: weeks_before(weeks.as_deref().unwrap_or(&received), period.1),
    })
}

fn places_by_type(p: store::Places) -> PlacesByType {
    PlacesByType {
        service_type: p.service_type as i32,
        services: count(p.services),
        capacity: count(p.capacity),
        free_places: count(p.free_places),
        held_places: count(p.held_places),
        occupied_places: count(p.occupied_places),
    }
}

/// Every (sender district, receiving district) pair with the district on a side, of the referrals
/// submitted in the period: those it sent, and those it received from elsewhere.
fn flows(
    region: &str,
    sent: &[store::Milestones],
    received: &[store::Milestones],
) -> Vec<DistrictFlow> {
    fn pair(m: &store::Milestones) -> ((&str, &str), bool, bool) {
        let key = (
            m.sender_region_code.as_str(),
            m.receiving_region_code.as_str(),
        );
        (key, m.accepted, m.declined)
    }
    let from_elsewhere = received.iter().filter(|m| m.sender_region_code != region);
    (figures::outcomes(sent.iter().chain(from_elsewhere).map(pair)).into_iter())
        .map(|o| DistrictFlow {
            acceptance_rate: acceptance_rate(o.accepted, o.declined),
            sender_region_code: o.key.0.to_string(),
            receiving_region_code: o.key.1.to_string(),
            submitted: count(o.submitted),
            accepted: count(o.accepted),
            declined: count(o.declined),
        })
        .collect()
}

/// The district's services that were asked in the period, and what they answered.
fn acceptance(received: &[store::Milestones]) -> Vec<ServiceAcceptance> {
    let each = received
        .iter()
        .map(|m| (m.service_id, m.accepted, m.declined));
    (figures::outcomes(each).into_iter())
        .map(|o| ServiceAcceptance {
            acceptance_rate: acceptance_rate(o.accepted, o.declined),
            service_id: o.key.to_string(),
            submitted: count(o.submitted),
            accepted: count(o.accepted),
            declined: count(o.declined),
        })
        .collect()
}

/// Weeks shown before a period's end.
const WEEKS: i32 = 8;

fn week() -> chrono::Duration {
    chrono::Duration::weeks(1)
}

/// The receiving side's submissions and first responses in each of the [`WEEKS`] weeks before `end`,
/// from the received referrals' milestones (those of the weeks at least).
fn weeks_before(received: &[store::Milestones], end: DateTime<Utc>) -> Vec<WeekFigures> {
    let start = end - week() * WEEKS;
    let figures = |from: DateTime<Utc>| {
        let of_week: Vec<&store::Milestones> = (received.iter())
            .filter(|m| m.submitted_at >= from && m.submitted_at < from + week())
            .collect();
        let first = |working| {
            let each = (of_week.iter())
                .map(|m| m.first_ack_at.map(|at| span(m.submitted_at, at, working)));
            Some(durations(each))
        };
        WeekFigures {
            week_start: Some(timestamp(from)),
            submitted: u32::try_from(of_week.len()).unwrap_or(u32::MAX),
            time_to_first_response: first(false),
            working_time_to_first_response: first(true),
        }
    };
    (0..WEEKS).map(|i| figures(start + week() * i)).collect()
}

/// The district's stalled referrals, each with the services elsewhere that could take it now.
async fn stalled_with_free_places(
    conn: &mut PgConnection,
    of: StalledOf<'_>,
) -> ServiceResult<Vec<StalledReferral>> {
    let rows = store::stalled(conn, of, STALLED_SHOWN).await?;
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
    let mut free: std::collections::HashMap<uuid::Uuid, Vec<FreePlaces>> = Default::default();
    for f in store::free_elsewhere(conn, &ids).await? {
        free.entry(f.referral_id).or_default().push(FreePlaces {
            service_id: f.service_id.to_string(),
            region_code: f.region_code,
            service_type: f.service_type as i32,
            free_places: u32::try_from(f.free_places).unwrap_or(0),
        });
    }
    let out = (rows.into_iter())
        .map(|r| {
            let free_elsewhere = free.remove(&r.id).unwrap_or_default();
            StalledReferral {
                free_elsewhere,
                ..stalled(r)
            }
        })
        .collect();
    Ok(out)
}

/// One side's figures — statuses now, steps in the period, durations of the referrals submitted in it —
/// with those referrals' milestones.
async fn side_of(
    conn: &mut PgConnection,
    whose: Whose<'_>,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> ServiceResult<(DistrictSide, Vec<store::Milestones>)> {
    let by_status_now = store::by_status(conn, whose)
        .await?
        .into_iter()
        .map(|(status, n)| StatusCount {
            status: status as i32,
            count: count(n),
        })
        .collect();
    let steps = StepCounts(store::steps_in(conn, whose, period).await?);
    let of = |action| steps.of(action);
    let milestones = store::milestones(conn, whose, period).await?;
    let spans = |working: bool, of: Reached| {
        let each = milestones
            .iter()
            .map(|m| of(m).map(|at| span(m.submitted_at, at, working)));
        Some(durations(each))
    };
    let (first, all, decided, placed): (Reached, Reached, Reached, Reached) = (
        |m| m.first_ack_at,
        |m| m.all_acks_at,
        |m| m.decided_at,
        |m| m.placed_at,
    );
    let side = DistrictSide {
        by_status_now,
        submitted: of(ReferralAction::Submitted),
        acknowledged: of(ReferralAction::Acknowledged),
        accepted: of(ReferralAction::Accepted),
        declined: of(ReferralAction::Declined),
        withdrawn: of(ReferralAction::Withdrawn),
        placed: of(ReferralAction::Placed),
        escalated: of(ReferralAction::Escalated),
        time_to_first_response: spans(false, first),
        time_to_all_acknowledgements: spans(false, all),
        time_to_decision: spans(false, decided),
        time_to_placement: spans(false, placed),
        working_time_to_first_response: spans(true, first),
        working_time_to_all_acknowledgements: spans(true, all),
        working_time_to_decision: spans(true, decided),
        working_time_to_placement: spans(true, placed),
        unanswered: u32::try_from(
            milestones
                .iter()
                .filter(|m| m.first_ack_at.is_none())
                .count(),
        )
        .unwrap_or(u32::MAX),
        decline_reasons: steps.reasons(ReferralAction::Declined),
        withdraw_reasons: steps.reasons(ReferralAction::Withdrawn),
    };
    Ok((side, milestones))
}

/// When a referral reached a milestone, if it has.
type Reached = fn(&store::Milestones) -> Option<DateTime<Utc>>;

/// Microseconds from `from` to `to`, in calendar or in working time.
fn span(from: DateTime<Utc>, to: DateTime<Utc>, working: bool) -> i64 {
    let d = if working {
        crate::working::between(from, to)
    } else {
        to - from
    };
    d.num_microseconds().unwrap_or(i64::MAX)
}

fn stalled(s: store::Stalled) -> StalledReferral {
    let mut parties = vec![s.receiving_agency_id, s.foster_team_agency_id];
    parties.dedup();
    StalledReferral {
        referral_id: s.id.to_string(),
        sender_region_code: s.sender_region_code,
        receiving_region_code: s.receiving_region_code,
        status: s.status as i32,
        submitted_at: s.submitted_at.map(timestamp),
        acknowledgement_deadline: Some(timestamp(s.ack_deadline)),
        not_answered_agency_ids: parties
            .into_iter()
            .filter(|p| !s.acknowledged_by.contains(p))
            .map(|p| p.to_string())
            .collect(),
        free_elsewhere: Vec::new(),
    }
}
