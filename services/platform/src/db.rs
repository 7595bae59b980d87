//! The PostgreSQL pool of one service: its own schema, its own migrations.

use std::{str::FromStr, time::Duration};

use sqlx::{
    ConnectOptions, Connection, Executor, PgPool, Postgres, Transaction,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions, PgSslMode},
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
/// `migrators`. Waits (with backoff) while PostgreSQL is not answering, until `shutdown` is cancelled.
///
/// With `owner_url` (the schemas' owner), the schema is created and migrated as that role, which then
/// grants `url`'s role only what serving needs ([`grant_runtime`]); its connection is closed before the
/// pool of `url`'s role is returned. Without, `url`'s role does both (development).
pub async fn connect_and_migrate(
    url: &str,
    owner_url: Option<&str>,
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
    let runtime = connect_options(url, schema)?;
    let runtime_role = runtime.get_username().to_string();
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
        .connect_lazy_with(runtime);
    let Some(owner_url) = owner_url else {
        retrying(shutdown, || setup(&pool, schema, migrators)).await?;
        return Ok(pool);
    };
    let owner = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(connect_options(owner_url, schema)?);
    let prepared = retrying(shutdown, || async {
        setup(&owner, schema, migrators).await?;
        grant_runtime(&owner, schema, &runtime_role).await
    })
    .await;
    owner.close().await;
    prepared?;
    // A runtime role that cannot log in fails the start, as it did when the one role also migrated.
    retrying(shutdown, || async {
        pool.acquire().await?;
        Ok(())
    })
    .await?;
    Ok(pool)
}

fn connect_options(url: &str, schema: &str) -> Result<PgConnectOptions, DbSetupError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(DbSetupError::Url)?
        .options([("search_path", schema)])
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    Ok(plain_on_loopback(url, options))
}

/// A URL that names no `sslmode` (nor `PGSSLMODE`) means "prefer": TLS whenever the server offers it, which
/// on the loopback protects nothing and cost a tenth of every service's CPU under load (each statement
/// encrypted both ways). A local database on the loopback is plain, as docs/operating.md says; any URL
/// that names its `sslmode` is taken at its word.
fn plain_on_loopback(url: &str, options: PgConnectOptions) -> PgConnectOptions {
    let named = url.contains("sslmode=") || std::env::var_os("PGSSLMODE").is_some();
    let host = options.get_host();
    let loopback = host == "localhost"
        || host.starts_with('/')
        || (host.trim_start_matches('[').trim_end_matches(']'))
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if named || !loopback {
        return options;
    }
    options.ssl_mode(PgSslMode::Disable)
}

/// Runs `attempt` until it succeeds, waiting (with backoff) after each failure that a database still
/// starting or restarting explains; any other failure is returned.
async fn retrying<F, Fut>(shutdown: &CancellationToken, mut attempt: F) -> Result<(), DbSetupError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), DbSetupError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        let error = match attempt().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let transient = match &error {
            DbSetupError::Database(e)
            | DbSetupError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => {
                crate::error::is_transient_db_error(e)
            }
            _ => false,
        };
        if !transient {
            return Err(error);
        }
        let delay = backoff.next_delay();
        tracing::warn!(error = %error, ?delay, "database not ready; retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return Err(DbSetupError::Cancelled),
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

/// Gives `runtime` (a role other than the owner) what serving from `schema` takes and nothing more, stated
/// whole on every start so that whatever it was given by hand or by an earlier version is taken back: USAGE
/// on the schema (no CREATE), reading and writing rows of its tables (no TRUNCATE, REFERENCES or TRIGGER),
/// its sequences' next values; on the audit trail only reading and appending; nothing of the migrations'
/// history. PUBLIC keeps nothing on the schema, so no other service's runtime role can read it.
async fn grant_runtime(owner: &PgPool, schema: &str, runtime: &str) -> Result<(), DbSetupError> {
    let mut tx = begin(owner).await?;
    let owner_role: String = sqlx::query_scalar("SELECT current_user")
        .fetch_one(&mut *tx)
        .await?;
    if owner_role == runtime {
        tracing::warn!(
            "the database's owner and runtime roles are one: the runtime role owns its schema"
        );
        return Ok(());
    }
    // Two instances starting together would grant on the same catalog rows at once, which PostgreSQL
    // refuses ("tuple concurrently updated"): the lock takes them one after the other.
    tx.execute("SELECT pg_advisory_xact_lock(7311002)").await?;
    let audited: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("{schema}.audit_trail"))
        .fetch_one(&mut *tx)
        .await?;
    for statement in runtime_grants(schema, &quote_identifier(runtime), audited) {
        tx.execute(statement.as_str()).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The statements of [`grant_runtime`], in order: every privilege taken back, then the few given.
fn runtime_grants(schema: &str, role: &str, audited: bool) -> Vec<String> {
    let mut statements = vec![
        format!("REVOKE ALL ON SCHEMA {schema} FROM PUBLIC, {role}"),
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC, {role}"),
        format!("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM PUBLIC, {role}"),
        format!("GRANT USAGE ON SCHEMA {schema} TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"),
        format!("REVOKE ALL ON {schema}._sqlx_migrations FROM {role}"),
    ];
    if audited {
        statements.extend([
            // The trail is only ever appended to.
            format!("REVOKE UPDATE, DELETE ON {schema}.audit_trail FROM {role}"),
            // An append locks the head row (FOR UPDATE) and moves it forward: SELECT and UPDATE only.
            format!("REVOKE INSERT, DELETE ON {schema}.audit_head FROM {role}"),
        ]);
    }
    statements
}

/// `name` quoted as a PostgreSQL identifier: a role's name comes from a URL, not from the code.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loopback_is_plain_unless_the_url_names_its_sslmode() {
        let mode = |url: &str| connect_options(url, "cases").expect("a URL").get_ssl_mode();
        assert!(matches!(
            mode("postgres://u:p@127.0.0.1:5432/db"),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://u:p@localhost/db"),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://u:p@[::1]:5432/db"),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://u:p@127.0.0.1/db?sslmode=require"),
            PgSslMode::Require
        ));
        assert!(matches!(
            mode("postgres://u:p@db.example/db"),
            PgSslMode::Prefer
        ));
    }

    #[test]
    fn a_role_name_is_quoted_whole() {
        assert_eq!(quote_identifier("placement_cases"), "\"placement_cases\"");
        assert_eq!(
            quote_identifier("x\"; DROP SCHEMA cases; --"),
            "\"x\"\"; DROP SCHEMA cases; --\""
        );
    }

    #[test]
    fn the_runtime_role_is_given_rows_not_the_schema_and_only_appends_to_the_audit_trail() {
        let statements = runtime_grants("cases", "\"placement_cases\"", true);
        let granted: Vec<&String> = statements
            .iter()
            .filter(|s| s.starts_with("GRANT"))
            .collect();
        assert_eq!(granted.len(), 3, "{statements:#?}");
        for forbidden in ["TRUNCATE", "CREATE", "GRANT ALL", "REFERENCES", "TRIGGER"] {
            assert!(
                granted.iter().all(|s| !s.contains(forbidden)),
                "{forbidden}: {granted:#?}"
            );
        }
        // Everything is taken back before anything is given, and the audit trail's limits come last.
        let first_grant = statements.iter().position(|s| s.starts_with("GRANT"));
        assert_eq!(first_grant, Some(3), "{statements:#?}");
        assert_eq!(
            statements[statements.len() - 2],
            "REVOKE UPDATE, DELETE ON cases.audit_trail FROM \"placement_cases\""
        );
        assert!(
            !runtime_grants("web", "\"placement_web\"", false)
                .iter()
                .any(|s| s.contains("audit")),
        );
    }
}
