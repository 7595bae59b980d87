//! The SQL of places: the state of the places each referral holds (`place_holds`), and a service's held and
//! occupied places moved.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::social_services::model::{SERVICE_COLUMNS, ServiceRow};

/// The state of the places a referral holds, locked until the transaction ends.
pub async fn lock_hold_state(
    conn: &mut PgConnection,
    referral_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT state FROM place_holds WHERE referral_id = $1 FOR UPDATE")
        .bind(referral_id)
        .fetch_optional(conn)
        .await
}

/// Records the state of the places a referral holds at a service.
pub async fn set_hold(
    conn: &mut PgConnection,
    referral_id: Uuid,
    service_id: Uuid,
    places: i32,
    state: &str,
    referral_version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO place_holds (referral_id, service_id, places, state, referral_version)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (referral_id) DO UPDATE SET state = EXCLUDED.state,
             referral_version = EXCLUDED.referral_version, updated_at = now()",
    )
    .bind(referral_id)
    .bind(service_id)
    .bind(places)
    .bind(state)
    .bind(referral_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds `held` held and `occupied` occupied places (either may be negative) to a service.
pub async fn move_places(
    conn: &mut PgConnection,
    service_id: Uuid,
    held: i32,
    occupied: i32,
) -> Result<ServiceRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE services SET held_places = held_places + $2, occupied_places = occupied_places + $3,
             version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING {SERVICE_COLUMNS}"
    ))
    .bind(service_id)
    .bind(held)
    .bind(occupied)
    .fetch_one(conn)
    .await
}
