//! A child's case (or a sibling group's), owned by one DSA: opened, read, listed and closed, its children's
//! names and personal numbers sealed ([`personal`]), each change audited and announced.

pub mod model;
pub mod personal;
pub mod reference;
pub mod store;

use placement_messaging::service::Traced;
use placement_messaging::{Event, Outbox};
use placement_platform::{
    audit::Entry,
    caller::Caller,
    error::{ServiceError, ServiceResult, parse_id},
    page::{Cursor, page_size, take_page},
};
use placement_proto::v1::{
    AgencyKind, Case, CaseCloseReason, CaseStatus, Child, ChildNeed, CloseCaseRequest,
    GetAgencyRequest, ListCasesRequest, ListCasesResponse, OpenCaseRequest, Sex,
    directory_service_client::DirectoryServiceClient,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    EVENTS,
    placements::store::has_active_referral,
    policy::{self, Act, View},
};
use model::{CaseError, ChildRow, receiving_view, validate_open};
use personal::Sealer;
use store::children_of;

/// The work on cases: what the gRPC API asks of them.
#[derive(Clone)]
pub struct Casework {
    pool: PgPool,
    outbox: Outbox,
    directory: DirectoryServiceClient<Traced>,
    /// Seals names and personal numbers; None when no key is configured (they are then refused).
    sealer: Option<Sealer>,
}

impl Casework {
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

    pub async fn open(
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
            return Err(CaseError::NoDataKey.into());
        }
        self.require_dsa(&caller).await?;

        let id = Uuid::now_v7();
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let reference = reference::next(&mut tx).await?;
        let row = store::insert_case(
            &mut tx,
            id,
            caller.agency_id,
            req.current_setting.trim(),
            &reference,
        )
        .await?;
        self.insert_children(&mut tx, id, &req.children).await?;
        let event = EVENTS.build(
            Event::CaseOpened(row.event(placement_platform::numbers::len_u32(req.children.len()))),
            id,
            placement_platform::numbers::serial(row.version),
            correlation,
        );
        let children = self.reveal(children_of(&mut tx, &[id]).await?)?;
        let entry = Entry {
            caller: &caller,
            rpc: "placement.v1.CaseService/OpenCase",
            record_type: "case",
            record_ids: &[id],
            outcome: "OK",
        };
        Outbox::enqueue_audited(&mut tx, &[event], &entry).await?;
        self.outbox.commit(tx).await?;
        tracing::info!(case_id = %id, %reference, children = children.len(), "case opened");
        Ok(row.into_proto(children))
    }

    /// Stores the children of the new case `case_id`, their names and personal numbers sealed.
    async fn insert_children(
        &self,
        tx: &mut sqlx::PgConnection,
        case_id: Uuid,
        children: &[Child],
    ) -> ServiceResult<()> {
        for (position, child) in children.iter().enumerate() {
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
                tx,
                &model::NewChild {
                    id: child_id,
                    case_id,
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
        Ok(())
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
            .map_err(|s| {
                if s.code() == tonic::Code::NotFound {
                    ServiceError::from(CaseError::CallerNotRegistered)
                } else {
                    ServiceError::from(s)
                }
            })?
            .into_inner();
        if agency.kind != AgencyKind::Dsa as i32 {
            return Err(CaseError::NotDsa.into());
        }

        Ok(())
    }

    pub async fn get(&self, caller: Caller, id: Uuid) -> ServiceResult<Case> {
        policy::require(&caller, Act::Read)?;
        let mut conn = self.pool.acquire().await?;
        // The children are read with the case, before the view is decided: a caller refused sees none.
        let (row, children) = store::find_case_with_children(&mut conn, id)
            .await?
            .ok_or_else(policy::hidden)?;
        let view = policy::view(&mut conn, &caller, id, row.owner_agency_id).await?;
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

    pub async fn list(
        &self,
        caller: Caller,
        req: ListCasesRequest,
    ) -> ServiceResult<ListCasesResponse> {
        policy::require(&caller, Act::Read)?;
        let page = req.page.unwrap_or_default();
        let limit = page_size("page.page_size", page.page_size)?;
        let after = Cursor::decode("page.page_token", &page.page_token)?;
        let status = CaseStatus::try_from(req.status).map_err(|_| CaseError::UnknownStatus)?;
        let reference = model::reference_filter(&req.reference)?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::list_cases(
            &mut conn,
            &store::CaseFilter {
                owner: caller.agency_id,
                status: (status != CaseStatus::Unspecified).then_some(status),
                reference: reference.as_deref(),
            },
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

    pub async fn close(
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
            .ok_or(CaseError::CloseReasonMissing)?;
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let row = store::lock_case(&mut tx, id)
            .await?
            .ok_or_else(policy::hidden)?;
        policy::require_owner(&caller, row.owner_agency_id)?;
        if row.status() == CaseStatus::Closed {
            return Err(CaseError::AlreadyClosed.into());
        }
        if has_active_referral(&mut tx, id).await? {
            return Err(CaseError::ReferralInProgress.into());
        }
        let row = store::close_case(&mut tx, id, reason).await?;
        // Read once: the event counts the children the answer shows.
        let stored = children_of(&mut tx, &[id]).await?;
        let event = EVENTS.build(
            Event::CaseClosed(row.event(placement_platform::numbers::len_u32(stored.len()))),
            id,
            placement_platform::numbers::serial(row.version),
            correlation,
        );
        let children = self.reveal(stored)?;
        let entry = Entry {
            caller: &caller,
            rpc: "placement.v1.CaseService/CloseCase",
            record_type: "case",
            record_ids: &[id],
            outcome: "OK",
        };
        Outbox::enqueue_audited(&mut tx, &[event], &entry).await?;
        self.outbox.commit(tx).await?;
        Ok(row.into_proto(children))
    }

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
                let sealer = self.sealer.as_ref().ok_or(CaseError::SealedWithoutKey)?;
                *out = sealer.open(c.id, field, sealed).map_err(|e| {
                    tracing::error!(child_id = %c.id, field, error = %e, "sealed personal data does not open");
                    CaseError::Unsealable(e)
                })?;
            }
        }
        Ok(children)
    }
}
