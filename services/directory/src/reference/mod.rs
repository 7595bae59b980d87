//! Reference data: Bulgaria's 28 districts and 265 municipalities (EKATTE codes), embedded in the binary and
//! loaded at start-up; loading is idempotent and fixes names that changed in a newer edition of the data.
//! Every other feature checks the district and municipality codes it is given here.

pub mod model;
pub mod store;

use placement_platform::error::{ServiceError, ServiceResult};
use placement_proto::v1::{
    ListMunicipalitiesRequest, ListMunicipalitiesResponse, ListRegionsResponse,
};
use sqlx::PgPool;

use model::{region_name_en, rows};

/// Loads the districts and municipalities (EKATTE codes) into the directory, updating names that changed.
pub async fn load(pool: &PgPool) -> Result<(), sqlx::Error> {
    let rows = rows();
    let mut tx = placement_platform::db::begin(pool).await?;
    for r in &rows {
        store::upsert_region(
            &mut tx,
            &r.oblast_code,
            &r.oblast_name_bg,
            &region_name_en(&r.oblast_code, &r.oblast_name_en),
        )
        .await?;
        store::upsert_municipality(
            &mut tx,
            &r.municipality_code,
            &r.oblast_code,
            &r.municipality_name_bg,
            &r.municipality_name_en,
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(municipalities = rows.len(), "reference data loaded");
    Ok(())
}

pub async fn regions(pool: &PgPool) -> ServiceResult<ListRegionsResponse> {
    Ok(ListRegionsResponse {
        regions: store::regions(pool).await?,
    })
}

pub async fn municipalities(
    pool: &PgPool,
    req: ListMunicipalitiesRequest,
) -> ServiceResult<ListMunicipalitiesResponse> {
    if !req.region_code.is_empty() {
        require_region(pool, "region_code", &req.region_code).await?;
    }
    Ok(ListMunicipalitiesResponse {
        municipalities: store::municipalities(pool, &req.region_code).await?,
    })
}

/// Refuses a district code the directory does not know, naming `field`.
pub async fn require_region(pool: &PgPool, field: &str, code: &str) -> ServiceResult<()> {
    if store::region_exists(pool, code).await? {
        Ok(())
    } else {
        Err(ServiceError::invalid(field, "unknown district code"))
    }
}

/// The district of a municipality.
pub async fn municipality_region(pool: &PgPool, field: &str, code: &str) -> ServiceResult<String> {
    store::region_of_municipality(pool, code)
        .await?
        .ok_or_else(|| ServiceError::invalid(field, "unknown municipality code"))
}
