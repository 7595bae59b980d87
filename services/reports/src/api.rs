//! The reports' gRPC API: input checked, the caller's standing asked of the policy, the figures read.

use std::{num::NonZeroUsize, sync::Arc, time::Duration};

use chrono::{DateTime, Datelike, Utc};
use placement_platform::{
    admission::{Admitted, Limit},
    caller::{Caller, CallerExt},
    error::{ServiceError, ServiceResult, respond},
    time::from_timestamp,
};
use placement_proto::v1::{
    AgencyReport, DistrictReport, ExportDistrictReportRequest, GetAgencyReportRequest,
    GetDistrictReportRequest, GetNationalReportRequest, NationalReport, RebuildReadModelRequest,
    RebuildReadModelResponse, ReportFile, ReportFormat, ReportTable, SendDistrictDigestRequest,
    SendDistrictDigestResponse, report_service_server::ReportService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use placement_messaging::Outbox;

use crate::{
    digest, export,
    figures::{self, district_report},
    policy,
    rebuild::{RebuildError, Source},
};

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
            export::file(&report, period, format, table)
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
            figures::national_report(&mut conn, period, req.published).await
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
            figures::agency_report(&mut conn, agency, period).await
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
            drop(conn);
            let (id, agency) = digest::send_to_district(&self.pool, &self.outbox, &region).await?;
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
