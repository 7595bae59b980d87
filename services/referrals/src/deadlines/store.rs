//! The deadlines' SQL: the timers that fell due, and the referrals past their acknowledgement deadline.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::referral::Timer;

/// Up to `limit` timers due by `now` (`None`: the database's `now()`), earliest first, each with its due
/// time, claimed for this transaction (another instance skips them). A timer this release does not know
/// is an error, not a skip.
pub async fn claim_due_timers(
    conn: &mut PgConnection,
    limit: i64,
    now: Option<DateTime<Utc>>,
) -> Result<Vec<(Uuid, Timer, DateTime<Utc>)>, sqlx::Error> {
    let rows: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT referral_id, step, due_at FROM referral_timers WHERE due_at <= COALESCE($2, now())
         ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .bind(now)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, step, due)| {
            Timer::from_stored(&step)
                .map(|t| (id, t, due))
                .ok_or_else(|| {
                    sqlx::Error::Decode(Box::new(placement_proto::stored::UnknownStoredName {
                        kind: "referral timer",
                        value: step.clone(),
                    }))
                })
        })
        .collect()
}

/// Referrals still waiting for an acknowledgement past its deadline (escalated or not), for the metrics.
/// The status is written out, not bound, so that the partial index `referrals_unacknowledged` serves it.
pub async fn count_overdue(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM referrals
          WHERE status = 'REFERRAL_STATUS_SUBMITTED' AND ack_deadline < now()",
    )
    .fetch_one(pool)
    .await
}
