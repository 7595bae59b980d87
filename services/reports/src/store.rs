//! The reports' SQL: the read model, written by the event handler and read by the figures.

use chrono::{DateTime, Utc};
use placement_proto::v1::{AgencyKind, ReferralAction, ReferralStatus};
use sqlx::{FromRow, PgConnection, Postgres, Transaction};
use uuid::Uuid;

/// A referral as an event describes it now.
pub struct ReferralNow {
    pub id: Uuid,
    pub sender_agency_id: Uuid,
    pub sender_region_code: String,
    pub receiving_agency_id: Uuid,
    pub receiving_region_code: String,
    pub foster_team_agency_id: Uuid,
    pub service_id: Uuid,
    pub status: ReferralStatus,
    pub ack_deadline: Option<DateTime<Utc>>,
    pub version: i64,
}

pub struct Step {
    pub referral_id: Uuid,
    pub version: i64,
    pub action: ReferralAction,
    pub from_status: Option<ReferralStatus>,
    pub to_status: ReferralStatus,
    pub actor_agency_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    /// The DeclineReason or WithdrawReason of a decline or withdrawal; 0 otherwise.
    pub reason_code: i32,
    /// The referral's districts, so a district's steps are found without the referral.
    pub sender_region_code: String,
    pub receiving_region_code: String,
}

pub async fn note_agency(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    kind: AgencyKind,
    region_code: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO agencies (id, kind, region_code) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, region_code = EXCLUDED.region_code",
    )
    .bind(id)
    .bind(kind)
    .bind(region_code)
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// Keeps the referral as `r` describes it if that is newer than what is kept.
pub async fn note_referral(
    tx: &mut Transaction<'_, Postgres>,
    r: &ReferralNow,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO referrals (id, sender_agency_id, sender_region_code, receiving_agency_id,
             receiving_region_code, foster_team_agency_id, service_id, status, ack_deadline, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, ack_deadline = EXCLUDED.ack_deadline,
             version = EXCLUDED.version
         WHERE referrals.version < EXCLUDED.version",
    )
    .bind(r.id)
    .bind(r.sender_agency_id)
    .bind(&r.sender_region_code)
    .bind(r.receiving_agency_id)
    .bind(&r.receiving_region_code)
    .bind(r.foster_team_agency_id)
    .bind(r.service_id)
    .bind(r.status)
    .bind(r.ack_deadline)
    .bind(r.version)
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// Keeps a step once: the same version brought again changes nothing.
pub async fn note_step(tx: &mut Transaction<'_, Postgres>, s: &Step) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO steps (referral_id, version, action, from_status, to_status, actor_agency_id, at,
             reason_code, sender_region_code, receiving_region_code)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (referral_id, version) DO NOTHING",
    )
    .bind(s.referral_id)
    .bind(s.version)
    .bind(s.action)
    .bind(s.from_status)
    .bind(s.to_status)
    .bind(s.actor_agency_id)
    .bind(s.at)
    .bind(s.reason_code)
    .bind(&s.sender_region_code)
    .bind(&s.receiving_region_code)
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// The kind and district of an agency, if its registration has been learnt.
pub async fn agency(
    conn: &mut PgConnection,
    id: Uuid,
) -> sqlx::Result<Option<(AgencyKind, String)>> {
    sqlx::query_as("SELECT kind, region_code FROM agencies WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Which side of a referral a district is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Sender,
    Receiver,
}

impl Side {
    fn column(self) -> &'static str {
        match self {
            Side::Sender => "sender_region_code",
            Side::Receiver => "receiving_region_code",
        }
    }
}

pub async fn by_status(
    conn: &mut PgConnection,
    side: Side,
    region: &str,
) -> sqlx::Result<Vec<(ReferralStatus, i64)>> {
    sqlx::query_as(&format!(
        "SELECT status, count(*) FROM referrals WHERE {} = $1 GROUP BY status ORDER BY status",
        side.column()
    ))
    .bind(region)
    .fetch_all(conn)
    .await
}

/// Steps taken in [start, end) on the side's referrals, counted by (action, status after, reason).
pub async fn steps_in(
    conn: &mut PgConnection,
    side: Side,
    region: &str,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> sqlx::Result<Vec<(ReferralAction, ReferralStatus, i32, i64)>> {
    sqlx::query_as(&format!(
        "SELECT action, to_status, reason_code, count(*) FROM steps
         WHERE {} = $1 AND at >= $2 AND at < $3 GROUP BY action, to_status, reason_code",
        side.column()
    ))
    .bind(region)
    .bind(period.0)
    .bind(period.1)
    .fetch_all(conn)
    .await
}

/// For each of the side's referrals submitted in [start, end): microseconds from submission to the first
/// acknowledgement, to the last one needed, to the decision and to the placement (none if not yet).
#[derive(Debug, FromRow)]
pub struct Timings {
    pub first_ack: Option<i64>,
    pub all_acks: Option<i64>,
    pub decision: Option<i64>,
    pub placed: Option<i64>,
}

pub async fn timings(
    conn: &mut PgConnection,
    side: Side,
    region: &str,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> sqlx::Result<Vec<Timings>> {
    // One pass over each submitted referral's steps (contiguous in the primary key).
    let after = |condition: &str| {
        format!(
            "(EXTRACT(EPOCH FROM min(t.at) FILTER (WHERE {condition}) - sub.at) * 1000000)::bigint"
        )
    };
    let sql = format!(
        "WITH sub AS (
             SELECT referral_id AS id, at FROM steps
             WHERE {} = $1 AND at >= $2 AND at < $3 AND action = 'REFERRAL_ACTION_SUBMITTED')
         SELECT {} AS first_ack, {} AS all_acks, {} AS decision, {} AS placed
         FROM sub JOIN steps t ON t.referral_id = sub.id GROUP BY sub.id, sub.at",
        side.column(),
        after("t.action = 'REFERRAL_ACTION_ACKNOWLEDGED'"),
        after(
            "t.action = 'REFERRAL_ACTION_ACKNOWLEDGED' AND t.to_status = 'REFERRAL_STATUS_ACKNOWLEDGED'"
        ),
        after("t.action IN ('REFERRAL_ACTION_ACCEPTED', 'REFERRAL_ACTION_DECLINED')"),
        after("t.action = 'REFERRAL_ACTION_PLACED'"),
    );
    sqlx::query_as(&sql)
        .bind(region)
        .bind(period.0)
        .bind(period.1)
        .fetch_all(conn)
        .await
}

/// A referral of the district still SUBMITTED after its acknowledgement deadline.
#[derive(Debug, FromRow)]
pub struct Stalled {
    pub id: Uuid,
    pub sender_region_code: String,
    pub receiving_region_code: String,
    pub status: ReferralStatus,
    pub ack_deadline: DateTime<Utc>,
    pub receiving_agency_id: Uuid,
    pub foster_team_agency_id: Uuid,
    pub submitted_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Vec<Uuid>,
}

pub async fn stalled(
    conn: &mut PgConnection,
    region: &str,
    limit: i64,
) -> sqlx::Result<Vec<Stalled>> {
    sqlx::query_as(
        "SELECT r.id, r.sender_region_code, r.receiving_region_code, r.status, r.ack_deadline,
             r.receiving_agency_id, r.foster_team_agency_id,
             (SELECT min(at) FROM steps WHERE referral_id = r.id
                AND action = 'REFERRAL_ACTION_SUBMITTED') AS submitted_at,
             ARRAY(SELECT actor_agency_id FROM steps WHERE referral_id = r.id
                AND action = 'REFERRAL_ACTION_ACKNOWLEDGED' AND actor_agency_id IS NOT NULL) AS acknowledged_by
         FROM referrals r
         WHERE (r.sender_region_code = $1 OR r.receiving_region_code = $1)
           AND r.status = 'REFERRAL_STATUS_SUBMITTED' AND r.ack_deadline < now()
         ORDER BY r.ack_deadline, r.id LIMIT $2",
    )
    .bind(region)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Whether the model holds no referral yet.
pub async fn is_empty(pool: &sqlx::PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM referrals)")
        .fetch_one(pool)
        .await
}

/// Referrals submitted in a period, grouped, with how many were accepted and declined.
#[derive(Debug, FromRow)]
pub struct Outcomes {
    pub sender_region_code: String,
    pub receiving_region_code: String,
    pub service_id: Option<Uuid>,
    pub submitted: i64,
    pub accepted: i64,
    pub declined: i64,
}

/// How referrals are grouped for their outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// By (sender district, receiving district), the district on either side.
    Flow,
    /// By the district's service they were sent to.
    Service,
}

pub async fn outcomes(
    conn: &mut PgConnection,
    grouping: Grouping,
    region: &str,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> sqlx::Result<Vec<Outcomes>> {
    let had = |action: &str| {
        format!(
            "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM steps t WHERE t.referral_id = r.id AND t.action = '{action}'))"
        )
    };
    let (columns, filter, group) = match grouping {
        Grouping::Flow => (
            "r.sender_region_code, r.receiving_region_code, NULL::uuid AS service_id",
            "(s.sender_region_code = $1 OR s.receiving_region_code = $1)",
            "r.sender_region_code, r.receiving_region_code",
        ),
        Grouping::Service => (
            "'' AS sender_region_code, r.receiving_region_code, r.service_id",
            "s.receiving_region_code = $1",
            "r.receiving_region_code, r.service_id",
        ),
    };
    let sql = format!(
        "SELECT {columns}, count(*) AS submitted, {} AS accepted, {} AS declined
         FROM steps s JOIN referrals r ON r.id = s.referral_id
         WHERE {filter} AND s.at >= $2 AND s.at < $3 AND s.action = 'REFERRAL_ACTION_SUBMITTED'
         GROUP BY {group} ORDER BY submitted DESC, {group}",
        had("REFERRAL_ACTION_ACCEPTED"),
        had("REFERRAL_ACTION_DECLINED"),
    );
    sqlx::query_as(&sql)
        .bind(region)
        .bind(period.0)
        .bind(period.1)
        .fetch_all(conn)
        .await
}

/// Per receiving district: referrals submitted, accepted, declined and placed in the period, and stalled now.
#[derive(Debug, FromRow)]
pub struct Totals {
    pub region_code: String,
    pub submitted: i64,
    pub accepted: i64,
    pub declined: i64,
    pub placed: i64,
    pub stalled_now: i64,
}

pub async fn national(
    conn: &mut PgConnection,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> sqlx::Result<Vec<Totals>> {
    sqlx::query_as(
        "WITH steps_in AS (
             SELECT receiving_region_code AS region_code,
                 count(*) FILTER (WHERE action = 'REFERRAL_ACTION_SUBMITTED') AS submitted,
                 count(*) FILTER (WHERE action = 'REFERRAL_ACTION_ACCEPTED') AS accepted,
                 count(*) FILTER (WHERE action = 'REFERRAL_ACTION_DECLINED') AS declined,
                 count(*) FILTER (WHERE action = 'REFERRAL_ACTION_PLACED') AS placed
             FROM steps
             WHERE action IN ('REFERRAL_ACTION_SUBMITTED', 'REFERRAL_ACTION_ACCEPTED',
                              'REFERRAL_ACTION_DECLINED', 'REFERRAL_ACTION_PLACED')
               AND at >= $1 AND at < $2
             GROUP BY receiving_region_code),
         stalled AS (
             SELECT receiving_region_code AS region_code, count(*) AS stalled_now FROM referrals
             WHERE status = 'REFERRAL_STATUS_SUBMITTED' AND ack_deadline < now()
             GROUP BY receiving_region_code)
         SELECT region_code, COALESCE(s.submitted, 0) AS submitted, COALESCE(s.accepted, 0) AS accepted,
             COALESCE(s.declined, 0) AS declined, COALESCE(s.placed, 0) AS placed,
             COALESCE(t.stalled_now, 0) AS stalled_now
         FROM steps_in s FULL JOIN stalled t USING (region_code)
         ORDER BY region_code",
    )
    .bind(period.0)
    .bind(period.1)
    .fetch_all(conn)
    .await
}
