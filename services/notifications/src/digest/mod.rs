//! The digest an RDSA gets before its coordination mechanism meets ([`model`] says what it says): one
//! notice in its inbox and its e-mail and webhook deliveries, from the reports service's
//! "report.digest_ready".

pub mod model;

use placement_messaging::{EventType, HandleError, IncomingEvent};
use placement_proto::v1::{DistrictDigestReady, Language, NotificationKind};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{
    deliveries::{
        FanOut,
        model::{Content, NewNotifications, Recipient},
    },
    inbox::{
        model::{Added, Arrival},
        store::insert_notice,
    },
};

/// The RDSA's digest: one notice in its inbox (in Bulgarian) and its e-mail and webhook deliveries.
/// Once per event, as every notification: a digest sent again by the reports would be a new event.
pub async fn tell(
    fan_out: &FanOut,
    tx: &mut Transaction<'_, Postgres>,
    digest: &DistrictDigestReady,
    event: &IncomingEvent,
) -> Result<Added, HandleError> {
    let agency = placement_messaging::payload_id("rdsa_agency_id", &digest.rdsa_agency_id)?;
    let (title, body) = model::digest_text(digest, Language::Bg);
    let notification = Uuid::now_v7();
    insert_notice(
        tx,
        notification,
        agency,
        NotificationKind::DistrictDigest,
        event.event_id(),
        &title,
        &body,
    )
    .await?;
    let deliveries = fan_out
        .create(
            tx,
            &NewNotifications {
                recipients: &[Recipient {
                    notification,
                    agency,
                }],
                event_type: EventType::DistrictDigestReady.as_str(),
                event_id: event.event_id(),
                occurred_at: event.occurred_at(),
                referral_id: None,
            },
            &Content::Digest(digest),
        )
        .await?;
    tracing::info!(event_id = %event.event_id(), %agency, region = %digest.region_code, deliveries, "digest told");
    Ok(Added {
        notifications: vec![Arrival {
            agency,
            notification: None,
        }],
        deliveries,
    })
}
