//! The gRPC face of the cases service: the request read, the work asked of [`crate::cases`], reads and
//! refusals audited.

use placement_messaging::Outbox;
use placement_messaging::service::Traced;
use placement_platform::{
    CallerExt, audit,
    caller::{Caller, correlation_id},
    error::{ServiceResult, parse_id, respond},
};
use placement_proto::v1::{
    Case, CloseCaseRequest, GetCaseRequest, ListCasesRequest, ListCasesResponse, OpenCaseRequest,
    case_service_server::CaseService, directory_service_client::DirectoryServiceClient,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::cases::{Casework, personal::Sealer};

#[derive(Clone)]
pub struct Cases {
    /// For the audit trail of reads and refusals.
    pool: PgPool,
    casework: Casework,
}

type RpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl CaseService for Cases {
    async fn open_case(&self, request: Request<OpenCaseRequest>) -> RpcResult<Case> {
        let caller = request.caller()?;
        let correlation = correlation_id(&request);
        respond(
            self.casework
                .open(caller, request.into_inner(), correlation)
                .await,
        )
    }

    async fn get_case(&self, request: Request<GetCaseRequest>) -> RpcResult<Case> {
        let caller = request.caller()?;
        let id = parse_id("case_id", &request.get_ref().case_id)?;
        let result = self.casework.get(caller.clone(), id).await;
        respond(self.audit_read(&caller, "GetCase", vec![id], result).await)
    }

    async fn list_cases(&self, request: Request<ListCasesRequest>) -> RpcResult<ListCasesResponse> {
        let caller = request.caller()?;
        let result = self
            .casework
            .list(caller.clone(), request.into_inner())
            .await;
        let ids = result
            .as_ref()
            .map(|r| {
                r.cases
                    .iter()
                    .filter_map(|c| Uuid::parse_str(&c.id).ok())
                    .collect()
            })
            .unwrap_or_default();
        respond(self.audit_read(&caller, "ListCases", ids, result).await)
    }

    async fn close_case(&self, request: Request<CloseCaseRequest>) -> RpcResult<Case> {
        let caller = request.caller()?;
        let correlation = correlation_id(&request);
        let id = parse_id("case_id", &request.get_ref().case_id)?;
        let result = self
            .casework
            .close(caller.clone(), request.into_inner(), correlation)
            .await;
        let rpc = "placement.v1.CaseService/CloseCase";
        respond(audit::record_refusal(&self.pool, &caller, rpc, "case", &[id], result).await)
    }
}

impl Cases {
    pub fn new(
        pool: PgPool,
        outbox: Outbox,
        directory: DirectoryServiceClient<Traced>,
        sealer: Option<Sealer>,
    ) -> Self {
        let casework = Casework::new(pool.clone(), outbox, directory, sealer);
        Self { pool, casework }
    }

    /// Records a read (or its refusal) in the audit trail; a read that cannot be recorded is not answered.
    async fn audit_read<T>(
        &self,
        caller: &Caller,
        rpc: &str,
        ids: Vec<Uuid>,
        result: ServiceResult<T>,
    ) -> ServiceResult<T> {
        let rpc = format!("placement.v1.CaseService/{rpc}");
        audit::record_read(&self.pool, caller, &rpc, "case", &ids, result).await
    }
}
