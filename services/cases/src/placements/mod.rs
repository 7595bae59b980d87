//! What the case learns from referral events: which referrals are in progress (so the case is not closed
//! under them) and, when one is placed, where the children live now.

pub mod model;
pub mod store;

use placement_messaging::{Event, HandleError, IncomingEvent, Outbox};
use placement_proto::v1::ReferralEvent;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{
    EVENTS,
    cases::{model::CasePlacement, store::place_case},
};
use model::CaseReferral;
pub use model::ReferralStep;

/// Notes the referral's step on its case and, when it placed the children, places the case.
pub async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    step: ReferralStep,
    referral: &ReferralEvent,
    event: &IncomingEvent,
) -> Result<(), HandleError> {
    let referral_id = parse(&referral.referral_id, "referral_id")?;
    let case_id = parse(&referral.case_id, "case_id")?;
    let version = event.version()?;

    // Newer knowledge of the referral wins; an older event arriving late changes nothing.
    let applied = store::lock_case_and_note_referral(
        tx,
        &CaseReferral {
            referral_id,
            case_id,
            active: step.active(),
            version,
            receiving_agency_id: Uuid::parse_str(&referral.receiving_agency_id).ok(),
            foster_team_agency_id: Uuid::parse_str(&referral.foster_care_team_agency_id).ok(),
            open_or_placed: step.open_or_placed(),
        },
    )
    .await?
    .ok_or_else(|| HandleError::missing(format!("unknown case {case_id}")))?;
    if !applied || step != ReferralStep::Placed {
        return Ok(());
    }
    place(tx, case_id, referral_id, referral, event).await
}

/// Records where the children of the case live now, and announces it.
async fn place(
    tx: &mut Transaction<'_, Postgres>,
    case_id: Uuid,
    referral_id: Uuid,
    referral: &ReferralEvent,
    event: &IncomingEvent,
) -> Result<(), HandleError> {
    let (row, children) = place_case(
        tx,
        &CasePlacement {
            case_id,
            referral_id,
            service_id: parse(&referral.service_id, "service_id")?,
            provider: parse(&referral.receiving_agency_id, "receiving_agency_id")?,
            region_code: &referral.receiving_region_code,
            placed_at: event.occurred_at(),
            referral_reference: &referral.reference,
        },
    )
    .await?;
    let announcement = EVENTS.build(
        Event::CasePlaced(row.event(children)),
        case_id,
        placement_platform::numbers::serial(row.version),
        event.correlation_id(),
    );
    Outbox::enqueue(tx, &announcement).await?;
    tracing::info!(%case_id, %referral_id, "case placed");
    Ok(())
}

fn parse(value: &str, field: &str) -> Result<Uuid, HandleError> {
    placement_messaging::payload_id(field, value)
}
