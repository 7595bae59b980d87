//! Turns referral events into notifications, one per recipient per event.

use placement_messaging::{EventHandler, HandleError, IncomingEvent};
use placement_proto::v1::ReferralEvent;
use sqlx::{Postgres, Transaction};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::recipients::{message, recipients};

pub const BINDINGS: &[&str] = &["referral.*"];

pub struct Inbox {
    /// Wakes the WatchNotifications streams of this instance after a commit.
    pub arrivals: broadcast::Sender<()>,
}

impl EventHandler for Inbox {
    async fn handle(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
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
        for agency in &agencies {
            sqlx::query(
                "INSERT INTO notifications (id, recipient_agency_id, kind, referral_id, event_id, title, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (event_id, recipient_agency_id) DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(agency)
            .bind(kind.as_str_name())
            .bind(referral_id)
            .bind(event.event_id)
            .bind(&title)
            .bind(&body)
            .execute(&mut **tx)
            .await?;
        }
        tracing::info!(
            event_id = %event.event_id,
            %referral_id,
            kind = kind.as_str_name(),
            recipients = agencies.len(),
            "notifications created"
        );
        Ok(())
    }

    fn committed(&self, _event: &IncomingEvent) {
        let _ = self.arrivals.send(());
    }
}
