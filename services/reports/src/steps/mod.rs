//! A referral's steps as the reports learn them, from the referrals' events or rebuilt from the referrals
//! service: each step once per version, with the milestones it reaches and its districts' day counts, and
//! where the referral stands now (the newest version wins, so an older event arriving late changes nothing).

pub mod model;
pub mod store;

use placement_messaging::{HandleError, IncomingEvent, payload_id};
use placement_proto::v1::{ReferralAction, ReferralEvent, ReferralStatus};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use model::{ReferralNow, Step, age, told};

/// Notes a referral's step, once per version, and where the referral stands now.
pub async fn learn(
    tx: &mut Transaction<'_, Postgres>,
    action: ReferralAction,
    r: &ReferralEvent,
    event: &IncomingEvent,
) -> Result<(), HandleError> {
    let status = ReferralStatus::try_from(r.status)
        .ok()
        .filter(|s| *s != ReferralStatus::Unspecified)
        .ok_or_else(|| HandleError::permanent("a referral event without a status"))?;
    let version = event.version()?;
    let referral = ReferralNow {
        id: payload_id("referral_id", &r.referral_id)?,
        sender_agency_id: payload_id("sender_agency_id", &r.sender_agency_id)?,
        sender_region_code: r.sender_region_code.clone(),
        receiving_agency_id: payload_id("receiving_agency_id", &r.receiving_agency_id)?,
        receiving_region_code: r.receiving_region_code.clone(),
        foster_team_agency_id: payload_id(
            "foster_care_team_agency_id",
            &r.foster_care_team_agency_id,
        )?,
        service_id: payload_id("service_id", &r.service_id)?,
        status,
        ack_deadline: r
            .acknowledgement_deadline
            .as_ref()
            .and_then(placement_platform::time::from_timestamp),
        places: i32::try_from(r.places).map_err(|_| HandleError::permanent("places beyond INT"))?,
        version,
        youngest_child_age: age(r.youngest_child_age),
        oldest_child_age: age(r.oldest_child_age),
        search_id: match r.search_id.as_str() {
            "" => None,
            told => Some(payload_id("search_id", told)?),
        },
        reference: r.reference.clone(),
        step: told(r.step),
        step_deadline: (r.step_deadline.as_ref())
            .and_then(placement_platform::time::from_timestamp),
        waiting_reason: told(r.waiting_reason),
    };
    let step = Step {
        referral_id: referral.id,
        version,
        action,
        from_status: ReferralStatus::try_from(r.previous_status)
            .ok()
            .filter(|s| *s != ReferralStatus::Unspecified),
        to_status: status,
        actor_agency_id: Uuid::parse_str(&r.actor_agency_id).ok(),
        at: event.occurred_at(),
        reason_code: r.reason_code,
        sender_region_code: r.sender_region_code.clone(),
        receiving_region_code: r.receiving_region_code.clone(),
    };
    store::note(tx, &referral, Some(&step), store::DayCounts::WithStep).await?;
    Ok(())
}
