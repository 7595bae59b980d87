//! The SQL of social services: registering one, finding, locking and searching them, setting capacity.

use placement_proto::v1::ServiceStatus;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::model::{NewService, SERVICE_COLUMNS, ServiceRow, ServiceSearch};

pub async fn find_service(pool: &PgPool, id: Uuid) -> Result<Option<ServiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The service, locked until the transaction ends.
pub async fn lock_service(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ServiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Registers an active service.
pub async fn insert_service(
    conn: &mut PgConnection,
    s: &NewService<'_>,
) -> Result<ServiceRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO services (id, provider_agency_id, type, name, name_en, region_code,
             municipality_code, capacity, occupied_places, min_age, max_age, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {SERVICE_COLUMNS}"
    ))
    .bind(s.id)
    .bind(s.provider)
    .bind(s.service_type)
    .bind(s.name)
    .bind(s.name_en)
    .bind(s.region_code)
    .bind(s.municipality_code)
    .bind(s.places.capacity)
    .bind(s.places.occupied)
    .bind(s.places.min_age)
    .bind(s.places.max_age)
    .bind(ServiceStatus::Active)
    .fetch_one(conn)
    .await
}

pub async fn set_capacity(
    conn: &mut PgConnection,
    id: Uuid,
    capacity: i32,
    occupied: i32,
    status: ServiceStatus,
) -> Result<ServiceRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE services SET capacity = $2, occupied_places = $3, status = $4,
             version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING {SERVICE_COLUMNS}"
    ))
    .bind(id)
    .bind(capacity)
    .bind(occupied)
    .bind(status)
    .fetch_one(conn)
    .await
}

pub async fn search_services(
    pool: &PgPool,
    f: &ServiceSearch<'_>,
) -> Result<Vec<ServiceRow>, sqlx::Error> {
    const FREE: &str = "GREATEST(capacity - held_places - occupied_places, 0)";
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE status = "
    ));
    q.push_bind(f.status.as_str_name());
    if !f.region_code.is_empty() {
        q.push(" AND region_code = ").push_bind(f.region_code);
    }
    if !f.exclude_region_code.is_empty() {
        q.push(" AND region_code <> ")
            .push_bind(f.exclude_region_code);
    }
    if let Some(service_type) = f.service_type {
        q.push(" AND type = ").push_bind(service_type.as_str_name());
    }
    if f.min_free_places > 0 {
        q.push(format!(" AND {FREE} >= "))
            .push_bind(f.min_free_places);
    }
    if let Some(age) = f.child_age {
        q.push(" AND min_age <= ")
            .push_bind(age)
            .push(" AND max_age >= ")
            .push_bind(age);
    }
    if let Some((free, id)) = f.after {
        q.push(format!(" AND ({FREE} < "))
            .push_bind(free)
            .push(format!(" OR ({FREE} = "))
            .push_bind(free)
            .push(" AND id > ")
            .push_bind(id)
            .push("))");
    }
    q.push(format!(" ORDER BY {FREE} DESC, id LIMIT "))
        .push_bind(f.limit);
    q.build_query_as().fetch_all(pool).await
}
