//! The gRPC face of the referrals service.
//!
//! Submission asks the cases service (as the caller, so the case's owner decides who reads it) and the
//! directory (the service, the receiving district's foster-care team and RDSA) with deadlines: these
//! answers must be current, and a referral is submitted rarely enough that a lookup costs nothing.
//! Every later step needs only what the referral stored at submission, plus the service's free places,
//! which this service keeps from the directory's capacity events (see `capacity`).

use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use placement_messaging::service::Traced;
use placement_messaging::{Event, Outbox};
use placement_platform::{
    CallerExt,
    audit::{self, Entry},
    caller::{Caller, correlation_id},
    error::{ServiceError, ServiceResult, check_text, parse_id, respond, retry_conflicts},
    page::{Cursor, page_size, take_page},
    time::past_act_date,
};
use placement_proto::v1::{
    AcceptReferralRequest, AcknowledgeReferralRequest, AgencyKind, CaseStatus,
    ConfirmPlacementRequest, DeclineReason, DeclineReferralRequest, ExportReferralFhirRequest,
    FhirDocument, GetAgencyRequest, GetCaseRequest, GetReferralRequest, GetServiceRequest,
    LegalBasis, LegalBasisKind, ListAgenciesRequest, ListReferralChangesRequest,
    ListReferralChangesResponse, ListReferralsRequest, ListReferralsResponse, PageRequest,
    RecordCourtDecisionRequest, Referral, ReferralAction, ReferralDirection, ReferralStatus,
    ServiceStatus, SubmitReferralRequest, WithdrawReason, WithdrawReferralRequest,
    case_service_client::CaseServiceClient, directory_service_client::DirectoryServiceClient,
    referral_service_server::ReferralService,
};
use sqlx::{PgPool, Postgres, Transaction};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    EVENTS,
    clock::StepClock,
    policy::{self, Act},
    referral::{ChildrenAges, CourtDecision, Step},
    store::{self, PartyRow, ReferralRow, assemble, parties_of, record_history},
    workflow,
};

#[derive(Clone)]
pub struct Referrals {
    pool: PgPool,
    outbox: Outbox,
    directory: DirectoryServiceClient<Traced>,
    cases: CaseServiceClient<Traced>,
    ack_deadline: Duration,
    clock: StepClock,
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
        let result = match policy::require(&caller, Act::Work) {
            // The idempotency key makes a whole submission safe to run again.
            Ok(()) => {
                retry_conflicts(|| self.submit(caller.clone(), req.clone(), correlation, at)).await
            }
            Err(e) => Err(e),
        };
        let ids: Vec<Uuid> = Uuid::parse_str(&req.case_id).into_iter().collect();
        let rpc = "placement.v1.ReferralService/SubmitReferral";
        let result =
            audit::record_refusal(&self.pool, &caller, rpc, "referral", &ids, result).await;
        respond(result)
    }

    async fn get_referral(&self, request: Request<GetReferralRequest>) -> RpcResult<Referral> {
        let caller = request.caller()?;
        let id = parse_id("referral_id", &request.get_ref().referral_id)?;
        let result = self.get(caller.clone(), id).await;
        respond(
            self.audit_read(&caller, "GetReferral", vec![id], result)
                .await,
        )
    }

    async fn list_referrals(
        &self,
        request: Request<ListReferralsRequest>,
    ) -> RpcResult<ListReferralsResponse> {
        let caller = request.caller()?;
        let result = self.list(caller.clone(), request.into_inner()).await;
        let ids = result
            .as_ref()
            .map(|r| {
                r.referrals
                    .iter()
                    .filter_map(|x| Uuid::parse_str(&x.id).ok())
                    .collect()
            })
            .unwrap_or_default();
        respond(self.audit_read(&caller, "ListReferrals", ids, result).await)
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
        let reason = DeclineReason::try_from(req.reason)
            .ok()
            .filter(|r| *r != DeclineReason::Unspecified)
            .ok_or_else(|| ServiceError::invalid("reason", "required"))?;
        check_text("comment", &req.comment, 0, 2000)?;
        let step = Step::Decline(reason, req.comment.trim().to_string());
        respond(self.step(&request, id, step).await)
    }

    async fn withdraw_referral(
        &self,
        request: Request<WithdrawReferralRequest>,
    ) -> RpcResult<Referral> {
        let req = request.get_ref();
        let id = parse_id("referral_id", &req.referral_id)?;
        let reason = WithdrawReason::try_from(req.reason)
            .ok()
            .filter(|r| *r != WithdrawReason::Unspecified)
            .ok_or_else(|| ServiceError::invalid("reason", "required"))?;
        check_text("comment", &req.comment, 0, 2000)?;
        let step = Step::Withdraw(reason, req.comment.trim().to_string());
        respond(self.step(&request, id, step).await)
    }

    async fn export_referral_fhir(
        &self,
        request: Request<ExportReferralFhirRequest>,
    ) -> RpcResult<FhirDocument> {
        let caller = request.caller()?;
        let id = parse_id("referral_id", &request.get_ref().referral_id)?;
        let result = self.get(caller.clone(), id).await;
        let result = self
            .audit_read(&caller, "ExportReferralFhir", vec![id], result)
            .await;
        respond(result.map(|referral| FhirDocument {
            content_type: crate::fhir::CONTENT_TYPE.to_string(),
            json: crate::fhir::bundle(&referral).to_string(),
        }))
    }

    async fn confirm_placement(
        &self,
        request: Request<ConfirmPlacementRequest>,
    ) -> RpcResult<Referral> {
        let id = parse_id("referral_id", &request.get_ref().referral_id)?;
        respond(self.step(&request, id, Step::ConfirmPlacement).await)
    }

    async fn record_court_decision(
        &self,
        request: Request<RecordCourtDecisionRequest>,
    ) -> RpcResult<Referral> {
        let id = parse_id("referral_id", &request.get_ref().referral_id)?;
        let decision = validate_court_decision(request.get_ref().decision.as_ref())?;
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
        let result = self.changes(&caller, request.into_inner()).await;
        let ids = result
            .as_ref()
            .map(|r| {
                (r.referrals.iter())
                    .filter_map(|x| Uuid::parse_str(&x.id).ok())
                    .collect()
            })
            .unwrap_or_default();
        respond(
            self.audit_read(&caller, "ListReferralChanges", ids, result)
                .await,
        )
    }
}

fn validate_court_decision(decision: Option<&LegalBasis>) -> ServiceResult<CourtDecision> {
    let d = decision.ok_or_else(|| ServiceError::invalid("decision", "required"))?;
    if d.kind != LegalBasisKind::CourtDecision as i32 {
        return Err(ServiceError::invalid(
            "decision.kind",
            "must be COURT_DECISION",
        ));
    }
    check_text("decision.number", d.number.trim(), 1, 64)?;
    check_text("decision.court", d.court.trim(), 1, 200)?;
    let date = past_act_date("decision.issued_on", d.issued_on.as_ref())?;
    Ok(CourtDecision {
        number: d.number.trim().to_string(),
        date,
        court: d.court.trim().to_string(),
    })
}

/// The RPC a step comes from, for the audit trail.
fn rpc_of(step: &Step) -> &'static str {
    match step {
        Step::Acknowledge => "AcknowledgeReferral",
        Step::Accept => "AcceptReferral",
        Step::Decline(..) => "DeclineReferral",
        Step::Withdraw(..) => "WithdrawReferral",
        Step::ConfirmPlacement => "ConfirmPlacement",
        Step::RecordCourtDecision(_) => "RecordCourtDecision",
    }
}

impl Referrals {
    /// Records a read (or its refusal) in the audit trail; a read that cannot be recorded is not answered.
    async fn audit_read<T>(
        &self,
        caller: &Caller,
        rpc: &str,
        ids: Vec<Uuid>,
        result: ServiceResult<T>,
    ) -> ServiceResult<T> {
        let rpc = format!("placement.v1.ReferralService/{rpc}");
        audit::record_read(&self.pool, caller, &rpc, "referral", &ids, result).await
    }
}

/// What the directory and the cases service said of a submission's case and service.
struct Target {
    places: i32,
    provider: Uuid,
    foster_team: Uuid,
    rdsa: Option<Uuid>,
    sender_region: String,
    region_code: String,
    free_places: i32,
    service_version: i64,
    ages: ChildrenAges,
}

/// A validated submission.
struct Submission {
    case_id: Uuid,
    service_id: Uuid,
    legal_basis_kind: LegalBasisKind,
    legal_basis_number: String,
    legal_basis_date: chrono::NaiveDate,
    legal_basis_court: String,
    reason: String,
    idempotency_key: String,
    /// When it happens: `None` for the database's clock (see `clock`).
    at: Option<DateTime<Utc>>,
}

fn validate_submission(req: SubmitReferralRequest) -> ServiceResult<Submission> {
    let case_id = parse_id("case_id", &req.case_id)?;
    let service_id = parse_id("service_id", &req.service_id)?;
    check_text("idempotency_key", &req.idempotency_key, 1, 128)?;
    let basis = req
        .legal_basis
        .ok_or_else(|| ServiceError::invalid("legal_basis", "required"))?;
    let kind = LegalBasisKind::try_from(basis.kind)
        .ok()
        .filter(|k| *k != LegalBasisKind::Unspecified)
        .ok_or_else(|| ServiceError::invalid("legal_basis.kind", "required"))?;
    check_text("legal_basis.number", basis.number.trim(), 1, 64)?;
    let date = past_act_date("legal_basis.issued_on", basis.issued_on.as_ref())?;
    if kind == LegalBasisKind::CourtDecision {
        check_text("legal_basis.court", basis.court.trim(), 1, 200)?;
    } else {
        check_text("legal_basis.court", basis.court.trim(), 0, 200)?;
    }
    check_text("reason", req.reason.trim(), 1, 2000)?;
    Ok(Submission {
        case_id,
        service_id,
        legal_basis_kind: kind,
        legal_basis_number: basis.number.trim().to_string(),
        legal_basis_date: date,
        legal_basis_court: basis.court.trim().to_string(),
        reason: req.reason.trim().to_string(),
        idempotency_key: req.idempotency_key,
        at: None,
    })
}

impl Referrals {
    pub fn new(
        pool: PgPool,
        outbox: Outbox,
        directory: DirectoryServiceClient<Traced>,
        cases: CaseServiceClient<Traced>,
        ack_deadline: Duration,
        clock: StepClock,
    ) -> Self {
        Self {
            pool,
            outbox,
            directory,
            cases,
            ack_deadline,
            clock,
        }
    }

    /// A retry of an earlier submission: the same referral if the request is the same, an error if the key
    /// was reused for another request.
    fn replay(existing: &ReferralRow, s: &Submission) -> ServiceResult<()> {
        let same = existing.case_id == s.case_id
            && existing.service_id == s.service_id
            && existing.legal_basis_kind == s.legal_basis_kind
            && existing.legal_basis_number == s.legal_basis_number
            && existing.legal_basis_date == s.legal_basis_date
            && existing.legal_basis_court == s.legal_basis_court
            && existing.reason == s.reason;
        if same {
            Ok(())
        } else {
            Err(ServiceError::AlreadyExists(
                "idempotency_key was already used for a different referral".into(),
            ))
        }
    }

    async fn find_by_key(&self, sender: Uuid, key: &str) -> ServiceResult<Option<ReferralRow>> {
        Ok(store::find_by_idempotency_key(&self.pool, sender, key).await?)
    }

    async fn submit(
        &self,
        caller: Caller,
        req: SubmitReferralRequest,
        correlation: Uuid,
        at: Option<DateTime<Utc>>,
    ) -> ServiceResult<Referral> {
        let s = Submission {
            at,
            ..validate_submission(req)?
        };
        if let Some(existing) = self
            .find_by_key(caller.agency_id, &s.idempotency_key)
            .await?
        {
            Self::replay(&existing, &s)?;
            return self.get(caller, existing.id).await;
        }

        let target = self.target(&caller, &s).await?;
        self.record_submission(&caller, &s, &target, correlation)
            .await
    }

    /// Where the referral goes, asked of the cases service (as the caller: it refuses anyone but the
    /// case's owner) and the directory at once; the answers are judged in that order, so the error a
    /// caller gets is stable.
    async fn target(&self, caller: &Caller, s: &Submission) -> ServiceResult<Target> {
        let mut cases = self.cases.clone();
        let mut directory = self.directory.clone();
        let mut directory2 = self.directory.clone();
        let (case, service, sender) = tokio::join!(
            cases.get_case(caller.forward(GetCaseRequest {
                case_id: s.case_id.to_string(),
            })),
            directory.get_service(caller.forward(GetServiceRequest {
                service_id: s.service_id.to_string(),
            })),
            self.sender_region(&mut directory2, caller),
        );
        let case = case
            .map_err(|status| match status.code() {
                tonic::Code::NotFound => ServiceError::not_found("case"),
                _ => ServiceError::from(status),
            })?
            .into_inner();
        if case.status != CaseStatus::Open as i32 {
            return Err(ServiceError::precondition("the case is not open"));
        }
        let places = placement_platform::numbers::len_i32(case.children.len());
        if places == 0 {
            return Err(ServiceError::precondition("the case has no children"));
        }
        let service = service
            .map_err(|status| match status.code() {
                tonic::Code::NotFound => ServiceError::not_found("service"),
                _ => ServiceError::from(status),
            })?
            .into_inner();
        if service.status != ServiceStatus::Active as i32 {
            return Err(ServiceError::precondition(
                "the service takes no referrals now",
            ));
        }
        let this_year = Utc::now().year();
        for (i, child) in case.children.iter().enumerate() {
            // Birth year alone: the child is one of two ages; refuse only if neither fits.
            let oldest = u32::try_from(this_year.saturating_sub(child.birth_year)).unwrap_or(0);
            let youngest = oldest.saturating_sub(1);
            if oldest < service.min_age || youngest > service.max_age {
                return Err(ServiceError::precondition(format!(
                    "child {} is outside the service's age range {}-{}",
                    i + 1,
                    service.min_age,
                    service.max_age
                )));
            }
        }
        let ages = ChildrenAges::of(this_year, case.children.iter().map(|c| c.birth_year))
            .ok_or_else(|| ServiceError::precondition("the case has no children"))?;
        let sender_region = sender?;
        let (foster_team, rdsa) = tokio::join!(
            self.first_agency(caller, &service.region_code, AgencyKind::FosterCareTeam),
            self.first_agency(caller, &service.region_code, AgencyKind::Rdsa),
        );
        let foster_team = foster_team?.ok_or_else(|| {
            ServiceError::precondition(format!(
                "district {} has no foster-care team registered",
                service.region_code
            ))
        })?;
        let rdsa = rdsa?;
        let provider = Uuid::parse_str(&service.provider_agency_id)
            .map_err(|_| ServiceError::Internal("directory returned a malformed id".into()))?;

        Ok(Target {
            places,
            provider,
            foster_team,
            rdsa,
            sender_region,
            region_code: service.region_code,
            free_places: i32::try_from(service.free_places).unwrap_or(i32::MAX),
            service_version: i64::try_from(service.version).unwrap_or(i64::MAX),
            ages,
        })
    }

    /// Stores the referral, its parties, timers, history entry and event in one transaction.
    async fn record_submission(
        &self,
        caller: &Caller,
        s: &Submission,
        target: &Target,
        correlation: Uuid,
    ) -> ServiceResult<Referral> {
        let (places, provider, foster_team) = (target.places, target.provider, target.foster_team);
        let id = Uuid::now_v7();
        let deadline = s.at.unwrap_or_else(Utc::now)
            + chrono::Duration::from_std(self.ack_deadline).map_err(|_| {
                ServiceError::Internal("acknowledgement deadline out of range".into())
            })?;
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        // The directory's answer is the freshest view of the service's places we have.
        store::note_free_places(
            &mut tx,
            s.service_id,
            target.free_places,
            target.service_version,
        )
        .await?;
        let inserted = store::insert_referral(
            &mut tx,
            &new_referral(id, caller.agency_id, s, target, deadline),
        )
        .await?;
        let Some(row) = inserted else {
            // A concurrent retry with the same key won the race.
            drop(tx);
            let existing = self
                .find_by_key(caller.agency_id, &s.idempotency_key)
                .await?
                .ok_or_else(|| ServiceError::Unavailable("concurrent submission".into()))?;
            Self::replay(&existing, s)?;
            return self.get(caller.clone(), existing.id).await;
        };
        let party_rows = receiving_parties(id, provider, foster_team);
        let timers = row
            .state(&party_rows)
            .timers_at_submission(row.created_at, row.ack_deadline);
        store::start_timers(&mut tx, id, &timers).await?;
        store::insert_parties(&mut tx, &party_rows, row.created_at).await?;
        announce_submission(&mut tx, &row, caller.agency_id, correlation).await?;
        let referral = assemble(&mut tx, vec![row]).await?.remove(0);
        audit::append(
            &mut tx,
            &Entry {
                caller,
                rpc: "placement.v1.ReferralService/SubmitReferral",
                record_type: "referral",
                record_ids: &[id, s.case_id],
                outcome: "OK",
            },
        )
        .await?;
        self.outbox.commit(tx).await?;
        tracing::info!(referral_id = %id, case_id = %s.case_id, service_id = %s.service_id, places, "referral submitted");
        Ok(referral)
    }

    /// The caller's district: from the agencies this service learnt from the directory's events, or, for
    /// an agency registered so recently that its event has not arrived, from the directory.
    async fn sender_region(
        &self,
        directory: &mut DirectoryServiceClient<Traced>,
        caller: &Caller,
    ) -> ServiceResult<String> {
        let known = store::region_of_agency(&self.pool, caller.agency_id).await?;
        if let Some(region) = known {
            return Ok(region);
        }
        Ok(directory
            .get_agency(caller.forward(GetAgencyRequest {
                agency_id: caller.agency_id.to_string(),
            }))
            .await
            .map_err(ServiceError::from)?
            .into_inner()
            .region_code)
    }

    /// The first agency of `kind` in `region` (by id: the earliest registered), if any: from the agencies
    /// learnt from events, else (none known yet) from the directory.
    async fn first_agency(
        &self,
        caller: &Caller,
        region: &str,
        kind: AgencyKind,
    ) -> ServiceResult<Option<Uuid>> {
        let known = store::first_agency_of_kind(&self.pool, region, kind).await?;
        if known.is_some() {
            return Ok(known);
        }
        let agencies = self
            .directory
            .clone()
            .list_agencies(caller.forward(ListAgenciesRequest {
                region_code: region.to_string(),
                kind: kind as i32,
                page: Some(PageRequest {
                    page_size: 1,
                    page_token: String::new(),
                }),
            }))
            .await
            .map_err(ServiceError::from)?
            .into_inner()
            .agencies;
        Ok(agencies.first().and_then(|a| Uuid::parse_str(&a.id).ok()))
    }

    async fn get(&self, caller: Caller, id: Uuid) -> ServiceResult<Referral> {
        policy::require(&caller, Act::Read)?;
        let mut conn = self.pool.acquire().await?;
        let row = store::find_referral(&mut conn, id)
            .await?
            .ok_or_else(policy::hidden)?;
        let parties = parties_of(&mut conn, &[id]).await?;
        if !policy::may_read(&mut conn, caller.agency_id, &row, &parties).await? {
            return Err(policy::hidden());
        }
        Ok(assemble(&mut conn, vec![row]).await?.remove(0))
    }

    async fn list(
        &self,
        caller: Caller,
        req: ListReferralsRequest,
    ) -> ServiceResult<ListReferralsResponse> {
        policy::require(&caller, Act::Read)?;
        let page = req.page.unwrap_or_default();
        let limit = page_size("page.page_size", page.page_size)?;
        let after = Cursor::decode("page.page_token", &page.page_token)?;
        let status = ReferralStatus::try_from(req.status)
            .map_err(|_| ServiceError::invalid("status", "unknown status"))?;
        let direction = ReferralDirection::try_from(req.direction)
            .ok()
            .filter(|d| *d != ReferralDirection::Unspecified)
            .ok_or_else(|| ServiceError::invalid("direction", "INCOMING or OUTGOING"))?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::list_referrals(
            &mut conn,
            &store::ReferralFilter {
                agency: caller.agency_id,
                incoming: direction == ReferralDirection::Incoming,
                status: (status != ReferralStatus::Unspecified).then_some(status),
                before: after.map(|c| (c.at, c.id)),
                limit: limit + 1,
            },
        )
        .await?;
        let next_page_token = take_page(&mut rows, limit, |r| {
            Cursor {
                at: r.created_at,
                id: r.id,
            }
            .encode()
        });
        Ok(ListReferralsResponse {
            referrals: assemble(&mut conn, rows).await?,
            next_page_token,
        })
    }

    async fn changes(
        &self,
        caller: &Caller,
        req: ListReferralChangesRequest,
    ) -> ServiceResult<ListReferralChangesResponse> {
        policy::require_country_reader(caller)?;
        let page = req.page.unwrap_or_default();
        let limit = page_size("page.page_size", page.page_size)?;
        let from_token = Cursor::decode("page.page_token", &page.page_token)?;
        let after = match (from_token, req.changed_after) {
            (Some(c), _) => (c.at, c.id),
            // No referral changed before 1970; earlier times (which the database cannot all hold) mean all.
            (None, Some(t)) => (
                placement_platform::time::from_timestamp(&t)
                    .ok_or_else(|| ServiceError::invalid("changed_after", "not a valid time"))?
                    .max(DateTime::<Utc>::UNIX_EPOCH),
                Uuid::max(),
            ),
            (None, None) => (DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()),
        };
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::referral_changes(&mut conn, after, limit + 1).await?;
        let next_page_token = take_page(&mut rows, limit, |r| {
            Cursor {
                at: r.updated_at,
                id: r.id,
            }
            .encode()
        });
        let mut referrals = assemble(&mut conn, rows).await?;
        for r in &mut referrals {
            // Free text may name people; a read model has no use for it.
            r.reason.clear();
            r.resolution_comment.clear();
        }
        Ok(ListReferralChangesResponse {
            referrals,
            next_page_token,
        })
    }

    async fn step<T>(&self, request: &Request<T>, id: Uuid, step: Step) -> ServiceResult<Referral> {
        let caller = request
            .caller()
            .map_err(|s| ServiceError::Unauthenticated(s.message().into()))?;
        let rpc = format!("placement.v1.ReferralService/{}", rpc_of(&step));
        let origin = workflow::Origin {
            correlation: correlation_id(request),
            at: self.clock.of_request(request)?,
        };
        let referral = retry_conflicts(|| async {
            policy::require(&caller, policy::act_of(&step))?;
            let mut tx = placement_platform::db::begin(&self.pool).await?;
            let row = workflow::apply(&mut tx, id, &step, policy::actor(&caller), origin).await?;
            let referral = assemble(&mut tx, vec![row]).await?.remove(0);
            audit::append(
                &mut tx,
                &Entry {
                    caller: &caller,
                    rpc: &rpc,
                    record_type: "referral",
                    record_ids: &[id],
                    outcome: "OK",
                },
            )
            .await?;
            self.outbox.commit(tx).await?;
            Ok(referral)
        })
        .await;
        let referral =
            audit::record_refusal(&self.pool, &caller, &rpc, "referral", &[id], referral).await?;
        Ok(referral)
    }
}

/// The row of a new referral from `sender` to the `target` it asked for.
fn new_referral<'a>(
    id: Uuid,
    sender: Uuid,
    s: &'a Submission,
    target: &'a Target,
    ack_deadline: chrono::DateTime<Utc>,
) -> store::NewReferral<'a> {
    store::NewReferral {
        id,
        case_id: s.case_id,
        sender,
        sender_region: &target.sender_region,
        service_id: s.service_id,
        provider: target.provider,
        region_code: &target.region_code,
        foster_team: target.foster_team,
        rdsa: target.rdsa,
        places: target.places,
        legal_basis_kind: s.legal_basis_kind,
        legal_basis_number: &s.legal_basis_number,
        legal_basis_date: s.legal_basis_date,
        legal_basis_court: &s.legal_basis_court,
        reason: &s.reason,
        ack_deadline,
        idempotency_key: &s.idempotency_key,
        at: s.at,
        ages: target.ages,
    }
}

/// The parties who must acknowledge a new referral: the receiving provider, and the foster-care team when
/// it is another agency.
fn receiving_parties(referral_id: Uuid, provider: Uuid, foster_team: Uuid) -> Vec<PartyRow> {
    let mut parties = vec![(provider, true, provider == foster_team)];
    if foster_team != provider {
        parties.push((foster_team, false, true));
    }
    parties
        .into_iter()
        .map(
            |(agency_id, receiving_provider, foster_care_team)| PartyRow {
                referral_id,
                agency_id,
                receiving_provider,
                foster_care_team,
                acknowledged_at: None,
            },
        )
        .collect()
}

/// The history entry and the `referral.submitted` event of a new referral.
async fn announce_submission(
    tx: &mut Transaction<'_, Postgres>,
    row: &ReferralRow,
    sender: Uuid,
    correlation: Uuid,
) -> ServiceResult<()> {
    record_history(
        tx,
        row,
        ReferralAction::Submitted,
        ReferralStatus::Unspecified,
        Some(sender),
    )
    .await?;
    let event = crate::at_step(
        EVENTS.build(
            Event::ReferralSubmitted(row.event(
                ReferralStatus::Unspecified,
                Some(sender),
                0,
                Vec::new(),
            )),
            row.id,
            placement_platform::numbers::serial(row.version),
            correlation,
        ),
        row.updated_at,
    );
    Outbox::enqueue(tx, &event).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_proto::v1::{Date, LegalBasis};

    fn request() -> SubmitReferralRequest {
        SubmitReferralRequest {
            case_id: Uuid::new_v4().to_string(),
            service_id: Uuid::new_v4().to_string(),
            legal_basis: Some(LegalBasis {
                kind: LegalBasisKind::DsaDirectorOrder as i32,
                number: "ZД-17/2026".into(),
                issued_on: Some(Date {
                    year: 2026,
                    month: 11,
                    day: 2,
                }),
                court: String::new(),
            }),
            reason: "The home is closing.".into(),
            idempotency_key: "k1".into(),
        }
    }

    fn field(r: SubmitReferralRequest) -> String {
        match validate_submission(r) {
            Err(ServiceError::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn submissions_are_validated_field_by_field() {
        assert!(validate_submission(request()).is_ok());
        let mut r = request();
        r.case_id = "x".into();
        assert_eq!(field(r), "case_id");
        let mut r = request();
        r.idempotency_key.clear();
        assert_eq!(field(r), "idempotency_key");
        let mut r = request();
        r.legal_basis = None;
        assert_eq!(field(r), "legal_basis");
        let mut r = request();
        r.legal_basis.as_mut().unwrap().number = "  ".into();
        assert_eq!(field(r), "legal_basis.number");
        let mut r = request();
        r.legal_basis.as_mut().unwrap().issued_on = Some(Date {
            year: 2026,
            month: 2,
            day: 31,
        });
        assert_eq!(field(r), "legal_basis.issued_on");
        let mut r = request();
        r.legal_basis.as_mut().unwrap().issued_on = Some(Date {
            year: 2999,
            month: 1,
            day: 1,
        });
        assert_eq!(field(r), "legal_basis.issued_on");
        let mut r = request();
        r.legal_basis.as_mut().unwrap().kind = LegalBasisKind::CourtDecision as i32;
        assert_eq!(field(r), "legal_basis.court");
        let mut r = request();
        r.reason = "x".repeat(2001);
        assert_eq!(field(r), "reason");
    }

    mod fuzz {
        use super::super::*;
        use placement_proto::v1::{Date, LegalBasis};
        use proptest::prelude::*;
        use prost::Message;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Whatever bytes arrive as a submission, validation answers (and never panics).
            #[test]
            fn random_bytes_as_a_submission(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
                if let Ok(req) = SubmitReferralRequest::decode(bytes.as_slice()) {
                    let _ = validate_submission(req);
                }
                if let Ok(req) = RecordCourtDecisionRequest::decode(bytes.as_slice()) {
                    let _ = validate_court_decision(req.decision.as_ref());
                }
            }

            /// Any field values: either a clean submission within every limit, or INVALID_ARGUMENT.
            #[test]
            fn random_fields_of_a_submission(
                case_id in ".{0,60}", service_id in ".{0,60}", number in "\\PC{0,80}",
                court in "\\PC{0,250}", reason in "\\PC{0,2100}", key in ".{0,150}",
                year in any::<i32>(), month in any::<i32>(), day in any::<i32>(), kind in any::<i32>(),
            ) {
                let req = SubmitReferralRequest {
                    case_id, service_id, reason, idempotency_key: key,
                    legal_basis: Some(LegalBasis { kind, number, court, issued_on: Some(Date { year, month, day }) }),
                };
                match validate_submission(req) {
                    Ok(s) => {
                        prop_assert!(s.reason.chars().count() <= 2000 && !s.reason.is_empty());
                        prop_assert!(s.legal_basis_number.chars().count() <= 64);
                        prop_assert!(s.idempotency_key.chars().count() <= 128);
                    }
                    Err(e) => prop_assert!(matches!(e, ServiceError::InvalidArgument { .. }), "{e:?}"),
                }
            }
        }
    }
}
