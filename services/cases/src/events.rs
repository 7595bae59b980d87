//! The events the cases service consumes, each routed to the feature it changes: referrals' steps to the
//! cases they are for ([`crate::placements`]).

use placement_messaging::{Event, EventHandler, HandleError, IncomingEvent};
use placement_proto::v1::ReferralEvent;
use sqlx::{Postgres, Transaction};

use crate::{placements, placements::ReferralStep};

/// Where an event goes in the cases service.
pub enum Feature<'a> {
    /// A referral's step its case follows.
    Placements(ReferralStep, &'a ReferralEvent),
}

/// Routes the cases service's incoming events.
pub struct CaseEvents;

impl EventHandler for CaseEvents {
    type Applied = ();
    type Route<'a> = Feature<'a>;

    fn route(event: &Event) -> Option<Feature<'_>> {
        Some(match event {
            Event::ReferralSubmitted(r) => Feature::Placements(ReferralStep::Submitted, r),
            Event::ReferralDeclined(r) => Feature::Placements(ReferralStep::Declined, r),
            Event::ReferralWithdrawn(r) => Feature::Placements(ReferralStep::Withdrawn, r),
            Event::ReferralPlaced(r) => Feature::Placements(ReferralStep::Placed, r),
            // Not subscribed: steps that change nothing on the case, and what others announce.
            Event::AgencyRegistered(_)
            | Event::ServiceRegistered(_)
            | Event::ServiceCapacityChanged(_)
            | Event::CaseOpened(_)
            | Event::CasePlaced(_)
            | Event::CaseClosed(_)
            | Event::ReferralAcknowledged(_)
            | Event::ReferralAccepted(_)
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
            Feature::Placements(step, referral) => {
                placements::apply(tx, step, referral, event).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_messaging::{EventType, Subscriptions};

    /// The queue is bound to what it was before routing was typed.
    #[test]
    fn bindings_are_the_steps_a_case_follows() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.add(CaseEvents);
        assert_eq!(
            subscriptions.bindings(),
            [
                EventType::ReferralSubmitted,
                EventType::ReferralDeclined,
                EventType::ReferralWithdrawn,
                EventType::ReferralPlaced,
            ]
            .map(EventType::as_str)
        );
    }
}
