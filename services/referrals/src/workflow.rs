//! Taking a step on a stored referral: lock it, let the state machine decide, apply its transition with
//! the history entry and the event, in the caller's transaction.

use chrono::{DateTime, Utc};
use placement_messaging::{Event, Outbox};
use placement_platform::error::{ServiceError, ServiceResult};
use placement_proto::v1::{ReferralAction, ReferralEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    EVENTS, policy,
    referral::{Record, Step, SystemStep, Transition, TransitionError},
    store::{self, ReferralRow},
};

/// The status of a step the state machine refused.
fn refused(e: TransitionError) -> ServiceError {
    match e {
        TransitionError::NotAllowed(m) => ServiceError::denied(m),
        TransitionError::WrongState(m) => ServiceError::precondition(m),
        TransitionError::Invalid(field, why) => ServiceError::invalid(field, why),
    }
}

/// The event each action announces, made from the referral's payload: one arm per action, no default.
pub fn event_of(action: ReferralAction) -> Option<fn(ReferralEvent) -> Event> {
    Some(match action {
        ReferralAction::Submitted => Event::ReferralSubmitted,
        ReferralAction::Acknowledged => Event::ReferralAcknowledged,
        ReferralAction::Accepted => Event::ReferralAccepted,
        ReferralAction::Declined => Event::ReferralDeclined,
        ReferralAction::Withdrawn => Event::ReferralWithdrawn,
        ReferralAction::Placed => Event::ReferralPlaced,
        ReferralAction::Escalated => Event::ReferralEscalated,
        ReferralAction::Reminded => Event::ReferralReminded,
        ReferralAction::CourtDecisionDue => Event::ReferralCourtDecisionDue,
        ReferralAction::CourtDecisionRecorded => Event::ReferralCourtDecisionRecorded,
        ReferralAction::Unspecified => return None,
    })
}

/// On whose request a step is taken, and when (`at`: `None` for the database's clock, see `clock`).
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub correlation: Uuid,
    pub at: Option<DateTime<Utc>>,
}

/// Takes `step` by the agency `actor`, inside `conn`'s transaction.
pub async fn apply(
    conn: &mut PgConnection,
    referral_id: Uuid,
    step: &Step,
    actor: Uuid,
    origin: Origin,
) -> ServiceResult<ReferralRow> {
    let row = store::lock_referral(conn, referral_id)
        .await?
        .ok_or_else(policy::hidden)?;
    let parties = store::parties_of(conn, &[referral_id]).await?;
    // One answer to "may this agency see it", the same as for reads: one it may not see is NOT_FOUND;
    // one it may see but not act on is PERMISSION_DENIED, from the state machine.
    if !policy::may_read(conn, actor, &row, &parties).await? {
        return Err(policy::hidden());
    }
    let transition = row.state(&parties).decide(step, actor).map_err(refused)?;
    take(conn, &row, &transition, Some(actor), origin).await
}

/// Takes the system step whose timer fell due, at `at` (`None`: the database's clock). A step the state
/// machine no longer allows stops its timer (`None`): a timer left behind is a bug to log, not a reason
/// to stop the others.
pub async fn apply_system(
    conn: &mut PgConnection,
    referral_id: Uuid,
    step: SystemStep,
    at: Option<DateTime<Utc>>,
) -> ServiceResult<Option<ReferralRow>> {
    let Some(row) = store::lock_referral(conn, referral_id).await? else {
        store::stop_timers(conn, referral_id, &[step]).await?;
        return Ok(None);
    };
    let parties = store::parties_of(conn, &[referral_id]).await?;
    match row.state(&parties).decide_system(step) {
        Ok(transition) => {
            let origin = Origin {
                correlation: Uuid::now_v7(),
                at,
            };
            Ok(Some(take(conn, &row, &transition, None, origin).await?))
        }
        Err(refusal) => {
            tracing::error!(%referral_id, ?step, %refusal, "a timer fell due for a step that cannot happen; stopped");
            store::stop_timers(conn, referral_id, &[step]).await?;
            Ok(None)
        }
    }
}

/// Applies an allowed transition: the places check, the change, the timers it stops, the history entry
/// and the event.
async fn take(
    conn: &mut PgConnection,
    row: &ReferralRow,
    t: &Transition,
    actor: Option<Uuid>,
    origin: Origin,
) -> ServiceResult<ReferralRow> {
    let Origin { correlation, at } = origin;
    // Checked before anything is written: the state machine names an action in every transition.
    let announce = event_of(t.action).ok_or_else(|| {
        ServiceError::Internal(format!("the action {:?} announces no event", t.action))
    })?;
    if t.needs_free_places {
        check_free_places(conn, row).await?;
    }
    if let Record::Acknowledged(agency) = t.record {
        store::record_acknowledgement(conn, row.id, agency, at).await?;
    }
    let updated = store::apply_transition(conn, row.id, t, at).await?;
    store::stop_timers(conn, row.id, &t.stopped_timers).await?;
    store::record_history(conn, &updated, t.action, t.from, actor).await?;
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
    Outbox::enqueue(conn, &event).await?;
    tracing::info!(
        referral_id = %row.id,
        action = t.action.as_str_name(),
        from = t.from.as_str_name(),
        to = t.to.as_str_name(),
        actor = ?actor,
        "referral step"
    );
    Ok(updated)
}

/// Free places as the directory last announced them, less the places of acceptances the directory has
/// not applied yet. The service's row is locked, so concurrent acceptances for it queue up here.
async fn check_free_places(conn: &mut PgConnection, row: &ReferralRow) -> ServiceResult<()> {
    let Some((announced, pending)) = store::free_places_of(conn, row.service_id).await? else {
        return Err(ServiceError::Unavailable(
            "the service's places are not known yet; retry".into(),
        ));
    };
    let free = i64::from(announced) - pending;
    if free < i64::from(row.places) {
        return Err(ServiceError::precondition(format!(
            "the service has {} free places; the referral needs {}",
            free.max(0),
            row.places
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::referral::{Party, ReferralFacts, ReferralState};
    use placement_messaging::EventType;
    use placement_proto::v1::{LegalBasisKind, ReferralStatus};

    #[test]
    fn every_action_announces_its_own_event() {
        let (sender, provider) = (Uuid::new_v4(), Uuid::new_v4());
        let acknowledged = ReferralState::of(ReferralFacts {
            status: ReferralStatus::Acknowledged,
            sender,
            receiving_agency: provider,
            parties: vec![Party {
                agency: provider,
                acknowledged: true,
            }],
            legal_basis: LegalBasisKind::CourtDecision,
            legal_basis_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            court_decision_recorded: false,
            escalated: false,
            reminded: false,
            court_reminded: false,
        });
        let event = |step: &Step| {
            event_of(acknowledged.decide(step, provider).unwrap().action)
                .map(|announce| announce(ReferralEvent::default()).event_type())
        };
        assert_eq!(event(&Step::Accept), Some(EventType::ReferralAccepted));
        let decline = Step::Decline(placement_proto::v1::DeclineReason::Other, String::new());
        assert_eq!(event(&decline), Some(EventType::ReferralDeclined));
        assert!(event_of(ReferralAction::Unspecified).is_none());
    }
}
