//! Turns referral events and district digests into notifications, one per recipient per event, each with
//! its e-mail and webhook deliveries.

use placement_messaging::{EventType, HandleError, IncomingEvent};
use placement_proto::v1::{DistrictDigestReady, Language, NotificationKind, ReferralEvent};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

pub use crate::arrivals::{Arrival, Arrivals};
use crate::{
    delivery::{Content, DeliveryTarget, FanOut, NewNotifications, Recipient},
    recipients::{message, recipients},
    store::{self, CreatedRow},
};

/// What applying one event added.
#[derive(Debug, Default)]
pub struct Added {
    pub(crate) notifications: Vec<Arrival>,
    pub(crate) deliveries: usize,
}

/// A referral event's notifications, one per agency concerned, and their deliveries.
pub async fn referral(
    fan_out: &FanOut,
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
    let (title, body) = message(kind, referral);
    let ids: Vec<Uuid> = agencies.iter().map(|_| Uuid::now_v7()).collect();
    let rows = store::create_notifications(
        tx,
        &store::EventNotifications {
            ids: &ids,
            agencies: &agencies,
            kind,
            referral_id,
            event_id: event.event_id(),
            title: &title,
            body: &body,
            event_type: event.event_type().as_str(),
        },
    )
    .await?;
    let (created, arrivals, endpoints) = by_notification(rows);
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

/// The RDSA's digest: one notice in its inbox (in Bulgarian) and its e-mail and webhook deliveries.
/// Once per event, as every notification: a digest sent again by the reports would be a new event.
pub async fn digest(
    fan_out: &FanOut,
    tx: &mut Transaction<'_, Postgres>,
    digest: &DistrictDigestReady,
    event: &IncomingEvent,
) -> Result<Added, HandleError> {
    let agency = placement_messaging::payload_id("rdsa_agency_id", &digest.rdsa_agency_id)?;
    let (title, body) = crate::digest::digest_text(digest, Language::Bg);
    let notification = Uuid::now_v7();
    store::insert_notice(
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

/// The notifications created (id, recipient), their arrivals for the streams, and the endpoints to
/// deliver them to, from the rows of [`store::create_notifications`].
fn by_notification(rows: Vec<CreatedRow>) -> (Vec<Recipient>, Vec<Arrival>, Vec<DeliveryTarget>) {
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
                notification: Some((row.position, row.notification.into_proto())),
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
