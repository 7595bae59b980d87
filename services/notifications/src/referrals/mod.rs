//! A referral's step, told to the agencies concerned: one notification per recipient per event, each
//! with its e-mail and webhook deliveries, in the transaction that applies the event.

pub mod email;
pub mod facts;
pub mod model;
pub(crate) mod store;

use std::sync::Arc;

use placement_messaging::{HandleError, IncomingEvent};
use placement_proto::v1::ReferralEvent;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{
    channel::Channel,
    deliveries::{
        FanOut,
        model::{Content, NewNotifications, Recipient},
    },
    endpoints::model::DeliveryTarget,
    inbox::{
        model::{Added, Arrival, Committed},
        watch::Watching,
    },
    names::NameBook,
};
use model::{CreatedRow, EventNotifications, recipients};
use prost::Message;

/// A referral event's notifications, one per agency concerned, and their deliveries. The names the
/// notices' words need are read only when something words them now: an e-mail (rendered when created,
/// so that every retry sends the same) or an open stream of a recipient (see [`Watching`]).
pub async fn tell(
    fan_out: &FanOut,
    watching: &Watching,
    tx: &mut Transaction<'_, Postgres>,
    referral: &ReferralEvent,
    event: &IncomingEvent,
) -> Result<Added, HandleError> {
    let Some((kind, agencies)) = recipients(event.event_type(), referral) else {
        return Err(HandleError::permanent(format!(
            "unexpected event type {}",
            event.event_type()
        )));
    };
    let referral_id = placement_messaging::payload_id("referral_id", &referral.referral_id)?;
    if agencies.is_empty() {
        return Err(HandleError::permanent("the event names no recipient"));
    }
    let facts = facts::of(referral);
    let ids: Vec<Uuid> = agencies.iter().map(|_| Uuid::now_v7()).collect();
    let rows = store::create_notifications(
        tx,
        &EventNotifications {
            ids: &ids,
            agencies: &agencies,
            kind,
            referral_id,
            event_id: event.event_id(),
            facts: &facts.encode_to_vec(),
            event_type: event.event_type().as_str(),
            reference: &referral.reference,
        },
    )
    .await?;
    let names = if words_now(&rows, watching) {
        let named = placement_wording::named_ids(&facts);
        Some(Arc::new(crate::names::book_of(&mut **tx, named).await?))
    } else {
        None
    };
    let (created, arrivals, endpoints) = by_notification(rows, names.as_ref());
    let mut added = Added::default();
    if !endpoints.is_empty() {
        added.deliveries = fan_out
            .deliver(
                tx,
                &NewNotifications {
                    recipients: &created,
                    event_type: event.event_type().as_str(),
                    event_id: event.event_id(),
                    occurred_at: event.occurred_at(),
                    referral_id: Some(referral_id),
                },
                &endpoints,
                &Content::Referral {
                    kind,
                    event: referral,
                    facts: &facts,
                    // Without an e-mail among them, the deliveries are webhooks, which name no one.
                    names: names.as_deref().unwrap_or(&NameBook::default()),
                },
            )
            .await?;
    }
    added.notifications = arrivals;
    tracing::info!(
        event_id = %event.event_id(),
        %referral_id,
        kind = kind.as_str_name(),
        recipients = agencies.len(),
        deliveries = added.deliveries,
        "notifications created"
    );
    Ok(added)
}

/// Whether the notifications just created (`rows`) are worded before the commit: when one goes by
/// e-mail, or a stream of this instance watches one of their recipients.
fn words_now(rows: &[CreatedRow], watching: &Watching) -> bool {
    let recipients: Vec<Uuid> = (rows.iter())
        .map(|r| r.notification.recipient_agency_id)
        .collect();
    rows.iter().any(|r| r.channel == Some(Channel::Email)) || watching.any(&recipients)
}

/// The notifications created (id, recipient), their arrivals for the streams (each worded there, in its
/// reader's language, with `names`; without them, a stream looks the notification up itself), and the
/// endpoints to deliver them to, from the rows of [`store::create_notifications`].
fn by_notification(
    rows: Vec<CreatedRow>,
    names: Option<&Arc<NameBook>>,
) -> (Vec<Recipient>, Vec<Arrival>, Vec<DeliveryTarget>) {
    let mut created: Vec<Recipient> = Vec::new();
    let mut arrivals: Vec<Arrival> = Vec::new();
    let mut endpoints: Vec<DeliveryTarget> = Vec::new();
    // One row per (notification, endpoint), ordered by agency: a notification's rows are adjacent.
    for row in rows {
        let agency_id = row.notification.recipient_agency_id;
        if created
            .last()
            .is_none_or(|r| r.notification != row.notification.id)
        {
            created.push(Recipient {
                notification: row.notification.id,
                agency: agency_id,
            });
            arrivals.push(Arrival {
                agency: agency_id,
                notification: names.map(|names| {
                    let committed = Committed {
                        row: row.notification,
                        names: Arc::clone(names),
                    };
                    (row.position, Arc::new(committed))
                }),
            });
        }
        if let (Some(id), Some(channel), Some(address), Some(language)) =
            (row.endpoint_id, row.channel, row.address, row.language)
        {
            endpoints.push(DeliveryTarget {
                agency_id,
                id,
                channel,
                address,
                language,
            });
        }
    }
    (created, arrivals, endpoints)
}
