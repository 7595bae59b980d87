//! The places' SQL: the free places the directory announced, and the acceptances it has applied.

use placement_proto::v1::ReferralStatus;
use sqlx::PgConnection;
use uuid::Uuid;

/// What this service last heard of a service's free places; only a newer figure replaces it.
pub async fn note_free_places(
    conn: &mut PgConnection,
    service_id: Uuid,
    free_places: i32,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO service_places (service_id, free_places, version) VALUES ($1, $2, $3)
         ON CONFLICT (service_id) DO UPDATE SET free_places = EXCLUDED.free_places,
             version = EXCLUDED.version, updated_at = now()
         WHERE service_places.version < EXCLUDED.version",
    )
    .bind(service_id)
    .bind(free_places)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Free places as the directory last announced them (the row locked), and the places of acceptances the
/// directory has not applied yet.
pub async fn free_places_of(
    conn: &mut PgConnection,
    service_id: Uuid,
) -> Result<Option<(i32, i64)>, sqlx::Error> {
    let announced: Option<i32> = sqlx::query_scalar(
        "SELECT free_places FROM service_places WHERE service_id = $1 FOR UPDATE",
    )
    .bind(service_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(announced) = announced else {
        return Ok(None);
    };
    let pending: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(places), 0) FROM referrals
         WHERE service_id = $1 AND NOT hold_applied AND status IN ($2, $3)",
    )
    .bind(service_id)
    .bind(ReferralStatus::Accepted)
    .bind(ReferralStatus::Placed)
    .fetch_one(conn)
    .await?;
    Ok(Some((announced, pending)))
}

/// Notes that the directory holds the places of `referral_id`.
pub async fn note_hold_applied(
    conn: &mut PgConnection,
    referral_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE referrals SET hold_applied = true WHERE id = $1")
        .bind(referral_id)
        .execute(conn)
        .await?;
    Ok(())
}
