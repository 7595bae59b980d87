//! What the case learns from referral events: which referrals are in progress (so the case is not closed
//! under them) and, when one is placed, where the children live now.

use placement_messaging::{EventHandler, EventType, HandleError, IncomingEvent, Outbox};
use placement_proto::v1::ReferralEvent;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{
    EVENTS,
    store::{self, child_count},
};

pub const BINDINGS: &[&str] = &[
    EventType::ReferralSubmitted.as_str(),
    EventType::ReferralDeclined.as_str(),
    EventType::ReferralWithdrawn.as_str(),
    EventType::ReferralPlaced.as_str(),
];

pub struct CasePlacements;

impl EventHandler for CasePlacements {
    type Applied = ();

    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        let event_type = event.event_type();
        let active = match event_type {
            EventType::ReferralSubmitted => true,
            EventType::ReferralDeclined
            | EventType::ReferralWithdrawn
            | EventType::ReferralPlaced => false,
            other => {
                return Err(HandleError::permanent(format!(
                    "unexpected event type {other}"
                )));
            }
        };
        let referral: ReferralEvent = event.payload()?;
        let referral_id = parse(&referral.referral_id, "referral_id")?;
        let case_id = parse(&referral.case_id, "case_id")?;
        let version = i64::try_from(event.envelope.aggregate_version)
            .map_err(|_| HandleError::permanent("aggregate_version beyond BIGINT"))?;

        if store::lock_case(tx, case_id).await?.is_none() {
            return Err(HandleError::missing(format!("unknown case {case_id}")));
        }
        // Newer knowledge of the referral wins; an older event arriving late changes nothing.
        let applied = store::note_case_referral(
            tx,
            &store::CaseReferral {
                referral_id,
                case_id,
                active,
                version,
                receiving_agency_id: Uuid::parse_str(&referral.receiving_agency_id).ok(),
                foster_team_agency_id: Uuid::parse_str(&referral.foster_care_team_agency_id).ok(),
                // Open from submission; placed stays readable; declined or withdrawn is closed to the
                // receiving side.
                open_or_placed: matches!(
                    event_type,
                    EventType::ReferralSubmitted | EventType::ReferralPlaced
                ),
            },
        )
        .await?;
        if !applied || event_type != EventType::ReferralPlaced {
            return Ok(());
        }

        let row = store::place_case(
            tx,
            &store::CasePlacement {
                case_id,
                referral_id,
                service_id: parse(&referral.service_id, "service_id")?,
                provider: parse(&referral.receiving_agency_id, "receiving_agency_id")?,
                region_code: &referral.receiving_region_code,
                placed_at: event
                    .envelope
                    .occurred_at
                    .as_ref()
                    .and_then(placement_platform::time::from_timestamp)
                    .unwrap_or_else(chrono::Utc::now),
            },
        )
        .await?;
        let children = child_count(tx, case_id).await?;
        let announcement = EVENTS.build(
            EventType::CasePlaced,
            "case",
            case_id,
            placement_platform::numbers::serial(row.version),
            event.correlation_id(),
            &row.event(children),
        );
        Outbox::enqueue(tx, &announcement).await?;
        tracing::info!(%case_id, %referral_id, "case placed");
        Ok(())
    }
}

fn parse(value: &str, field: &str) -> Result<Uuid, HandleError> {
    placement_messaging::payload_id(field, value)
}
