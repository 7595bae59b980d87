//! The gRPC face of the cases service.

use chrono::{Datelike, Utc};
use placement_messaging::service::Traced;
use placement_messaging::{Event, Outbox};
use placement_platform::{
    CallerExt,
    audit::{self, Entry},
    caller::{Caller, correlation_id},
    error::{ServiceError, ServiceResult, check_text, parse_id, respond},
    page::{Cursor, page_size, take_page},
};
use placement_proto::v1::{
    AgencyKind, Case, CaseCloseReason, CaseStatus, ChildNeed, CloseCaseRequest, GetAgencyRequest,
    GetCaseRequest, ListCasesRequest, ListCasesResponse, OpenCaseRequest, Sex,
    case_service_server::CaseService, directory_service_client::DirectoryServiceClient,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    EVENTS, personal,
    personal::Sealer,
    policy::{self, Act, View},
    store::{self, ChildRow, child_count, children_of},
};

const MAX_CHILDREN: usize = 12;
const MAX_NEEDS: usize = 10;

#[derive(Clone)]
pub struct Cases {
    pool: PgPool,
    outbox: Outbox,
    directory: DirectoryServiceClient<Traced>,
    /// Seals names and personal numbers; None when no key is configured (they are then refused).
    sealer: Option<Sealer>,
}

type RpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl CaseService for Cases {
    async fn open_case(&self, request: Request<OpenCaseRequest>) -> RpcResult<Case> {
        let caller = request.caller()?;
        let correlation = correlation_id(&request);
        respond(self.open(caller, request.into_inner(), correlation).await)
    }

    async fn get_case(&self, request: Request<GetCaseRequest>) -> RpcResult<Case> {
        let caller = request.caller()?;
        let id = parse_id("case_id", &request.get_ref().case_id)?;
        let result = self.get(caller.clone(), id).await;
        respond(self.audit_read(&caller, "GetCase", vec![id], result).await)
    }

    async fn list_cases(&self, request: Request<ListCasesRequest>) -> RpcResult<ListCasesResponse> {
        let caller = request.caller()?;
        let result = self.list(caller.clone(), request.into_inner()).await;
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
            .close(caller.clone(), request.into_inner(), correlation)
            .await;
        let rpc = "placement.v1.CaseService/CloseCase";
        respond(audit::record_refusal(&self.pool, &caller, rpc, "case", &[id], result).await)
    }
}

impl Cases {
    /// Opens the sealed names and personal numbers, for the owner's view.
    fn reveal(&self, mut children: Vec<ChildRow>) -> ServiceResult<Vec<ChildRow>> {
        for c in &mut children {
            for (field, sealed, out) in [
                ("name", &c.name_sealed, &mut c.name),
                (
                    "personal_number",
                    &c.personal_number_sealed,
                    &mut c.personal_number,
                ),
            ] {
                let Some(sealed) = sealed else { continue };
                let sealer = self.sealer.as_ref().ok_or_else(|| {
                    ServiceError::Internal("sealed personal data and no PLACEMENT_DATA_KEY".into())
                })?;
                *out = sealer.open(c.id, field, sealed).map_err(|e| {
                    tracing::error!(child_id = %c.id, field, error = %e, "sealed personal data does not open");
                    ServiceError::Internal(e.to_string())
                })?;
            }
        }
        Ok(children)
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

impl Cases {
    pub fn new(
        pool: PgPool,
        outbox: Outbox,
        directory: DirectoryServiceClient<Traced>,
        sealer: Option<Sealer>,
    ) -> Self {
        Self {
            pool,
            outbox,
            directory,
            sealer,
        }
    }

    async fn open(
        &self,
        caller: Caller,
        req: OpenCaseRequest,
        correlation: Uuid,
    ) -> ServiceResult<Case> {
        policy::require(&caller, Act::Work)?;
        validate_open(&req)?;
        if self.sealer.is_none()
            && req
                .children
                .iter()
                .any(|c| !c.name.trim().is_empty() || !c.personal_number.is_empty())
        {
            return Err(ServiceError::precondition(
                "names and personal numbers cannot be stored: the service has no PLACEMENT_DATA_KEY",
            ));
        }
        self.require_dsa(&caller).await?;

        let id = Uuid::now_v7();
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let row =
            store::insert_case(&mut tx, id, caller.agency_id, req.current_setting.trim()).await?;
        for (position, child) in req.children.iter().enumerate() {
            let child_id = Uuid::now_v7();
            let seal = |field: &str, value: &str| {
                let value = value.trim();
                (!value.is_empty()).then(|| {
                    self.sealer
                        .as_ref()
                        .expect("checked before the transaction")
                        .seal(child_id, field, value)
                })
            };
            store::insert_child(
                &mut tx,
                &store::NewChild {
                    id: child_id,
                    case_id: id,
                    position: placement_platform::numbers::len_i32(position),
                    pseudonym: child.pseudonym.trim(),
                    birth_year: child.birth_year,
                    sex: Sex::try_from(child.sex).unwrap_or(Sex::Unspecified),
                    needs: child
                        .needs
                        .iter()
                        .filter_map(|n| ChildNeed::try_from(*n).ok())
                        .collect(),
                    name_sealed: seal("name", &child.name),
                    personal_number_sealed: seal("personal_number", &child.personal_number),
                },
            )
            .await?;
        }
        let event = EVENTS.build(
            Event::CaseOpened(row.event(placement_platform::numbers::len_u32(req.children.len()))),
            id,
            placement_platform::numbers::serial(row.version),
            correlation,
        );
        Outbox::enqueue(&mut tx, &event).await?;
        let children = self.reveal(children_of(&mut tx, &[id]).await?)?;
        audit::append(
            &mut tx,
            &Entry {
                caller: &caller,
                rpc: "placement.v1.CaseService/OpenCase",
                record_type: "case",
                record_ids: &[id],
                outcome: "OK",
            },
        )
        .await?;
        self.outbox.commit(tx).await?;
        tracing::info!(case_id = %id, children = children.len(), "case opened");
        Ok(row.into_proto(children))
    }

    /// Only a DSA registered in the directory opens cases: asked of the directory, which is current.
    async fn require_dsa(&self, caller: &Caller) -> ServiceResult<()> {
        let agency = self
            .directory
            .clone()
            .get_agency(caller.forward(GetAgencyRequest {
                agency_id: caller.agency_id.to_string(),
            }))
            .await
            .map_err(|s| match s.code() {
                tonic::Code::NotFound => {
                    ServiceError::denied("the calling agency is not registered")
                }
                _ => ServiceError::from(s),
            })?
            .into_inner();
        if agency.kind != AgencyKind::Dsa as i32 {
            return Err(ServiceError::denied("only a DSA opens cases"));
        }

        Ok(())
    }

    async fn get(&self, caller: Caller, id: Uuid) -> ServiceResult<Case> {
        policy::require(&caller, Act::Read)?;
        let mut conn = self.pool.acquire().await?;
        let row = store::find_case(&mut conn, id)
            .await?
            .ok_or_else(policy::hidden)?;
        let view = policy::view(&mut conn, &caller, id, row.owner_agency_id).await?;
        let children = children_of(&mut conn, &[id]).await?;
        let children = match view {
            View::Full => self.reveal(children)?,
            View::Receiving => children,
        };
        let case = row.into_proto(children);
        Ok(match view {
            View::Full => case,
            View::Receiving => receiving_view(case),
        })
    }

    async fn list(
        &self,
        caller: Caller,
        req: ListCasesRequest,
    ) -> ServiceResult<ListCasesResponse> {
        policy::require(&caller, Act::Read)?;
        let page = req.page.unwrap_or_default();
        let limit = page_size("page.page_size", page.page_size)?;
        let after = Cursor::decode("page.page_token", &page.page_token)?;
        let status = CaseStatus::try_from(req.status)
            .map_err(|_| ServiceError::invalid("status", "unknown status"))?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::list_cases(
            &mut conn,
            caller.agency_id,
            (status != CaseStatus::Unspecified).then_some(status),
            after.map(|c| (c.at, c.id)),
            limit + 1,
        )
        .await?;
        let next_page_token = take_page(&mut rows, limit, |r| {
            Cursor {
                at: r.opened_at,
                id: r.id,
            }
            .encode()
        });
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut children = self.reveal(children_of(&mut conn, &ids).await?)?;
        let cases = rows
            .into_iter()
            .map(|row| {
                let (mine, rest): (Vec<_>, Vec<_>) =
                    children.drain(..).partition(|c| c.case_id == row.id);
                children = rest;
                row.into_proto(mine)
            })
            .collect();
        Ok(ListCasesResponse {
            cases,
            next_page_token,
        })
    }

    async fn close(
        &self,
        caller: Caller,
        req: CloseCaseRequest,
        correlation: Uuid,
    ) -> ServiceResult<Case> {
        policy::require(&caller, Act::Decide)?;
        let id = parse_id("case_id", &req.case_id)?;
        let reason = CaseCloseReason::try_from(req.reason)
            .ok()
            .filter(|r| *r != CaseCloseReason::Unspecified)
            .ok_or_else(|| ServiceError::invalid("reason", "required"))?;
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let row = store::lock_case(&mut tx, id)
            .await?
            .ok_or_else(policy::hidden)?;
        policy::require_owner(&caller, row.owner_agency_id)?;
        if row.status() == CaseStatus::Closed {
            return Err(ServiceError::precondition("the case is already closed"));
        }
        if store::has_active_referral(&mut tx, id).await? {
            return Err(ServiceError::precondition(
                "the case has a referral in progress; withdraw it first",
            ));
        }
        let row = store::close_case(&mut tx, id, reason).await?;
        let children = child_count(&mut tx, id).await?;
        let event = EVENTS.build(
            Event::CaseClosed(row.event(children)),
            id,
            placement_platform::numbers::serial(row.version),
            correlation,
        );
        Outbox::enqueue(&mut tx, &event).await?;
        let children = self.reveal(children_of(&mut tx, &[id]).await?)?;
        audit::append(
            &mut tx,
            &Entry {
                caller: &caller,
                rpc: "placement.v1.CaseService/CloseCase",
                record_type: "case",
                record_ids: &[id],
                outcome: "OK",
            },
        )
        .await?;
        self.outbox.commit(tx).await?;
        Ok(row.into_proto(children))
    }
}

/// What the receiving side of a referral reads of the case: who the children are for the placement
/// (pseudonym, birth year, sex, needs), not where they are now nor where they were placed before.
fn receiving_view(case: Case) -> Case {
    Case {
        id: case.id,
        owner_agency_id: case.owner_agency_id,
        status: case.status,
        children: case
            .children
            .into_iter()
            .map(|c| placement_proto::v1::Child {
                id: c.id,
                pseudonym: c.pseudonym,
                birth_year: c.birth_year,
                sex: c.sex,
                needs: c.needs,
                ..Default::default()
            })
            .collect(),
        opened_at: case.opened_at,
        version: case.version,
        ..Default::default()
    }
}

fn validate_open(req: &OpenCaseRequest) -> ServiceResult<()> {
    if req.children.is_empty() {
        return Err(ServiceError::invalid("children", "at least one child"));
    }
    if req.children.len() > MAX_CHILDREN {
        return Err(ServiceError::invalid(
            "children",
            format!("at most {MAX_CHILDREN}"),
        ));
    }
    check_text("current_setting", &req.current_setting, 0, 500)?;
    let this_year = Utc::now().year();
    for (i, child) in req.children.iter().enumerate() {
        check_text(
            &format!("children[{i}].pseudonym"),
            child.pseudonym.trim(),
            1,
            64,
        )?;
        if child.birth_year > this_year || child.birth_year < this_year - 18 {
            return Err(ServiceError::invalid(
                format!("children[{i}].birth_year"),
                format!("between {} and {this_year}", this_year - 18),
            ));
        }
        if !matches!(Sex::try_from(child.sex), Ok(Sex::Female | Sex::Male)) {
            return Err(ServiceError::invalid(
                format!("children[{i}].sex"),
                "required",
            ));
        }
        // The values are never echoed: they are personal data.
        check_text(&format!("children[{i}].name"), child.name.trim(), 0, 200)?;
        if !child.personal_number.is_empty() && !personal::is_egn(&child.personal_number) {
            return Err(ServiceError::invalid(
                format!("children[{i}].personal_number"),
                "not a valid personal number (EGN: 10 digits, a date of birth that exists, and its check digit)",
            ));
        }
        if child.needs.len() > MAX_NEEDS {
            return Err(ServiceError::invalid(
                format!("children[{i}].needs"),
                format!("at most {MAX_NEEDS}"),
            ));
        }
        for (j, need) in child.needs.iter().enumerate() {
            match ChildNeed::try_from(*need) {
                Ok(ChildNeed::Unspecified) | Err(_) => {
                    return Err(ServiceError::invalid(
                        format!("children[{i}].needs[{j}]"),
                        "unknown need",
                    ));
                }
                Ok(_) => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_proto::v1::Child;

    fn child() -> Child {
        Child {
            pseudonym: "Child A".into(),
            birth_year: Utc::now().year() - 4,
            sex: Sex::Female as i32,
            needs: vec![ChildNeed::Medical as i32],
            ..Default::default()
        }
    }

    fn field_of(e: ServiceError) -> String {
        match e {
            ServiceError::InvalidArgument { field, .. } => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_field() {
        let ok = OpenCaseRequest {
            children: vec![child(), child()],
            current_setting: "Home".into(),
        };
        assert!(validate_open(&ok).is_ok());
        assert_eq!(
            field_of(validate_open(&OpenCaseRequest::default()).unwrap_err()),
            "children"
        );
        let mut bad = ok.clone();
        bad.children[1].birth_year = 1990;
        assert_eq!(
            field_of(validate_open(&bad).unwrap_err()),
            "children[1].birth_year"
        );
        let mut bad = ok.clone();
        bad.children[0].pseudonym = " ".into();
        assert_eq!(
            field_of(validate_open(&bad).unwrap_err()),
            "children[0].pseudonym"
        );
        let mut bad = ok.clone();
        bad.children[0].needs = vec![0];
        assert_eq!(
            field_of(validate_open(&bad).unwrap_err()),
            "children[0].needs[0]"
        );
        let mut bad = ok;
        bad.children[0].sex = 0;
        assert_eq!(
            field_of(validate_open(&bad).unwrap_err()),
            "children[0].sex"
        );
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;
        use prost::Message;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn random_bytes_as_a_case(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                if let Ok(req) = OpenCaseRequest::decode(bytes.as_slice())
                    && let Err(e) = validate_open(&req)
                {
                    prop_assert!(matches!(e, ServiceError::InvalidArgument { .. }), "{:?}", e);
                }
            }

            /// Refusals never repeat the personal data they refuse.
            #[test]
            fn refusals_do_not_echo_personal_data(name in "\\PC{0,300}", pn in "[0-9a-z]{0,14}", year in 1990i32..2030) {
                let req = OpenCaseRequest {
                    children: vec![placement_proto::v1::Child {
                        pseudonym: "A".into(), birth_year: year, sex: placement_proto::v1::Sex::Male as i32,
                        name: name.clone(), personal_number: pn.clone(), ..Default::default()
                    }],
                    current_setting: String::new(),
                };
                if let Err(e) = validate_open(&req) {
                    let message = tonic::Status::from(e).message().to_string();
                    if name.trim().chars().count() > 3 {
                        prop_assert!(!message.contains(name.trim()));
                    }
                    if pn.len() > 3 {
                        prop_assert!(!message.contains(&pn));
                    }
                }
            }
        }
    }
}
