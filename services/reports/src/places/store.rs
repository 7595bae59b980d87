//! The places' SQL: each service's places, the newest version kept.

use sqlx::{Postgres, Transaction};

use super::model::ServiceNow;

/// Keeps the service as `s` describes it if that is newer than what is kept, or of the same version with the
/// ages kept before events carried them (the directory announces every service again once after an upgrade;
/// the same version is the same places, so only the ages change then).
pub async fn note_service(tx: &mut Transaction<'_, Postgres>, s: &ServiceNow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO services (id, provider_agency_id, region_code, service_type, status, capacity,
             free_places, held_places, occupied_places, version, min_age, max_age)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (id) DO UPDATE SET region_code = EXCLUDED.region_code,
             service_type = EXCLUDED.service_type, status = EXCLUDED.status, capacity = EXCLUDED.capacity,
             free_places = EXCLUDED.free_places, held_places = EXCLUDED.held_places,
             occupied_places = EXCLUDED.occupied_places, version = EXCLUDED.version,
             min_age = COALESCE(EXCLUDED.min_age, services.min_age),
             max_age = COALESCE(EXCLUDED.max_age, services.max_age)
         WHERE services.version < EXCLUDED.version OR (services.version = EXCLUDED.version
             AND services.min_age IS NULL AND EXCLUDED.min_age IS NOT NULL)",
    )
    .bind(s.id)
    .bind(s.provider_agency_id)
    .bind(&s.region_code)
    .bind(s.service_type)
    .bind(s.status)
    .bind(s.capacity)
    .bind(s.free_places)
    .bind(s.held_places)
    .bind(s.occupied_places)
    .bind(s.version)
    .bind(s.min_age)
    .bind(s.max_age)
    .execute(&mut **tx)
    .await
    .map(drop)
}
