//! Agencies: who is who (the national authority, the RDSAs, the DSAs, the providers of services), each
//! registered by the national authority or by the RDSA of its district, and announced once registered.

pub mod model;
pub mod store;

use placement_messaging::{Event, Outbox};
use placement_platform::{
    error::{ServiceError, ServiceResult, check_text},
    page::{decode_id_token, page_size, take_page},
};
use placement_proto::v1::{
    Agency, AgencyKind, CreateAgencyRequest, ListAgenciesRequest, ListAgenciesResponse,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{EVENTS, reference};
use model::{AgencyRow, validate_contacts};

pub async fn list(pool: &PgPool, req: ListAgenciesRequest) -> ServiceResult<ListAgenciesResponse> {
    let page = req.page.unwrap_or_default();
    let limit = page_size("page.page_size", page.page_size)?;
    let after = decode_id_token("page.page_token", &page.page_token)?;
    let kind = AgencyKind::try_from(req.kind)
        .map_err(|_| ServiceError::invalid("kind", "unknown agency kind"))?;
    let mut rows = store::list_agencies(
        pool,
        &req.region_code,
        (kind != AgencyKind::Unspecified).then_some(kind),
        after,
        limit + 1,
    )
    .await?;
    let next_page_token = take_page(&mut rows, limit, |a| a.id.to_string());
    Ok(ListAgenciesResponse {
        agencies: rows.into_iter().map(AgencyRow::into_proto).collect(),
        next_page_token,
    })
}

pub async fn find(pool: &PgPool, id: Uuid) -> ServiceResult<Option<AgencyRow>> {
    Ok(store::find_agency(pool, id).await?)
}

/// The calling agency, which must be registered.
pub async fn calling(pool: &PgPool, id: Uuid) -> ServiceResult<AgencyRow> {
    find(pool, id)
        .await?
        .ok_or_else(|| ServiceError::denied("the calling agency is not registered"))
}

/// Every agency but the national authority is in a district, and its municipality (if given) in that district.
async fn check_place(
    pool: &PgPool,
    kind: AgencyKind,
    req: &CreateAgencyRequest,
) -> ServiceResult<()> {
    let national = kind == AgencyKind::NationalAuthority;
    if !national && req.region_code.is_empty() {
        return Err(ServiceError::invalid("region_code", "required"));
    }
    if !req.region_code.is_empty() {
        reference::require_region(pool, "region_code", &req.region_code).await?;
    }
    if !req.municipality_code.is_empty() {
        let region =
            reference::municipality_region(pool, "municipality_code", &req.municipality_code)
                .await?;
        if region != req.region_code {
            return Err(ServiceError::invalid(
                "municipality_code",
                "not in the agency's district",
            ));
        }
    }
    Ok(())
}

pub async fn register(
    pool: &PgPool,
    outbox: &Outbox,
    caller: Uuid,
    req: CreateAgencyRequest,
    correlation: Uuid,
) -> ServiceResult<Agency> {
    let kind = AgencyKind::try_from(req.kind)
        .ok()
        .filter(|k| *k != AgencyKind::Unspecified)
        .ok_or_else(|| ServiceError::invalid("kind", "required"))?;
    check_text("name", &req.name, 1, 200)?;
    check_text("name_en", &req.name_en, 0, 200)?;
    check_place(pool, kind, &req).await?;
    let contacts = validate_contacts(&req.contacts)?;

    let caller = calling(pool, caller).await?;
    let allowed = match caller.kind() {
        AgencyKind::NationalAuthority => true,
        AgencyKind::Rdsa => {
            caller.region_code.as_deref() == Some(req.region_code.as_str())
                && !matches!(kind, AgencyKind::Rdsa | AgencyKind::NationalAuthority)
        }
        _ => false,
    };
    if !allowed {
        return Err(ServiceError::denied(
            "only a national authority, or the RDSA of the district, registers agencies",
        ));
    }

    let id = Uuid::now_v7();
    let mut tx = placement_platform::db::begin(pool).await?;
    let row = store::insert_agency(
        &mut tx,
        &model::NewAgency {
            id,
            kind,
            name: req.name.trim(),
            name_en: req.name_en.trim(),
            region_code: &req.region_code,
            municipality_code: &req.municipality_code,
            contacts,
        },
    )
    .await?;
    let event = EVENTS.build(
        Event::AgencyRegistered(row.registration()),
        id,
        1,
        correlation,
    );
    Outbox::enqueue(&mut tx, &event).await?;
    outbox.commit(tx).await?;
    tracing::info!(agency_id = %id, kind = kind.as_str_name(), "agency registered");
    Ok(row.into_proto())
}
