//! The gRPC face of the referrals service: each RPC reads its caller and request and hands them to the
//! feature that answers it (`submission`, `steps`, `reading`); a search is submitted by `submission` and
//! read by `reading`.

use placement_messaging::Outbox;
use placement_messaging::service::Traced;
use placement_platform::{
    CallerExt,
    caller::correlation_id,
    error::{ServiceError, ServiceResult, parse_id, respond},
};
use placement_proto::v1::{
    AcceptReferralRequest, AcknowledgeReferralRequest, ConfirmPlacementRequest,
    DeclineReferralRequest, ExportReferralFhirRequest, ExtendSearchRequest, FhirDocument,
    GetReferralRequest, GetSearchRequest, ListReferralChangesRequest, ListReferralChangesResponse,
    ListReferralsRequest, ListReferralsResponse, PostponeStepRequest, PreviewSearchRequest,
    PreviewSearchResponse, RecordArrivalRequest, RecordCourtDecisionRequest, Referral, Search,
    SubmitReferralRequest, SubmitSearchRequest, WithdrawReferralRequest,
    case_service_client::CaseServiceClient, directory_service_client::DirectoryServiceClient,
    referral_service_server::ReferralService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    clock::StepClock,
    reading::Reading,
    referral::{Step, StepTimes},
    steps::{self, Steps},
    submission::Submissions,
};

#[derive(Clone)]
pub struct Referrals {
    submissions: Submissions,
    steps: Steps,
    reading: Reading,
    clock: StepClock,
    times: StepTimes,
}

type RpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl ReferralService for Referrals {
    async fn submit_referral(
        &self,
        request: Request<SubmitReferralRequest>,
    ) -> RpcResult<Referral> {
        let caller = request.caller()?;
        let correlation = correlation_id(&request);
        let at = self.clock.of_request(&request)?;
        let req = request.into_inner();
        respond(self.submissions.submit(&caller, req, correlation, at).await)
    }

    async fn get_referral(&self, request: Request<GetReferralRequest>) -> RpcResult<Referral> {
        let caller = request.caller()?;
        let id = parse_id("referral_id", &request.get_ref().referral_id)?;
        respond(self.reading.read_one(&caller, "GetReferral", id).await)
    }

    async fn list_referrals(
        &self,
        request: Request<ListReferralsRequest>,
    ) -> RpcResult<ListReferralsResponse> {
        let caller = request.caller()?;
        respond(self.reading.read_page(&caller, request.into_inner()).await)
    }

    async fn acknowledge_referral(
        &self,
        request: Request<AcknowledgeReferralRequest>,
    ) -> RpcResult<Referral> {
        let id = parse_id("referral_id", &request.get_ref().referral_id)?;
        respond(self.step(&request, id, Step::Acknowledge).await)
    }

    async fn accept_referral(
        &self,
        request: Request<AcceptReferralRequest>,
    ) -> RpcResult<Referral> {
        let id = parse_id("referral_id", &request.get_ref().referral_id)?;
        respond(self.step(&request, id, Step::Accept).await)
    }

    async fn decline_referral(
        &self,
        request: Request<DeclineReferralRequest>,
    ) -> RpcResult<Referral> {
        let req = request.get_ref();
        let id = parse_id("referral_id", &req.referral_id)?;
        let step = steps::model::decline(req.reason, &req.comment)?;
        respond(self.step(&request, id, step).await)
    }

    async fn withdraw_referral(
        &self,
        request: Request<WithdrawReferralRequest>,
    ) -> RpcResult<Referral> {
        let req = request.get_ref();
        let id = parse_id("referral_id", &req.referral_id)?;
        let step = steps::model::withdraw(req.reason, &req.comment)?;
        respond(self.step(&request, id, step).await)
    }

    async fn export_referral_fhir(
        &self,
        request: Request<ExportReferralFhirRequest>,
    ) -> RpcResult<FhirDocument> {
        let caller = request.caller()?;
        let id = parse_id("referral_id", &request.get_ref().referral_id)?;
        respond(self.reading.export_fhir(&caller, id).await)
    }

    async fn confirm_placement(
        &self,
        request: Request<ConfirmPlacementRequest>,
    ) -> RpcResult<Referral> {
        let req = request.get_ref();
        let id = parse_id("referral_id", &req.referral_id)?;
        let fallback = match req.keep_as_fallback_referral_id.as_str() {
            "" => None,
            given => Some(parse_id("keep_as_fallback_referral_id", given)?),
        };
        respond(
            self.step_keeping(&request, id, Step::ConfirmPlacement, fallback)
                .await,
        )
    }

    async fn record_arrival(&self, request: Request<RecordArrivalRequest>) -> RpcResult<Referral> {
        let id = parse_id("referral_id", &request.get_ref().referral_id)?;
        respond(self.step(&request, id, Step::RecordArrival).await)
    }

    async fn postpone_step(&self, request: Request<PostponeStepRequest>) -> RpcResult<Referral> {
        let req = request.get_ref();
        let id = parse_id("referral_id", &req.referral_id)?;
        // "Today" is the step's: the told time in a test, else the clock's.
        let today = (self.clock.of_request(&request)?)
            .unwrap_or_else(chrono::Utc::now)
            .date_naive();
        let step = steps::model::postpone(req.reason, &req.comment, req.until.as_ref(), today)?;
        respond(self.step(&request, id, step).await)
    }

    async fn record_court_decision(
        &self,
        request: Request<RecordCourtDecisionRequest>,
    ) -> RpcResult<Referral> {
        let id = parse_id("referral_id", &request.get_ref().referral_id)?;
        let decision = steps::model::validate_court_decision(request.get_ref().decision.as_ref())?;
        respond(
            self.step(&request, id, Step::RecordCourtDecision(decision))
                .await,
        )
    }

    async fn list_referral_changes(
        &self,
        request: Request<ListReferralChangesRequest>,
    ) -> RpcResult<ListReferralChangesResponse> {
        let caller = request.caller()?;
        respond(
            self.reading
                .read_changes(&caller, request.into_inner())
                .await,
        )
    }

    async fn submit_search(&self, request: Request<SubmitSearchRequest>) -> RpcResult<Search> {
        let caller = request.caller()?;
        let correlation = correlation_id(&request);
        let at = self.clock.of_request(&request)?;
        let req = request.into_inner();
        respond(
            self.submissions
                .submit_search(&caller, req, correlation, at)
                .await,
        )
    }

    async fn preview_search(
        &self,
        request: Request<PreviewSearchRequest>,
    ) -> RpcResult<PreviewSearchResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        respond(self.submissions.preview_search(&caller, req).await)
    }

    async fn extend_search(&self, request: Request<ExtendSearchRequest>) -> RpcResult<Search> {
        let caller = request.caller()?;
        let correlation = correlation_id(&request);
        let at = self.clock.of_request(&request)?;
        let req = request.into_inner();
        respond(
            self.submissions
                .extend_search(&caller, req, correlation, at)
                .await,
        )
    }

    async fn get_search(&self, request: Request<GetSearchRequest>) -> RpcResult<Search> {
        let caller = request.caller()?;
        let id = parse_id("search_id", &request.get_ref().search_id)?;
        respond(self.reading.read_search(&caller, id).await)
    }
}

impl Referrals {
    pub fn new(
        pool: PgPool,
        outbox: Outbox,
        directory: DirectoryServiceClient<Traced>,
        cases: CaseServiceClient<Traced>,
        times: StepTimes,
        clock: StepClock,
        fallback_hold: chrono::Duration,
    ) -> Self {
        Self {
            submissions: Submissions::new(pool.clone(), outbox.clone(), directory, cases, times),
            steps: Steps::new(pool.clone(), outbox, fallback_hold),
            reading: Reading::new(pool),
            clock,
            times,
        }
    }

    /// Takes `step` on the referral `id` as the request's caller, at the request's time.
    async fn step<T>(&self, request: &Request<T>, id: Uuid, step: Step) -> ServiceResult<Referral> {
        self.step_keeping(request, id, step, None).await
    }

    /// The same, keeping the referral `fallback` of the search as a fallback (a confirmation only).
    async fn step_keeping<T>(
        &self,
        request: &Request<T>,
        id: Uuid,
        step: Step,
        fallback: Option<Uuid>,
    ) -> ServiceResult<Referral> {
        let caller = request
            .caller()
            .map_err(|s| ServiceError::Unauthenticated(s.message().into()))?;
        let origin = steps::Origin {
            correlation: correlation_id(request),
            at: self.clock.of_request(request)?,
            times: self.times,
        };
        (self.steps)
            .take_requested(&caller, id, &step, fallback, origin)
            .await
    }
}
