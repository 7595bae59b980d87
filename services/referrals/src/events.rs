//! The events the referrals service consumes, each routed to the feature it changes: the directory's
//! agencies ([`crate::agencies`]) and services' places ([`crate::places`]).

use placement_messaging::{Event, EventHandler, HandleError, IncomingEvent};
use placement_proto::v1::{AgencyRegistered, ServiceCapacityChanged};
use sqlx::{Postgres, Transaction};

use crate::{agencies, places};

/// Where an event goes in the referrals service.
pub enum Feature<'a> {
    /// An agency's kind and district.
    Agency(&'a AgencyRegistered),
    /// A service's places.
    Places(&'a ServiceCapacityChanged),
}

/// Routes the referrals service's incoming events.
pub struct ReferralEvents;

impl EventHandler for ReferralEvents {
    type Applied = ();
    type Route<'a> = Feature<'a>;

    fn route(event: &Event) -> Option<Feature<'_>> {
        Some(match event {
            Event::AgencyRegistered(a) => Feature::Agency(a),
            Event::ServiceRegistered(s) | Event::ServiceCapacityChanged(s) => Feature::Places(s),
            // Not subscribed: the service's own events, and what it has no use for.
            Event::CaseOpened(_)
            | Event::CasePlaced(_)
            | Event::CaseClosed(_)
            | Event::ReferralSubmitted(_)
            | Event::ReferralAcknowledged(_)
            | Event::ReferralAccepted(_)
            | Event::ReferralDeclined(_)
            | Event::ReferralWithdrawn(_)
            | Event::ReferralPlaced(_)
            | Event::ReferralEscalated(_)
            | Event::ReferralReminded(_)
            | Event::ReferralCourtDecisionDue(_)
            | Event::ReferralCourtDecisionRecorded(_)
            | Event::ReferralArrived(_)
            | Event::ReferralPostponed(_)
            | Event::AgencyEndpointsChanged(_)
            | Event::NotificationEndpointDisabled(_)
            | Event::DistrictDigestReady(_)
            | Event::SearchExhausted(_) => return None,
        })
    }

    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        route: Feature<'_>,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        match route {
            Feature::Agency(agency) => agencies::remember_agency(tx, agency).await,
            Feature::Places(change) => places::note_places(tx, change, event).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_messaging::{EventType, Subscriptions};

    /// The queue is bound to what it was before routing was typed.
    #[test]
    fn bindings_are_the_agencies_and_the_services_places() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.add(ReferralEvents);
        assert_eq!(
            subscriptions.bindings(),
            [
                EventType::AgencyRegistered,
                EventType::ServiceRegistered,
                EventType::ServiceCapacityChanged,
            ]
            .map(EventType::as_str)
        );
    }
}
