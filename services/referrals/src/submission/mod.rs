//! Submitting a referral: from a DSA, for a case's children, to a service usually in another district.
//! The submission is validated, sent where the cases service and the directory say (see `target`), and
//! stored with its parties, timers, history entry and event in one transaction; a retry with the same
//! idempotency key answers with the same referral.

pub mod model;
pub mod reference;
mod search;
mod store;
mod target;

use chrono::{DateTime, Utc};
use placement_messaging::service::Traced;
use placement_messaging::{Event, Outbox};
use placement_platform::{
    audit::{self, Entry},
    caller::Caller,
    error::{ServiceResult, retry_conflicts},
};
use placement_proto::v1::{
    EventEnvelope, Referral, ReferralAction, ReferralStatus, SubmitReferralRequest,
    case_service_client::CaseServiceClient, directory_service_client::DirectoryServiceClient,
};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use model::{
    NewReferral, Submission, SubmissionError, Target, new_referral, receiving_parties, replay,
    validate_submission,
};

use crate::{
    EVENTS,
    policy::{self, Act},
    reading::Reading,
    record::model::{HistoryRow, PartyRow, ReferralRow},
    referral::{StepTimes, TimedStep},
};

/// Submissions, with what they ask and where they are stored.
#[derive(Clone)]
pub struct Submissions {
    pool: PgPool,
    outbox: Outbox,
    directory: DirectoryServiceClient<Traced>,
    cases: CaseServiceClient<Traced>,
    times: StepTimes,
    reading: Reading,
}

impl Submissions {
    pub fn new(
        pool: PgPool,
        outbox: Outbox,
        directory: DirectoryServiceClient<Traced>,
        cases: CaseServiceClient<Traced>,
        times: StepTimes,
    ) -> Self {
        Self {
            reading: Reading::new(pool.clone()),
            pool,
            outbox,
            directory,
            cases,
            times,
        }
    }

    /// Submits the referral `caller` asked for, again on a conflict; a refusal is audited.
    pub async fn submit(
        &self,
        caller: &Caller,
        req: SubmitReferralRequest,
        correlation: Uuid,
        at: Option<DateTime<Utc>>,
    ) -> ServiceResult<Referral> {
        let ids: Vec<Uuid> = Uuid::parse_str(&req.case_id).into_iter().collect();
        let rpc = "placement.v1.ReferralService/SubmitReferral";
        // The idempotency key makes a whole submission safe to run again.
        self.worked(caller, (rpc, "referral", &ids), || {
            self.submit_once(caller.clone(), req.clone(), correlation, at)
        })
        .await
    }

    /// Runs `once` for a caller who may work, again on a conflict; a refusal is audited under `rpc`,
    /// naming the `record_type` records `ids`.
    pub(crate) async fn worked<T, F, Fut>(
        &self,
        caller: &Caller,
        (rpc, record_type, ids): (&str, &str, &[Uuid]),
        once: F,
    ) -> ServiceResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ServiceResult<T>>,
    {
        let result = match policy::require(caller, Act::Work) {
            Ok(()) => retry_conflicts(once).await,
            Err(e) => Err(e),
        };
        audit::record_refusal(&self.pool, caller, rpc, record_type, ids, result).await
    }

    async fn find_by_key(&self, sender: Uuid, key: &str) -> ServiceResult<Option<ReferralRow>> {
        Ok(store::find_by_idempotency_key(&self.pool, sender, key).await?)
    }

    async fn submit_once(
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
            replay(&existing, &s)?;
            return self.reading.get(caller, existing.id).await;
        }

        let target = self.target(&caller, &s).await?;
        self.record_submission(&caller, &s, &target, correlation)
            .await
    }

    /// Stores the referral, its parties, timers, history entry and event in one transaction.
    async fn record_submission(
        &self,
        caller: &Caller,
        s: &Submission,
        target: &Target,
        correlation: Uuid,
    ) -> ServiceResult<Referral> {
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let stored = self
            .store_referral(&mut tx, caller.agency_id, s, target, None, correlation)
            .await?;
        let Some((row, event)) = stored else {
            // A concurrent retry with the same key won the race.
            drop(tx);
            let existing = self
                .find_by_key(caller.agency_id, &s.idempotency_key)
                .await?
                .ok_or(SubmissionError::ConcurrentSubmission)?;
            replay(&existing, s)?;
            return self.reading.get(caller.clone(), existing.id).await;
        };
        let id = row.id;
        let referral = as_submitted(row, target);
        let entry = Entry {
            caller,
            rpc: "placement.v1.ReferralService/SubmitReferral",
            record_type: "referral",
            record_ids: &[id, s.case_id],
            outcome: "OK",
        };
        Outbox::enqueue_audited(&mut tx, &[event], &entry).await?;
        self.outbox.commit(tx).await?;
        tracing::info!(referral_id = %id, reference = %referral.reference, case_id = %s.case_id, service_id = %s.service_id, places = target.places, "referral submitted");
        Ok(referral)
    }

    /// Stores a referral from `sender` with its parties, timers and history entry inside `tx` (of the
    /// search and position `search`, if any), with the event announcing it, for the caller to add to the
    /// outbox with its audit entry; `None` when its idempotency key was already used.
    async fn store_referral(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        sender: Uuid,
        s: &Submission,
        target: &Target,
        search: Option<(Uuid, i16)>,
        correlation: Uuid,
    ) -> ServiceResult<Option<(ReferralRow, EventEnvelope)>> {
        let id = Uuid::now_v7();
        // The district's counter is locked before any service's places, in every submission, so that two
        // submissions never wait on each other in a circle.
        let (reference, now) = reference::next(tx, &target.sender_region, s.at).await?;
        // Counted from the time the referral is written at, the transaction's unless told.
        let submitted_at = s.at.unwrap_or(now);
        let deadline = self
            .times
            .deadline(TimedStep::Acknowledgement, s.urgency, submitted_at);
        // The directory's answer is the freshest view of the service's places we have.
        crate::places::store::note_free_places(
            tx,
            s.service_id,
            target.free_places,
            target.service_version,
        )
        .await?;
        let new = NewReferral {
            search,
            ..new_referral(id, sender, s, target, deadline)
        };
        let party_rows = receiving_parties(id, target.provider, target.foster_team);
        let Some(row) = store::insert_referral(tx, &new, &reference, &party_rows).await? else {
            return Ok(None);
        };
        let timers = row
            .state(&party_rows)
            .timers_at_submission(row.created_at, row.ack_deadline);
        store::start_timers(tx, id, &timers).await?;
        let event = announce_submission(&row, sender, correlation);
        Ok(Some((row, event)))
    }
}

/// The new referral `row` sent to `target` as the submission stored it (its parties, none acknowledged
/// yet, and its one history entry, both written with the row): what reading it back would give.
fn as_submitted(row: ReferralRow, target: &Target) -> Referral {
    let mut parties: Vec<PartyRow> = receiving_parties(row.id, target.provider, target.foster_team);
    parties.sort_by_key(PartyRow::order);
    let sender = Some(row.sender_agency_id);
    let entry = HistoryRow::of_step(
        &row,
        ReferralAction::Submitted,
        ReferralStatus::Unspecified,
        sender,
    );
    row.into_proto(parties, vec![entry])
}

/// The `referral.submitted` event of a new referral (its history entry is written with it).
fn announce_submission(row: &ReferralRow, sender: Uuid, correlation: Uuid) -> EventEnvelope {
    crate::at_step(
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
    )
}
