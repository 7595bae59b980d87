//! Reading referrals: one, a page of an agency's incoming or outgoing ones, every referral's changes for a
//! read model elsewhere, and one as FHIR. Each read (or its refusal) is recorded in the audit trail, and a
//! referral the caller may not see is NOT_FOUND (see `policy`).

pub mod fhir;
mod store;

use chrono::{DateTime, Utc};
use placement_model::reference::{Kind, Reference, ReferenceError};
use placement_platform::{
    audit,
    caller::Caller,
    error::{ServiceError, ServiceResult},
    page::{Cursor, page_size, take_page},
};
use placement_proto::v1::{
    FhirDocument, ListReferralChangesRequest, ListReferralChangesResponse, ListReferralsRequest,
    ListReferralsResponse, Referral, ReferralDirection, ReferralStatus, Search,
};
use sqlx::PgPool;
use uuid::Uuid;

use store::ReferralFilter;

use crate::{
    policy::{self, Act},
    record::store::{assemble, parties_of},
    search::store as searches,
};

/// Why a read of referrals is refused.
#[derive(Debug, thiserror::Error)]
pub enum ReadingError {
    #[error("status: unknown status")]
    UnknownStatus,
    #[error("direction: INCOMING or OUTGOING")]
    DirectionMissing,
    #[error("changed_after: not a valid time")]
    UnreadableChangedAfter,
    #[error("reference: {0}")]
    UnreadableReference(ReferenceError),
    #[error("reference: a case's reference, not a referral's")]
    NotAReferralReference,
}

impl From<ReadingError> for ServiceError {
    fn from(e: ReadingError) -> Self {
        match e {
            ReadingError::UnknownStatus => ServiceError::invalid("status", "unknown status"),
            ReadingError::DirectionMissing => {
                ServiceError::invalid("direction", "INCOMING or OUTGOING")
            }
            ReadingError::UnreadableChangedAfter => {
                ServiceError::invalid("changed_after", "not a valid time")
            }
            ReadingError::UnreadableReference(r) => {
                ServiceError::invalid("reference", r.to_string())
            }
            ReadingError::NotAReferralReference => {
                ServiceError::invalid("reference", "a case's reference, not a referral's")
            }
        }
    }
}

/// Reads of referrals, each recorded in the audit trail.
#[derive(Clone)]
pub struct Reading {
    pool: PgPool,
}

impl Reading {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The referral `id`, its read recorded as the RPC `rpc` (a name in `ReferralService`).
    pub async fn read_one(&self, caller: &Caller, rpc: &str, id: Uuid) -> ServiceResult<Referral> {
        let result = self.get(caller.clone(), id).await;
        self.audit_read(caller, rpc, vec![id], result).await
    }

    /// A page of the referrals the caller's agency sent or must acknowledge.
    pub async fn read_page(
        &self,
        caller: &Caller,
        req: ListReferralsRequest,
    ) -> ServiceResult<ListReferralsResponse> {
        let result = self.list(caller.clone(), req).await;
        let ids = result
            .as_ref()
            .map(|r| ids_of(&r.referrals))
            .unwrap_or_default();
        self.audit_read(caller, "ListReferrals", ids, result).await
    }

    /// A page of every referral's changes, without their free text.
    pub async fn read_changes(
        &self,
        caller: &Caller,
        req: ListReferralChangesRequest,
    ) -> ServiceResult<ListReferralChangesResponse> {
        let result = self.changes(caller, req).await;
        let ids = result
            .as_ref()
            .map(|r| ids_of(&r.referrals))
            .unwrap_or_default();
        self.audit_read(caller, "ListReferralChanges", ids, result)
            .await
    }

    /// The search `id` with every referral of it, side by side, for its sender; its read recorded.
    pub async fn read_search(&self, caller: &Caller, id: Uuid) -> ServiceResult<Search> {
        let result = self.search(caller, id).await;
        let rpc = "placement.v1.ReferralService/GetSearch";
        audit::record_read(&self.pool, caller, rpc, "search", &[id], result).await
    }

    async fn search(&self, caller: &Caller, id: Uuid) -> ServiceResult<Search> {
        policy::require(caller, Act::Read)?;
        let mut conn = self.pool.acquire().await?;
        let search = searches::find_search(&mut conn, id)
            .await?
            .filter(|s| policy::may_read_search(caller.agency_id, s))
            .ok_or_else(policy::hidden_search)?;
        let rows = searches::referrals_of(&mut conn, id).await?;
        Ok(crate::search::view(&mut conn, search, rows).await?)
    }

    /// The referral `id` as a FHIR bundle; for a referral of a search, the search with every referral of it
    /// the caller may see (all for its sender). Every referral shown is recorded as read.
    pub async fn export_fhir(&self, caller: &Caller, id: Uuid) -> ServiceResult<FhirDocument> {
        let result = self.fhir_export(caller, id).await;
        let ids = match &result {
            Ok(export) => ids_of(export.referrals()),
            Err(_) => vec![id],
        };
        let export = (self.audit_read(caller, "ExportReferralFhir", ids, result)).await?;
        Ok(FhirDocument {
            content_type: fhir::CONTENT_TYPE.to_string(),
            json: export.bundle().to_string(),
        })
    }

    async fn fhir_export(&self, caller: &Caller, id: Uuid) -> ServiceResult<fhir::Export> {
        let referral = self.get(caller.clone(), id).await?;
        let Ok(search_id) = Uuid::parse_str(&referral.search_id) else {
            return Ok(fhir::Export::Alone(Box::new(referral)));
        };
        let mut conn = self.pool.acquire().await?;
        let sender = (searches::find_search(&mut conn, search_id).await?)
            .is_some_and(|s| policy::may_read_search(caller.agency_id, &s));
        let rows = searches::referrals_of(&mut conn, search_id).await?;
        let all = assemble(&mut conn, rows).await?;
        let status = fhir::search_request_status(&all);
        // The other referrals are the sender's to see, as GetSearch shows them; a receiving party sees
        // its own request of the search only (and whether the search is still open).
        let referrals = match sender {
            true => all,
            false => vec![referral],
        };
        Ok(fhir::Export::Search {
            id: search_id,
            referrals,
            status,
        })
    }

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

    /// The referral `id` if the caller may see it, with no audit entry: it also answers a replayed submission.
    pub(crate) async fn get(&self, caller: Caller, id: Uuid) -> ServiceResult<Referral> {
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
        let status =
            ReferralStatus::try_from(req.status).map_err(|_| ReadingError::UnknownStatus)?;
        let direction = ReferralDirection::try_from(req.direction)
            .ok()
            .filter(|d| *d != ReferralDirection::Unspecified)
            .ok_or(ReadingError::DirectionMissing)?;
        let reference = reference_filter(&req.reference)?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::list_referrals(
            &mut conn,
            &ReferralFilter {
                agency: caller.agency_id,
                incoming: direction == ReferralDirection::Incoming,
                status: (status != ReferralStatus::Unspecified).then_some(status),
                reference,
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
                    .ok_or(ReadingError::UnreadableChangedAfter)?
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
            r.waiting_comment.clear();
        }
        Ok(ListReferralChangesResponse {
            referrals,
            next_page_token,
        })
    }
}

/// The reference a list is filtered by, written as stored; `None` when none is asked for.
fn reference_filter(typed: &str) -> Result<Option<String>, ReadingError> {
    if typed.trim().is_empty() {
        return Ok(None);
    }
    let reference = Reference::parse(typed).map_err(ReadingError::UnreadableReference)?;
    if reference.kind != Kind::Referral {
        return Err(ReadingError::NotAReferralReference);
    }
    Ok(Some(reference.to_string()))
}

/// The ids of the referrals a read answered with, for its audit entry.
fn ids_of(referrals: &[Referral]) -> Vec<Uuid> {
    (referrals.iter())
        .filter_map(|x| Uuid::parse_str(&x.id).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal is answered as before its enum: the same code, field and text.
    #[test]
    fn refusals_keep_their_codes_fields_and_text() {
        let cases = [
            (
                ReadingError::UnknownStatus,
                "status",
                "status: unknown status",
            ),
            (
                ReadingError::DirectionMissing,
                "direction",
                "direction: INCOMING or OUTGOING",
            ),
            (
                ReadingError::UnreadableChangedAfter,
                "changed_after",
                "changed_after: not a valid time",
            ),
            (
                ReadingError::UnreadableReference(ReferenceError::Empty),
                "reference",
                "reference: required",
            ),
            (
                ReadingError::NotAReferralReference,
                "reference",
                "reference: a case's reference, not a referral's",
            ),
        ];
        for (refusal, field, message) in cases {
            let e = ServiceError::from(refusal);
            assert_eq!(e.code_name(), "INVALID_ARGUMENT", "{message}");
            assert!(matches!(&e, ServiceError::InvalidArgument { field: f, .. } if f == field));
            assert_eq!(tonic::Status::from(e).message(), message);
        }
    }

    #[test]
    fn a_list_is_filtered_by_a_referral_reference_as_stored() {
        assert_eq!(reference_filter("").unwrap(), None);
        assert_eq!(
            reference_filter("h-vrc-2026-42").unwrap().as_deref(),
            Some("Н-ВРЦ-2026-00042")
        );
        assert!(matches!(
            reference_filter("С-2026-00042"),
            Err(ReadingError::NotAReferralReference)
        ));
        assert!(matches!(
            reference_filter("de1294cb"),
            Err(ReadingError::UnreadableReference(
                ReferenceError::Unreadable
            ))
        ));
    }
}
