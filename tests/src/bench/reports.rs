//! The reports' figures with a long history in their read model: the district report and its export
//! timed under half the peak flow, and how far the read model lags behind the steps it learns from.

use std::{sync::Mutex, time::Instant};

use chrono::Utc;
use placement_cli::{clients::as_agency, demo::NATIONAL_AUTHORITY};
use placement_platform::time::timestamp;
use placement_proto::v1::{
    ExportDistrictReportRequest, GetDistrictReportRequest, ReportFormat, ReportTable,
    report_service_client::ReportServiceClient,
};
use serde::Serialize;
use sqlx::{Connection as _, Executor, PgConnection};
use tonic::transport::Channel;

use super::{Latency, histogram, record};

#[derive(Debug, Clone, Serialize, Default)]
pub struct ReportFigures {
    /// Referrals in the reports' read model (spread over 28 districts and three years).
    pub stored_referrals: u64,
    pub district_30_days: Latency,
    pub district_365_days: Latency,
    pub export_xlsx_30_days: Latency,
    /// From a step's commit in the referrals service to its arrival in the read model, for the steps of
    /// the background flows.
    pub read_model_lag: Latency,
    pub failed_calls: u64,
}

/// Stores `n` placed referrals (five steps each) straight into the reports' tables.
pub async fn load_history(database_url: &str, regions: &[String], n: u64) {
    let mut db = PgConnection::connect(database_url).await.expect("database");
    db.execute("SET synchronous_commit = off")
        .await
        .expect("set");
    let batch = 100_000u64;
    let mut done = 0;
    while done < n {
        let m = batch.min(n - done);
        let (first, last) = (done as i64 + 1, (done + m) as i64);
        sqlx::query(HISTORY_REFERRALS)
            .bind(regions)
            .bind(first)
            .bind(last)
            .execute(&mut db)
            .await
            .expect("load report referrals");
        sqlx::query(HISTORY_STEPS)
            .bind(regions)
            .bind(first)
            .bind(last)
            .execute(&mut db)
            .await
            .expect("load report steps");
        done += m;
    }
    // The milestones and day counts the event handler keeps, computed for the loaded history by the
    // reports' own backfill.
    db.execute("SET search_path = reports").await.expect("set");
    db.execute(backfill().as_str())
        .await
        .expect("backfill milestones and day counts");
    // A model kept for years has been vacuumed many times: its visibility map lets the covering indexes
    // answer alone. Right after a bulk load and the backfill's update of every referral, it does not. A
    // VACUUM marks a page all-visible only when its rows' commits are on disk (the backfill's commit, made
    // with synchronous_commit off, may not be yet: step_days stayed unmarked, and its reads went to the
    // heap) and older than every snapshot still open.
    db.execute("SET synchronous_commit = on")
        .await
        .expect("set");
    await_snapshots_after_load(&mut db).await;
    for table in ["reports.referrals", "reports.steps", "reports.step_days"] {
        db.execute(format!("VACUUM (ANALYZE) {table}").as_str())
            .await
            .expect("vacuum");
        let (pages, visible): (i32, i32) =
            sqlx::query_as("SELECT relpages, relallvisible FROM pg_class WHERE oid = $1::regclass")
                .bind(table)
                .fetch_one(&mut db)
                .await
                .expect("pages");
        eprintln!("history loaded: {table} {visible}/{pages} pages all-visible");
    }
}

/// Waits (at most a minute) until no session holds a snapshot taken before the load committed.
async fn await_snapshots_after_load(db: &mut PgConnection) {
    // A transaction of its own, begun after the load's last commit (and committed synchronously: the
    // load's commits are flushed with it).
    let after: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut *db)
        .await
        .expect("xid");
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let older: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()
                 AND backend_xmin IS NOT NULL AND age(backend_xmin) >= age(xid($1::xid8))",
        )
        .bind(&after)
        .fetch_all(&mut *db)
        .await
        .expect("sessions' snapshots");
        if older.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            eprintln!(
                "sessions {older:?} still hold snapshots older than the history: vacuuming anyway"
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The reports' backfill as its migration wrote it, for the milestone columns as they are now: the first
/// answer (`first_ack_at` then) is renamed, and a decline made before any acknowledgement reaches it too.
fn backfill() -> String {
    const WRITTEN: &str =
        include_str!("../../../services/reports/migrations/20261202000006_milestones_backfill.sql");
    let first_ack =
        "min(at) FILTER (WHERE action = 'REFERRAL_ACTION_ACKNOWLEDGED') AS first_ack_at";
    assert!(
        WRITTEN.contains(first_ack),
        "the backfill computes the first answer"
    );
    WRITTEN
        .replace(
            first_ack,
            "min(at) FILTER (WHERE action IN ('REFERRAL_ACTION_ACKNOWLEDGED', \
             'REFERRAL_ACTION_DECLINED')) AS first_answer_at",
        )
        .replace(
            "first_ack_at = m.first_ack_at",
            "first_answer_at = m.first_answer_at",
        )
}

// $1 the districts, $2..$3 the numbers. One referral every 94 seconds before the last 30 days (whose steps
// are at most 20 days long): a million over three years, none in the future; each to one of 40 services
// of its receiving district (a district has a few dozen), not a service of its own.
const HISTORY_REFERRALS: &str = "INSERT INTO reports.referrals (id, sender_agency_id, sender_region_code,
         receiving_agency_id, receiving_region_code, foster_team_agency_id, service_id, status, ack_deadline,
         version)
     SELECT md5('report-' || g)::uuid, gen_random_uuid(), ($1::text[])[1 + (g / 28) % cardinality($1::text[])],
         gen_random_uuid(), ($1::text[])[1 + g % cardinality($1::text[])], gen_random_uuid(),
         md5('service-' || (g % cardinality($1::text[])) || '-' || ((g / 28) % 40))::uuid,
         'REFERRAL_STATUS_PLACED', now() - interval '30 days' - (g * 94 || ' seconds')::interval, 5
     FROM generate_series($2::bigint, $3::bigint) g";

const HISTORY_STEPS: &str = "INSERT INTO reports.steps (referral_id, version, action, from_status, to_status,
         actor_agency_id, at, reason_code, sender_region_code, receiving_region_code)
     SELECT md5('report-' || g)::uuid, s.version, s.action, s.from_status, s.to_status, NULL,
         now() - interval '30 days' - (g * 94 || ' seconds')::interval
             + (s.after_minutes * (1 + g % 7) || ' minutes')::interval, 0,
         ($1::text[])[1 + (g / 28) % cardinality($1::text[])], ($1::text[])[1 + g % cardinality($1::text[])]
     FROM generate_series($2::bigint, $3::bigint) g
     CROSS JOIN (VALUES
         (1, 'REFERRAL_ACTION_SUBMITTED', NULL, 'REFERRAL_STATUS_SUBMITTED', 0),
         (2, 'REFERRAL_ACTION_ACKNOWLEDGED', 'REFERRAL_STATUS_SUBMITTED', 'REFERRAL_STATUS_SUBMITTED', 30),
         (3, 'REFERRAL_ACTION_ACKNOWLEDGED', 'REFERRAL_STATUS_SUBMITTED', 'REFERRAL_STATUS_ACKNOWLEDGED', 90),
         (4, 'REFERRAL_ACTION_ACCEPTED', 'REFERRAL_STATUS_ACKNOWLEDGED', 'REFERRAL_STATUS_ACCEPTED', 600),
         (5, 'REFERRAL_ACTION_PLACED', 'REFERRAL_STATUS_ACCEPTED', 'REFERRAL_STATUS_PLACED', 4000)
     ) AS s(version, action, from_status, to_status, after_minutes)";

/// Times the district report (30 and 365 days) and its XLSX export in turn until `until`, `min` rounds at
/// least.
pub async fn time_reports(
    client: ReportServiceClient<Channel>,
    until: Instant,
    min: usize,
) -> (Latency, Latency, Latency, u64) {
    let hs = [
        Mutex::new(histogram()),
        Mutex::new(histogram()),
        Mutex::new(histogram()),
    ];
    let (mut failed, mut rounds) = (0, 0);
    while rounds < min || Instant::now() < until {
        for (i, days) in [30, 365, 30].into_iter().enumerate() {
            let end = Utc::now();
            let asked = GetDistrictReportRequest {
                region_code: "VRC".into(),
                period_start: Some(timestamp(end - chrono::Duration::days(days))),
                period_end: Some(timestamp(end)),
            };
            let t = Instant::now();
            let ok = if i < 2 {
                client
                    .clone()
                    .get_district_report(as_agency(NATIONAL_AUTHORITY, asked))
                    .await
                    .is_ok()
            } else {
                let export = ExportDistrictReportRequest {
                    report: Some(asked),
                    format: ReportFormat::Xlsx as i32,
                    table: ReportTable::Unspecified as i32,
                };
                client
                    .clone()
                    .export_district_report(as_agency(NATIONAL_AUTHORITY, export))
                    .await
                    .is_ok()
            };
            if ok {
                record(&hs[i], t.elapsed());
            } else {
                failed += 1;
            }
        }
        rounds += 1;
    }
    let [a, b, c] = hs.map(|h| Latency::of(&h.into_inner().expect("histogram")));
    (a, b, c, failed)
}

/// The lag of every step that happened since `since` (the step's own time to its arrival in the model).
pub async fn read_model_lag(database_url: &str, since: chrono::DateTime<Utc>) -> Latency {
    let mut db = PgConnection::connect(database_url).await.expect("database");
    let lags: Vec<i64> = sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM applied_at - at) * 1000000)::bigint FROM reports.steps WHERE at >= $1",
    )
    .bind(since)
    .fetch_all(&mut db)
    .await
    .expect("lags");
    let mut h = histogram();
    for lag in lags {
        let _ = h.record(lag.max(1) as u64);
    }
    Latency::of(&h)
}

/// Waits (at most ten seconds) until the read model holds `steps` steps taken since `since`.
pub async fn settle(database_url: &str, since: chrono::DateTime<Utc>, steps: i64) {
    let mut db = PgConnection::connect(database_url).await.expect("database");
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while Instant::now() < deadline {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM reports.steps WHERE at >= $1")
            .bind(since)
            .fetch_one(&mut db)
            .await
            .expect("count");
        if n >= steps {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
