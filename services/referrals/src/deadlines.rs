//! Deadlines that act by themselves: the reminder at half the acknowledgement time, escalation when the
//! acknowledgement deadline passes, and the reminder to apply to the court three weeks after a director's
//! order. They live in the database, so they survive restarts; due referrals are claimed with
//! `FOR UPDATE SKIP LOCKED` and the step records that it happened, so with any number of instances each
//! fires once.

use std::time::Duration;

use placement_messaging::Outbox;
use placement_platform::error::ServiceError;
use placement_proto::v1::{LegalBasisKind, ReferralStatus};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::workflow::{self, Step};

const BATCH: i64 = 100;

/// Days after a director's order when the sender is reminded (the law gives a month to go to court).
pub const COURT_REMINDER_DAYS: i32 = 21;

pub async fn run(pool: PgPool, outbox: Outbox, interval: Duration, shutdown: CancellationToken) {
    loop {
        let mut fired = 0;
        for (what, step) in [
            ("reminded", Step::Remind),
            ("escalated", Step::Escalate),
            ("reminded of the court", Step::RemindOfCourt),
        ] {
            match fire_due(&pool, &step).await {
                Ok(0) => {}
                Ok(n) => {
                    fired += n;
                    outbox.committed();
                    tracing::info!(referrals = n, "referrals {what}");
                }
                Err(e) => tracing::warn!(error = %e, "deadline pass failed; will retry"),
            }
        }
        if fired > 0 {
            // More may be due; look again at once.
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    tracing::info!("deadline scheduler stopped");
}

/// Applies `step` (a system step) to up to one batch of due referrals in one transaction; returns how many.
pub async fn fire_due(pool: &PgPool, step: &Step) -> Result<usize, ServiceError> {
    let submitted = ReferralStatus::Submitted.as_str_name();
    let mut tx = placement_platform::db::begin(pool).await?;
    let due: Vec<Uuid> = match step {
        Step::Remind => {
            sqlx::query_scalar(
                "SELECT id FROM referrals
                 WHERE status = $1 AND reminded_at IS NULL AND escalated_at IS NULL AND remind_at <= now()
                 ORDER BY remind_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(submitted)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?
        }
        Step::Escalate => {
            sqlx::query_scalar(
                "SELECT id FROM referrals
                 WHERE status = $1 AND escalated_at IS NULL AND ack_deadline <= now()
                 ORDER BY ack_deadline LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(submitted)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?
        }
        Step::RemindOfCourt => {
            sqlx::query_scalar(
                "SELECT id FROM referrals
                 WHERE legal_basis_kind = $1 AND court_decision_date IS NULL AND court_reminded_at IS NULL
                   AND status IN ('REFERRAL_STATUS_SUBMITTED', 'REFERRAL_STATUS_ACKNOWLEDGED',
                                  'REFERRAL_STATUS_ACCEPTED', 'REFERRAL_STATUS_PLACED')
                   AND legal_basis_date + $3 <= current_date
                 ORDER BY legal_basis_date LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(LegalBasisKind::DsaDirectorOrder.as_str_name())
            .bind(BATCH)
            .bind(COURT_REMINDER_DAYS)
            .fetch_all(&mut *tx)
            .await?
        }
        _ => return Ok(0),
    };
    for id in &due {
        workflow::apply(&mut tx, *id, step, None, Uuid::now_v7()).await?;
    }
    tx.commit().await?;
    Ok(due.len())
}
