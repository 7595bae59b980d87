//! The figures' SQL: what the read model counts, by district or by sending agency.

use chrono::{DateTime, Utc};
use placement_proto::v1::{
    ReferralAction, ReferralStatus, ReferralStepName, ServiceStatus, ServiceType, WaitingReason,
};
use sqlx::{FromRow, PgConnection, Postgres};
use uuid::Uuid;

use super::model::{Cut, earliest};
use crate::steps::model::Side;

/// A district's active services of one type, with their places now.
#[derive(Debug, FromRow)]
pub struct PlacesOfType {
    pub service_type: ServiceType,
    pub services: i64,
    pub capacity: i64,
    pub free_places: i64,
    pub held_places: i64,
    pub occupied_places: i64,
}

pub async fn places(conn: &mut PgConnection, region: &str) -> sqlx::Result<Vec<PlacesOfType>> {
    sqlx::query_as(
        "SELECT service_type, count(*) AS services, sum(capacity)::bigint AS capacity,
             sum(free_places)::bigint AS free_places, sum(held_places)::bigint AS held_places,
             sum(occupied_places)::bigint AS occupied_places
         FROM services WHERE region_code = $1 AND status = $2
         GROUP BY service_type ORDER BY service_type",
    )
    .bind(region)
    .bind(ServiceStatus::Active)
    .fetch_all(conn)
    .await
}

/// For each of `referrals`: up to three other active services of its service's type with at least its
/// places free, the most free first.
#[derive(Debug, FromRow)]
pub struct FreeElsewhere {
    pub referral_id: Uuid,
    pub service_id: Uuid,
    pub region_code: String,
    pub service_type: ServiceType,
    pub free_places: i32,
}

pub async fn free_elsewhere(
    conn: &mut PgConnection,
    referrals: &[Uuid],
) -> sqlx::Result<Vec<FreeElsewhere>> {
    sqlx::query_as(
        "SELECT r.id AS referral_id, f.id AS service_id, f.region_code, f.service_type, f.free_places
         FROM referrals r JOIN services asked ON asked.id = r.service_id
         CROSS JOIN LATERAL (
             SELECT id, region_code, service_type, free_places FROM services
             WHERE service_type = asked.service_type AND status = $2 AND free_places >= r.places
               AND id <> r.service_id
               AND (min_age IS NULL OR r.youngest_child_age IS NULL OR min_age <= r.youngest_child_age)
               AND (max_age IS NULL OR r.oldest_child_age IS NULL OR max_age >= r.oldest_child_age)
             ORDER BY free_places DESC, id LIMIT 3) f
         WHERE r.id = ANY($1)
         ORDER BY r.id, f.free_places DESC, f.id",
    )
    .bind(referrals)
    .bind(ServiceStatus::Active)
    .fetch_all(conn)
    .await
}

/// Whose referrals a side's figures count: a district's on one side, or those one agency sent.
#[derive(Debug, Clone, Copy)]
pub enum Whose<'a> {
    District(Side, &'a str),
    Sender(Uuid),
}

impl Whose<'_> {
    /// The filter on `referrals` (aliased `r`), its one parameter `$1`.
    fn filter(self) -> String {
        match self {
            Whose::District(side, _) => format!("r.{} = $1", side.column()),
            Whose::Sender(_) => "r.sender_agency_id = $1".into(),
        }
    }

    fn bind<'q, O>(
        self,
        q: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
        match self {
            Whose::District(_, region) => q.bind(region.to_string()),
            Whose::Sender(agency) => q.bind(agency),
        }
    }
}

pub async fn by_status(
    conn: &mut PgConnection,
    whose: Whose<'_>,
) -> sqlx::Result<Vec<(ReferralStatus, i64)>> {
    let sql = format!(
        "SELECT status, count(*) FROM referrals r WHERE {} GROUP BY status ORDER BY status",
        whose.filter()
    );
    whose.bind(sqlx::query_as(&sql)).fetch_all(conn).await
}

/// Steps taken in [start, end) on the side's referrals, counted by (action, status after, reason).
pub async fn steps_in(
    conn: &mut PgConnection,
    whose: Whose<'_>,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> sqlx::Result<Vec<(ReferralAction, ReferralStatus, i32, i64)>> {
    let Whose::District(side, region) = whose else {
        // One agency's referrals are few: their steps are read through them.
        let sql = format!(
            "SELECT s.action, s.to_status, s.reason_code, count(*)
             FROM referrals r JOIN steps s ON s.referral_id = r.id
             WHERE {} AND s.at >= $2 AND s.at < $3 GROUP BY s.action, s.to_status, s.reason_code",
            whose.filter()
        );
        return whose
            .bind(sqlx::query_as(&sql))
            .bind(period.0)
            .bind(period.1)
            .fetch_all(conn)
            .await;
    };
    // A key whose steps all came after the end sums to none: it was not counted in the period.
    let cut = Cut::of(period).through_end_day();
    let column = side.column();
    sqlx::query_as(&format!(
        "SELECT action, to_status, reason_code, sum(steps)::bigint FROM (
             SELECT action, to_status, reason_code, steps FROM step_days
             WHERE side = $1 AND region_code = $2 AND day >= $3 AND day < $4
             UNION ALL
             SELECT action, to_status, reason_code, 1 FROM steps
             WHERE {column} = $2 AND at >= $5 AND at < $6
             UNION ALL
             SELECT action, to_status, reason_code, -1 FROM steps
             WHERE {column} = $2 AND at >= $7 AND at < $8
         ) counted GROUP BY action, to_status, reason_code HAVING sum(steps) <> 0"
    ))
    .bind(side.name())
    .bind(region)
    .bind(cut.days.0)
    .bind(cut.days.1)
    .bind(cut.head.0)
    .bind(cut.head.1)
    .bind(cut.after_end.0)
    .bind(cut.after_end.1)
    .fetch_all(conn)
    .await
}

/// Each of the side's referrals submitted in [start, end): when it was submitted, first acknowledged,
/// acknowledged by every party needed, decided (accepted or declined) and placed (none if not yet).
#[derive(Debug)]
pub struct Milestones {
    pub submitted_at: DateTime<Utc>,
    pub first_answer_at: Option<DateTime<Utc>>,
    pub all_acks_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub placed_at: Option<DateTime<Utc>>,
    /// Where it went and came from, and what became of it: the flows and the services' acceptance are
    /// counted from the same rows as the durations.
    pub sender_region_code: String,
    pub receiving_region_code: String,
    pub service_id: Uuid,
    pub accepted: bool,
    pub declined: bool,
    /// For the search figures: its search (none for a referral sent alone), when it was first accepted (an
    /// offer), its status now and why it ended (a decline's or withdrawal's reason code).
    pub search_id: Option<Uuid>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub status: ReferralStatus,
    pub end_reason: Option<i32>,
}

/// The milestones as one row of arrays, a column each. A year of a district is tens of thousands of
/// referrals, and a row each cost the service more to receive and decode (the driver's work per row and
/// per column looked up by name) than all the figures cost to compute.
#[derive(FromRow)]
struct MilestoneColumns {
    submitted_at: Vec<DateTime<Utc>>,
    first_answer_at: Vec<Option<DateTime<Utc>>>,
    all_acks_at: Vec<Option<DateTime<Utc>>>,
    placed_at: Vec<Option<DateTime<Utc>>>,
    sender_region_code: Vec<String>,
    receiving_region_code: Vec<String>,
    service_id: Vec<Uuid>,
    search_id: Vec<Option<Uuid>>,
    accepted_at: Vec<Option<DateTime<Utc>>>,
    declined_at: Vec<Option<DateTime<Utc>>>,
    status: Vec<ReferralStatus>,
    end_reason: Vec<Option<i32>>,
}

impl MilestoneColumns {
    /// The referrals, one per index of the columns; `None` if a column is shorter than the first.
    fn into_rows(self) -> Option<Vec<Milestones>> {
        let mut first = self.first_answer_at.into_iter();
        let mut all = self.all_acks_at.into_iter();
        let mut placed = self.placed_at.into_iter();
        let mut sender = self.sender_region_code.into_iter();
        let mut receiving = self.receiving_region_code.into_iter();
        let mut service = self.service_id.into_iter();
        let mut search = self.search_id.into_iter();
        let mut accepted = self.accepted_at.into_iter();
        let mut declined = self.declined_at.into_iter();
        let mut status = self.status.into_iter();
        let mut reason = self.end_reason.into_iter();
        (self.submitted_at.into_iter())
            .map(|submitted_at| {
                let (accepted_at, declined_at) = (accepted.next()?, declined.next()?);
                Some(Milestones {
                    submitted_at,
                    first_answer_at: first.next()?,
                    all_acks_at: all.next()?,
                    decided_at: earliest(accepted_at, declined_at),
                    placed_at: placed.next()?,
                    sender_region_code: sender.next()?,
                    receiving_region_code: receiving.next()?,
                    service_id: service.next()?,
                    accepted: accepted_at.is_some(),
                    declined: declined_at.is_some(),
                    search_id: search.next()?,
                    accepted_at,
                    status: status.next()?,
                    end_reason: reason.next()?,
                })
            })
            .collect()
    }
}

pub async fn milestones(
    conn: &mut PgConnection,
    whose: Whose<'_>,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> sqlx::Result<Vec<Milestones>> {
    // The aggregates of one query see its rows in one order: index i of every column is one referral.
    let columns = [
        "submitted_at",
        "first_answer_at",
        "all_acks_at",
        "placed_at",
        "sender_region_code",
        "receiving_region_code",
        "service_id",
        "search_id",
        "accepted_at",
        "declined_at",
        "status",
        "end_reason",
    ]
    .map(|name| format!("COALESCE(array_agg({name}), '{{}}') AS {name}"))
    .join(", ");
    let sql = format!(
        "SELECT {columns} FROM referrals r WHERE {} AND submitted_at >= $2 AND submitted_at < $3",
        whose.filter(),
    );
    let arrays: MilestoneColumns = whose
        .bind(sqlx::query_as(&sql))
        .bind(period.0)
        .bind(period.1)
        .fetch_one(conn)
        .await?;
    arrays
        .into_rows()
        .ok_or_else(|| sqlx::Error::Decode("the milestones' columns differ in length".into()))
}

/// A referral of the district whose open step is past its deadline.
#[derive(Debug, FromRow)]
pub struct Stalled {
    pub id: Uuid,
    pub reference: String,
    pub sender_region_code: String,
    pub receiving_region_code: String,
    pub status: ReferralStatus,
    pub ack_deadline: Option<DateTime<Utc>>,
    pub step: ReferralStepName,
    pub step_deadline: DateTime<Utc>,
    pub waiting_reason: Option<WaitingReason>,
    pub sender_agency_id: Uuid,
    pub receiving_agency_id: Uuid,
    pub foster_team_agency_id: Uuid,
    pub submitted_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Vec<Uuid>,
}

/// Whose stalled referrals: those a district sent or received, or those one agency sent.
#[derive(Debug, Clone, Copy)]
pub enum StalledOf<'a> {
    District(&'a str),
    Sender(Uuid),
}

pub async fn stalled(
    conn: &mut PgConnection,
    of: StalledOf<'_>,
    limit: i64,
) -> sqlx::Result<Vec<Stalled>> {
    let filter = match of {
        StalledOf::District(_) => "(r.sender_region_code = $1 OR r.receiving_region_code = $1)",
        StalledOf::Sender(_) => "r.sender_agency_id = $1",
    };
    let sql = format!(
        "SELECT r.id, r.reference, r.sender_region_code, r.receiving_region_code, r.status, r.ack_deadline,
             r.step, r.step_deadline, r.waiting_reason, r.sender_agency_id,
             r.receiving_agency_id, r.foster_team_agency_id,
             r.submitted_at,
             ARRAY(SELECT actor_agency_id FROM steps WHERE referral_id = r.id
                AND action = 'REFERRAL_ACTION_ACKNOWLEDGED' AND actor_agency_id IS NOT NULL) AS acknowledged_by
         FROM referrals r
         WHERE {filter} AND r.step IS NOT NULL AND r.step_deadline < now()
         ORDER BY r.step_deadline, r.id LIMIT $2"
    );
    let q = sqlx::query_as(&sql);
    let q = match of {
        StalledOf::District(region) => q.bind(region.to_string()),
        StalledOf::Sender(agency) => q.bind(agency),
    };
    q.bind(limit).fetch_all(conn).await
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
    let cut = Cut::of(period);
    sqlx::query_as(
        "WITH counted AS (
             SELECT region_code, action, steps FROM step_days
             WHERE side = 'receiver' AND day >= $1 AND day < $2
             UNION ALL
             SELECT receiving_region_code, action, 1 FROM steps
             WHERE action IN ('REFERRAL_ACTION_SUBMITTED', 'REFERRAL_ACTION_ACCEPTED',
                              'REFERRAL_ACTION_DECLINED', 'REFERRAL_ACTION_PLACED')
               AND ((at >= $3 AND at < $4) OR (at >= $5 AND at < $6))),
         steps_in AS (
             SELECT region_code,
                 sum(steps) FILTER (WHERE action = 'REFERRAL_ACTION_SUBMITTED') AS submitted,
                 sum(steps) FILTER (WHERE action = 'REFERRAL_ACTION_ACCEPTED') AS accepted,
                 sum(steps) FILTER (WHERE action = 'REFERRAL_ACTION_DECLINED') AS declined,
                 sum(steps) FILTER (WHERE action = 'REFERRAL_ACTION_PLACED') AS placed
             FROM counted GROUP BY region_code),
         stalled AS (
             SELECT receiving_region_code AS region_code, count(*) AS stalled_now FROM referrals
             WHERE step IS NOT NULL AND step_deadline < now()
             GROUP BY receiving_region_code)
         SELECT region_code, COALESCE(s.submitted, 0)::bigint AS submitted,
             COALESCE(s.accepted, 0)::bigint AS accepted, COALESCE(s.declined, 0)::bigint AS declined,
             COALESCE(s.placed, 0)::bigint AS placed, COALESCE(t.stalled_now, 0) AS stalled_now
         FROM steps_in s FULL JOIN stalled t USING (region_code)
         ORDER BY region_code",
    )
    .bind(cut.days.0)
    .bind(cut.days.1)
    .bind(cut.head.0)
    .bind(cut.head.1)
    .bind(cut.tail.0)
    .bind(cut.tail.1)
    .fetch_all(conn)
    .await
}
