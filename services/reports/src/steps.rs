//! What the reports learn from events: each referral's step (once per version) and where it stands now
//! (the newest version wins, so an older event arriving late changes nothing), and which district each
//! RDSA answers for, and the places of every service (the newest version of each).

use placement_messaging::{HandleError, IncomingEvent};
use placement_proto::v1::{
    AgencyKind, AgencyRegistered, ReferralAction, ReferralEvent, ReferralStatus,
    ServiceCapacityChanged,
};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::store;

/// Notes which district an RDSA answers for (and every agency's kind).
pub async fn agency(
    tx: &mut Transaction<'_, Postgres>,
    agency: &AgencyRegistered,
) -> Result<(), HandleError> {
    let kind = AgencyKind::try_from(agency.kind)
        .map_err(|_| HandleError::permanent("unknown agency kind"))?;
    Ok(store::note_agency(
        tx,
        parse(&agency.agency_id, "agency_id")?,
        kind,
        &agency.region_code,
    )
    .await?)
}

/// Notes a service's places, the newest version winning.
pub async fn service(
    tx: &mut Transaction<'_, Postgres>,
    change: &ServiceCapacityChanged,
    event: &IncomingEvent,
) -> Result<(), HandleError> {
    Ok(store::note_service(tx, &service_now(change, event)?).await?)
}

/// A service's places as its directory event tells them (the event's version is the service's).
fn service_now(
    s: &ServiceCapacityChanged,
    event: &IncomingEvent,
) -> Result<store::ServiceNow, HandleError> {
    let places = [s.capacity, s.free_places, s.held_places, s.occupied_places];
    store::ServiceNow::checked(
        &s.service_id,
        &s.provider_agency_id,
        &s.region_code,
        s.service_type,
        s.status,
        places,
        event.aggregate_version(),
    )
    .map(|service| service.taking_ages(s.min_age, s.max_age))
    .map_err(HandleError::permanent)
}

/// Notes a referral's step, once per version, and where the referral stands now.
pub async fn referral(
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
    let referral = store::ReferralNow {
        id: parse(&r.referral_id, "referral_id")?,
        sender_agency_id: parse(&r.sender_agency_id, "sender_agency_id")?,
        sender_region_code: r.sender_region_code.clone(),
        receiving_agency_id: parse(&r.receiving_agency_id, "receiving_agency_id")?,
        receiving_region_code: r.receiving_region_code.clone(),
        foster_team_agency_id: parse(&r.foster_care_team_agency_id, "foster_care_team_agency_id")?,
        service_id: parse(&r.service_id, "service_id")?,
        status,
        ack_deadline: r
            .acknowledgement_deadline
            .as_ref()
            .and_then(placement_platform::time::from_timestamp),
        places: i32::try_from(r.places).map_err(|_| HandleError::permanent("places beyond INT"))?,
        version,
        youngest_child_age: store::age(r.youngest_child_age),
        oldest_child_age: store::age(r.oldest_child_age),
    };
    let step = store::Step {
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
    store::note_referral(tx, &referral).await?;
    if store::note_step(tx, &step).await? {
        store::count_steps(tx, [&step]).await?;
    }
    Ok(())
}

fn parse(value: &str, field: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(value).map_err(|_| HandleError::permanent(format!("{field} is not a UUID")))
}
