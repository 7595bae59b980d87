//! The SQL of agencies.

use placement_proto::v1::AgencyKind;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::model::{AGENCY_COLUMNS, AgencyRow, NewAgency};

/// Agencies by id, of a district (empty: all) and a kind (None: all), after `after`.
pub async fn list_agencies(
    pool: &PgPool,
    region_code: &str,
    kind: Option<AgencyKind>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AgencyRow>, sqlx::Error> {
    let mut q =
        QueryBuilder::<Postgres>::new(format!("SELECT {AGENCY_COLUMNS} FROM agencies WHERE true"));
    if !region_code.is_empty() {
        q.push(" AND region_code = ").push_bind(region_code);
    }
    if let Some(kind) = kind {
        q.push(" AND kind = ").push_bind(kind.as_str_name());
    }
    if let Some(after) = after {
        q.push(" AND id > ").push_bind(after);
    }
    q.push(" ORDER BY id LIMIT ").push_bind(limit);
    q.build_query_as().fetch_all(pool).await
}

pub async fn find_agency(pool: &PgPool, id: Uuid) -> Result<Option<AgencyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AGENCY_COLUMNS} FROM agencies WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub async fn insert_agency(
    conn: &mut PgConnection,
    a: &NewAgency<'_>,
) -> Result<AgencyRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO agencies (id, kind, name, name_en, region_code, municipality_code, contacts)
         VALUES ($1, $2, $3, $4, NULLIF($5, ''), NULLIF($6, ''), $7) RETURNING {AGENCY_COLUMNS}"
    ))
    .bind(a.id)
    .bind(a.kind)
    .bind(a.name)
    .bind(a.name_en)
    .bind(a.region_code)
    .bind(a.municipality_code)
    .bind(sqlx::types::Json(&a.contacts))
    .fetch_one(conn)
    .await
}

pub async fn agency_exists(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM agencies WHERE id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await
}
