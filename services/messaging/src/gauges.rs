//! The gauges every service samples on an interval (`PLACEMENT_METRICS_INTERVAL`): its database pool, its
//! outbox, its queue and dead letters, and whatever the service itself asked to sample.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use metrics::gauge;
use placement_platform::prometheus::{
    DB_POOL_CONNECTIONS, DB_POOL_MAX, DEAD_LETTERS, OUTBOX_OLDEST_AGE, OUTBOX_UNPUBLISHED,
    QUEUE_READY,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::operator::Operator;

/// A service's own sampling (e.g. the referrals past their deadline), run on the interval.
pub type Sample = Arc<dyn Fn(PgPool) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

pub(crate) struct Gauges {
    pub pool: PgPool,
    pub operator: Operator,
    pub publishes: bool,
    pub own: Vec<Sample>,
}

impl Gauges {
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            self.sample().await;
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.cancelled() => break,
            }
        }
    }

    async fn sample(&self) {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(size);
        gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(f64::from(size.saturating_sub(idle)));
        gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
        gauge!(DB_POOL_MAX).set(f64::from(self.pool.options().get_max_connections()));
        if self.publishes {
            self.sample_outbox().await;
        }
        if !self.operator.queue.is_empty() {
            // A broker that does not answer leaves the last figures: the health check says it is gone.
            if let Ok((ready, dead)) = self.operator.depths().await {
                let queue = self.operator.queue.clone();
                gauge!(QUEUE_READY, "queue" => queue.clone()).set(as_f64(ready));
                gauge!(DEAD_LETTERS, "queue" => queue).set(as_f64(dead));
            }
        }
        for sample in &self.own {
            sample(self.pool.clone()).await;
        }
    }

    async fn sample_outbox(&self) {
        let pending: Result<(i64, f64), _> = sqlx::query_as(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
               FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await;
        match pending {
            Ok((count, age)) => {
                gauge!(OUTBOX_UNPUBLISHED).set(as_f64(u64::try_from(count).unwrap_or(0)));
                gauge!(OUTBOX_OLDEST_AGE).set(age.max(0.0));
            }
            Err(e) => tracing::debug!(error = %e, "outbox not sampled"),
        }
    }
}

/// Counts shown as floats, as Prometheus keeps every sample; exact below 2^53.
#[allow(clippy::cast_precision_loss)]
pub fn as_f64(n: u64) -> f64 {
    n as f64
}
