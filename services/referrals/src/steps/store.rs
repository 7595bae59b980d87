//! The steps' SQL: the referral locked for a step, the step's change and acknowledgement, and the timers
//! a step stops.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    record::model::{REFERRAL_COLUMNS, ReferralRow},
    referral::{Record, Timer, Transition},
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

/// Writes what `t` records: the status, a new version and the step's own columns, in one statement.
pub async fn apply_transition(
    conn: &mut PgConnection,
    id: Uuid,
    t: &Transition,
    at: Option<DateTime<Utc>>,
) -> Result<ReferralRow, sqlx::Error> {
    // The columns each kind of record sets besides status, version and updated_at.
    let set = match &t.record {
        Record::Status | Record::Acknowledged(_) => "",
        Record::Declined(..) => ", decline_reason = $4, resolution_comment = $5",
        Record::Withdrawn(..) => ", withdraw_reason = $4, resolution_comment = $5",
        Record::Escalated => ", escalated_at = COALESCE($3, now())",
        Record::Reminded => ", reminded_at = COALESCE($3, now())",
        Record::CourtReminded => ", court_reminded_at = COALESCE($3, now())",
        Record::CourtDecision(_) => {
            ", court_decision_number = $4, court_decision_date = $5, court_decision_court = $6"
        }
    };
    let sql = format!(
        "UPDATE referrals SET status = $2, version = version + 1, updated_at = COALESCE($3, now()){set}
         WHERE id = $1 RETURNING {REFERRAL_COLUMNS}"
    );
    let q = sqlx::query_as::<_, ReferralRow>(&sql)
        .bind(id)
        .bind(t.to)
        .bind(at);
    let q = match &t.record {
        Record::Declined(reason, comment) => q.bind(*reason).bind(comment),
        Record::Withdrawn(reason, comment) => q.bind(*reason).bind(comment),
        Record::CourtDecision(d) => q.bind(&d.number).bind(d.date).bind(&d.court),
        Record::Status
        | Record::Acknowledged(_)
        | Record::Escalated
        | Record::Reminded
        | Record::CourtReminded => q,
    };
    q.fetch_one(conn).await
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
