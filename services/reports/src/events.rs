//! The events the reports consume, each routed to the feature it tells of: referrals' steps
//! ([`crate::steps`]), which district each RDSA answers for ([`crate::agencies`]), and the services' places
//! ([`crate::places`]).

use placement_messaging::{Event, EventHandler, HandleError, IncomingEvent};
use placement_proto::v1::{
    AgencyRegistered, ReferralAction, ReferralEvent, ServiceCapacityChanged,
};
use sqlx::{Postgres, Transaction};

use crate::{agencies, places, steps};

/// Where an event goes in the reports.
pub enum Feature<'a> {
    /// An agency's kind and district.
    Agency(&'a AgencyRegistered),
    /// A service's places.
    Service(&'a ServiceCapacityChanged),
    /// A referral's step, and where the referral stands after it.
    Step(ReferralAction, &'a ReferralEvent),
}

/// Routes the reports' incoming events.
pub struct ReportEvents;

impl EventHandler for ReportEvents {
    type Applied = ();
    type Route<'a> = Feature<'a>;

    fn route(event: &Event) -> Option<Feature<'_>> {
        use ReferralAction as Action;
        Some(match event {
            Event::AgencyRegistered(a) => Feature::Agency(a),
            Event::ServiceRegistered(s) | Event::ServiceCapacityChanged(s) => Feature::Service(s),
            Event::ReferralSubmitted(r) => Feature::Step(Action::Submitted, r),
            Event::ReferralAcknowledged(r) => Feature::Step(Action::Acknowledged, r),
            Event::ReferralAccepted(r) => Feature::Step(Action::Accepted, r),
            Event::ReferralDeclined(r) => Feature::Step(Action::Declined, r),
            Event::ReferralWithdrawn(r) => Feature::Step(Action::Withdrawn, r),
            Event::ReferralPlaced(r) => Feature::Step(Action::Placed, r),
            Event::ReferralEscalated(r) => Feature::Step(Action::Escalated, r),
            Event::ReferralReminded(r) => Feature::Step(Action::Reminded, r),
            Event::ReferralCourtDecisionDue(r) => Feature::Step(Action::CourtDecisionDue, r),
            Event::ReferralCourtDecisionRecorded(r) => {
                Feature::Step(Action::CourtDecisionRecorded, r)
            }
            Event::ReferralArrived(r) => Feature::Step(Action::Arrived, r),
            Event::ReferralPostponed(r) => Feature::Step(Action::Postponed, r),
            // Not subscribed: the figures count referrals, not cases, endpoints or their own digests.
            Event::CaseOpened(_)
            | Event::CasePlaced(_)
            | Event::CaseClosed(_)
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
            Feature::Agency(agency) => agencies::learn(tx, agency).await,
            Feature::Service(change) => places::learn(tx, change, event).await,
            Feature::Step(action, referral) => steps::learn(tx, action, referral, event).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_messaging::{EventType, Subscriptions};

    /// The queue is bound to every type its wildcards (`referral.*`, `service.*`) and `agency.registered`
    /// took before routing was typed.
    #[test]
    fn bindings_are_every_referral_and_service_type_and_agencies() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.add(ReportEvents);
        let expected: Vec<&str> = (EventType::ALL.iter())
            .map(|t| t.as_str())
            .filter(|k| {
                k.starts_with("referral.") || k.starts_with("service.") || *k == "agency.registered"
            })
            .collect();
        assert_eq!(subscriptions.bindings(), expected);
        assert_eq!(expected.len(), 15);
    }
}
