//! The steps' SQL: each referral as it stands now, its steps once per version with the milestones they
//! reach, and the districts' day counts.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqlx::{Postgres, Transaction};

use super::model::{Milestones, ReferralNow, Side, Step};

/// Whether a step's day counts are raised with it, or by the caller afterwards (see [`count_steps`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayCounts {
    /// With the step: an event's one step.
    WithStep,
    /// By the caller, for the new steps [`note`] said were new: a rebuild's page, counted after its
    /// referrals.
    Later,
}

/// Keeps the referral as `r` describes it if that is newer than what is kept, and `step` once (the same
/// version brought again changes nothing), in one statement that takes its rows in the order the rebuild
/// does: the referral's row (inserted, or locked by its conflict even when none of it changes), then the
/// step's key, then its day counts in their key's order.
///
/// The step marks its referral's milestones (each the earliest step that reached it: `LEAST`) and why it
/// ended when it was not kept as the statement began: the referral's row is written before the step's
/// insert can tell whether it added a row. Should a writer beside it (another instance, the rebuild) keep
/// the same step meanwhile, the milestones are marked twice with one time (events carry their step's time
/// to the microsecond of the history), which `LEAST` keeps as once. The day counts hang on the insert
/// itself. A referral kept before its search or reference was told learns it from whichever event or
/// rebuild brings it next, newer or not (neither ever changes).
///
/// Returns whether the step was new; without a step it keeps the referral alone.
pub async fn note(
    tx: &mut Transaction<'_, Postgres>,
    r: &ReferralNow,
    step: Option<&Step>,
    days: DayCounts,
) -> sqlx::Result<bool> {
    let reached = step.map(Milestones::of).unwrap_or_default();
    sqlx::query_scalar(NOTE)
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
        .bind(r.step)
        .bind(r.step_deadline)
        .bind(r.waiting_reason)
        .bind(r.search_id)
        .bind(&r.reference)
        .bind(step.map(|s| s.version))
        .bind(step.map(|s| s.action))
        .bind(step.and_then(|s| s.from_status))
        .bind(step.map(|s| s.to_status))
        .bind(step.and_then(|s| s.actor_agency_id))
        .bind(step.map(|s| s.at))
        .bind(step.map(|s| s.reason_code))
        .bind(step.map(|s| &s.sender_region_code))
        .bind(step.map(|s| &s.receiving_region_code))
        .bind(reached.submitted_at)
        .bind(reached.first_answer_at)
        .bind(reached.all_acks_at)
        .bind(reached.accepted_at)
        .bind(reached.declined_at)
        .bind(reached.placed_at)
        .bind(reached.end_reason)
        .bind(step.map(|s| s.at.date_naive()))
        .bind(days == DayCounts::WithStep)
        .fetch_one(&mut **tx)
        .await
}

/// [`note`]'s statement. `reached` is empty when the step is kept already. The step's insert reads the
/// referral's upsert, so that it cannot run before the referral's row is taken. A day count's key begins
/// with its side: `receiver` rows come before `sender` ones.
const NOTE: &str = "
    WITH reached AS (
        SELECT $28::timestamptz AS submitted_at, $29::timestamptz AS first_answer_at,
            $30::timestamptz AS all_acks_at, $31::timestamptz AS accepted_at,
            $32::timestamptz AS declined_at, $33::timestamptz AS placed_at, $34::int AS end_reason
        WHERE NOT EXISTS (SELECT FROM steps WHERE referral_id = $1 AND version = $19)
    ),
    referral AS (
        INSERT INTO referrals (id, sender_agency_id, sender_region_code, receiving_agency_id,
            receiving_region_code, foster_team_agency_id, service_id, status, ack_deadline, version, places,
            youngest_child_age, oldest_child_age, step, step_deadline, waiting_reason, search_id, reference,
            submitted_at, first_answer_at, all_acks_at, accepted_at, declined_at, placed_at, end_reason)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
            m.submitted_at, m.first_answer_at, m.all_acks_at, m.accepted_at, m.declined_at, m.placed_at,
            m.end_reason
        FROM (VALUES (1)) AS one LEFT JOIN reached m ON true
        ON CONFLICT (id) DO UPDATE SET
            status = CASE WHEN referrals.version < EXCLUDED.version
                THEN EXCLUDED.status ELSE referrals.status END,
            ack_deadline = CASE WHEN referrals.version < EXCLUDED.version
                THEN EXCLUDED.ack_deadline ELSE referrals.ack_deadline END,
            places = CASE WHEN referrals.version < EXCLUDED.version
                THEN EXCLUDED.places ELSE referrals.places END,
            step = CASE WHEN referrals.version < EXCLUDED.version
                THEN EXCLUDED.step ELSE referrals.step END,
            step_deadline = CASE WHEN referrals.version < EXCLUDED.version
                THEN EXCLUDED.step_deadline ELSE referrals.step_deadline END,
            waiting_reason = CASE WHEN referrals.version < EXCLUDED.version
                THEN EXCLUDED.waiting_reason ELSE referrals.waiting_reason END,
            youngest_child_age = CASE WHEN referrals.version < EXCLUDED.version
                THEN COALESCE(EXCLUDED.youngest_child_age, referrals.youngest_child_age)
                ELSE referrals.youngest_child_age END,
            oldest_child_age = CASE WHEN referrals.version < EXCLUDED.version
                THEN COALESCE(EXCLUDED.oldest_child_age, referrals.oldest_child_age)
                ELSE referrals.oldest_child_age END,
            version = GREATEST(referrals.version, EXCLUDED.version),
            search_id = COALESCE(referrals.search_id, EXCLUDED.search_id),
            reference = CASE WHEN referrals.reference = '' THEN EXCLUDED.reference
                ELSE referrals.reference END,
            submitted_at = LEAST(referrals.submitted_at, EXCLUDED.submitted_at),
            first_answer_at = LEAST(referrals.first_answer_at, EXCLUDED.first_answer_at),
            all_acks_at = LEAST(referrals.all_acks_at, EXCLUDED.all_acks_at),
            accepted_at = LEAST(referrals.accepted_at, EXCLUDED.accepted_at),
            declined_at = LEAST(referrals.declined_at, EXCLUDED.declined_at),
            placed_at = LEAST(referrals.placed_at, EXCLUDED.placed_at),
            end_reason = COALESCE(EXCLUDED.end_reason, referrals.end_reason)
        WHERE referrals.version < EXCLUDED.version
            OR (referrals.search_id IS NULL AND EXCLUDED.search_id IS NOT NULL)
            OR (referrals.reference = '' AND EXCLUDED.reference <> '')
            OR num_nonnulls(EXCLUDED.submitted_at, EXCLUDED.first_answer_at, EXCLUDED.all_acks_at,
                EXCLUDED.accepted_at, EXCLUDED.declined_at, EXCLUDED.placed_at, EXCLUDED.end_reason) > 0
        RETURNING id
    ),
    step AS (
        INSERT INTO steps (referral_id, version, action, from_status, to_status, actor_agency_id, at,
            reason_code, sender_region_code, receiving_region_code)
        SELECT $1, $19, $20, $21, $22, $23, $24, $25, $26, $27
        FROM (SELECT count(*) FROM referral) AS referral_first
        WHERE $19::bigint IS NOT NULL
        ON CONFLICT (referral_id, version) DO NOTHING
        RETURNING action, to_status, reason_code, sender_region_code, receiving_region_code
    ),
    days AS (
        INSERT INTO step_days (side, region_code, day, action, to_status, reason_code, steps)
        SELECT d.side, d.region_code, $35::date, s.action, s.to_status, s.reason_code, 1
        FROM step s CROSS JOIN LATERAL (VALUES ('receiver', s.receiving_region_code),
            ('sender', s.sender_region_code)) AS d (side, region_code)
        WHERE $36::bool
        ORDER BY d.side
        ON CONFLICT (side, region_code, day, action, to_status, reason_code)
        DO UPDATE SET steps = step_days.steps + EXCLUDED.steps
    )
    SELECT EXISTS (SELECT FROM step)";

/// Adds new steps to their districts' day counts. The rows are raised in one order (that of the table's
/// key), whoever raises them (an event's two in [`note`] too), so that the event handler and a rebuild
/// writing side by side never wait on each other in a circle.
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

/// Whether the model holds no referral yet.
pub async fn is_empty(pool: &sqlx::PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM referrals)")
        .fetch_one(pool)
        .await
}
