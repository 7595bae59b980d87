//! The digest an RDSA gets before its coordination mechanism meets ([`model`] says what its e-mail says):
//! one notice in its inbox and its e-mail and webhook deliveries, from the reports service's
//! "report.digest_ready".

pub mod model;

use placement_messaging::{EventType, HandleError, IncomingEvent};
use placement_proto::v1::{DistrictDigestReady, NotificationKind};
use sqlx::{Postgres, Transaction};

use crate::{
    deliveries::{FanOut, model::Content},
    inbox::{self, Added, OneNotice, Told},
};

/// The RDSA's digest: one notice in its inbox, keeping the digest (worded when shown, in the reader's
/// language), and its e-mail and webhook deliveries. Once per event, as every notification: a digest sent
/// again by the reports would be a new event.
pub async fn tell(
    fan_out: &FanOut,
    tx: &mut Transaction<'_, Postgres>,
    digest: &DistrictDigestReady,
    event: &IncomingEvent,
) -> Result<Added, HandleError> {
    let agency = placement_messaging::payload_id("rdsa_agency_id", &digest.rdsa_agency_id)?;
    let named = placement_wording::digest_named_ids(digest);
    let names = crate::names::book_of(&mut **tx, named).await?;
    let added = inbox::tell_one(
        fan_out,
        tx,
        OneNotice {
            agency,
            kind: NotificationKind::DistrictDigest,
            event_type: EventType::DistrictDigestReady,
            told: &Told::Digest(Box::new(digest.clone())),
            names: &names,
            content: Content::Digest {
                digest,
                names: &names,
            },
        },
        event,
    )
    .await?;
    tracing::info!(event_id = %event.event_id(), %agency, region = %digest.region_code, deliveries = added.deliveries, "digest told");
    Ok(added)
}
