//! Turns referral events into notifications, one per recipient per event, each with its e-mail and webhook
//! deliveries; keeps the copy of the agencies' endpoints.

use std::sync::Arc;

use placement_messaging::{EventHandler, HandleError, IncomingEvent, envelope::types};
use placement_proto::v1::ReferralEvent;
use sqlx::{Postgres, Transaction};
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::{
    delivery::{Content, FanOut, NewNotification},
    endpoints,
    recipients::{message, recipients},
};

pub const BINDINGS: &[&str] = &["referral.*", types::AGENCY_ENDPOINTS_CHANGED];

pub struct Inbox {
    /// Wakes the WatchNotifications streams of this instance after a commit.
    pub arrivals: broadcast::Sender<()>,
    /// Wakes the delivery dispatcher after a commit.
    pub deliveries: Arc<Notify>,
    pub fan_out: FanOut,
}

impl EventHandler for Inbox {
    async fn handle(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        if event.event_type() == types::AGENCY_ENDPOINTS_CHANGED {
            return endpoints::apply(tx, event).await;
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
        let mut deliveries = 0;
        for agency in &agencies {
            let id: Option<Uuid> = sqlx::query_scalar(
                "INSERT INTO notifications (id, recipient_agency_id, kind, referral_id, event_id, title, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (event_id, recipient_agency_id) DO NOTHING RETURNING id",
            )
            .bind(Uuid::now_v7())
            .bind(agency)
            .bind(kind.as_str_name())
            .bind(referral_id)
            .bind(event.event_id)
            .bind(&title)
            .bind(&body)
            .fetch_optional(&mut **tx)
            .await?;
            // Already told of this event: its deliveries were created with it.
            let Some(id) = id else { continue };
            deliveries += self
                .fan_out
                .create(
                    tx,
                    &NewNotification {
                        id,
                        agency: *agency,
                        event_type: event.event_type(),
                        event_id: event.event_id,
                        occurred_at: event.occurred_at(),
                        referral_id: Some(referral_id),
                    },
                    &Content::Referral {
                        kind,
                        event: &referral,
                    },
                )
                .await?;
        }
        tracing::info!(
            event_id = %event.event_id,
            %referral_id,
            kind = kind.as_str_name(),
            recipients = agencies.len(),
            deliveries,
            "notifications created"
        );
        Ok(())
    }

    fn committed(&self, _event: &IncomingEvent) {
        let _ = self.arrivals.send(());
        self.deliveries.notify_one();
    }
}
