//! The PostgreSQL pool of one service: its own schema, its own migrations.

use std::{str::FromStr, time::Duration};

use sqlx::{
    ConnectOptions, Connection, Executor, PgPool, Postgres, Transaction,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("invalid database URL: {0}")]
    Url(sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("shutdown requested while waiting for the database")]
    Cancelled,
}

/// How long a pooled connection may sit unused before it is checked before use.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// Connects to `url` with every connection's `search_path` set to `schema`, creates the schema and applies
/// `migrator`. Waits (with backoff) while PostgreSQL is not answering, until `shutdown` is cancelled.
pub async fn connect_and_migrate(
    url: &str,
    schema: &str,
    max_connections: u32,
    acquire_timeout: Duration,
    migrators: &[&Migrator],
    shutdown: &CancellationToken,
) -> Result<PgPool, DbSetupError> {
    assert!(
        schema.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "schema names are fixed identifiers"
    );
    let options = PgConnectOptions::from_str(url)
        .map_err(DbSetupError::Url)?
        .options([("search_path", schema)])
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(acquire_timeout)
        // A connection that died with the server is found out before it is handed to a request, but
        // only one that sat idle: pinging every connection on every acquire was a round trip more per
        // transaction (sqlx's own advice for busy pools). A busy connection broken by a restart fails
        // its one query with a transient error, which callers and consumers already retry.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > IDLE_BEFORE_PING {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options);

    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        match setup(&pool, schema, migrators).await {
            Ok(()) => return Ok(pool),
            Err(DbSetupError::Database(e)) if crate::error::is_transient_db_error(&e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, ?delay, "database not ready; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return Err(DbSetupError::Cancelled),
                }
            }
            Err(DbSetupError::Migrate(sqlx::migrate::MigrateError::Execute(e)))
                if crate::error::is_transient_db_error(&e) =>
            {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, ?delay, "database not ready for migrations; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return Err(DbSetupError::Cancelled),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

async fn setup(pool: &PgPool, schema: &str, migrators: &[&Migrator]) -> Result<(), DbSetupError> {
    // Two services starting together may both try to create their schema; the lock serialises them.
    let mut conn = pool.acquire().await?;
    conn.execute("SELECT pg_advisory_lock(7311001)").await?;
    let created = conn
        .execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
        .await;
    conn.execute("SELECT pg_advisory_unlock(7311001)").await?;
    created?;
    drop(conn);
    // Several migration sets share the schema's migration table; each ignores the others' versions.
    for migrator in migrators {
        let mut migrator = Migrator {
            migrations: migrator.migrations.clone(),
            ..Migrator::DEFAULT
        };
        migrator.set_ignore_missing(true);
        migrator.run(pool).await?;
    }
    Ok(())
}

/// Whether the database answers now.
pub async fn ping(pool: &PgPool) -> bool {
    tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(pool),
    )
    .await
    .is_ok_and(|r| r.is_ok())
}

/// Starts a transaction on a pooled connection, and finishes starting it even if the caller is cancelled
/// (a client that hangs up, a `select!` or a timeout that drops the future).
///
/// sqlx 0.8 is not cancel-safe here (launchbadge/sqlx#2054, transact-rs/sqlx#4393): a future dropped
/// while its `BEGIN` is on the wire leaves the session inside a transaction that nothing rolls back, and
/// the pool hands that connection to the next borrower, whose statements then run (and are lost, or
/// committed with someone else's) inside it. Starting the transaction in a task of its own closes that
/// window: a caller that has gone away drops a `Transaction` that is fully open, which rolls back.
/// `clippy.toml` forbids sqlx's own `begin` so that every transaction starts here.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let pool = pool.clone();
    #[allow(clippy::disallowed_methods)]
    run_to_completion(async move { pool.begin().await }).await
}

/// Runs `work` in a task of its own, so that dropping the returned future does not stop it half-way
/// (its result is then dropped when it is done). A panic in `work` is the caller's panic.
pub async fn run_to_completion<T, E, F>(work: F) -> Result<T, E>
where
    F: std::future::Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<sqlx::Error> + Send + 'static,
{
    // The task stays in the caller's span: its logs and the trace context it writes are the caller's.
    match tokio::spawn(tracing::Instrument::instrument(
        work,
        tracing::Span::current(),
    ))
    .await
    {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime is shutting down: as transient as a closed pool.
        Err(_) => Err(sqlx::Error::PoolClosed.into()),
    }
}
