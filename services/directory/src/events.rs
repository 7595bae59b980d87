//! The events the directory consumes, each routed to the feature it changes: referrals move places
//! ([`crate::social_services::places`]), a notification endpoint given up on is disabled
//! ([`crate::endpoints`]).

use placement_messaging::{Event, EventHandler, HandleError, IncomingEvent};
use placement_proto::v1::{EndpointDisabled, ReferralEvent};
use sqlx::{Postgres, Transaction};

use crate::{
    endpoints,
    social_services::places::{self, ReferralStep},
};

/// Where an event goes in the directory.
pub enum Feature<'a> {
    /// A referral's step that moves its service's places.
    Places(ReferralStep, &'a ReferralEvent),
    /// An endpoint the notifications service gave up on.
    EndpointDisabled(&'a EndpointDisabled),
}

/// Routes the directory's incoming events.
pub struct DirectoryEvents;

impl EventHandler for DirectoryEvents {
    type Applied = ();
    type Route<'a> = Feature<'a>;

    fn route(event: &Event) -> Option<Feature<'_>> {
        Some(match event {
            Event::ReferralAccepted(r) => Feature::Places(ReferralStep::Accepted, r),
            Event::ReferralWithdrawn(r) => Feature::Places(ReferralStep::Withdrawn, r),
            Event::ReferralPlaced(r) => Feature::Places(ReferralStep::Placed, r),
            Event::NotificationEndpointDisabled(d) => Feature::EndpointDisabled(d),
            // Not subscribed: the directory announces these, or has no use for them.
            Event::AgencyRegistered(_)
            | Event::ServiceRegistered(_)
            | Event::ServiceCapacityChanged(_)
            | Event::CaseOpened(_)
            | Event::CasePlaced(_)
            | Event::CaseClosed(_)
            | Event::ReferralSubmitted(_)
            | Event::ReferralAcknowledged(_)
            | Event::ReferralDeclined(_)
            | Event::ReferralEscalated(_)
            | Event::ReferralReminded(_)
            | Event::ReferralCourtDecisionDue(_)
            | Event::ReferralCourtDecisionRecorded(_)
            | Event::ReferralArrived(_)
            | Event::ReferralPostponed(_)
            | Event::AgencyEndpointsChanged(_)
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
            Feature::Places(step, referral) => places::apply(tx, step, referral, event).await,
            Feature::EndpointDisabled(disabled) => {
                endpoints::on_disabled(tx, disabled, event).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_messaging::{EventType, Subscriptions};

    /// The queue is bound to what it was before routing was typed: the three referral steps that move
    /// places, and the endpoint given up on.
    #[test]
    fn bindings_are_the_places_steps_and_the_endpoint_disabled() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.add(DirectoryEvents);
        assert_eq!(
            subscriptions.bindings(),
            [
                EventType::ReferralAccepted,
                EventType::ReferralWithdrawn,
                EventType::ReferralPlaced,
                EventType::NotificationEndpointDisabled,
            ]
            .map(EventType::as_str)
        );
    }
}
