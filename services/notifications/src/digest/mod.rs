//! The digest an RDSA gets before its coordination mechanism meets ([`model`] says what it says): one
//! notice in its inbox and its e-mail and webhook deliveries, from the reports service's
//! "report.digest_ready".

pub mod model;

use placement_messaging::{EventType, HandleError, IncomingEvent};
use placement_proto::v1::{DistrictDigestReady, Language, NotificationKind};
use sqlx::{Postgres, Transaction};

use crate::{
    deliveries::{FanOut, model::Content},
    inbox::{self, Added, OneNotice},
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
    let added = inbox::tell_one(
        fan_out,
        tx,
        OneNotice {
            agency,
            kind: NotificationKind::DistrictDigest,
            event_type: EventType::DistrictDigestReady,
            title: &title,
            body: &body,
            content: Content::Digest(digest),
        },
        event,
    )
    .await?;
    tracing::info!(event_id = %event.event_id(), %agency, region = %digest.region_code, deliveries = added.deliveries, "digest told");
    Ok(added)
}
