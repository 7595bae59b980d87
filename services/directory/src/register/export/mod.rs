//! Exporting the directory in Open Referral's Human Services Data Specification (HSDS 3.0), a page at a
//! time, in the order services last changed (so a reader can ask only for what changed since).

pub mod hsds;
pub mod model;
pub mod store;

use placement_platform::{
    error::{ServiceError, ServiceResult},
    page::{page_size, take_page},
};
use placement_proto::v1::{ExportDirectoryRequest, ExportDirectoryResponse};
use sqlx::PgPool;
use uuid::Uuid;

use model::decode_export_token;

/// One page of the directory in HSDS 3.0.
pub async fn page(
    pool: &PgPool,
    req: ExportDirectoryRequest,
) -> ServiceResult<ExportDirectoryResponse> {
    if req.format != "hsds" {
        return Err(ServiceError::invalid(
            "format",
            "\"hsds\" is the only format",
        ));
    }
    let page = req.page.unwrap_or_default();
    let limit = page_size("page.page_size", page.page_size)?;
    let (after, number) = decode_export_token(&page.page_token)?;
    let modified_after = req
        .modified_after
        .map(|t| {
            placement_platform::time::from_timestamp(&t)
                .ok_or_else(|| ServiceError::invalid("modified_after", "not a valid time"))
        })
        .transpose()?;
    let (mut rows, total) = store::services_changed(pool, modified_after, after, limit + 1).await?;
    let next_page_token = take_page(&mut rows, limit, |r| {
        format!(
            "{}.{}.{}",
            r.row.updated_at.timestamp_micros(),
            r.row.id.simple(),
            number + 1
        )
    });
    let mut providers: Vec<Uuid> = rows.iter().map(|r| r.row.provider_agency_id).collect();
    providers.sort();
    providers.dedup();
    let agencies: std::collections::HashMap<Uuid, _> = store::agencies_with_ids(pool, &providers)
        .await?
        .into_iter()
        .map(|a| (a.agency.id, a))
        .collect();
    let places = hsds::PlaceNames::get();
    let contents = (rows.iter())
        .map(|r| hsds::service(r, agencies.get(&r.row.provider_agency_id), places))
        .collect();
    let json = hsds::page(contents, total, number, limit, next_page_token.is_empty());
    Ok(ExportDirectoryResponse {
        json: json.to_string(),
        next_page_token,
        last_modified: rows
            .last()
            .map(|r| placement_platform::time::timestamp(r.row.updated_at)),
    })
}
