//! The steps' SQL: the referral locked for a step, the step's change with everything it writes beside
//! the row (acknowledgement, timers, history entry), and the timers a fallback's hold moves.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, Row, postgres::PgRow};
use uuid::Uuid;

use crate::{
    record::{
        model::{HistoryRow, PartyRow, REFERRAL_COLUMNS, ReferralRow},
        store::{PartOfReferral, parts_query, push_history_entry, split_parts},
    },
    referral::{Record, StepChange, TimedStep, Timer, Transition},
};

/// A referral locked for a step, with the time of the step's transaction (the database's `now()`, which
/// a step dated by the database's clock is written at), read with the lock rather than on its own.
#[derive(Debug, FromRow)]
pub struct Locked {
    #[sqlx(flatten)]
    pub row: ReferralRow,
    pub transaction_time: DateTime<Utc>,
}

/// What the statement that locks a referral sent alone found.
pub enum Asked {
    Missing,
    /// One of a search's: not locked, as its search must be locked first.
    InSearch(Uuid),
    /// Locked, with its parties and history when the statement could read them current.
    Lone(Box<Locked>, Option<Parts>),
}

/// A referral's parties and history.
pub type Parts = (Vec<PartyRow>, Vec<HistoryRow>);

/// The referral, locked for a step.
pub async fn lock_referral(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Locked>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFERRAL_COLUMNS}, now() AS transaction_time FROM referrals WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The referral locked for a step when it was sent alone; when it is one of a search's, only its search
/// (unlocked: the caller locks the search, then the referral). A referral's search never changes, so it
/// is read from the statement's snapshot; the lock (the lateral subquery) waits for a step under way
/// and returns the row as that step left it. Its parties and history come with it, read from the
/// snapshot too: they are current when the row locked is the version the snapshot saw, as every step
/// that changes them raises the version in the same statement. Otherwise they are not returned, and the
/// caller reads them after the lock.
pub async fn lock_unless_searched(conn: &mut PgConnection, id: Uuid) -> Result<Asked, sqlx::Error> {
    let found: Vec<PgRow> = sqlx::query(&format!(
        "SELECT asked.search_id AS search_of_referral, asked.version AS snapshot_version, lone.*,
                now() AS transaction_time, part.*
         FROM referrals asked
         LEFT JOIN LATERAL (
             SELECT {REFERRAL_COLUMNS} FROM referrals
             WHERE id = asked.id AND asked.search_id IS NULL FOR UPDATE
         ) lone ON true
         LEFT JOIN LATERAL ({}) part ON asked.search_id IS NULL
         WHERE asked.id = $1",
        parts_query("= asked.id")
    ))
    .bind(id)
    .fetch_all(conn)
    .await?;
    let Some(first) = found.first() else {
        return Ok(Asked::Missing);
    };
    if let Some(search_id) = first.try_get::<Option<Uuid>, _>("search_of_referral")? {
        return Ok(Asked::InSearch(search_id));
    }
    // The lateral side is empty only for a row gone since the snapshot; referrals are never deleted.
    if first.try_get::<Option<Uuid>, _>("id")?.is_none() {
        return Ok(Asked::Missing);
    }
    let locked = Locked::from_row(first)?;
    let parts = if first.try_get::<i64, _>("snapshot_version")? == locked.row.version {
        let parts = (found.iter())
            .map(PartOfReferral::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Some(split_parts(parts))
    } else {
        None
    };
    Ok(Asked::Lone(Box::new(locked), parts))
}

/// A step's change as the store writes it: the transition, when it happened (`None`: the database's
/// clock), who took it, and the timed step's deadline with the timers to start, when the caller dated it.
pub struct Change<'a> {
    pub t: &'a Transition,
    pub at: Option<DateTime<Utc>>,
    pub actor: Option<Uuid>,
    pub deadline: Option<DateTime<Utc>>,
    pub started_timers: &'a [(Timer, DateTime<Utc>)],
}

/// Writes what `c.t` records, in one statement: the status, a new version, the step's own columns and,
/// when it opens, moves or ends a timed step, its deadline and what its holder said of the wait; the
/// acknowledgement it records; the timers it stops and starts; and its history entry. The referral is
/// locked already, and every other row written is one of the referral's, which nothing changes without
/// that lock first: writing them in one statement, in whatever order, waits on nobody new.
pub async fn apply_transition(
    conn: &mut PgConnection,
    id: Uuid,
    c: &Change<'_>,
) -> Result<ReferralRow, sqlx::Error> {
    let t = c.t;
    let mut q = QueryBuilder::<Postgres>::new("WITH updated AS (UPDATE referrals SET status = ");
    q.push_bind(t.to)
        .push(", version = version + 1, updated_at = COALESCE(")
        .push_bind(c.at)
        .push(", now())");
    push_record(&mut q, &t.record, c.at);
    push_step_change(&mut q, t.step_change, c.deadline);
    q.push(" WHERE id = ")
        .push_bind(id)
        .push(format!(" RETURNING {REFERRAL_COLUMNS})"));
    if let Record::Acknowledged(agency) = t.record {
        // The same time as the row's `updated_at`, so the step's record and its acknowledgement agree.
        q.push(", acknowledged AS (UPDATE referral_parties SET acknowledged_at = COALESCE(")
            .push_bind(c.at)
            .push(", now()) WHERE referral_id = ")
            .push_bind(id)
            .push(" AND agency_id = ")
            .push_bind(agency)
            .push(")");
    }
    push_timers(&mut q, id, &t.stopped_timers, c.started_timers);
    q.push(", noted AS (");
    push_history_entry(&mut q, "updated", t.action, t.from, c.actor);
    q.push(format!(") SELECT {REFERRAL_COLUMNS} FROM updated"));
    q.build_query_as::<ReferralRow>().fetch_one(conn).await
}

/// The columns each kind of record sets besides status, version and updated_at.
fn push_record(q: &mut QueryBuilder<'_, Postgres>, record: &Record, at: Option<DateTime<Utc>>) {
    let now = |q: &mut QueryBuilder<'_, Postgres>, column: &str| {
        q.push(format!(", {column} = COALESCE("))
            .push_bind(at)
            .push(", now())");
    };
    match record {
        Record::Status | Record::Acknowledged(_) => {}
        Record::Declined(reason, comment) => {
            q.push(", decline_reason = ").push_bind(*reason);
            q.push(", resolution_comment = ").push_bind(comment.clone());
        }
        Record::Withdrawn(reason, comment) => {
            q.push(", withdraw_reason = ").push_bind(*reason);
            q.push(", resolution_comment = ").push_bind(comment.clone());
        }
        Record::Escalated(step) => now(q, escalated_column(*step)),
        Record::Reminded(TimedStep::Acknowledgement) => now(q, "reminded_at"),
        Record::Reminded(_) => now(q, "step_reminded_at"),
        Record::CourtReminded => now(q, "court_reminded_at"),
        Record::CourtDecision(d) => {
            q.push(", court_decision_number = ")
                .push_bind(d.number.clone());
            q.push(", court_decision_date = ").push_bind(d.date);
            q.push(", court_decision_court = ")
                .push_bind(d.court.clone());
        }
        Record::Arrived => now(q, "arrived_at"),
        Record::Postponed {
            step,
            postponement: p,
            escalates,
        } => {
            q.push(", postponements = postponements + 1, waiting_reason = ")
                .push_bind(p.reason);
            q.push(", waiting_comment = ").push_bind(p.comment.clone());
            q.push(", waiting_until = ").push_bind(p.until);
            if *escalates {
                now(q, escalated_column(*step));
            }
        }
    }
}

/// Where a step's escalation is kept: the acknowledgement's stays with the referral, a later step's with
/// the step.
fn escalated_column(step: TimedStep) -> &'static str {
    match step {
        TimedStep::Acknowledgement => "escalated_at",
        _ => "step_escalated_at",
    }
}

/// A step opened or ended starts afresh; a postponed one moves its deadline (the acknowledgement's is also
/// the referral's `ack_deadline`).
fn push_step_change(
    q: &mut QueryBuilder<'_, Postgres>,
    change: StepChange,
    deadline: Option<DateTime<Utc>>,
) {
    const AFRESH: &str = ", step_reminded_at = NULL, step_escalated_at = NULL, postponements = 0, \
         waiting_reason = NULL, waiting_comment = '', waiting_until = NULL";
    match change {
        StepChange::Keeps => {}
        StepChange::Enters(_) | StepChange::Ends => {
            q.push(", step_deadline = ")
                .push_bind(deadline)
                .push(AFRESH);
        }
        StepChange::Moves(step) => {
            q.push(", step_deadline = ").push_bind(deadline);
            if step == TimedStep::Acknowledgement {
                q.push(", ack_deadline = COALESCE(")
                    .push_bind(deadline)
                    .push(", ack_deadline)");
            }
        }
    }
}

/// The CTEs that stop `stopped` timers of a referral and start (or move, if set) `started` ones: a
/// postponed step's timers move with its deadline. A timer both stopped and started is moved, not
/// deleted, as one statement may not both delete and upsert the same row (the result is the same).
fn push_timers(
    q: &mut QueryBuilder<'_, Postgres>,
    referral_id: Uuid,
    stopped: &[Timer],
    started: &[(Timer, DateTime<Utc>)],
) {
    let started_steps: Vec<&'static str> = started.iter().map(|(t, _)| t.stored()).collect();
    if !stopped.is_empty() {
        let stopped: Vec<&'static str> = stopped.iter().map(|t| t.stored()).collect();
        q.push(", stopped AS (DELETE FROM referral_timers WHERE referral_id = ")
            .push_bind(referral_id)
            .push(" AND step = ANY(")
            .push_bind(stopped)
            .push(") AND NOT (step = ANY(")
            .push_bind(started_steps.clone())
            .push(")))");
    }
    if !started.is_empty() {
        let due: Vec<DateTime<Utc>> = started.iter().map(|(_, at)| *at).collect();
        q.push(", started AS (INSERT INTO referral_timers (referral_id, step, due_at) SELECT ")
            .push_bind(referral_id)
            .push(", step, due_at FROM UNNEST(")
            .push_bind(started_steps)
            .push("::text[], ")
            .push_bind(due)
            .push(
                "::timestamptz[]) AS t (step, due_at) \
                 ON CONFLICT (referral_id, step) DO UPDATE SET due_at = EXCLUDED.due_at)",
            );
    }
}

/// Marks the referral kept as a fallback until `until`, stopping and starting the timers keeping it
/// does, in one statement. Not a step of its own: nothing in the referral's history or events changes
/// until its hold ends.
pub async fn keep_as_fallback(
    conn: &mut PgConnection,
    referral_id: Uuid,
    until: DateTime<Utc>,
    stopped: &[Timer],
    started: &[(Timer, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    let mut q =
        QueryBuilder::<Postgres>::new("WITH kept AS (UPDATE referrals SET fallback_until = ");
    q.push_bind(until)
        .push(" WHERE id = ")
        .push_bind(referral_id)
        .push(")");
    push_timers(&mut q, referral_id, stopped, started);
    // Every CTE that writes runs to its end whether the main statement reads it or not.
    q.push(" SELECT 1");
    q.build().execute(conn).await?;
    Ok(())
}

pub async fn stop_timers(
    conn: &mut PgConnection,
    referral_id: Uuid,
    timers: &[Timer],
) -> Result<(), sqlx::Error> {
    if timers.is_empty() {
        return Ok(());
    }
    let steps: Vec<&str> = timers.iter().map(|t| t.stored()).collect();
    sqlx::query("DELETE FROM referral_timers WHERE referral_id = $1 AND step = ANY($2)")
        .bind(referral_id)
        .bind(&steps)
        .execute(conn)
        .await?;
    Ok(())
}
