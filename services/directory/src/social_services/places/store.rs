//! The SQL of places: the state of the places each referral holds (`place_holds`), and a service's held and
//! occupied places moved.

use sqlx::PgConnection;
use uuid::Uuid;

use super::model::Hold;
use crate::social_services::model::{SERVICE_COLUMNS, ServiceRow};

/// The state of the places a referral holds, locked until the transaction ends. A statement of its own,
/// after the service's lock: read in the statement that waited for that lock, it would come from a
/// snapshot older than the wait, and miss the hold an event of the same referral inserted meanwhile.
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
pub async fn set_hold(conn: &mut PgConnection, hold: &Hold<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("{UPSERT_HOLD} SELECT 1"))
        .bind(hold.service_id)
        .bind(hold.referral_id)
        .bind(hold.places)
        .bind(hold.state)
        .bind(hold.referral_version)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the state of the places a referral holds, and adds `held` held and `occupied` occupied places
/// (either may be negative) to its service, in one statement. The caller holds both rows' locks (see
/// [`lock_hold_state`]), so their order within the statement takes no new lock out of turn.
pub async fn set_hold_and_move_places(
    conn: &mut PgConnection,
    hold: &Hold<'_>,
    held: i32,
    occupied: i32,
) -> Result<ServiceRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "{UPSERT_HOLD}
         UPDATE services SET held_places = held_places + $6, occupied_places = occupied_places + $7,
             version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING {SERVICE_COLUMNS}"
    ))
    .bind(hold.service_id)
    .bind(hold.referral_id)
    .bind(hold.places)
    .bind(hold.state)
    .bind(hold.referral_version)
    .bind(held)
    .bind(occupied)
    .fetch_one(conn)
    .await
}

/// The upsert of a referral's hold ($1 service, $2 referral, $3 places, $4 state, $5 the referral's
/// version), as a data-modifying WITH, which runs once whether or not the statement after it reads it.
const UPSERT_HOLD: &str = "WITH hold AS (
         INSERT INTO place_holds (referral_id, service_id, places, state, referral_version)
         VALUES ($2, $1, $3, $4, $5)
         ON CONFLICT (referral_id) DO UPDATE SET state = EXCLUDED.state,
             referral_version = EXCLUDED.referral_version, updated_at = now())";
