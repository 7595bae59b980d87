//! Escalation of referrals whose acknowledgement deadline passed. Deadlines live in the database, so they
//! survive restarts; due referrals are claimed with `FOR UPDATE SKIP LOCKED`, so several instances escalate
//! each referral once.

use std::time::Duration;

use placement_messaging::Outbox;
use placement_platform::error::ServiceError;
use placement_proto::v1::ReferralStatus;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::workflow::{self, Step};

const BATCH: i64 = 100;

pub async fn run(pool: PgPool, outbox: Outbox, interval: Duration, shutdown: CancellationToken) {
    loop {
        match escalate_due(&pool).await {
            Ok(0) => {}
            Ok(n) => {
                outbox.committed();
                tracing::info!(escalated = n, "referrals escalated");
                // More may be due; look again at once.
                continue;
            }
            Err(e) => tracing::warn!(error = %e, "escalation pass failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    tracing::info!("escalation scheduler stopped");
}

/// Escalates up to one batch of due referrals in one transaction; returns how many.
pub async fn escalate_due(pool: &PgPool) -> Result<usize, ServiceError> {
    let mut tx = pool.begin().await?;
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM referrals
         WHERE status = $1 AND escalated_at IS NULL AND ack_deadline <= now()
         ORDER BY ack_deadline LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(ReferralStatus::Submitted.as_str_name())
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    for id in &due {
        workflow::apply(&mut tx, *id, &Step::Escalate, None, Uuid::now_v7()).await?;
    }
    tx.commit().await?;
    Ok(due.len())
}
