//! A search that ran out ("search.exhausted"), told to its sender: one notice in its inbox (in Bulgarian)
//! and its e-mail and webhook deliveries, as a referral's step is told.

pub mod model;

use placement_messaging::{EventType, HandleError, IncomingEvent};
use placement_proto::v1::{Language, NotificationKind, SearchExhausted};
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
    let (title, body) = model::exhausted_text(exhausted, Language::Bg);
    let notification = Uuid::now_v7();
    insert_notice(
        tx,
        notification,
        agency,
        NotificationKind::SearchExhausted,
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
                event_type: EventType::SearchExhausted.as_str(),
                event_id: event.event_id(),
                occurred_at: event.occurred_at(),
                referral_id: None,
            },
            &Content::SearchExhausted(exhausted),
        )
        .await?;
    tracing::info!(event_id = %event.event_id(), %agency, %search_id, round = exhausted.round, deliveries, "search exhausted told");
    Ok(Added {
        notifications: vec![Arrival {
            agency,
            notification: None,
        }],
        deliveries,
    })
}
