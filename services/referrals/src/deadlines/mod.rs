//! Deadlines that act by themselves: on every timed step (acknowledgement, decision, confirmation,
//! arrival) the reminder at half its time and the escalation when its deadline passes, the reminder to
//! apply to the court three weeks after a director's order, and the release of an offer kept as a fallback
//! (withdrawn as placed elsewhere) when its hold ends. Each is a row in `referral_timers`, started
//! at submission or by the step that opens its step, moved by a first postponement and stopped by the steps
//! that make it pointless (all decided in `referral`); here they are only found when due. They live in the database,
//! so they survive restarts; due timers are claimed with `FOR UPDATE SKIP LOCKED` and taking the step
//! stops its timer, so with any number of instances each fires once. A due timer's step is taken as any
//! other step is (see `steps`).

mod store;

use std::time::Duration;

use placement_messaging::Outbox;
use placement_platform::error::ServiceError;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{clock::StepClock, referral::StepTimes, steps};

pub use store::count_overdue;

const BATCH: i64 = 100;

pub async fn run(
    pool: PgPool,
    outbox: Outbox,
    clock: StepClock,
    times: StepTimes,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let fired = match fire_due(&pool, &outbox, &clock, times).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "deadline pass failed; will retry");
                0
            }
        };
        if fired > 0 {
            tracing::info!(timers = fired, "referral timers fired");
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

/// Takes the steps of up to one batch of due timers in one transaction; returns how many fired.
pub async fn fire_due(
    pool: &PgPool,
    outbox: &Outbox,
    clock: &StepClock,
    times: StepTimes,
) -> Result<usize, ServiceError> {
    let mut tx = placement_platform::db::begin(pool).await?;
    let due = store::claim_due_timers(&mut tx, BATCH, clock.due_by()).await?;
    for (referral_id, step, due_at) in &due {
        let at = clock.of_deadline(*due_at);
        steps::apply_system(&mut tx, *referral_id, *step, at, times).await?;
    }
    outbox.commit(tx).await?;
    Ok(due.len())
}
