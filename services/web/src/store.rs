//! The web app's SQL: sessions and sign-ins under way, in its own schema.

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
    pub csrf_token: String,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub struct SignIn {
    pub pkce_verifier: String,
    pub nonce: String,
    pub return_to: String,
}

pub async fn insert_session(pool: &PgPool, row: &SessionRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, subject, agency_id, roles, access_token_sealed, access_expires_at, \
         refresh_token_sealed, csrf_token, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&row.id_hash)
    .bind(&row.subject)
    .bind(row.agency_id)
    .bind(&row.roles)
    .bind(&row.access_token_sealed)
    .bind(row.access_expires_at)
    .bind(&row.refresh_token_sealed)
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
         refresh_token_sealed, csrf_token, last_seen_at, expires_at FROM sessions \
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

pub async fn delete_session(pool: &PgPool, id_hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await
        .map(drop)
}

/// Removes sessions idle longer than `idle` or past their end, and sign-ins older than ten minutes.
pub async fn delete_expired(pool: &PgPool, idle: chrono::Duration) -> sqlx::Result<u64> {
    let sessions = sqlx::query(
        "DELETE FROM sessions WHERE last_seen_at <= now() - $1::interval OR expires_at <= now()",
    )
    .bind(idle)
    .execute(pool)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM sign_ins WHERE created_at <= now() - interval '10 minutes'")
        .execute(pool)
        .await?;
    Ok(sessions)
}

pub async fn insert_sign_in(
    pool: &PgPool,
    state: &str,
    pkce_verifier: &str,
    nonce: &str,
    return_to: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sign_ins (state, pkce_verifier, nonce, return_to) VALUES ($1, $2, $3, $4)",
    )
    .bind(state)
    .bind(pkce_verifier)
    .bind(nonce)
    .bind(return_to)
    .execute(pool)
    .await
    .map(drop)
}

/// Takes the sign-in `state` names (once: it is deleted), if it is at most ten minutes old.
pub async fn take_sign_in(pool: &PgPool, state: &str) -> sqlx::Result<Option<SignIn>> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "DELETE FROM sign_ins WHERE state = $1 AND created_at > now() - interval '10 minutes' \
         RETURNING pkce_verifier, nonce, return_to",
    )
    .bind(state)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(pkce_verifier, nonce, return_to)| SignIn {
        pkce_verifier,
        nonce,
        return_to,
    }))
}
