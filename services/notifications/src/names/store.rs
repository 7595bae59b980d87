//! The SQL of the names learnt from the directory.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

pub async fn keep_name(
    conn: &mut PgConnection,
    id: Uuid,
    name: &str,
    name_en: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO directory_names (id, name, name_en) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, name_en = EXCLUDED.name_en, learnt_at = now()",
    )
    .bind(id)
    .bind(name)
    .bind(name_en)
    .execute(conn)
    .await?;
    Ok(())
}

/// The names of `ids` known: (id, name, English name).
pub async fn names_of<'c>(
    db: impl PgExecutor<'c>,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, name_en FROM directory_names WHERE id = ANY ($1)")
        .bind(ids)
        .fetch_all(db)
        .await
}
