//! The reports' SQL: the read model, written by the event handler and read by the figures.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use placement_proto::v1::{AgencyKind, ReferralAction, ReferralStatus, ServiceStatus, ServiceType};
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
    /// The places asked for (its children).
    pub places: i32,
    pub version: i64,
    /// The children's ages at submission (see `Referral.youngest_child_age`); `None` when not told.
    pub youngest_child_age: Option<i32>,
    pub oldest_child_age: Option<i32>,
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

/// A service's places as a directory event (or the directory itself) describes them.
pub struct ServiceNow {
    pub id: Uuid,
    pub provider_agency_id: Uuid,
    pub region_code: String,
    pub service_type: ServiceType,
    pub status: ServiceStatus,
    pub capacity: i32,
    pub free_places: i32,
    pub held_places: i32,
    pub occupied_places: i32,
    pub version: i64,
    /// The ages it takes; `None` when not told.
    pub min_age: Option<i32>,
    pub max_age: Option<i32>,
}

/// An age as kept, when it was told (any real one fits an INT).
pub fn age(told: Option<u32>) -> Option<i32> {
    told.and_then(|a| i32::try_from(a).ok())
}

impl ServiceNow {
    /// The same with the ages it takes, when they were told.
    pub fn taking_ages(self, min_age: Option<u32>, max_age: Option<u32>) -> ServiceNow {
        ServiceNow {
            min_age: age(min_age),
            max_age: age(max_age),
            ..self
        }
    }

    /// A service as the directory describes it, in its events and its records alike: ids parsed, type
    /// and status known, `places` (capacity, free, held, occupied) within INT. The error names what is
    /// wrong.
    pub fn checked(
        id: &str,
        provider_agency_id: &str,
        region_code: &str,
        service_type: i32,
        status: i32,
        places: [u32; 4],
        version: u64,
    ) -> Result<ServiceNow, String> {
        let uuid = |v: &str, field: &str| {
            Uuid::parse_str(v).map_err(|_| format!("service {field} is not a UUID"))
        };
        let [capacity, free_places, held_places, occupied_places] =
            places.map(|n| i32::try_from(n).map_err(|_| "service places beyond INT".to_string()));
        Ok(ServiceNow {
            id: uuid(id, "id")?,
            provider_agency_id: uuid(provider_agency_id, "provider_agency_id")?,
            region_code: region_code.to_string(),
            service_type: ServiceType::try_from(service_type)
                .map_err(|_| "unknown service type".to_string())?,
            status: ServiceStatus::try_from(status)
                .map_err(|_| "unknown service status".to_string())?,
            capacity: capacity?,
            free_places: free_places?,
            held_places: held_places?,
            occupied_places: occupied_places?,
            version: i64::try_from(version).map_err(|_| "service version beyond BIGINT")?,
            min_age: None,
            max_age: None,
        })
    }
}

/// Keeps the service as `s` describes it if that is newer than what is kept.
pub async fn note_service(tx: &mut Transaction<'_, Postgres>, s: &ServiceNow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO services (id, provider_agency_id, region_code, service_type, status, capacity,
             free_places, held_places, occupied_places, version, min_age, max_age)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (id) DO UPDATE SET region_code = EXCLUDED.region_code,
             service_type = EXCLUDED.service_type, status = EXCLUDED.status, capacity = EXCLUDED.capacity,
             free_places = EXCLUDED.free_places, held_places = EXCLUDED.held_places,
             occupied_places = EXCLUDED.occupied_places, version = EXCLUDED.version,
             min_age = COALESCE(EXCLUDED.min_age, services.min_age),
             max_age = COALESCE(EXCLUDED.max_age, services.max_age)
         WHERE services.version < EXCLUDED.version",
    )
    .bind(s.id)
    .bind(s.provider_agency_id)
    .bind(&s.region_code)
    .bind(s.service_type)
    .bind(s.status)
    .bind(s.capacity)
    .bind(s.free_places)
    .bind(s.held_places)
    .bind(s.occupied_places)
    .bind(s.version)
    .bind(s.min_age)
    .bind(s.max_age)
    .execute(&mut **tx)
    .await
    .map(drop)
}

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

/// Keeps the referral as `r` describes it if that is newer than what is kept.
pub async fn note_referral(
    tx: &mut Transaction<'_, Postgres>,
    r: &ReferralNow,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO referrals (id, sender_agency_id, sender_region_code, receiving_agency_id,
             receiving_region_code, foster_team_agency_id, service_id, status, ack_deadline, version, places,
             youngest_child_age, oldest_child_age)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, ack_deadline = EXCLUDED.ack_deadline,
             version = EXCLUDED.version, places = EXCLUDED.places,
             youngest_child_age = COALESCE(EXCLUDED.youngest_child_age, referrals.youngest_child_age),
             oldest_child_age = COALESCE(EXCLUDED.oldest_child_age, referrals.oldest_child_age)
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
    .bind(r.places)
    .bind(r.youngest_child_age)
    .bind(r.oldest_child_age)
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// Keeps a step once: the same version brought again changes nothing. A new step also marks its
/// referral's milestone; it returns whether the step was new, so that the caller counts it (once) in
/// [`count_steps`].
pub async fn note_step(tx: &mut Transaction<'_, Postgres>, s: &Step) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
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
    .await?
    .rows_affected()
        == 1;
    let columns = milestone_columns(s);
    if inserted && !columns.is_empty() {
        let set: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = LEAST({c}, $2)"))
            .collect();
        sqlx::query(&format!(
            "UPDATE referrals SET {} WHERE id = $1",
            set.join(", ")
        ))
        .bind(s.referral_id)
        .bind(s.at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(inserted)
}

/// The milestone columns a step may be the first to reach (the earliest such step wins).
fn milestone_columns(s: &Step) -> &'static [&'static str] {
    match s.action {
        ReferralAction::Submitted => &["submitted_at"],
        ReferralAction::Acknowledged if s.to_status == ReferralStatus::Acknowledged => {
            &["first_ack_at", "all_acks_at"]
        }
        ReferralAction::Acknowledged => &["first_ack_at"],
        ReferralAction::Accepted => &["accepted_at"],
        ReferralAction::Declined => &["declined_at"],
        ReferralAction::Placed => &["placed_at"],
        _ => &[],
    }
}

/// Adds new steps to their districts' day counts. The rows are raised in one order (that of the table's
/// key), whoever raises them, so that the event handler and a rebuild writing side by side never wait
/// on each other in a circle.
pub async fn count_steps<'s>(
    tx: &mut Transaction<'_, Postgres>,
    steps: impl IntoIterator<Item = &'s Step>,
) -> sqlx::Result<()> {
    type Day = (
        &'static str,
        String,
        NaiveDate,
        &'static str,
        &'static str,
        i32,
    );
    let mut days: BTreeMap<Day, i64> = BTreeMap::new();
    for s in steps {
        for side in [Side::Sender, Side::Receiver] {
            let region = match side {
                Side::Sender => &s.sender_region_code,
                Side::Receiver => &s.receiving_region_code,
            };
            let key = (
                side.name(),
                region.clone(),
                s.at.date_naive(),
                s.action.as_str_name(),
                s.to_status.as_str_name(),
                s.reason_code,
            );
            *days.entry(key).or_default() += 1;
        }
    }
    if days.is_empty() {
        return Ok(());
    }
    let mut columns = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for ((side, region, day, action, status, reason), n) in days {
        columns.0.push(side);
        columns.1.push(region);
        columns.2.push(day);
        columns.3.push(action);
        columns.4.push(status);
        columns.5.push(reason);
        columns.6.push(n);
    }
    sqlx::query(
        "INSERT INTO step_days (side, region_code, day, action, to_status, reason_code, steps)
         SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::int[],
             $7::bigint[])
         ON CONFLICT (side, region_code, day, action, to_status, reason_code)
         DO UPDATE SET steps = step_days.steps + EXCLUDED.steps",
    )
    .bind(columns.0)
    .bind(columns.1)
    .bind(columns.2)
    .bind(columns.3)
    .bind(columns.4)
    .bind(columns.5)
    .bind(columns.6)
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

    /// The side as the day counts name it.
    fn name(self) -> &'static str {
        match self {
            Side::Sender => "sender",
            Side::Receiver => "receiver",
        }
    }
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

/// A period cut at UTC midnights: the whole days inside it, read from the day counts, and the parts at
/// its two ends (empty when the period starts or ends at midnight), read from the steps. A period within
/// one day has no whole day and is all one end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub days: (NaiveDate, NaiveDate),
    pub head: (DateTime<Utc>, DateTime<Utc>),
    pub tail: (DateTime<Utc>, DateTime<Utc>),
}

impl Cut {
    pub fn of((start, end): (DateTime<Utc>, DateTime<Utc>)) -> Cut {
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
        let start_day = start.date_naive();
        let first = if midnight(start_day) == start {
            start_day
        } else {
            start_day.succ_opt().unwrap_or(start_day)
        };
        let last = end.date_naive();
        if first >= last {
            return Cut {
                days: (first, first),
                head: (start, end),
                tail: (end, end),
            };
        }
        Cut {
            days: (first, last),
            head: (start, midnight(first)),
            tail: (midnight(last), end),
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
    let cut = Cut::of(period);
    sqlx::query_as(&format!(
        "SELECT action, to_status, reason_code, sum(steps)::bigint FROM (
             SELECT action, to_status, reason_code, steps FROM step_days
             WHERE side = $1 AND region_code = $2 AND day >= $3 AND day < $4
             UNION ALL
             SELECT action, to_status, reason_code, 1 FROM steps
             WHERE {} = $2 AND ((at >= $5 AND at < $6) OR (at >= $7 AND at < $8))
         ) counted GROUP BY action, to_status, reason_code",
        side.column()
    ))
    .bind(side.name())
    .bind(region)
    .bind(cut.days.0)
    .bind(cut.days.1)
    .bind(cut.head.0)
    .bind(cut.head.1)
    .bind(cut.tail.0)
    .bind(cut.tail.1)
    .fetch_all(conn)
    .await
}

/// Each of the side's referrals submitted in [start, end): when it was submitted, first acknowledged,
/// acknowledged by every party needed, decided (accepted or declined) and placed (none if not yet).
#[derive(Debug, FromRow)]
pub struct Milestones {
    pub submitted_at: DateTime<Utc>,
    pub first_ack_at: Option<DateTime<Utc>>,
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
}

pub async fn milestones(
    conn: &mut PgConnection,
    whose: Whose<'_>,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> sqlx::Result<Vec<Milestones>> {
    let sql = format!(
        "SELECT submitted_at, first_ack_at, all_acks_at, LEAST(accepted_at, declined_at) AS decided_at,
             placed_at, sender_region_code, receiving_region_code, service_id,
             accepted_at IS NOT NULL AS accepted, declined_at IS NOT NULL AS declined
         FROM referrals r WHERE {} AND submitted_at >= $2 AND submitted_at < $3",
        whose.filter(),
    );
    whose
        .bind(sqlx::query_as(&sql))
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
        "SELECT r.id, r.sender_region_code, r.receiving_region_code, r.status, r.ack_deadline,
             r.receiving_agency_id, r.foster_team_agency_id,
             r.submitted_at,
             ARRAY(SELECT actor_agency_id FROM steps WHERE referral_id = r.id
                AND action = 'REFERRAL_ACTION_ACKNOWLEDGED' AND actor_agency_id IS NOT NULL) AS acknowledged_by
         FROM referrals r
         WHERE {filter} AND r.status = 'REFERRAL_STATUS_SUBMITTED' AND r.ack_deadline < now()
         ORDER BY r.ack_deadline, r.id LIMIT $2"
    );
    let q = sqlx::query_as(&sql);
    let q = match of {
        StalledOf::District(region) => q.bind(region.to_string()),
        StalledOf::Sender(agency) => q.bind(agency),
    };
    q.bind(limit).fetch_all(conn).await
}

/// The RDSAs of a district learnt from the directory's events.
pub async fn rdsas_of(conn: &mut PgConnection, region: &str) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar("SELECT id FROM agencies WHERE kind = $1 AND region_code = $2 ORDER BY id")
        .bind(AgencyKind::Rdsa)
        .bind(region)
        .fetch_all(conn)
        .await
}

/// The RDSAs that have not had the digest of `slot`.
pub async fn rdsas_without_digest(
    conn: &mut PgConnection,
    slot: DateTime<Utc>,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    sqlx::query_as(
        "SELECT a.id, a.region_code FROM agencies a
         WHERE a.kind = $1 AND NOT EXISTS (
             SELECT 1 FROM digests d WHERE d.rdsa_agency_id = a.id AND d.scheduled_for = $2)
         ORDER BY a.region_code, a.id",
    )
    .bind(AgencyKind::Rdsa)
    .bind(slot)
    .fetch_all(conn)
    .await
}

/// Records a digest; false when the RDSA had this slot's already (a scheduled digest is sent once).
pub async fn note_digest(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    agency: Uuid,
    region: &str,
    slot: Option<DateTime<Utc>>,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> sqlx::Result<bool> {
    sqlx::query(
        "INSERT INTO digests (id, rdsa_agency_id, region_code, scheduled_for, period_start, period_end)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (rdsa_agency_id, scheduled_for) DO NOTHING",
    )
    .bind(id)
    .bind(agency)
    .bind(region)
    .bind(slot)
    .bind(period.0)
    .bind(period.1)
    .execute(&mut **tx)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Whether the model holds no referral yet.
pub async fn is_empty(pool: &sqlx::PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM referrals)")
        .fetch_one(pool)
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
             WHERE status = 'REFERRAL_STATUS_SUBMITTED' AND ack_deadline < now()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_period_is_cut_at_midnights() {
        let cut = Cut::of((at("2026-11-02T10:00:00Z"), at("2026-11-05T08:30:00Z")));
        assert_eq!(cut.days, (day("2026-11-03"), day("2026-11-05")));
        assert_eq!(
            cut.head,
            (at("2026-11-02T10:00:00Z"), at("2026-11-03T00:00:00Z"))
        );
        assert_eq!(
            cut.tail,
            (at("2026-11-05T00:00:00Z"), at("2026-11-05T08:30:00Z"))
        );
    }

    #[test]
    fn a_period_from_midnight_to_midnight_is_whole_days() {
        let cut = Cut::of((at("2026-11-02T00:00:00Z"), at("2026-11-04T00:00:00Z")));
        assert_eq!(cut.days, (day("2026-11-02"), day("2026-11-04")));
        assert_eq!(cut.head.0, cut.head.1);
        assert_eq!(cut.tail.0, cut.tail.1);
    }

    #[test]
    fn a_period_within_a_day_or_across_one_midnight_has_no_whole_day() {
        for (start, end) in [
            ("2026-11-02T10:00:00Z", "2026-11-02T11:00:00Z"),
            ("2026-11-02T10:00:00Z", "2026-11-03T11:00:00Z"),
        ] {
            let cut = Cut::of((at(start), at(end)));
            assert_eq!(cut.days.0, cut.days.1, "{start}");
            assert_eq!(cut.head, (at(start), at(end)), "{start}");
            assert_eq!(cut.tail.0, cut.tail.1, "{start}");
        }
    }
}
