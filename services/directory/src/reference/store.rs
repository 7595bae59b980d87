//! The SQL of districts and municipalities.

use placement_proto::v1::{Municipality, Region};
use sqlx::{PgConnection, PgPool, Row};

pub async fn regions(pool: &PgPool) -> Result<Vec<Region>, sqlx::Error> {
    let rows = sqlx::query("SELECT code, name_bg, name_en FROM regions ORDER BY code")
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Region {
                code: r.try_get("code")?,
                name_bg: r.try_get("name_bg")?,
                name_en: r.try_get("name_en")?,
            })
        })
        .collect()
}

/// The municipalities of a district, or of the country when `region_code` is empty.
pub async fn municipalities(
    pool: &PgPool,
    region_code: &str,
) -> Result<Vec<Municipality>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT code, region_code, name_bg, name_en FROM municipalities
         WHERE ($1 = '' OR region_code = $1) ORDER BY code",
    )
    .bind(region_code)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Municipality {
                code: r.try_get("code")?,
                region_code: r.try_get("region_code")?,
                name_bg: r.try_get("name_bg")?,
                name_en: r.try_get("name_en")?,
            })
        })
        .collect()
}

pub async fn region_exists(pool: &PgPool, code: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM regions WHERE code = $1)")
        .bind(code)
        .fetch_one(pool)
        .await
}

pub async fn region_of_municipality(
    pool: &PgPool,
    code: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT region_code FROM municipalities WHERE code = $1")
        .bind(code)
        .fetch_optional(pool)
        .await
}

pub async fn upsert_region(
    conn: &mut PgConnection,
    code: &str,
    name_bg: &str,
    name_en: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO regions (code, name_bg, name_en) VALUES ($1, $2, $3)
         ON CONFLICT (code) DO UPDATE SET name_bg = EXCLUDED.name_bg, name_en = EXCLUDED.name_en",
    )
    .bind(code)
    .bind(name_bg)
    .bind(name_en)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn upsert_municipality(
    conn: &mut PgConnection,
    code: &str,
    region_code: &str,
    name_bg: &str,
    name_en: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO municipalities (code, region_code, name_bg, name_en) VALUES ($1, $2, $3, $4)
         ON CONFLICT (code) DO UPDATE SET region_code = EXCLUDED.region_code,
             name_bg = EXCLUDED.name_bg, name_en = EXCLUDED.name_en",
    )
    .bind(code)
    .bind(region_code)
    .bind(name_bg)
    .bind(name_en)
    .execute(conn)
    .await?;
    Ok(())
}
