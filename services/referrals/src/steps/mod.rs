//! Taking a step on a stored referral, by an agency or by a timer that fell due: lock it, let the state
//! machine decide, apply its transition with the history entry and the event, in one transaction.
//! Confirming the placement of a search's referral closes the others, except one accepted offer the sender
//! may keep as a fallback for a bounded time (`PLACEMENT_FALLBACK_HOLD`), released by its timer.

pub mod model;
mod store;

use chrono::{DateTime, Utc};
use placement_messaging::Outbox;
use placement_platform::{
    audit::{self, Entry},
    caller::Caller,
    error::{ServiceResult, retry_conflicts},
};
use placement_proto::v1::{EventEnvelope, Referral, ReferralStatus, WithdrawReason};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub use model::Origin;
use model::{StepError, event_of, rpc_of};
use store::{Asked, Change, Locked, Parts};

use crate::{
    EVENTS, places, policy,
    record::{
        model::{HistoryRow, PartyRow, ReferralRow},
        store::{parties_of, parts_of},
    },
    referral::{FallbackHold, Record, Step, StepChange, StepTimes, SystemStep, Transition},
    search::{model::SearchRow, store as searches},
};

/// Steps asked for by agencies: each in its own transaction, with its audit entry and its event.
#[derive(Clone)]
pub struct Steps {
    pool: PgPool,
    outbox: Outbox,
    /// How long an offer kept as a fallback holds its places.
    fallback_hold: chrono::Duration,
}

/// The accepted referral of a search the sender keeps as a fallback when it confirms another, and for how
/// long.
#[derive(Debug, Clone, Copy)]
struct Fallback {
    referral_id: Uuid,
    hold: chrono::Duration,
}

/// A fallback found fit to keep: its row (locked) and what keeping it does to its timers.
struct Kept {
    locked: Locked,
    hold: FallbackHold,
    lasts: chrono::Duration,
}

impl Steps {
    pub fn new(pool: PgPool, outbox: Outbox, fallback_hold: chrono::Duration) -> Self {
        Self {
            pool,
            outbox,
            fallback_hold,
        }
    }

    /// Takes `step` on the referral `id` as `caller` asked (a confirmation keeping the referral `fallback`
    /// of its search), again on a conflict; a refusal is audited too.
    pub async fn take_requested(
        &self,
        caller: &Caller,
        id: Uuid,
        step: &Step,
        fallback: Option<Uuid>,
        origin: Origin,
    ) -> ServiceResult<Referral> {
        let fallback = fallback.map(|referral_id| Fallback {
            referral_id,
            hold: self.fallback_hold,
        });
        let rpc = format!("placement.v1.ReferralService/{}", rpc_of(step));
        let referral = retry_conflicts(|| async {
            policy::require(caller, policy::act_of(step))?;
            let mut tx = placement_platform::db::begin(&self.pool).await?;
            let actor = policy::actor(caller);
            let (referral, held) = apply(&mut tx, id, step, actor, fallback, origin).await?;
            let entry = Entry {
                caller,
                rpc: &rpc,
                record_type: "referral",
                record_ids: &[id],
                outcome: "OK",
            };
            Outbox::enqueue_audited(&mut tx, held.as_slice(), &entry).await?;
            self.outbox.commit(tx).await?;
            Ok(referral)
        })
        .await;
        let referral =
            audit::record_refusal(&self.pool, caller, &rpc, "referral", &[id], referral).await?;
        Ok(referral)
    }
}

/// Takes `step` by the agency `actor` (a confirmation keeping `fallback`), inside `conn`'s transaction;
/// the referral as the step left it, with the event announcing it when that is not in the outbox yet (a
/// referral sent alone: the caller writes it with the audit entry, in one statement).
async fn apply(
    conn: &mut PgConnection,
    referral_id: Uuid,
    step: &Step,
    actor: Uuid,
    fallback: Option<Fallback>,
    origin: Origin,
) -> ServiceResult<(Referral, Option<EventEnvelope>)> {
    let (search, locked, parts) = lock_for_step(conn, referral_id)
        .await?
        .ok_or_else(policy::hidden)?;
    // Current as of the lock, so no step under way changes them; with the history, the step answers with
    // the referral as it leaves it without reading it back.
    let (parties, history) = match parts {
        Some(parts) => parts,
        None => parts_of(conn, &[referral_id]).await?,
    };
    let row = &locked.row;
    // One answer to "may this agency see it", the same as for reads: one it may not see is NOT_FOUND;
    // one it may see but not act on is PERMISSION_DENIED, from the state machine.
    if !policy::may_read(conn, actor, row, &parties).await? {
        return Err(policy::hidden());
    }
    let transition = row
        .state(&parties)
        .decide(step, actor)
        .map_err(StepError::from)?;
    let Some(search) = search else {
        if fallback.is_some() {
            return Err(StepError::FallbackInvalid(
                "the referral confirmed is not one of a search",
            )
            .into());
        }
        let taken = take(conn, &locked, &transition, Some(actor), origin).await?;
        let referral = as_stepped(taken.row, parties, history, &transition, Some(actor));
        return Ok((referral, Some(taken.event)));
    };
    if matches!(step, Step::ConfirmPlacement) && search.placed_referral_id.is_some() {
        return Err(StepError::SearchPlaced.into());
    }
    // Checked before anything is written, so a bad fallback changes nothing.
    let kept = match fallback {
        Some(fallback) => Some(fallback_to_keep(conn, &search, row, fallback).await?),
        None => None,
    };
    // Announced first, before the steps it leads to on the search's other referrals.
    let updated = take_announced(conn, &locked, &transition, Some(actor), origin).await?;
    match step {
        Step::ConfirmPlacement => close_search(conn, &search, &updated, kept, origin).await?,
        Step::Acknowledge
            if parties
                .iter()
                .any(|p| p.agency_id == actor && p.foster_care_team) =>
        {
            acknowledge_for_district(conn, &search, &updated, actor, origin).await?;
        }
        _ => {}
    }
    crate::search::settle(conn, search.id, origin.correlation, origin.at).await?;
    // The steps above touch the search and its other referrals only, never this one again.
    let referral = as_stepped(updated, parties, history, &transition, Some(actor));
    Ok((referral, None))
}

/// The referral locked for a step, after its search (also locked) when it is one of a search's: a step on
/// a referral of a search waits for the search first, so the steps that touch several of its referrals
/// (one acknowledgement for a district, one placement closing the rest) never deadlock, and two
/// placements of one search run one after the other. A referral sent alone is locked by the statement
/// that finds it has no search, and with it its parties and history when they could be read current.
/// `None` when there is no such referral.
async fn lock_for_step(
    conn: &mut PgConnection,
    referral_id: Uuid,
) -> Result<Option<(Option<SearchRow>, Locked, Option<Parts>)>, sqlx::Error> {
    match store::lock_unless_searched(conn, referral_id).await? {
        Asked::Missing => Ok(None),
        Asked::Lone(locked, parts) => Ok(Some((None, *locked, parts))),
        Asked::InSearch(search_id) => {
            let search = searches::lock_search(conn, search_id).await?;
            let locked = store::lock_referral(conn, referral_id).await?;
            Ok(locked.map(|locked| (search, locked, None)))
        }
    }
}

/// The referral `updated` as the step `t` by `actor` left it, from its `parties` and `history` read before
/// the step: what the step wrote beside the row is its acknowledgement (dated as the row) and its history
/// entry, so this is what reading it back would give.
fn as_stepped(
    updated: ReferralRow,
    mut parties: Vec<PartyRow>,
    mut history: Vec<HistoryRow>,
    t: &Transition,
    actor: Option<Uuid>,
) -> Referral {
    if let Record::Acknowledged(agency) = t.record {
        for party in parties.iter_mut().filter(|p| p.agency_id == agency) {
            party.acknowledged_at = Some(updated.updated_at);
        }
    }
    history.push(HistoryRow::of_step(&updated, t.action, t.from, actor));
    updated.into_proto(parties, history)
}

/// The sender chose `placed`: every other open referral of the search is withdrawn as placed elsewhere
/// (each a step of its own, by the sender, so its places are released and its parties told), but for the
/// one `kept` as a fallback; and the search records its placement.
async fn close_search(
    conn: &mut PgConnection,
    search: &SearchRow,
    placed: &ReferralRow,
    kept: Option<Kept>,
    origin: Origin,
) -> ServiceResult<()> {
    use ReferralStatus as S;
    let open = [S::Submitted, S::Acknowledged, S::Accepted];
    let step = Step::Withdraw(WithdrawReason::PlacedElsewhere, String::new());
    let sender = placed.sender_agency_id;
    let kept_id = kept.as_ref().map(|k| k.locked.row.id);
    for id in searches::others_in(conn, search.id, placed.id, &open).await? {
        if Some(id) != kept_id {
            take_in_search(conn, id, &step, sender, origin).await?;
        }
    }
    if let Some(kept) = kept {
        hold_fallback(conn, &kept, origin.at).await?;
    }
    searches::record_placement(conn, search.id, placed.id).await?;
    Ok(())
}

/// The referral `fallback` names, locked, once it is shown to be another referral of `search` that may be
/// kept as a fallback (ACCEPTED, not kept already), with what keeping it does to its timers.
async fn fallback_to_keep(
    conn: &mut PgConnection,
    search: &SearchRow,
    confirmed: &ReferralRow,
    fallback: Fallback,
) -> ServiceResult<Kept> {
    if fallback.referral_id == confirmed.id {
        return Err(StepError::FallbackInvalid("the referral confirmed itself").into());
    }
    // Its search is read before its lock: a referral of another search is not locked here at all.
    if searches::search_of_referral(conn, fallback.referral_id).await? != Some(search.id) {
        return Err(StepError::FallbackInvalid("not a referral of this search").into());
    }
    let locked = store::lock_referral(conn, fallback.referral_id)
        .await?
        .ok_or(StepError::FallbackInvalid("not a referral of this search"))?;
    let parties = parties_of(conn, &[fallback.referral_id]).await?;
    let hold =
        (locked.row.state(&parties).hold_as_fallback()).map_err(StepError::FallbackNotKept)?;
    Ok(Kept {
        locked,
        hold,
        lasts: fallback.hold,
    })
}

/// Keeps `kept` as a fallback from `at` (`None`: the database's clock) for its time: it goes on holding
/// its places, and its release's timer falls due when the time is up.
async fn hold_fallback(
    conn: &mut PgConnection,
    kept: &Kept,
    at: Option<DateTime<Utc>>,
) -> ServiceResult<()> {
    let until = at.unwrap_or(kept.locked.transaction_time) + kept.lasts;
    let id = kept.locked.row.id;
    let timers: Vec<_> = (kept.hold.started_timers.iter())
        .map(|timer| (*timer, until))
        .collect();
    store::keep_as_fallback(conn, id, until, &kept.hold.stopped_timers, &timers).await?;
    tracing::info!(referral_id = %id, %until, "offer kept as a fallback");
    Ok(())
}

/// The foster-care team `agency` acknowledged `acknowledged`: its acknowledgement counts for every other
/// submitted referral of the search on which it is the foster-care team and has not acknowledged yet.
/// Where it also runs the service asked, its acknowledgement as the provider stays its own to give.
async fn acknowledge_for_district(
    conn: &mut PgConnection,
    search: &SearchRow,
    acknowledged: &ReferralRow,
    agency: Uuid,
    origin: Origin,
) -> ServiceResult<()> {
    for id in searches::awaiting_foster_team(conn, search.id, acknowledged.id, agency).await? {
        take_in_search(conn, id, &Step::Acknowledge, agency, origin).await?;
    }
    Ok(())
}

/// Takes `step` by `actor` on another referral of a search whose lock the transaction holds, through the
/// state machine as any step.
async fn take_in_search(
    conn: &mut PgConnection,
    id: Uuid,
    step: &Step,
    actor: Uuid,
    origin: Origin,
) -> ServiceResult<ReferralRow> {
    let locked = store::lock_referral(conn, id)
        .await?
        .ok_or_else(policy::hidden)?;
    let parties = parties_of(conn, &[id]).await?;
    let transition = locked
        .row
        .state(&parties)
        .decide(step, actor)
        .map_err(StepError::from)?;
    take_announced(conn, &locked, &transition, Some(actor), origin).await
}

/// Takes the system step whose timer fell due, at `at` (`None`: the database's clock), with the steps' times
/// `times` for what it opens or moves. A step the state
/// machine no longer allows stops its timer (`None`): a timer left behind is a bug to log, not a reason
/// to stop the others.
pub async fn apply_system(
    conn: &mut PgConnection,
    referral_id: Uuid,
    step: SystemStep,
    at: Option<DateTime<Utc>>,
    times: StepTimes,
) -> ServiceResult<Option<ReferralRow>> {
    // The search first, as in `apply`: a timer and a step on another referral of it never deadlock.
    let Some((search, locked, parts)) = lock_for_step(conn, referral_id).await? else {
        store::stop_timers(conn, referral_id, &[step]).await?;
        return Ok(None);
    };
    let parties = match parts {
        Some((parties, _)) => parties,
        None => parties_of(conn, &[referral_id]).await?,
    };
    match locked.row.state(&parties).decide_system(step) {
        Ok(transition) => {
            let origin = Origin {
                correlation: Uuid::now_v7(),
                at,
                times,
            };
            let updated = take_announced(conn, &locked, &transition, None, origin).await?;
            if let Some(search) = search {
                crate::search::settle(conn, search.id, origin.correlation, origin.at).await?;
            }
            Ok(Some(updated))
        }
        Err(refusal) => {
            tracing::error!(%referral_id, ?step, %refusal, "a timer fell due for a step that cannot happen; stopped");
            store::stop_timers(conn, referral_id, &[step]).await?;
            Ok(None)
        }
    }
}

/// A step written, with the event that announces it (not in the outbox yet).
struct Taken {
    row: ReferralRow,
    event: EventEnvelope,
}

/// [`take`], with its event added to the outbox at once.
async fn take_announced(
    conn: &mut PgConnection,
    locked: &Locked,
    t: &Transition,
    actor: Option<Uuid>,
    origin: Origin,
) -> ServiceResult<ReferralRow> {
    let taken = take(conn, locked, t, actor, origin).await?;
    Outbox::enqueue(conn, &taken.event).await?;
    Ok(taken.row)
}

/// Applies an allowed transition to the referral `locked`: the places check, then in one statement the
/// change, the acknowledgement, the timers it stops and starts and the history entry; and builds the
/// event, which the caller adds to the outbox.
async fn take(
    conn: &mut PgConnection,
    locked: &Locked,
    t: &Transition,
    actor: Option<Uuid>,
    origin: Origin,
) -> ServiceResult<Taken> {
    let Origin {
        correlation,
        at,
        times,
    } = origin;
    let row = &locked.row;
    // Checked before anything is written: the state machine names an action in every transition.
    let announce = event_of(t.action).ok_or(StepError::Unannounced(t.action))?;
    if t.needs_free_places {
        places::check_free_places(conn, row).await?;
    }
    let now = at.unwrap_or(locked.transaction_time);
    let dated = date_step(row, t, now, &times);
    let started: Vec<_> = match dated {
        Some((from, deadline)) => (t.started_timers.iter())
            .map(|timer| (*timer, timer.due(from, deadline)))
            .collect(),
        None => Vec::new(),
    };
    let change = Change {
        t,
        at,
        actor,
        deadline: dated.map(|(_, due)| due),
        started_timers: &started,
    };
    let updated = store::apply_transition(conn, row.id, &change).await?;
    let reason_code = match &t.record {
        Record::Declined(reason, _) => *reason as i32,
        Record::Withdrawn(reason, _) => *reason as i32,
        _ => 0,
    };
    let event = crate::at_step(
        EVENTS.build(
            announce(updated.event(t.from, actor, reason_code, t.outstanding.clone())),
            row.id,
            placement_platform::numbers::serial(updated.version),
            correlation,
        ),
        updated.updated_at,
    );
    tracing::info!(
        referral_id = %row.id,
        action = t.action.as_str_name(),
        from = t.from.as_str_name(),
        to = t.to.as_str_name(),
        actor = ?actor,
        "referral step"
    );
    Ok(Taken {
        row: updated,
        event,
    })
}

/// When the timed step that `t` opens or postpones falls due, and from when its timers count: from the
/// step's time `now` (the database's, unless told) by the referral's urgency, or, for a postponement, from
/// the deadline it had. `None` when `t` neither opens nor moves a step.
fn date_step(
    row: &ReferralRow,
    t: &Transition,
    now: DateTime<Utc>,
    times: &StepTimes,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (step, until) = match (&t.step_change, &t.record) {
        (StepChange::Enters(step), _) => (*step, None),
        (StepChange::Moves(step), Record::Postponed { postponement, .. }) => {
            (*step, Some(postponement.until))
        }
        _ => return None,
    };
    let deadline = match until {
        None => times.deadline(step, row.urgency, now),
        // A step opened before every step was timed has no deadline to move: it counts from now.
        Some(until) => times.postponed(step, row.urgency, row.step_deadline.unwrap_or(now), until),
    };
    Some((now, deadline))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use placement_proto::v1::{LegalBasisKind, ReferralAction};

    use super::*;
    use crate::record::model::tests::{Agencies, submitted};

    /// A step answers with the referral built in memory from what it read after its lock: it must be what
    /// reading the referral back gives, i.e. the acknowledgement dated as the row and the entry appended.
    #[test]
    fn a_stepped_referral_is_what_reading_it_back_gives() {
        let a = Agencies {
            sender: Uuid::new_v4(),
            provider: Uuid::new_v4(),
            foster: Uuid::new_v4(),
        };
        let before = submitted(&a, LegalBasisKind::DsaDirectorOrder);
        let t = (before.row.state(&before.parties))
            .decide(&Step::Acknowledge, a.foster)
            .expect("the foster-care team may acknowledge");
        let mut updated = before.row.clone();
        updated.version += 1;
        updated.updated_at = Utc.with_ymd_and_hms(2026, 11, 4, 9, 30, 0).unwrap();
        let wire = as_stepped(
            updated.clone(),
            before.parties.clone(),
            before.history.clone(),
            &t,
            Some(a.foster),
        );

        let ack_of = |agency: Uuid| {
            let agency = agency.to_string();
            (wire.acknowledgements.iter())
                .find(|p| p.agency_id == agency)
                .map(|p| p.acknowledged_at.is_some())
        };
        assert_eq!(ack_of(a.foster), Some(true));
        assert_eq!(ack_of(a.provider), Some(false), "only the acting party");
        let mut parties = before.parties.clone();
        parties[1].acknowledged_at = Some(updated.updated_at);
        let mut history = before.history.clone();
        history.push(HistoryRow {
            referral_id: updated.id,
            version: updated.version,
            action: ReferralAction::Acknowledged,
            from_status: Some(ReferralStatus::Submitted),
            to_status: updated.status,
            actor_agency_id: Some(a.foster),
            at: updated.updated_at,
        });
        assert_eq!(wire, updated.into_proto(parties, history));
        assert_eq!(wire.history.len(), 2);
    }

    /// The submission's entry is stored from no status; a step's from the one it left.
    #[test]
    fn an_entry_is_from_no_status_only_at_submission() {
        let a = Agencies {
            sender: Uuid::new_v4(),
            provider: Uuid::new_v4(),
            foster: Uuid::new_v4(),
        };
        let row = submitted(&a, LegalBasisKind::DsaDirectorOrder).row;
        let entry = |from| HistoryRow::of_step(&row, ReferralAction::Submitted, from, None);
        assert_eq!(entry(ReferralStatus::Unspecified).from_status, None);
        assert_eq!(
            entry(ReferralStatus::Submitted).from_status,
            Some(ReferralStatus::Submitted)
        );
        assert_eq!(entry(ReferralStatus::Unspecified).at, row.updated_at);
    }
}
