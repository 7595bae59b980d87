//! Turns referral events into notifications, one per recipient per event, each with its e-mail and webhook
//! deliveries; keeps the copy of the agencies' endpoints.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use placement_messaging::{EventHandler, EventType, HandleError, IncomingEvent};
use placement_platform::time::{opt_timestamp, timestamp};
use placement_proto::v1::{
    DistrictDigestReady, Language, Notification, NotificationKind, ReferralEvent,
};
use sqlx::{Postgres, Transaction};
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::{
    delivery::{Content, EndpointRow, FanOut, NewNotifications},
    endpoints,
    recipients::{message, recipients},
    store::{self, CreatedRow},
};

pub const BINDINGS: &[&str] = &[
    "referral.*",
    EventType::AgencyEndpointsChanged.as_str(),
    EventType::DistrictDigestReady.as_str(),
];

/// Tells this instance's WatchNotifications streams what a commit added to their agencies' inboxes: only
/// those streams wake, and they send what they are handed without a query when it is next in line.
pub type Arrivals = broadcast::Sender<Arc<[Arrival]>>;

/// A notification this instance has just committed.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub agency: Uuid,
    /// The notification and its position in the agency's inbox; `None`: the stream has to look.
    pub notification: Option<(i64, Notification)>,
}

/// The columns of a `NotificationRow`.
pub(crate) const COLUMNS: &str = "id, sequence, recipient_agency_id, kind, referral_id, event_id, title, body, created_at, read_at";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct NotificationRow {
    pub(crate) id: Uuid,
    pub(crate) sequence: i64,
    pub(crate) recipient_agency_id: Uuid,
    kind: NotificationKind,
    referral_id: Option<Uuid>,
    event_id: Uuid,
    title: String,
    body: String,
    created_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
}

impl NotificationRow {
    pub(crate) fn into_proto(self) -> Notification {
        Notification {
            id: self.id.to_string(),
            recipient_agency_id: self.recipient_agency_id.to_string(),
            kind: self.kind as i32,
            referral_id: self.referral_id.map(|r| r.to_string()).unwrap_or_default(),
            event_id: self.event_id.to_string(),
            title: self.title,
            body: self.body,
            created_at: Some(timestamp(self.created_at)),
            read_at: opt_timestamp(self.read_at),
            sequence: placement_platform::numbers::serial(self.sequence),
            deliveries: Vec::new(),
        }
    }
}

/// What applying one event added.
#[derive(Debug, Default)]
pub struct Added {
    notifications: Vec<Arrival>,
    deliveries: usize,
}

pub struct Inbox {
    /// Wakes the WatchNotifications streams of this instance after a commit.
    pub arrivals: Arrivals,
    /// Wakes the delivery dispatcher after a commit.
    pub deliveries: Arc<Notify>,
    pub fan_out: FanOut,
}

impl EventHandler for Inbox {
    type Applied = Added;

    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &IncomingEvent,
    ) -> Result<Added, HandleError> {
        if event.event_type() == EventType::AgencyEndpointsChanged {
            endpoints::apply(tx, event).await?;
            return Ok(Added::default());
        }
        if event.event_type() == EventType::DistrictDigestReady {
            return self.digest(tx, event).await;
        }
        let referral: ReferralEvent = event.payload()?;
        let Some((kind, agencies)) = recipients(event.event_type(), &referral) else {
            return Err(HandleError::permanent(format!(
                "unexpected event type {}",
                event.event_type()
            )));
        };
        let referral_id = placement_messaging::payload_id("referral_id", &referral.referral_id)?;
        if agencies.is_empty() {
            return Err(HandleError::permanent("the event names no recipient"));
        }
        let (title, body) = message(kind, &referral);
        let ids: Vec<Uuid> = agencies.iter().map(|_| Uuid::now_v7()).collect();
        let rows = store::create_notifications(
            tx,
            &store::EventNotifications {
                ids: &ids,
                agencies: &agencies,
                kind,
                referral_id,
                event_id: event.event_id,
                title: &title,
                body: &body,
                event_type: event.event_type().as_str(),
            },
        )
        .await?;
        let (created, arrivals, endpoints) = by_notification(rows);
        let mut added = Added::default();
        if !endpoints.is_empty() {
            added.deliveries = self
                .fan_out
                .deliver(
                    tx,
                    &NewNotifications {
                        recipients: &created,
                        event_type: event.event_type().as_str(),
                        event_id: event.event_id,
                        occurred_at: event.occurred_at(),
                        referral_id: Some(referral_id),
                    },
                    &endpoints,
                    &Content::Referral {
                        kind,
                        event: &referral,
                    },
                )
                .await?;
        }
        added.notifications = arrivals;
        tracing::info!(
            event_id = %event.event_id,
            %referral_id,
            kind = kind.as_str_name(),
            recipients = agencies.len(),
            deliveries = added.deliveries,
            "notifications created"
        );
        Ok(added)
    }

    fn committed(&self, _event: &IncomingEvent, added: Added) {
        if !added.notifications.is_empty() {
            let _ = self.arrivals.send(added.notifications.into());
        }
        if added.deliveries > 0 {
            self.deliveries.notify_one();
        }
    }
}

impl Inbox {
    /// The RDSA's digest: one notice in its inbox (in Bulgarian) and its e-mail and webhook deliveries.
    /// Once per event, as every notification: a digest sent again by the reports would be a new event.
    async fn digest(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &IncomingEvent,
    ) -> Result<Added, HandleError> {
        let digest: DistrictDigestReady = event.payload()?;
        let agency = placement_messaging::payload_id("rdsa_agency_id", &digest.rdsa_agency_id)?;
        let (title, body) = crate::digest::digest_text(&digest, Language::Bg);
        let notification = Uuid::now_v7();
        store::insert_notice(
            tx,
            notification,
            agency,
            NotificationKind::DistrictDigest,
            event.event_id,
            &title,
            &body,
        )
        .await?;
        let deliveries = self
            .fan_out
            .create(
                tx,
                &NewNotifications {
                    recipients: &[(notification, agency)],
                    event_type: EventType::DistrictDigestReady.as_str(),
                    event_id: event.event_id,
                    occurred_at: event.occurred_at(),
                    referral_id: None,
                },
                &Content::Digest(&digest),
            )
            .await?;
        tracing::info!(event_id = %event.event_id, %agency, region = %digest.region_code, deliveries, "digest told");
        Ok(Added {
            notifications: vec![Arrival {
                agency,
                notification: None,
            }],
            deliveries,
        })
    }
}

/// The notifications created (id, recipient), their arrivals for the streams, and the endpoints to
/// deliver them to, from the rows of [`store::create_notifications`].
fn by_notification(rows: Vec<CreatedRow>) -> (Vec<(Uuid, Uuid)>, Vec<Arrival>, Vec<EndpointRow>) {
    let mut created: Vec<(Uuid, Uuid)> = Vec::new();
    let mut arrivals: Vec<Arrival> = Vec::new();
    let mut endpoints: Vec<EndpointRow> = Vec::new();
    // One row per (notification, endpoint), ordered by agency: a notification's rows are adjacent.
    for row in rows {
        let agency_id = row.notification.recipient_agency_id;
        if created
            .last()
            .is_none_or(|(id, _)| *id != row.notification.id)
        {
            created.push((row.notification.id, agency_id));
            arrivals.push(Arrival {
                agency: agency_id,
                notification: Some((row.position, row.notification.into_proto())),
            });
        }
        if let (Some(id), Some(channel), Some(address), Some(language)) =
            (row.endpoint_id, row.channel, row.address, row.language)
        {
            endpoints.push(EndpointRow {
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
