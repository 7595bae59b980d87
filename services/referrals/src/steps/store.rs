//! The steps' SQL: the referral locked for a step, the step's change and acknowledgement, and the timers
//! a step stops and starts.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::{
    record::model::{REFERRAL_COLUMNS, ReferralRow},
    referral::{Record, StepChange, TimedStep, Timer, Transition},
};

/// The referral, locked for a step.
pub async fn lock_referral(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Writes what `t` records: the status, a new version, the step's own columns and, when `t` opens, moves or
/// ends a timed step, its deadline (`deadline`, dated by the caller) and what its holder said of the wait, in
/// one statement.
pub async fn apply_transition(
    conn: &mut PgConnection,
    id: Uuid,
    t: &Transition,
    at: Option<DateTime<Utc>>,
    deadline: Option<DateTime<Utc>>,
) -> Result<ReferralRow, sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new("UPDATE referrals SET status = ");
    q.push_bind(t.to)
        .push(", version = version + 1, updated_at = COALESCE(")
        .push_bind(at)
        .push(", now())");
    push_record(&mut q, &t.record, at);
    push_step_change(&mut q, t.step_change, deadline);
    q.push(" WHERE id = ")
        .push_bind(id)
        .push(format!(" RETURNING {REFERRAL_COLUMNS}"));
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

/// Starts `timers` of a referral, or moves them if they are set: a postponed step's timers move with its
/// deadline.
pub async fn start_timers(
    conn: &mut PgConnection,
    referral_id: Uuid,
    timers: &[(Timer, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    if timers.is_empty() {
        return Ok(());
    }
    let steps: Vec<&str> = timers.iter().map(|(t, _)| t.stored()).collect();
    let due: Vec<DateTime<Utc>> = timers.iter().map(|(_, at)| *at).collect();
    sqlx::query(
        "INSERT INTO referral_timers (referral_id, step, due_at)
         SELECT $1, step, due_at FROM UNNEST($2::text[], $3::timestamptz[]) AS t (step, due_at)
         ON CONFLICT (referral_id, step) DO UPDATE SET due_at = EXCLUDED.due_at",
    )
    .bind(referral_id)
    .bind(&steps)
    .bind(&due)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the referral kept as a fallback until `until`. Not a step of its own: nothing in the referral's
/// history or events changes until its hold ends.
pub async fn keep_as_fallback(
    conn: &mut PgConnection,
    referral_id: Uuid,
    until: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE referrals SET fallback_until = $2 WHERE id = $1")
        .bind(referral_id)
        .bind(until)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn record_acknowledgement(
    conn: &mut PgConnection,
    referral_id: Uuid,
    agency: Uuid,
    at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE referral_parties SET acknowledged_at = COALESCE($3, now())
         WHERE referral_id = $1 AND agency_id = $2",
    )
    .bind(referral_id)
    .bind(agency)
    .bind(at)
    .execute(conn)
    .await?;
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
