//! The SQL of the register import: the services and providers it finds, the providers and services it
//! registers or updates, and its record.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::model::{ImportRecord, ImportedService, NewProvider, ProviderRow, RegisterService};
use crate::social_services::model::{SERVICE_COLUMNS, ServiceRow};
use placement_proto::v1::{AgencyKind, ServiceStatus, ServiceType};

/// The imported services of `region` (every district's when `None`).
pub async fn imported_services(
    pool: &PgPool,
    region: Option<&str>,
) -> Result<Vec<ImportedService>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS}, external_id, address FROM services
          WHERE external_id IS NOT NULL AND ($1::text IS NULL OR region_code = $1)"
    ))
    .bind(region)
    .fetch_all(pool)
    .await
}

pub async fn providers(
    pool: &PgPool,
    region: Option<&str>,
) -> Result<Vec<ProviderRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, region_code, external_id FROM agencies
          WHERE kind IN ('AGENCY_KIND_SERVICE_PROVIDER', 'AGENCY_KIND_FOSTER_CARE_TEAM')
            AND ($1::text IS NULL OR region_code = $1 OR external_id IS NOT NULL)",
    )
    .bind(region)
    .fetch_all(pool)
    .await
}

/// Registers `providers` in one statement.
pub async fn insert_providers(
    conn: &mut PgConnection,
    providers: &[NewProvider<'_>],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO agencies (id, kind, name, region_code, municipality_code, external_id)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])",
    )
    .bind(providers.iter().map(|p| p.id).collect::<Vec<Uuid>>())
    .bind(providers.iter().map(|p| p.kind).collect::<Vec<AgencyKind>>())
    .bind(providers.iter().map(|p| p.name).collect::<Vec<&str>>())
    .bind(providers.iter().map(|p| p.region_code).collect::<Vec<&str>>())
    .bind(providers.iter().map(|p| p.municipality_code).collect::<Vec<&str>>())
    .bind(providers.iter().map(|p| p.external_id).collect::<Vec<Option<&str>>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts `services` in one statement; returns their rows.
pub async fn insert_imported_services(
    conn: &mut PgConnection,
    services: &[RegisterService<'_>],
) -> Result<Vec<ServiceRow>, sqlx::Error> {
    let column = |f: fn(&RegisterService<'_>) -> i32| services.iter().map(f).collect::<Vec<i32>>();
    let text = |f: for<'b> fn(&'b RegisterService<'_>) -> &'b str| {
        services.iter().map(f).collect::<Vec<&str>>()
    };
    sqlx::query_as(&format!(
        "INSERT INTO services (id, provider_agency_id, type, name, region_code, municipality_code,
             capacity, occupied_places, min_age, max_age, status, external_id, address)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::int[], $8::int[], $9::int[], $10::int[], $11::text[], $12::text[], $13::text[])
         RETURNING {SERVICE_COLUMNS}"
    ))
    .bind(services.iter().map(|s| s.id).collect::<Vec<Uuid>>())
    .bind(services.iter().map(|s| s.provider).collect::<Vec<Uuid>>())
    .bind(services.iter().map(|s| s.service_type).collect::<Vec<ServiceType>>())
    .bind(text(|s| s.name))
    .bind(text(|s| s.region_code))
    .bind(text(|s| s.municipality_code))
    .bind(column(|s| s.capacity))
    .bind(column(|s| s.occupied))
    .bind(column(|s| s.min_age))
    .bind(column(|s| s.max_age))
    .bind(services.iter().map(|s| s.status).collect::<Vec<ServiceStatus>>())
    .bind(text(|s| s.external_id))
    .bind(text(|s| s.address))
    .fetch_all(conn)
    .await
}

/// Sets every field the register describes (the id and external id stay); returns the new row.
pub async fn update_imported_service(
    conn: &mut PgConnection,
    s: &RegisterService<'_>,
) -> Result<ServiceRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE services SET provider_agency_id = $2, type = $3, name = $4, region_code = $5,
             municipality_code = $6, capacity = $7, occupied_places = $8, min_age = $9, max_age = $10,
             status = $11, address = $12, version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING {SERVICE_COLUMNS}"
    ))
    .bind(s.id)
    .bind(s.provider)
    .bind(s.service_type)
    .bind(s.name)
    .bind(s.region_code)
    .bind(s.municipality_code)
    .bind(s.capacity)
    .bind(s.occupied)
    .bind(s.min_age)
    .bind(s.max_age)
    .bind(s.status)
    .bind(s.address)
    .fetch_one(conn)
    .await
}

pub async fn record_import(
    conn: &mut PgConnection,
    r: &ImportRecord<'_>,
) -> Result<(), sqlx::Error> {
    let [
        rows,
        created,
        updated,
        unchanged,
        refused,
        closed,
        providers,
    ] = r.counts;
    sqlx::query(
        "INSERT INTO service_imports (id, agency_id, file_name, file_sha256, rows, created, updated,
             unchanged, refused, closed, providers_created)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(r.id)
    .bind(r.agency_id)
    .bind(r.file_name)
    .bind(r.file_sha256)
    .bind(rows)
    .bind(created)
    .bind(updated)
    .bind(unchanged)
    .bind(refused)
    .bind(closed)
    .bind(providers)
    .execute(conn)
    .await?;
    Ok(())
}
