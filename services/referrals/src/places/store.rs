//! The places' SQL: the free places the directory announced (and what each service is and where), the
//! services that fit, and the acceptances the directory has applied.

use placement_proto::v1::{ReferralStatus, ServiceStatus};
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::{FitQuery, ServiceFacts, ServiceFitRow};

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

/// What the directory's event told of a service: its places, and what it is and where, kept so that the
/// services that fit a case are found locally. A newer event replaces everything; an older one only fills
/// a description not known yet (a row the submission noted from the directory's answer has none). With
/// it, in the same statement, that the directory holds the places of the referral `held`, if any.
pub async fn note_service(
    conn: &mut PgConnection,
    s: &ServiceFacts,
    version: i64,
    held: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    // The referral's update waits for the service's row (its filter reads `noted`, evaluated before the
    // referral is looked up), so the service's row is locked before the referral's, as when they were
    // two statements. Every CTE that writes runs to its end, so with no `held` the service is still noted.
    sqlx::query(
        "WITH noted AS (INSERT INTO service_places (service_id, free_places, version, provider_agency_id, region_code,
             service_type, status, min_age, max_age)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (service_id) DO UPDATE SET
             free_places = CASE WHEN service_places.version < EXCLUDED.version
                 THEN EXCLUDED.free_places ELSE service_places.free_places END,
             version = GREATEST(service_places.version, EXCLUDED.version),
             updated_at = now(),
             provider_agency_id = EXCLUDED.provider_agency_id, region_code = EXCLUDED.region_code,
             service_type = EXCLUDED.service_type, status = EXCLUDED.status,
             min_age = EXCLUDED.min_age, max_age = EXCLUDED.max_age
         WHERE service_places.version < EXCLUDED.version OR service_places.region_code IS NULL
         RETURNING 1)
         UPDATE referrals SET hold_applied = true WHERE id = $10 AND (SELECT count(*) FROM noted) >= 0",
    )
    .bind(s.service_id)
    .bind(s.free_places)
    .bind(version)
    .bind(s.provider)
    .bind(&s.region_code)
    .bind(s.service_type)
    .bind(s.status)
    .bind(s.min_age)
    .bind(s.max_age)
    .bind(held)
    .execute(conn)
    .await?;
    Ok(())
}

/// The active services of `asked.types` (in `asked.districts`, or anywhere when empty) with at least
/// `asked.places` free places and known ages, other than `asked.except`: most free places first, then by
/// id. Whether their ages fit is the model's to say (see [`super::fitting`]).
pub async fn candidates(
    conn: &mut PgConnection,
    asked: &FitQuery<'_>,
) -> Result<Vec<ServiceFitRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT service_id, provider_agency_id, region_code, service_type, free_places, min_age, max_age
         FROM service_places
         WHERE status = $1 AND service_type = ANY($2)
           AND (cardinality($3::text[]) = 0 OR region_code = ANY($3))
           AND free_places >= $4 AND NOT (service_id = ANY($5))
           AND provider_agency_id IS NOT NULL AND min_age IS NOT NULL AND max_age IS NOT NULL
         ORDER BY free_places DESC, service_id",
    )
    .bind(ServiceStatus::Active)
    .bind(asked.types)
    .bind(asked.districts)
    .bind(asked.places)
    .bind(asked.except)
    .fetch_all(conn)
    .await
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
