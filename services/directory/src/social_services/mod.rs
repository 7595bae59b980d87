//! Social services: their capacity (set by the agency that runs them), their held and occupied places
//! (moved by referrals, see [`places`]) and the limits both keep; registering a service, changing its
//! capacity, finding services with free places.

pub mod model;
pub mod places;
pub mod store;

use placement_messaging::{Event, Outbox};
use placement_platform::{
    error::{ServiceError, ServiceResult, check_text, parse_id},
    numbers::at_most,
    page::{page_size, take_page},
};
use placement_proto::v1::{
    AgencyKind, CapacityChange, CreateServiceRequest, SearchServicesRequest,
    SearchServicesResponse, ServiceStatus, ServiceType, SocialService, UpdateCapacityRequest,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{EVENTS, agencies, reference};
use model::{
    MAX_CHILD_AGE, MAX_SERVICE_CAPACITY, ServiceRow, SocialServiceError, decode_search_token,
    validate_places,
};

pub async fn find(pool: &PgPool, id: Uuid) -> ServiceResult<Option<ServiceRow>> {
    Ok(store::find_service(pool, id).await?)
}

pub async fn register(
    pool: &PgPool,
    outbox: &Outbox,
    caller: Uuid,
    req: CreateServiceRequest,
    correlation: Uuid,
) -> ServiceResult<SocialService> {
    let provider_id = parse_id("provider_agency_id", &req.provider_agency_id)?;
    let service_type = ServiceType::try_from(req.r#type)
        .ok()
        .filter(|t| *t != ServiceType::Unspecified)
        .ok_or(SocialServiceError::TypeRequired)?;
    check_text("name", &req.name, 1, 200)?;
    check_text("name_en", &req.name_en, 0, 200)?;
    if req.municipality_code.is_empty() {
        return Err(SocialServiceError::MunicipalityRequired.into());
    }
    let places = validate_places(&req)?;
    let region =
        reference::municipality_region(pool, "municipality_code", &req.municipality_code).await?;
    let provider = agencies::find(pool, provider_id)
        .await?
        .ok_or(SocialServiceError::ProviderNotFound)?;
    if !matches!(
        provider.kind(),
        AgencyKind::ServiceProvider | AgencyKind::FosterCareTeam
    ) {
        return Err(SocialServiceError::NotAProvider.into());
    }
    let caller = agencies::calling(pool, caller).await?;
    let allowed = match caller.kind() {
        AgencyKind::NationalAuthority => true,
        AgencyKind::Rdsa => caller.region_code.as_deref() == Some(region.as_str()),
        _ => caller.id == provider.id,
    };
    if !allowed {
        return Err(SocialServiceError::MayNotRegister.into());
    }

    let id = Uuid::now_v7();
    let mut tx = placement_platform::db::begin(pool).await?;
    let row = store::insert_service(
        &mut tx,
        &model::NewService {
            id,
            provider: provider_id,
            service_type,
            name: req.name.trim(),
            name_en: req.name_en.trim(),
            region_code: &region,
            municipality_code: &req.municipality_code,
            places,
        },
    )
    .await?;
    let event = EVENTS.build(
        Event::ServiceRegistered(row.capacity_event(CapacityChange::Registered, None, 0)),
        id,
        placement_platform::numbers::serial(row.version),
        correlation,
    );
    Outbox::enqueue(&mut tx, &event).await?;
    outbox.commit(tx).await?;
    tracing::info!(service_id = %id, "service registered");
    Ok(row.to_proto())
}

pub async fn adjust_capacity(
    pool: &PgPool,
    outbox: &Outbox,
    caller: Uuid,
    req: UpdateCapacityRequest,
    correlation: Uuid,
) -> ServiceResult<SocialService> {
    let service_id = parse_id("service_id", &req.service_id)?;
    let capacity = at_most("capacity", req.capacity, MAX_SERVICE_CAPACITY)?;
    let occupied = req
        .occupied_places
        .map(|o| at_most("occupied_places", o, req.capacity))
        .transpose()?;
    let status =
        ServiceStatus::try_from(req.status).map_err(|_| SocialServiceError::UnknownStatus)?;
    let caller = agencies::calling(pool, caller).await?;

    let mut tx = placement_platform::db::begin(pool).await?;
    let current = store::lock_service(&mut tx, service_id)
        .await?
        .ok_or(SocialServiceError::NotFound)?;
    if caller.kind() != AgencyKind::NationalAuthority && caller.id != current.provider_agency_id {
        return Err(SocialServiceError::MayNotChangeCapacity.into());
    }
    if let Some(expected) = req.expected_version
        && expected != placement_platform::numbers::serial(current.version)
    {
        return Err(SocialServiceError::VersionMismatch {
            current: current.version,
            expected,
        }
        .into());
    }
    let occupied = occupied.unwrap_or(current.occupied_places);
    if capacity < occupied.saturating_add(current.held_places) {
        return Err(SocialServiceError::BelowPlacesTaken {
            capacity: req.capacity,
            occupied,
            held: current.held_places,
        }
        .into());
    }
    let status = if status == ServiceStatus::Unspecified {
        current.status
    } else {
        status
    };
    let row = store::set_capacity(&mut tx, service_id, capacity, occupied, status).await?;
    let event = EVENTS.build(
        Event::ServiceCapacityChanged(row.capacity_event(CapacityChange::Adjusted, None, 0)),
        service_id,
        placement_platform::numbers::serial(row.version),
        correlation,
    );
    Outbox::enqueue(&mut tx, &event).await?;
    outbox.commit(tx).await?;
    Ok(row.to_proto())
}

pub async fn search(
    pool: &PgPool,
    req: SearchServicesRequest,
) -> ServiceResult<SearchServicesResponse> {
    let page = req.page.unwrap_or_default();
    let limit = page_size("page.page_size", page.page_size)?;
    let after = decode_search_token(&page.page_token)?;
    let service_type = ServiceType::try_from(req.service_type)
        .map_err(|_| ServiceError::invalid("service_type", "unknown service type"))?;
    let status = match ServiceStatus::try_from(req.status) {
        Ok(ServiceStatus::Unspecified) => ServiceStatus::Active,
        Ok(s) => s,
        Err(_) => return Err(ServiceError::invalid("status", "unknown status")),
    };
    let child_age = req
        .child_age
        .map(|age| at_most("child_age", age, MAX_CHILD_AGE))
        .transpose()?;
    // No service has more free places than the largest capacity: a larger bound is a mistake.
    let min_free_places = at_most("min_free_places", req.min_free_places, MAX_SERVICE_CAPACITY)?;
    for (field, code) in [
        ("region_code", &req.region_code),
        ("exclude_region_code", &req.exclude_region_code),
    ] {
        if !code.is_empty() {
            reference::require_region(pool, field, code).await?;
        }
    }

    let mut rows = store::search_services(
        pool,
        &model::ServiceSearch {
            status,
            region_code: &req.region_code,
            exclude_region_code: &req.exclude_region_code,
            service_type: (service_type != ServiceType::Unspecified).then_some(service_type),
            min_free_places,
            child_age,
            after,
            limit: limit + 1,
        },
    )
    .await?;
    let next_page_token = take_page(&mut rows, limit, |r| {
        format!("{}.{}", r.free_places(), r.id.simple())
    });
    Ok(SearchServicesResponse {
        services: rows.iter().map(ServiceRow::to_proto).collect(),
        next_page_token,
    })
}
