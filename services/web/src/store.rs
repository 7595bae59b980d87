//! The web app's SQL: sessions, in its own schema (a sign-in under way is kept in the browser's cookie).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// A session as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id_hash: Vec<u8>,
    pub subject: String,
    pub agency_id: Uuid,
    pub roles: Vec<String>,
    /// Sealed with the session's key (see `session::SessionKey`).
    pub access_token_sealed: Vec<u8>,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token_sealed: Option<Vec<u8>>,
    pub id_token_sealed: Option<Vec<u8>>,
    pub csrf_token: String,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_session(pool: &PgPool, row: &SessionRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, subject, agency_id, roles, access_token_sealed, access_expires_at, \
         refresh_token_sealed, id_token_sealed, csrf_token, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&row.id_hash)
    .bind(&row.subject)
    .bind(row.agency_id)
    .bind(&row.roles)
    .bind(&row.access_token_sealed)
    .bind(row.access_expires_at)
    .bind(&row.refresh_token_sealed)
    .bind(&row.id_token_sealed)
    .bind(&row.csrf_token)
    .bind(row.expires_at)
    .execute(pool)
    .await
    .map(drop)
}

/// The session, if it exists and has been used within `idle` and is not past its end.
pub async fn live_session(
    pool: &PgPool,
    id_hash: &[u8],
    idle: chrono::Duration,
) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as(
        "SELECT id_hash, subject, agency_id, roles, access_token_sealed, access_expires_at, \
         refresh_token_sealed, id_token_sealed, csrf_token, last_seen_at, expires_at FROM sessions \
         WHERE id_hash = $1 AND last_seen_at > now() - $2::interval AND expires_at > now()",
    )
    .bind(id_hash)
    .bind(idle)
    .fetch_optional(pool)
    .await
}

pub async fn touch_session(pool: &PgPool, id_hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = now() WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await
        .map(drop)
}

pub async fn replace_tokens(
    pool: &PgPool,
    id_hash: &[u8],
    access_token_sealed: &[u8],
    access_expires_at: DateTime<Utc>,
    refresh_token_sealed: Option<&[u8]>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sessions SET access_token_sealed = $2, access_expires_at = $3, \
         refresh_token_sealed = $4, last_seen_at = now() WHERE id_hash = $1",
    )
    .bind(id_hash)
    .bind(access_token_sealed)
    .bind(access_expires_at)
    .bind(refresh_token_sealed)
    .execute(pool)
    .await
    .map(drop)
}

/// Whether the session is still live (signed in, not idle longer than `idle`, not past its end).
pub async fn session_lives(
    pool: &PgPool,
    id_hash: &[u8],
    idle: chrono::Duration,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sessions \
         WHERE id_hash = $1 AND last_seen_at > now() - $2::interval AND expires_at > now())",
    )
    .bind(id_hash)
    .bind(idle)
    .fetch_one(pool)
    .await
}

pub async fn delete_session(pool: &PgPool, id_hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await
        .map(drop)
}

/// Removes sessions idle longer than `idle` or past their end.
pub async fn delete_expired(pool: &PgPool, idle: chrono::Duration) -> sqlx::Result<u64> {
    sqlx::query(
        "DELETE FROM sessions WHERE last_seen_at <= now() - $1::interval OR expires_at <= now()",
    )
    .bind(idle)
    .execute(pool)
    .await
    .map(|done| done.rows_affected())
}
