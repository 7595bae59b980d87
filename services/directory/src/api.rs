//! The gRPC face of the directory, thin: each RPC checks who calls (see [`crate::policy`]), hands the
//! request to its feature, and turns the answer or the refusal into gRPC (`ServiceError` into `Status`, in
//! one place). The features validate their input before any work, then run one transaction.

use placement_messaging::Outbox;
use placement_platform::{
    CallerExt,
    caller::correlation_id,
    error::{ServiceError, check_text, parse_id, respond},
};
use placement_proto::v1::{
    AddNotificationEndpointRequest, Agency, CreateAgencyRequest, CreateServiceRequest,
    ExportDirectoryRequest, ExportDirectoryResponse, GetAgencyRequest, GetServiceRequest,
    ImportProgress, ImportServicesChunk, ListAgenciesRequest, ListAgenciesResponse,
    ListMunicipalitiesRequest, ListMunicipalitiesResponse, ListNotificationEndpointsRequest,
    ListNotificationEndpointsResponse, ListRegionsRequest, ListRegionsResponse,
    NotificationEndpoint, RemoveNotificationEndpointRequest, RemoveNotificationEndpointResponse,
    SearchServicesRequest, SearchServicesResponse, SocialService, UpdateCapacityRequest,
    UpdateNotificationEndpointRequest, directory_service_server::DirectoryService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::{
    agencies::{self, model::AgencyRow},
    endpoints::Endpoints,
    policy, reference,
    register::{
        export,
        import::{
            self,
            model::{ImportError, MAX_IMPORT_BYTES, Options},
        },
    },
    social_services::{self, model::SocialServiceError},
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
        respond(reference::regions(&self.pool).await)
    }

    async fn list_municipalities(
        &self,
        request: Request<ListMunicipalitiesRequest>,
    ) -> RpcResult<ListMunicipalitiesResponse> {
        respond(reference::municipalities(&self.pool, request.into_inner()).await)
    }

    async fn list_agencies(
        &self,
        request: Request<ListAgenciesRequest>,
    ) -> RpcResult<ListAgenciesResponse> {
        respond(agencies::list(&self.pool, request.into_inner()).await)
    }

    async fn get_agency(&self, request: Request<GetAgencyRequest>) -> RpcResult<Agency> {
        let id = parse_id("agency_id", &request.get_ref().agency_id)?;
        respond(
            agencies::find(&self.pool, id)
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
            agencies::register(
                &self.pool,
                &self.outbox,
                caller.agency_id,
                request.into_inner(),
                correlation,
            )
            .await,
        )
    }

    async fn search_services(
        &self,
        request: Request<SearchServicesRequest>,
    ) -> RpcResult<SearchServicesResponse> {
        respond(social_services::search(&self.pool, request.into_inner()).await)
    }

    async fn get_service(&self, request: Request<GetServiceRequest>) -> RpcResult<SocialService> {
        let id = parse_id("service_id", &request.get_ref().service_id)?;
        respond(
            social_services::find(&self.pool, id)
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
            social_services::register(
                &self.pool,
                &self.outbox,
                caller.agency_id,
                request.into_inner(),
                correlation,
            )
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
            social_services::adjust_capacity(
                &self.pool,
                &self.outbox,
                caller.agency_id,
                request.into_inner(),
                correlation,
            )
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
        respond(export::page(&self.pool, request.into_inner()).await)
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
        let agency = agencies::calling(&self.pool, caller.agency_id).await?;
        import::scope_of(&agency).map_err(ServiceError::from)?;
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
            let importer = import::Importer {
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

/// The options (the first message) and the file's bytes (the others).
async fn receive_file(
    mut stream: tonic::Streaming<ImportServicesChunk>,
) -> Result<(Options, Vec<u8>), Status> {
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
        Options {
            file_name: options.file_name,
            dry_run: options.dry_run,
            close_missing: options.close_missing,
        },
        bytes,
    ))
}
