//! The read model's rows as the source describes them (a referral with its history, a service), and what
//! goes wrong rebuilding it.

use placement_platform::time::from_timestamp;
use placement_proto::v1::{
    Referral, ReferralAction, ReferralHistoryEntry, ReferralStatus, SocialService,
};
use uuid::Uuid;

use super::credential::CredentialError;
use crate::{
    places::model::ServiceNow,
    steps::model::{ReferralNow, Step, age, told},
};

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("no credential to read every referral with (set PLACEMENT_REPORTS_TOKEN_URL)")]
    NoCredential,
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error("the source refused: {0}")]
    Source(#[from] tonic::Status),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error("the source sent a malformed referral: {0}")]
    Malformed(String),
}

pub fn service_now(s: &SocialService) -> Result<ServiceNow, RebuildError> {
    let places = [s.capacity, s.free_places, s.held_places, s.occupied_places];
    ServiceNow::checked(
        &s.id,
        &s.provider_agency_id,
        &s.region_code,
        s.r#type,
        s.status,
        places,
        s.version,
    )
    .map(|service| service.taking_ages(Some(s.min_age), Some(s.max_age)))
    .map_err(RebuildError::Malformed)
}

pub fn referral_now(r: &Referral) -> Result<ReferralNow, RebuildError> {
    Ok(ReferralNow {
        id: parse(&r.id, "id")?,
        sender_agency_id: parse(&r.sender_agency_id, "sender_agency_id")?,
        sender_region_code: r.sender_region_code.clone(),
        receiving_agency_id: parse(&r.receiving_agency_id, "receiving_agency_id")?,
        receiving_region_code: r.receiving_region_code.clone(),
        foster_team_agency_id: parse(&r.foster_care_team_agency_id, "foster_care_team_agency_id")?,
        service_id: parse(&r.service_id, "service_id")?,
        status: status(r.status).ok_or_else(|| RebuildError::Malformed("status".into()))?,
        ack_deadline: r.acknowledgement_deadline.as_ref().and_then(from_timestamp),
        places: i32::try_from(r.places).map_err(|_| RebuildError::Malformed("places".into()))?,
        version: i64::try_from(r.version).map_err(|_| RebuildError::Malformed("version".into()))?,
        youngest_child_age: age(r.youngest_child_age),
        oldest_child_age: age(r.oldest_child_age),
        search_id: match r.search_id.as_str() {
            "" => None,
            told => Some(parse(told, "search_id")?),
        },
        reference: r.reference.clone(),
        step: told(r.step),
        step_deadline: r.step_deadline.as_ref().and_then(from_timestamp),
        waiting_reason: told(r.waiting_reason),
    })
}

pub fn step_of(r: &Referral, e: &ReferralHistoryEntry) -> Result<Step, RebuildError> {
    let malformed = |what: &str| RebuildError::Malformed(format!("history {what}"));
    Ok(Step {
        referral_id: parse(&r.id, "id")?,
        version: i64::try_from(e.version).map_err(|_| malformed("version"))?,
        action: ReferralAction::try_from(e.action)
            .ok()
            .filter(|a| *a != ReferralAction::Unspecified)
            .ok_or_else(|| malformed("action"))?,
        from_status: status(e.from_status),
        to_status: status(e.to_status).ok_or_else(|| malformed("status"))?,
        actor_agency_id: Uuid::parse_str(&e.actor_agency_id).ok(),
        at: e
            .at
            .as_ref()
            .and_then(from_timestamp)
            .ok_or_else(|| malformed("time"))?,
        // The history does not repeat the reason: a referral is declined or withdrawn once, and keeps why.
        reason_code: match ReferralAction::try_from(e.action) {
            Ok(ReferralAction::Declined) => r.decline_reason,
            Ok(ReferralAction::Withdrawn) => r.withdraw_reason,
            _ => 0,
        },
        sender_region_code: r.sender_region_code.clone(),
        receiving_region_code: r.receiving_region_code.clone(),
    })
}

fn status(value: i32) -> Option<ReferralStatus> {
    ReferralStatus::try_from(value)
        .ok()
        .filter(|s| *s != ReferralStatus::Unspecified)
}

pub fn parse(value: &str, field: &str) -> Result<Uuid, RebuildError> {
    Uuid::parse_str(value).map_err(|_| RebuildError::Malformed(format!("{field} is not a UUID")))
}
