//! Applying a step to a stored referral: lock it, let the state machine decide, write the change, its
//! history entry and its event in one transaction.

use placement_messaging::{Outbox, envelope::types};
use placement_platform::error::{ServiceError, ServiceResult};
use placement_proto::v1::{DeclineReason, ReferralAction, ReferralStatus, WithdrawReason};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    EVENTS,
    referral::{Command, TransitionError},
    store::{REFERRAL_COLUMNS, ReferralRow, parties_of, record_history},
};

/// A step and what comes with it.
#[derive(Debug, Clone)]
pub enum Step {
    Acknowledge,
    Accept,
    Decline(DeclineReason, String),
    Withdraw(WithdrawReason, String),
    ConfirmPlacement,
    Escalate,
    Remind,
    RemindOfCourt,
    RecordCourtDecision(CourtDecision),
}

/// A court decision as recorded by the sender.
#[derive(Debug, Clone)]
pub struct CourtDecision {
    pub number: String,
    pub date: chrono::NaiveDate,
    pub court: String,
}

impl Step {
    fn command(&self) -> Command {
        match self {
            Step::Acknowledge => Command::Acknowledge,
            Step::Accept => Command::Accept,
            Step::Decline(..) => Command::Decline,
            Step::Withdraw(..) => Command::Withdraw,
            Step::ConfirmPlacement => Command::ConfirmPlacement,
            Step::Escalate => Command::Escalate,
            Step::Remind => Command::Remind,
            Step::RemindOfCourt => Command::RemindOfCourt,
            Step::RecordCourtDecision(_) => Command::RecordCourtDecision,
        }
    }
}

pub fn event_type(action: ReferralAction) -> &'static str {
    match action {
        ReferralAction::Submitted => types::REFERRAL_SUBMITTED,
        ReferralAction::Acknowledged => types::REFERRAL_ACKNOWLEDGED,
        ReferralAction::Accepted => types::REFERRAL_ACCEPTED,
        ReferralAction::Declined => types::REFERRAL_DECLINED,
        ReferralAction::Withdrawn => types::REFERRAL_WITHDRAWN,
        ReferralAction::Placed => types::REFERRAL_PLACED,
        ReferralAction::Reminded => types::REFERRAL_REMINDED,
        ReferralAction::CourtDecisionDue => types::REFERRAL_COURT_DECISION_DUE,
        ReferralAction::CourtDecisionRecorded => types::REFERRAL_COURT_DECISION_RECORDED,
        ReferralAction::Escalated | ReferralAction::Unspecified => types::REFERRAL_ESCALATED,
    }
}

impl From<TransitionError> for ServiceError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::NotAllowed(m) => ServiceError::denied(m),
            TransitionError::WrongState(m) => ServiceError::precondition(m),
        }
    }
}

/// Applies `step` by `actor` (None: the system) to the referral, inside `conn`'s transaction.
pub async fn apply(
    conn: &mut PgConnection,
    referral_id: Uuid,
    step: &Step,
    actor: Option<Uuid>,
    correlation: Uuid,
) -> ServiceResult<ReferralRow> {
    let row: ReferralRow = sqlx::query_as(&format!(
        "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE id = $1 FOR UPDATE"
    ))
    .bind(referral_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ServiceError::not_found("referral"))?;
    let parties = parties_of(conn, &[referral_id]).await?;
    if let Some(actor) = actor
        && !row.visible_to(actor, &parties)
    {
        // Another agency's referral and an unknown id look alike.
        return Err(ServiceError::not_found("referral"));
    }
    let transition = row.state(&parties).decide(step.command(), actor)?;

    if matches!(step, Step::Accept) {
        check_free_places(conn, &row).await?;
    }
    let decision = match step {
        Step::RecordCourtDecision(d) => {
            if d.date < row.legal_basis_date {
                return Err(ServiceError::invalid(
                    "decision.issued_on",
                    "before the director's order",
                ));
            }
            Some(d)
        }
        _ => None,
    };
    // Reminders go to the parties still to acknowledge.
    let outstanding: Vec<Uuid> = if matches!(step, Step::Remind) {
        parties
            .iter()
            .filter(|p| p.acknowledged_at.is_none())
            .map(|p| p.agency_id)
            .collect()
    } else {
        Vec::new()
    };
    if matches!(step, Step::Acknowledge) {
        sqlx::query(
            "UPDATE referral_parties SET acknowledged_at = now() WHERE referral_id = $1 AND agency_id = $2",
        )
        .bind(referral_id)
        .bind(actor)
        .execute(&mut *conn)
        .await?;
    }
    let (decline, withdraw, comment, reason_code) = match step {
        Step::Decline(reason, comment) => (
            Some(reason.as_str_name()),
            None,
            comment.as_str(),
            *reason as i32,
        ),
        Step::Withdraw(reason, comment) => (
            None,
            Some(reason.as_str_name()),
            comment.as_str(),
            *reason as i32,
        ),
        _ => (None, None, "", 0),
    };
    let updated: ReferralRow = sqlx::query_as(&format!(
        "UPDATE referrals SET status = $2, version = version + 1, updated_at = now(),
             escalated_at = CASE WHEN $3 THEN now() ELSE escalated_at END,
             decline_reason = COALESCE($4, decline_reason),
             withdraw_reason = COALESCE($5, withdraw_reason),
             resolution_comment = CASE WHEN $6 = '' THEN resolution_comment ELSE $6 END,
             reminded_at = CASE WHEN $7 THEN now() ELSE reminded_at END,
             court_reminded_at = CASE WHEN $8 THEN now() ELSE court_reminded_at END,
             court_decision_number = COALESCE($9, court_decision_number),
             court_decision_date = COALESCE($10, court_decision_date),
             court_decision_court = COALESCE($11, court_decision_court)
         WHERE id = $1 RETURNING {REFERRAL_COLUMNS}"
    ))
    .bind(referral_id)
    .bind(transition.to.as_str_name())
    .bind(matches!(step, Step::Escalate))
    .bind(decline)
    .bind(withdraw)
    .bind(comment)
    .bind(matches!(step, Step::Remind))
    .bind(matches!(step, Step::RemindOfCourt))
    .bind(decision.map(|d| d.number.as_str()))
    .bind(decision.map(|d| d.date))
    .bind(decision.map(|d| d.court.as_str()))
    .fetch_one(&mut *conn)
    .await?;
    record_history(conn, &updated, transition.action, transition.from, actor).await?;
    let event = EVENTS.build(
        event_type(transition.action),
        "referral",
        referral_id,
        placement_platform::numbers::serial(updated.version),
        correlation,
        &updated.event(transition.from, actor, reason_code, outstanding),
    );
    Outbox::enqueue(conn, &event).await?;
    tracing::info!(
        %referral_id,
        action = transition.action.as_str_name(),
        from = transition.from.as_str_name(),
        to = transition.to.as_str_name(),
        actor = ?actor,
        "referral step"
    );
    Ok(updated)
}

/// Free places as the directory last announced them, less the places of acceptances the directory has
/// not applied yet. The service's row is locked, so concurrent acceptances for it queue up here.
async fn check_free_places(conn: &mut PgConnection, row: &ReferralRow) -> ServiceResult<()> {
    let announced: Option<i32> = sqlx::query_scalar(
        "SELECT free_places FROM service_places WHERE service_id = $1 FOR UPDATE",
    )
    .bind(row.service_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(announced) = announced else {
        return Err(ServiceError::Unavailable(
            "the service's places are not known yet; retry".into(),
        ));
    };
    let pending: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(places), 0) FROM referrals
         WHERE service_id = $1 AND NOT hold_applied AND status IN ($2, $3)",
    )
    .bind(row.service_id)
    .bind(ReferralStatus::Accepted.as_str_name())
    .bind(ReferralStatus::Placed.as_str_name())
    .fetch_one(&mut *conn)
    .await?;
    let free = announced as i64 - pending;
    if free < row.places as i64 {
        return Err(ServiceError::precondition(format!(
            "the service has {} free places; the referral needs {}",
            free.max(0),
            row.places
        )));
    }
    Ok(())
}
