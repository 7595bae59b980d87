//! The gRPC face of the directory. Each RPC validates its input before any work, then runs one transaction;
//! errors become gRPC statuses in one place (`ServiceError` into `Status`).

use placement_messaging::{Event, Outbox};
use placement_platform::{
    CallerExt,
    caller::correlation_id,
    error::{ServiceError, ServiceResult, check_text, parse_id, respond},
    numbers::at_most,
    page::{decode_id_token, page_size, take_page},
};
use placement_proto::v1::{
    AddNotificationEndpointRequest, Agency, AgencyKind, AgencyRegistered, CapacityChange,
    CreateAgencyRequest, CreateServiceRequest, ExportDirectoryRequest, ExportDirectoryResponse,
    GetAgencyRequest, GetServiceRequest, ImportProgress, ImportServicesChunk, ListAgenciesRequest,
    ListAgenciesResponse, ListMunicipalitiesRequest, ListMunicipalitiesResponse,
    ListNotificationEndpointsRequest, ListNotificationEndpointsResponse, ListRegionsRequest,
    ListRegionsResponse, NotificationEndpoint, RemoveNotificationEndpointRequest,
    RemoveNotificationEndpointResponse, SearchServicesRequest, SearchServicesResponse,
    ServiceStatus, ServiceType, SocialService, UpdateCapacityRequest,
    UpdateNotificationEndpointRequest, directory_service_server::DirectoryService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    EVENTS,
    endpoints::Endpoints,
    import::{ImportError, MAX_IMPORT_BYTES},
    policy,
    social_service::{MAX_CHILD_AGE, MAX_SERVICE_CAPACITY, SocialServiceError, validate_places},
    store::{self, AgencyRow, Contact, ServiceRow},
};

#[derive(Clone)]
pub struct Directory {
    pool: PgPool,
    outbox: Outbox,
    endpoints: Endpoints,
    /// Held by the register import that is running: one at a time per process, so that two files
    /// are never held and read at once.
    imports: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Directory {
    pub fn new(pool: PgPool, outbox: Outbox, endpoints: Endpoints) -> Self {
        Self {
            pool,
            outbox,
            endpoints,
            imports: std::sync::Arc::default(),
        }
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

/// The progress of an import, then its report.
pub type ImportStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<ImportProgress, Status>> + Send>>;

#[tonic::async_trait]
impl DirectoryService for Directory {
    async fn list_regions(&self, _: Request<ListRegionsRequest>) -> RpcResult<ListRegionsResponse> {
        respond(self.regions().await)
    }

    async fn list_municipalities(
        &self,
        request: Request<ListMunicipalitiesRequest>,
    ) -> RpcResult<ListMunicipalitiesResponse> {
        respond(self.municipalities(request.into_inner()).await)
    }

    async fn list_agencies(
        &self,
        request: Request<ListAgenciesRequest>,
    ) -> RpcResult<ListAgenciesResponse> {
        respond(self.agencies(request.into_inner()).await)
    }

    async fn get_agency(&self, request: Request<GetAgencyRequest>) -> RpcResult<Agency> {
        let id = parse_id("agency_id", &request.get_ref().agency_id)?;
        respond(
            self.find_agency(id)
                .await
                .and_then(|a| a.ok_or_else(|| ServiceError::not_found("agency")))
                .map(AgencyRow::into_proto),
        )
    }

    async fn create_agency(&self, request: Request<CreateAgencyRequest>) -> RpcResult<Agency> {
        let caller = request.caller()?;
        policy::require_admin(&caller)?;
        let correlation = correlation_id(&request);
        respond(
            self.register_agency(caller.agency_id, request.into_inner(), correlation)
                .await,
        )
    }

    async fn search_services(
        &self,
        request: Request<SearchServicesRequest>,
    ) -> RpcResult<SearchServicesResponse> {
        respond(self.search(request.into_inner()).await)
    }

    async fn get_service(&self, request: Request<GetServiceRequest>) -> RpcResult<SocialService> {
        let id = parse_id("service_id", &request.get_ref().service_id)?;
        respond(
            self.find_service(id)
                .await
                .and_then(|s| s.ok_or_else(|| SocialServiceError::NotFound.into()))
                .map(|s| s.to_proto()),
        )
    }

    async fn create_service(
        &self,
        request: Request<CreateServiceRequest>,
    ) -> RpcResult<SocialService> {
        let caller = request.caller()?;
        policy::require_admin(&caller)?;
        let correlation = correlation_id(&request);
        respond(
            self.register_service(caller.agency_id, request.into_inner(), correlation)
                .await,
        )
    }

    async fn update_capacity(
        &self,
        request: Request<UpdateCapacityRequest>,
    ) -> RpcResult<SocialService> {
        let caller = request.caller()?;
        policy::require_admin(&caller)?;
        let correlation = correlation_id(&request);
        respond(
            self.adjust_capacity(caller.agency_id, request.into_inner(), correlation)
                .await,
        )
    }

    async fn add_notification_endpoint(
        &self,
        request: Request<AddNotificationEndpointRequest>,
    ) -> RpcResult<NotificationEndpoint> {
        let caller = request.caller()?;
        policy::require_admin(&caller)?;
        let correlation = correlation_id(&request);
        respond(
            self.endpoints
                .add(caller.agency_id, request.into_inner(), correlation)
                .await,
        )
    }

    async fn list_notification_endpoints(
        &self,
        request: Request<ListNotificationEndpointsRequest>,
    ) -> RpcResult<ListNotificationEndpointsResponse> {
        let caller = request.caller()?;
        policy::require_endpoint_reader(&caller)?;
        respond(
            self.endpoints
                .list(caller.agency_id, request.into_inner())
                .await,
        )
    }

    async fn update_notification_endpoint(
        &self,
        request: Request<UpdateNotificationEndpointRequest>,
    ) -> RpcResult<NotificationEndpoint> {
        let caller = request.caller()?;
        policy::require_admin(&caller)?;
        let correlation = correlation_id(&request);
        respond(
            self.endpoints
                .update(caller.agency_id, request.into_inner(), correlation)
                .await,
        )
    }

    async fn export_directory(
        &self,
        request: Request<ExportDirectoryRequest>,
    ) -> RpcResult<ExportDirectoryResponse> {
        respond(self.export(request.into_inner()).await)
    }

    type ImportServicesStream = ImportStream;

    async fn import_services(
        &self,
        request: Request<tonic::Streaming<ImportServicesChunk>>,
    ) -> RpcResult<ImportStream> {
        let caller = request.caller()?;
        policy::require_admin(&caller)?;
        let correlation = correlation_id(&request);
        // Standing first: an agency that may not import is refused before a byte of its file is read.
        let agency = self.calling_agency(caller.agency_id).await?;
        crate::import::scope_of(&agency).map_err(ServiceError::from)?;
        let running = (self.imports.clone().try_lock_owned())
            .map_err(|_| ServiceError::from(ImportError::AlreadyRunning))?;
        let (options, bytes) = receive_file(request.into_inner()).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let (pool, outbox) = (self.pool.clone(), self.outbox.clone());
        // The import runs to its end even if the caller goes away: its batches are committed as it goes.
        let import = async move {
            let updates = tx.clone();
            let progress = move |rows_done, rows_total| {
                // A slow reader misses some progress, never the report.
                let _ = updates.try_send(Ok(ImportProgress {
                    rows_done,
                    rows_total,
                    report: None,
                }));
            };
            let importer = crate::import::Importer {
                pool: &pool,
                outbox: &outbox,
                caller: &caller,
                agency: &agency,
                correlation,
            };
            let last = importer
                .run(&options, bytes, &progress)
                .await
                .map(|report| ImportProgress {
                    rows_done: report.rows,
                    rows_total: report.rows,
                    report: Some(report),
                })
                .map_err(Status::from);
            // Free before the answer: whoever reads it may start the next import at once.
            drop(running);
            let _ = tx.send(last).await;
        };
        tokio::spawn(tracing::Instrument::instrument(
            import,
            tracing::Span::current(),
        ));
        Ok(Response::new(
            Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)) as ImportStream,
        ))
    }

    async fn remove_notification_endpoint(
        &self,
        request: Request<RemoveNotificationEndpointRequest>,
    ) -> RpcResult<RemoveNotificationEndpointResponse> {
        let caller = request.caller()?;
        policy::require_admin(&caller)?;
        let correlation = correlation_id(&request);
        respond(
            self.endpoints
                .remove(caller.agency_id, request.into_inner(), correlation)
                .await
                .map(|()| RemoveNotificationEndpointResponse {}),
        )
    }
}

const MAX_CONTACTS: usize = 20;

impl Directory {
    async fn regions(&self) -> ServiceResult<ListRegionsResponse> {
        Ok(ListRegionsResponse {
            regions: store::regions(&self.pool).await?,
        })
    }

    async fn municipalities(
        &self,
        req: ListMunicipalitiesRequest,
    ) -> ServiceResult<ListMunicipalitiesResponse> {
        if !req.region_code.is_empty() {
            self.require_region("region_code", &req.region_code).await?;
        }
        Ok(ListMunicipalitiesResponse {
            municipalities: store::municipalities(&self.pool, &req.region_code).await?,
        })
    }

    async fn agencies(&self, req: ListAgenciesRequest) -> ServiceResult<ListAgenciesResponse> {
        let page = req.page.unwrap_or_default();
        let limit = page_size("page.page_size", page.page_size)?;
        let after = decode_id_token("page.page_token", &page.page_token)?;
        let kind = AgencyKind::try_from(req.kind)
            .map_err(|_| ServiceError::invalid("kind", "unknown agency kind"))?;
        let mut rows = store::list_agencies(
            &self.pool,
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

    pub(crate) async fn find_agency(&self, id: Uuid) -> ServiceResult<Option<AgencyRow>> {
        Ok(store::find_agency(&self.pool, id).await?)
    }

    async fn find_service(&self, id: Uuid) -> ServiceResult<Option<ServiceRow>> {
        Ok(store::find_service(&self.pool, id).await?)
    }

    /// The calling agency, which must be registered.
    async fn calling_agency(&self, id: Uuid) -> ServiceResult<AgencyRow> {
        self.find_agency(id)
            .await?
            .ok_or_else(|| ServiceError::denied("the calling agency is not registered"))
    }

    async fn require_region(&self, field: &str, code: &str) -> ServiceResult<()> {
        if store::region_exists(&self.pool, code).await? {
            Ok(())
        } else {
            Err(ServiceError::invalid(field, "unknown district code"))
        }
    }

    /// The district of a municipality.
    async fn municipality_region(&self, field: &str, code: &str) -> ServiceResult<String> {
        store::region_of_municipality(&self.pool, code)
            .await?
            .ok_or_else(|| ServiceError::invalid(field, "unknown municipality code"))
    }

    async fn register_agency(
        &self,
        caller: Uuid,
        req: CreateAgencyRequest,
        correlation: Uuid,
    ) -> ServiceResult<Agency> {
        let kind = AgencyKind::try_from(req.kind)
            .ok()
            .filter(|k| *k != AgencyKind::Unspecified)
            .ok_or_else(|| ServiceError::invalid("kind", "required"))?;
        check_text("name", &req.name, 1, 200)?;
        let national = kind == AgencyKind::NationalAuthority;
        if !national && req.region_code.is_empty() {
            return Err(ServiceError::invalid("region_code", "required"));
        }
        if !req.region_code.is_empty() {
            self.require_region("region_code", &req.region_code).await?;
        }
        if !req.municipality_code.is_empty() {
            let region = self
                .municipality_region("municipality_code", &req.municipality_code)
                .await?;
            if region != req.region_code {
                return Err(ServiceError::invalid(
                    "municipality_code",
                    "not in the agency's district",
                ));
            }
        }
        let contacts = validate_contacts(&req.contacts)?;

        let caller = self.calling_agency(caller).await?;
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
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let row = store::insert_agency(
            &mut tx,
            &store::NewAgency {
                id,
                kind,
                name: req.name.trim(),
                region_code: &req.region_code,
                municipality_code: &req.municipality_code,
                contacts,
            },
        )
        .await?;
        let event = EVENTS.build(
            Event::AgencyRegistered(AgencyRegistered {
                agency_id: id.to_string(),
                kind: kind as i32,
                region_code: req.region_code.clone(),
                municipality_code: req.municipality_code.clone(),
            }),
            id,
            1,
            correlation,
        );
        Outbox::enqueue(&mut tx, &event).await?;
        self.outbox.commit(tx).await?;
        tracing::info!(agency_id = %id, kind = kind.as_str_name(), "agency registered");
        Ok(row.into_proto())
    }

    async fn register_service(
        &self,
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
        if req.municipality_code.is_empty() {
            return Err(SocialServiceError::MunicipalityRequired.into());
        }
        let places = validate_places(&req)?;
        let region = self
            .municipality_region("municipality_code", &req.municipality_code)
            .await?;
        let provider = self
            .find_agency(provider_id)
            .await?
            .ok_or(SocialServiceError::ProviderNotFound)?;
        if !matches!(
            provider.kind(),
            AgencyKind::ServiceProvider | AgencyKind::FosterCareTeam
        ) {
            return Err(SocialServiceError::NotAProvider.into());
        }
        let caller = self.calling_agency(caller).await?;
        let allowed = match caller.kind() {
            AgencyKind::NationalAuthority => true,
            AgencyKind::Rdsa => caller.region_code.as_deref() == Some(region.as_str()),
            _ => caller.id == provider.id,
        };
        if !allowed {
            return Err(SocialServiceError::MayNotRegister.into());
        }

        let id = Uuid::now_v7();
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let row = store::insert_service(
            &mut tx,
            &store::NewService {
                id,
                provider: provider_id,
                service_type,
                name: req.name.trim(),
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
        self.outbox.commit(tx).await?;
        tracing::info!(service_id = %id, "service registered");
        Ok(row.to_proto())
    }

    async fn adjust_capacity(
        &self,
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
        let caller = self.calling_agency(caller).await?;

        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let current = store::lock_service(&mut tx, service_id)
            .await?
            .ok_or(SocialServiceError::NotFound)?;
        if caller.kind() != AgencyKind::NationalAuthority && caller.id != current.provider_agency_id
        {
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
        self.outbox.commit(tx).await?;
        Ok(row.to_proto())
    }

    async fn search(&self, req: SearchServicesRequest) -> ServiceResult<SearchServicesResponse> {
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
        let min_free_places =
            at_most("min_free_places", req.min_free_places, MAX_SERVICE_CAPACITY)?;
        for (field, code) in [
            ("region_code", &req.region_code),
            ("exclude_region_code", &req.exclude_region_code),
        ] {
            if !code.is_empty() {
                self.require_region(field, code).await?;
            }
        }

        let mut rows = store::search_services(
            &self.pool,
            &store::ServiceSearch {
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
}

impl Directory {
    /// One page of the directory in HSDS 3.0.
    async fn export(&self, req: ExportDirectoryRequest) -> ServiceResult<ExportDirectoryResponse> {
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
        let (mut rows, total) =
            store::services_changed(&self.pool, modified_after, after, limit + 1).await?;
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
        let agencies: std::collections::HashMap<Uuid, _> =
            store::agencies_with_ids(&self.pool, &providers)
                .await?
                .into_iter()
                .map(|a| (a.agency.id, a))
                .collect();
        let places = crate::hsds::PlaceNames::get();
        let contents = (rows.iter())
            .map(|r| crate::hsds::service(r, agencies.get(&r.row.provider_agency_id), places))
            .collect();
        let json = crate::hsds::page(contents, total, number, limit, next_page_token.is_empty());
        Ok(ExportDirectoryResponse {
            json: json.to_string(),
            next_page_token,
            last_modified: rows
                .last()
                .map(|r| placement_platform::time::timestamp(r.row.updated_at)),
        })
    }
}

/// Where an export's page starts: after this change and service id.
type ExportPosition = Option<(chrono::DateTime<chrono::Utc>, Uuid)>;

/// (where the page starts, the page's number) of an export's page token.
fn decode_export_token(token: &str) -> ServiceResult<(ExportPosition, i64)> {
    if token.is_empty() {
        return Ok((None, 1));
    }
    let bad = || ServiceError::invalid("page.page_token", "not a page token from this service");
    let mut parts = token.split('.');
    let (Some(micros), Some(id), Some(number), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let at = chrono::DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?)
        .ok_or_else(bad)?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    let number: i64 = number.parse().map_err(|_| bad())?;
    if number < 2 {
        return Err(bad());
    }
    Ok((Some((at, id)), number))
}

/// The options (the first message) and the file's bytes (the others).
async fn receive_file(
    mut stream: tonic::Streaming<ImportServicesChunk>,
) -> Result<(crate::import::Options, Vec<u8>), Status> {
    use placement_proto::v1::import_services_chunk::Part;
    let first = stream.message().await?.and_then(|c| c.part);
    let refused = |e: ImportError| Status::from(ServiceError::from(e));
    let Some(Part::Options(options)) = first else {
        return Err(refused(ImportError::OptionsNotFirst));
    };
    check_text("options.file_name", &options.file_name, 1, 255)?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await? {
        match chunk.part {
            Some(Part::Data(data)) if bytes.len() + data.len() <= MAX_IMPORT_BYTES => {
                bytes.extend_from_slice(&data);
            }
            Some(Part::Data(_)) => return Err(refused(ImportError::TooLarge)),
            _ => return Err(refused(ImportError::OptionsTwice)),
        }
    }
    Ok((
        crate::import::Options {
            file_name: options.file_name,
            dry_run: options.dry_run,
            close_missing: options.close_missing,
        },
        bytes,
    ))
}

fn decode_search_token(token: &str) -> ServiceResult<Option<(i32, Uuid)>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || ServiceError::invalid("page.page_token", "not a page token from this service");
    let (free, id) = token.split_once('.').ok_or_else(bad)?;
    Ok(Some((
        free.parse().map_err(|_| bad())?,
        Uuid::parse_str(id).map_err(|_| bad())?,
    )))
}

fn validate_contacts(
    contacts: &[placement_proto::v1::ContactEndpoint],
) -> ServiceResult<Vec<Contact>> {
    if contacts.len() > MAX_CONTACTS {
        return Err(ServiceError::invalid(
            "contacts",
            format!("at most {MAX_CONTACTS}"),
        ));
    }
    contacts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if !matches!(c.kind.as_str(), "email" | "phone" | "webhook") {
                return Err(ServiceError::invalid(
                    format!("contacts[{i}].kind"),
                    "one of email, phone, webhook",
                ));
            }
            check_text(&format!("contacts[{i}].value"), &c.value, 1, 320)?;
            if c.kind == "email" && !c.value.contains('@') {
                return Err(ServiceError::invalid(
                    format!("contacts[{i}].value"),
                    "not an e-mail address",
                ));
            }
            if c.kind == "webhook"
                && !c.value.starts_with("https://")
                && !c.value.starts_with("http://")
            {
                return Err(ServiceError::invalid(
                    format!("contacts[{i}].value"),
                    "not an http(s) URL",
                ));
            }
            Ok(Contact {
                kind: c.kind.clone(),
                value: c.value.clone(),
            })
        })
        .collect()
}
