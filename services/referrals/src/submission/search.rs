//! Submitting a search: one request for a case's children to several services at once. Each service is
//! judged as a lone submission's is (see `target`), and one at fault refuses the whole search; otherwise
//! the search and every referral of it (each stored as a lone one is, with its parties, timers, history
//! entry and event) are stored in one transaction. A retry with the same key answers with the same search.

use chrono::{DateTime, Utc};
use placement_platform::{
    audit::{self, Entry},
    caller::Caller,
    error::{ServiceResult, retry_conflicts},
};
use placement_proto::v1::{Search, SubmitSearchRequest};
use uuid::Uuid;

use super::{
    Submissions,
    model::{Submission, SubmissionError, Target, of_search, replay_search, validate_search},
};
use crate::{
    policy::{self, Act},
    record::store::assemble,
    search::{
        model::{NewSearch, SearchRow},
        store as searches,
    },
};

const RPC: &str = "placement.v1.ReferralService/SubmitSearch";

impl Submissions {
    /// Submits the search `caller` asked for, again on a conflict; a refusal is audited.
    pub async fn submit_search(
        &self,
        caller: &Caller,
        req: SubmitSearchRequest,
        correlation: Uuid,
        at: Option<DateTime<Utc>>,
    ) -> ServiceResult<Search> {
        let result = match policy::require(caller, Act::Work) {
            // The idempotency key makes a whole search safe to run again.
            Ok(()) => {
                retry_conflicts(|| {
                    self.submit_search_once(caller.clone(), req.clone(), correlation, at)
                })
                .await
            }
            Err(e) => Err(e),
        };
        let ids: Vec<Uuid> = Uuid::parse_str(&req.case_id).into_iter().collect();
        audit::record_refusal(&self.pool, caller, RPC, "search", &ids, result).await
    }

    async fn submit_search_once(
        &self,
        caller: Caller,
        req: SubmitSearchRequest,
        correlation: Uuid,
        at: Option<DateTime<Utc>>,
    ) -> ServiceResult<Search> {
        let (s, services) = validate_search(req)?;
        let s = Submission { at, ..s };
        let existing =
            searches::find_by_idempotency_key(&self.pool, caller.agency_id, &s.idempotency_key)
                .await?;
        if let Some(existing) = existing {
            return self.replayed_search(existing, &s, &services).await;
        }
        let targets = self.targets(&caller, &s, &services).await?;
        self.record_search(&caller, &s, &services, &targets, correlation)
            .await
    }

    /// The search an earlier request with the same key made, if this one asks the same.
    async fn replayed_search(
        &self,
        existing: SearchRow,
        s: &Submission,
        services: &[Uuid],
    ) -> ServiceResult<Search> {
        let mut conn = self.pool.acquire().await?;
        let rows = searches::referrals_of(&mut conn, existing.id).await?;
        let same_case = existing.case_id == s.case_id;
        replay_search(&rows, s, services).and_then(|()| {
            same_case
                .then_some(())
                .ok_or_else(|| SubmissionError::SearchKeyReused.into())
        })?;
        let referrals = assemble(&mut conn, rows).await?;
        Ok(existing.into_proto(referrals))
    }

    /// Stores the search and every referral of it, each with what a lone submission stores, in one
    /// transaction.
    async fn record_search(
        &self,
        caller: &Caller,
        s: &Submission,
        services: &[Uuid],
        targets: &[Target],
        correlation: Uuid,
    ) -> ServiceResult<Search> {
        let id = Uuid::now_v7();
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let new = NewSearch {
            id,
            sender: caller.agency_id,
            case_id: s.case_id,
            idempotency_key: &s.idempotency_key,
            at: s.at,
        };
        let Some(search) = searches::insert_search(&mut tx, &new).await? else {
            // A concurrent retry with the same key won the race: its search is the answer.
            drop(tx);
            let existing =
                searches::find_by_idempotency_key(&self.pool, caller.agency_id, &s.idempotency_key)
                    .await?
                    .ok_or(SubmissionError::ConcurrentSubmission)?;
            return self.replayed_search(existing, s, services).await;
        };
        let mut rows = Vec::with_capacity(services.len());
        for (index, (service, target)) in services.iter().zip(targets).enumerate() {
            let one = of_search(s, id, index, *service);
            let position = i16::try_from(index).unwrap_or(i16::MAX);
            let row = self
                .store_referral(
                    &mut tx,
                    caller.agency_id,
                    &one,
                    target,
                    Some((id, position)),
                    correlation,
                )
                .await?
                .ok_or(SubmissionError::ConcurrentSubmission)?;
            rows.push(row);
        }
        let mut record_ids: Vec<Uuid> = vec![id, s.case_id];
        record_ids.extend(rows.iter().map(|r| r.id));
        let referrals = assemble(&mut tx, rows).await?;
        audit::append(
            &mut tx,
            &Entry {
                caller,
                rpc: RPC,
                record_type: "search",
                record_ids: &record_ids,
                outcome: "OK",
            },
        )
        .await?;
        self.outbox.commit(tx).await?;
        tracing::info!(search_id = %id, case_id = %s.case_id, services = services.len(), "search submitted");
        Ok(search.into_proto(referrals))
    }
}
