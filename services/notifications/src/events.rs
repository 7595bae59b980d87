//! Every event the service consumes, routed to the feature it concerns: referral events and district
//! digests to the agencies' inboxes, endpoint sets to the copy of the directory's endpoints.

use std::sync::Arc;

use placement_messaging::{EventHandler, EventType, HandleError, IncomingEvent};
use sqlx::{Postgres, Transaction};
use tokio::sync::Notify;

use crate::{
    arrivals::Arrivals,
    delivery::FanOut,
    endpoints,
    inbox::{self, Added},
};

pub const BINDINGS: &[&str] = &[
    "referral.*",
    EventType::AgencyEndpointsChanged.as_str(),
    EventType::DistrictDigestReady.as_str(),
];

pub struct Intake {
    /// Wakes the WatchNotifications streams of this instance after a commit.
    pub arrivals: Arrivals,
    /// Wakes the delivery dispatcher after a commit.
    pub deliveries: Arc<Notify>,
    pub fan_out: FanOut,
}

impl EventHandler for Intake {
    type Applied = Added;

    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &IncomingEvent,
    ) -> Result<Added, HandleError> {
        match event.event_type() {
            EventType::AgencyEndpointsChanged => {
                endpoints::apply(tx, event).await?;
                Ok(Added::default())
            }
            EventType::DistrictDigestReady => inbox::digest(&self.fan_out, tx, event).await,
            // Whatever else is bound is a referral event; one that is not is refused there.
            _ => inbox::referral(&self.fan_out, tx, event).await,
        }
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
