//! Submitting a search: one request for a case's children to several services at once. Each service is
//! judged as a lone submission's is (see `target`), and one at fault refuses the whole search; otherwise
//! the search and every referral of it (each stored as a lone one is, with its parties, timers, history
//! entry and event) are stored in one transaction. A retry with the same key answers with the same search.
//! A new round (ExtendSearch) asks more services the same way; the preview shows which services fit.

use chrono::{DateTime, NaiveDate, Utc};
use placement_messaging::Outbox;
use placement_platform::{audit::Entry, caller::Caller, error::ServiceResult};
use placement_proto::v1::{
    EventEnvelope, ExtendSearchRequest, PreviewSearchRequest, PreviewSearchResponse, Search,
    SubmitSearchRequest,
};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{
    Submissions,
    model::{
        Submission, SubmissionError, Target, not_asked_before, of_round, of_search, replay_search,
        validate_districts, validate_extension, validate_needed_by, validate_search,
        validate_service_types,
    },
};
use crate::{
    places::{self, model::FitQuery},
    policy::{self, Act},
    search::{
        self,
        model::{NewSearch, SearchRow, distinct_types},
        store as searches,
    },
};

const RPC: &str = "placement.v1.ReferralService/SubmitSearch";
const EXTEND_RPC: &str = "placement.v1.ReferralService/ExtendSearch";

/// A round about to be stored: its services (after those asked before) and their targets.
struct Round<'a> {
    services: &'a [Uuid],
    targets: &'a [Target],
    /// How many services the search asked before: the first position of this round's.
    asked_before: usize,
}

impl Submissions {
    /// Submits the search `caller` asked for, again on a conflict; a refusal is audited.
    pub async fn submit_search(
        &self,
        caller: &Caller,
        req: SubmitSearchRequest,
        correlation: Uuid,
        at: Option<DateTime<Utc>>,
    ) -> ServiceResult<Search> {
        let ids: Vec<Uuid> = Uuid::parse_str(&req.case_id).into_iter().collect();
        // The idempotency key makes a whole search safe to run again.
        self.worked(caller, (RPC, "search", &ids), || {
            self.submit_search_once(caller.clone(), req.clone(), correlation, at)
        })
        .await
    }

    async fn submit_search_once(
        &self,
        caller: Caller,
        req: SubmitSearchRequest,
        correlation: Uuid,
        at: Option<DateTime<Utc>>,
    ) -> ServiceResult<Search> {
        let districts = validate_districts(&req.region_codes)?;
        let needed_by = validate_needed_by(req.needed_by.as_ref(), at.unwrap_or_else(Utc::now))?;
        let (s, services) = validate_search(req)?;
        let s = Submission { at, ..s };
        let existing =
            searches::find_by_idempotency_key(&self.pool, caller.agency_id, &s.idempotency_key)
                .await?;
        if let Some(existing) = existing {
            return self.replayed_search(existing, &s, &services).await;
        }
        let targets = self.targets(&caller, &s, &services).await?;
        let round = Round {
            services: &services,
            targets: &targets,
            asked_before: 0,
        };
        self.record_search(&caller, &s, (&districts, needed_by), &round, correlation)
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
        let first_round: Vec<_> = (rows.iter())
            .filter(|r| r.search_round.is_none_or(|n| n == 1))
            .cloned()
            .collect();
        replay_search(&first_round, s, services).and_then(|()| {
            same_case
                .then_some(())
                .ok_or_else(|| SubmissionError::SearchKeyReused.into())
        })?;
        Ok(search::view(&mut conn, existing, rows).await?)
    }

    /// Stores the search and every referral of it, each with what a lone submission stores, in one
    /// transaction.
    async fn record_search(
        &self,
        caller: &Caller,
        s: &Submission,
        (districts, needed_by): (&[String], Option<NaiveDate>),
        round: &Round<'_>,
        correlation: Uuid,
    ) -> ServiceResult<Search> {
        let id = Uuid::now_v7();
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let types = distinct_types(round.targets.iter().map(|t| t.service_type));
        let new = NewSearch {
            id,
            sender: caller.agency_id,
            case_id: s.case_id,
            idempotency_key: &s.idempotency_key,
            at: s.at,
            region_codes: districts,
            service_types: &types,
            needed_by,
        };
        let Some(search) = searches::insert_search(&mut tx, &new).await? else {
            // A concurrent retry with the same key won the race: its search is the answer.
            drop(tx);
            let existing =
                searches::find_by_idempotency_key(&self.pool, caller.agency_id, &s.idempotency_key)
                    .await?
                    .ok_or(SubmissionError::ConcurrentSubmission)?;
            return self.replayed_search(existing, s, round.services).await;
        };
        searches::insert_round(&mut tx, id, 1, &s.idempotency_key, s.at).await?;
        let (rows, events) = self
            .store_round(&mut tx, caller, s, id, round, correlation)
            .await?;
        let mut record_ids: Vec<Uuid> = vec![id, s.case_id];
        record_ids.extend(rows.iter().map(|r| r.id));
        let answer = search::view(&mut tx, search, rows).await?;
        Outbox::enqueue_audited(&mut tx, &events, &entry(caller, RPC, &record_ids)).await?;
        self.outbox.commit(tx).await?;
        tracing::info!(search_id = %id, case_id = %s.case_id, services = round.services.len(), "search submitted");
        Ok(answer)
    }

    /// Stores a referral of the search `search_id` to each service of `round`, after those asked before;
    /// with the events announcing them, for the caller to add to the outbox.
    async fn store_round(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        caller: &Caller,
        s: &Submission,
        search_id: Uuid,
        round: &Round<'_>,
        correlation: Uuid,
    ) -> ServiceResult<(Vec<crate::record::model::ReferralRow>, Vec<EventEnvelope>)> {
        let mut rows = Vec::with_capacity(round.services.len());
        let mut events = Vec::with_capacity(round.services.len());
        for (i, (service, target)) in round.services.iter().zip(round.targets).enumerate() {
            let index = round.asked_before + i;
            let one = of_search(s, search_id, index, *service);
            let position = i16::try_from(index).unwrap_or(i16::MAX);
            let (row, event) = self
                .store_referral(
                    tx,
                    caller.agency_id,
                    &one,
                    target,
                    Some((search_id, position)),
                    correlation,
                )
                .await?
                .ok_or(SubmissionError::ConcurrentSubmission)?;
            rows.push(row);
            events.push(event);
        }
        Ok((rows, events))
    }

    /// Every service that fits the case's children now, for its owner before a search is sent.
    pub async fn preview_search(
        &self,
        caller: &Caller,
        req: PreviewSearchRequest,
    ) -> ServiceResult<PreviewSearchResponse> {
        policy::require(caller, Act::Work)?;
        let case_id = placement_platform::error::parse_id("case_id", &req.case_id)?;
        let types = validate_service_types(&req.service_types)?;
        let districts = validate_districts(&req.region_codes)?;
        // The cases service answers only the case's owner: anyone else finds no case.
        let (places, ages) = self.children_of(caller, case_id).await?;
        let mut conn = self.pool.acquire().await?;
        let fitting = places::fitting(
            &mut conn,
            &FitQuery {
                types: &types,
                districts: &districts,
                places,
                ages,
                except: &[],
            },
        )
        .await?;
        Ok(PreviewSearchResponse {
            services: fitting.into_iter().map(|s| s.into_proto()).collect(),
        })
    }

    /// Sends the new round of a search `caller` asked for, again on a conflict; a refusal is audited.
    pub async fn extend_search(
        &self,
        caller: &Caller,
        req: ExtendSearchRequest,
        correlation: Uuid,
        at: Option<DateTime<Utc>>,
    ) -> ServiceResult<Search> {
        let ids: Vec<Uuid> = Uuid::parse_str(&req.search_id).into_iter().collect();
        self.worked(caller, (EXTEND_RPC, "search", &ids), || {
            self.extend_search_once(caller.clone(), req.clone(), correlation, at)
        })
        .await
    }

    async fn extend_search_once(
        &self,
        caller: Caller,
        req: ExtendSearchRequest,
        correlation: Uuid,
        at: Option<DateTime<Utc>>,
    ) -> ServiceResult<Search> {
        let (search_id, services, key) = validate_extension(&req)?;
        let mut conn = self.pool.acquire().await?;
        let search = searches::find_search(&mut conn, search_id)
            .await?
            .filter(|s| policy::may_read_search(caller.agency_id, s))
            .ok_or_else(policy::hidden_search)?;
        let rows = searches::referrals_of(&mut conn, search_id).await?;
        drop(conn);
        if let Some(round) = self.round_of_key(search_id, &key).await? {
            return self.replayed_round(search, rows, round, &services).await;
        }
        if search.placed_referral_id.is_some() {
            return Err(SubmissionError::SearchPlaced.into());
        }
        let asked: Vec<Uuid> = rows.iter().map(|r| r.service_id).collect();
        not_asked_before(&services, &asked)?;
        let first = rows.first().ok_or_else(policy::hidden_search)?;
        let s = of_round(first, at);
        let targets = self.targets(&caller, &s, &services).await?;
        let round = Round {
            services: &services,
            targets: &targets,
            asked_before: rows.len(),
        };
        self.record_round(&caller, &s, search_id, &key, &round, correlation)
            .await
    }

    async fn round_of_key(&self, search_id: Uuid, key: &str) -> ServiceResult<Option<i16>> {
        let mut conn = self.pool.acquire().await?;
        Ok(searches::round_of_key(&mut conn, search_id, key).await?)
    }

    /// The search a retry of a round's request finds, if the round asked the same services.
    async fn replayed_round(
        &self,
        search: SearchRow,
        rows: Vec<crate::record::model::ReferralRow>,
        round: i16,
        services: &[Uuid],
    ) -> ServiceResult<Search> {
        let asked: Vec<Uuid> = (rows.iter())
            .filter(|r| r.search_round == Some(round))
            .map(|r| r.service_id)
            .collect();
        if asked != services {
            return Err(SubmissionError::RoundKeyReused.into());
        }
        let mut conn = self.pool.acquire().await?;
        Ok(search::view(&mut conn, search, rows).await?)
    }

    /// Stores the search's next round, with the search locked: a step on one of its referrals (which
    /// locks it first) waits, and so does a placement, which this round must not follow.
    async fn record_round(
        &self,
        caller: &Caller,
        s: &Submission,
        search_id: Uuid,
        key: &str,
        round: &Round<'_>,
        correlation: Uuid,
    ) -> ServiceResult<Search> {
        let round_services = round.services;
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let locked = searches::lock_search(&mut tx, search_id)
            .await?
            .ok_or_else(policy::hidden_search)?;
        if locked.placed_referral_id.is_some() {
            return Err(SubmissionError::SearchPlaced.into());
        }
        let next = locked.round.saturating_add(1);
        if searches::insert_round(&mut tx, search_id, next, key, s.at)
            .await?
            .is_none()
        {
            // A concurrent retry with the same key won the race (and committed: it held the lock): its
            // round is the answer.
            drop(tx);
            let round = (self.round_of_key(search_id, key).await?)
                .ok_or(SubmissionError::ConcurrentSubmission)?;
            let mut conn = self.pool.acquire().await?;
            let rows = searches::referrals_of(&mut conn, search_id).await?;
            return self
                .replayed_round(locked, rows, round, round_services)
                .await;
        }
        let types = distinct_types(round.targets.iter().map(|t| t.service_type));
        let search = searches::next_round(&mut tx, search_id, &types).await?;
        let asked_before = searches::referrals_of(&mut tx, search_id).await?.len();
        let round = Round {
            asked_before,
            ..*round
        };
        let (_, events) = self
            .store_round(&mut tx, caller, s, search_id, &round, correlation)
            .await?;
        let rows = searches::referrals_of(&mut tx, search_id).await?;
        let mut record_ids: Vec<Uuid> = vec![search_id, s.case_id];
        record_ids.extend(rows.iter().skip(asked_before).map(|r| r.id));
        let answer = search::view(&mut tx, search, rows).await?;
        let entry = entry(caller, EXTEND_RPC, &record_ids);
        Outbox::enqueue_audited(&mut tx, &events, &entry).await?;
        self.outbox.commit(tx).await?;
        tracing::info!(%search_id, round = next, services = round.services.len(), "search extended");
        Ok(answer)
    }
}

/// The audit entry of a search sent or extended.
fn entry<'a>(caller: &'a Caller, rpc: &'a str, record_ids: &'a [Uuid]) -> Entry<'a> {
    Entry {
        caller,
        rpc,
        record_type: "search",
        record_ids,
        outcome: "OK",
    }
}

#[cfg(test)]
mod tests {
    use placement_platform::error::ServiceError;
    use placement_proto::v1::ServiceType;

    use super::*;

    fn field<T: std::fmt::Debug>(result: ServiceResult<T>) -> String {
        match result {
            Err(ServiceError::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn districts_and_types_are_checked_one_by_one_and_kept_once() {
        let codes = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            validate_districts(&codes(&["VRC", "HKV", "VRC"])).expect("districts"),
            codes(&["VRC", "HKV"])
        );
        assert!(validate_districts(&[]).expect("none").is_empty());
        assert_eq!(
            field(validate_districts(&codes(&["VRC", "vrc"]))),
            "region_codes[1]"
        );
        let crisis = ServiceType::CrisisCentre as i32;
        assert_eq!(
            validate_service_types(&[crisis, crisis]).expect("types"),
            [ServiceType::CrisisCentre]
        );
        assert_eq!(field(validate_service_types(&[])), "service_types");
        assert_eq!(
            field(validate_service_types(&[crisis, 0])),
            "service_types[1]"
        );
        assert_eq!(field(validate_service_types(&[99])), "service_types[0]");
    }

    #[test]
    fn a_round_names_its_search_its_services_and_its_key() {
        let one = Uuid::new_v4();
        let asked = |search_id: &str, services: Vec<String>, key: &str| {
            validate_extension(&ExtendSearchRequest {
                search_id: search_id.into(),
                service_ids: services,
                idempotency_key: key.into(),
            })
        };
        let id = Uuid::new_v4().to_string();
        let (search, services, key) = asked(&id, vec![one.to_string()], "r2").expect("a round");
        assert_eq!(
            (search.to_string(), services, key.as_str()),
            (id.clone(), vec![one], "r2")
        );
        assert_eq!(field(asked("x", vec![one.to_string()], "r2")), "search_id");
        assert_eq!(field(asked(&id, Vec::new(), "r2")), "service_ids");
        assert_eq!(
            field(asked(&id, vec![one.to_string()], "")),
            "idempotency_key"
        );
        let other = Uuid::new_v4();
        assert!(not_asked_before(&[other], &[one]).is_ok());
        assert_eq!(
            field(not_asked_before(&[other, one], &[one])),
            "service_ids[1]"
        );
    }

    #[test]
    fn refusals_of_searches_keep_their_codes() {
        let cases = [
            (SubmissionError::SearchPlaced, "FAILED_PRECONDITION"),
            (SubmissionError::RoundKeyReused, "ALREADY_EXISTS"),
            (
                SubmissionError::AlreadyAsked { index: 2 },
                "INVALID_ARGUMENT",
            ),
            (
                SubmissionError::UnknownDistrict { index: 0 },
                "INVALID_ARGUMENT",
            ),
        ];
        for (refusal, code) in cases {
            assert_eq!(ServiceError::from(refusal).code_name(), code);
        }
    }

    #[test]
    fn a_search_keeps_each_type_it_asked_once() {
        use ServiceType as T;
        let asked = [
            T::CrisisCentre,
            T::Unspecified,
            T::FosterCare,
            T::CrisisCentre,
        ];
        assert_eq!(distinct_types(asked), [T::CrisisCentre, T::FosterCare]);
    }
}
