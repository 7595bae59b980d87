//! Turns referral events into notifications, one per recipient per event, each with its e-mail and webhook
//! deliveries; keeps the copy of the agencies' endpoints.

use std::sync::Arc;

use placement_messaging::{EventHandler, HandleError, IncomingEvent, envelope::types};
use placement_proto::v1::ReferralEvent;
use sqlx::{Postgres, Transaction};
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::{
    delivery::{Content, EndpointRow, FanOut, NewNotifications},
    endpoints,
    recipients::{message, recipients},
};

pub const BINDINGS: &[&str] = &["referral.*", types::AGENCY_ENDPOINTS_CHANGED];

/// Tells this instance's WatchNotifications streams whose inboxes a commit added to, so that only those
/// streams look (each look is a query).
pub type Arrivals = broadcast::Sender<Arc<[Uuid]>>;

/// A notification just created, with one of its recipient's endpoints (none: no row of `endpoints`).
#[derive(sqlx::FromRow)]
struct CreatedRow {
    notification_id: Uuid,
    agency_id: Uuid,
    endpoint_id: Option<Uuid>,
    channel: Option<String>,
    address: Option<String>,
    language: Option<String>,
}

/// What applying one event added.
#[derive(Debug, Default)]
pub struct Added {
    recipients: Vec<Uuid>,
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
        tx: &mut Transaction<'static, Postgres>,
        event: &IncomingEvent,
    ) -> Result<Added, HandleError> {
        if event.event_type() == types::AGENCY_ENDPOINTS_CHANGED {
            endpoints::apply(tx, event).await?;
            return Ok(Added::default());
        }
        let referral: ReferralEvent = event.payload()?;
        let Some((kind, agencies)) = recipients(event.event_type(), &referral) else {
            return Err(HandleError::permanent(format!(
                "unexpected event type {}",
                event.event_type()
            )));
        };
        let referral_id = Uuid::parse_str(&referral.referral_id)
            .map_err(|_| HandleError::permanent("referral_id is not a UUID"))?;
        if agencies.is_empty() {
            return Err(HandleError::permanent("the event names no recipient"));
        }
        let (title, body) = message(kind, &referral);
        // One statement for every recipient and the endpoints that want the event (one round trip less
        // on the way to the recipient); an agency already told of this event gets nothing new.
        let ids: Vec<Uuid> = agencies.iter().map(|_| Uuid::now_v7()).collect();
        let rows: Vec<CreatedRow> = sqlx::query_as(
            "WITH created AS (
                 INSERT INTO notifications (id, recipient_agency_id, kind, referral_id, event_id, title, body)
                 SELECT id, agency, $3, $4, $5, $6, $7 FROM unnest($1::uuid[], $2::uuid[]) AS r(id, agency)
                 ON CONFLICT (event_id, recipient_agency_id) DO NOTHING
                 RETURNING id, recipient_agency_id)
             SELECT c.id AS notification_id, c.recipient_agency_id AS agency_id,
                    e.id AS endpoint_id, e.channel, e.address, e.language
             FROM created c
             LEFT JOIN endpoints e ON e.agency_id = c.recipient_agency_id AND e.enabled
                  AND (cardinality(e.event_types) = 0 OR $8 = ANY (e.event_types))
             ORDER BY c.recipient_agency_id, e.id",
        )
        .bind(&ids)
        .bind(&agencies)
        .bind(kind.as_str_name())
        .bind(referral_id)
        .bind(event.event_id)
        .bind(&title)
        .bind(&body)
        .bind(event.event_type())
        .fetch_all(&mut **tx)
        .await?;
        let mut created: Vec<(Uuid, Uuid)> = rows
            .iter()
            .map(|r| (r.notification_id, r.agency_id))
            .collect();
        created.dedup();
        let endpoints: Vec<EndpointRow> = rows
            .into_iter()
            .filter_map(|r| {
                Some(EndpointRow {
                    agency_id: r.agency_id,
                    id: r.endpoint_id?,
                    channel: r.channel?,
                    address: r.address?,
                    language: r.language?,
                })
            })
            .collect();
        let mut added = Added::default();
        if !endpoints.is_empty() {
            added.deliveries = self
                .fan_out
                .deliver(
                    tx,
                    &NewNotifications {
                        recipients: &created,
                        event_type: event.event_type(),
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
        added.recipients = created.into_iter().map(|(_, agency)| agency).collect();
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
        if !added.recipients.is_empty() {
            let _ = self.arrivals.send(added.recipients.into());
        }
        if added.deliveries > 0 {
            self.deliveries.notify_one();
        }
    }
}
