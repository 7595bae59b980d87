//! A search that ran out ("search.exhausted"), told to its sender: one notice in its inbox, keeping the
//! event (worded when shown, in the reader's language), and its e-mail and webhook deliveries, as a
//! referral's step is told.

pub mod model;

use placement_messaging::{EventType, HandleError, IncomingEvent};
use placement_proto::v1::{NotificationKind, SearchExhausted};
use sqlx::{Postgres, Transaction};

use crate::{
    deliveries::{FanOut, model::Content},
    inbox::{self, Added, OneNotice, Told},
    names::model::NameBook,
};

/// The sender's notice that its search ran out, and its deliveries: once per event, as every notice (the
/// referrals service publishes one event per round that runs out).
pub async fn tell(
    fan_out: &FanOut,
    tx: &mut Transaction<'_, Postgres>,
    exhausted: &SearchExhausted,
    event: &IncomingEvent,
) -> Result<Added, HandleError> {
    let agency = placement_messaging::payload_id("sender_agency_id", &exhausted.sender_agency_id)?;
    let search_id = placement_messaging::payload_id("search_id", &exhausted.search_id)?;
    let added = inbox::tell_one(
        fan_out,
        tx,
        OneNotice {
            agency,
            kind: NotificationKind::SearchExhausted,
            event_type: EventType::SearchExhausted,
            told: &Told::SearchExhausted(exhausted.clone()),
            // Its words name no agency nor service.
            names: &NameBook::default(),
            content: Content::SearchExhausted(exhausted),
        },
        event,
    )
    .await?;
    tracing::info!(event_id = %event.event_id(), %agency, %search_id, round = exhausted.round, deliveries = added.deliveries, "search exhausted told");
    Ok(added)
}
