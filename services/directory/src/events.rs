//! The events the directory consumes, each routed to the feature it changes: referrals move places
//! ([`crate::places`]), a notification endpoint given up on is disabled ([`crate::endpoints`]).

use placement_messaging::{EventHandler, EventType, HandleError, IncomingEvent};
use sqlx::{Postgres, Transaction};

use crate::{endpoints, places::PlacesLedger};

/// Every event type the directory consumes; [`DirectoryEvents`] routes each one.
pub const BINDINGS: &[&str] = &[
    EventType::ReferralAccepted.as_str(),
    EventType::ReferralWithdrawn.as_str(),
    EventType::ReferralPlaced.as_str(),
    EventType::NotificationEndpointDisabled.as_str(),
];

/// Routes the directory's incoming events.
pub struct DirectoryEvents;

impl EventHandler for DirectoryEvents {
    type Applied = ();

    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        if event.event_type() == EventType::NotificationEndpointDisabled {
            endpoints::on_disabled(tx, event).await
        } else {
            // The ledger refuses, as permanent, any other type that reaches it.
            PlacesLedger.handle(tx, event).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each type consumed goes to its feature: the referral types are exactly the ones the ledger takes.
    #[test]
    fn bindings_are_the_ledgers_and_the_endpoint_disabled() {
        let mut expected: Vec<&str> = crate::places::BINDINGS.to_vec();
        expected.push(EventType::NotificationEndpointDisabled.as_str());
        assert_eq!(BINDINGS, expected.as_slice());
    }
}
