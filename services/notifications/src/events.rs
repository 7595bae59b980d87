//! Every event the service consumes, routed to the feature it concerns: referral events to
//! [`referrals`], district digests to [`digest`], endpoint sets to the copy of the directory's
//! [`endpoints`].

use std::sync::Arc;

use placement_messaging::{Event, EventHandler, HandleError, IncomingEvent};
use placement_proto::v1::{AgencyEndpointsChanged, DistrictDigestReady, ReferralEvent};
use sqlx::{Postgres, Transaction};
use tokio::sync::Notify;

use crate::{
    deliveries::FanOut,
    digest, endpoints,
    inbox::{Added, Arrivals},
    referrals,
};

/// Where an event goes in the notifications service.
pub enum Feature<'a> {
    /// A referral's step, told to the agencies concerned.
    Referral(&'a ReferralEvent),
    /// A district's digest, told to its RDSA.
    Digest(&'a DistrictDigestReady),
    /// An agency's whole set of endpoints.
    Endpoints(&'a AgencyEndpointsChanged),
}

pub struct Intake {
    /// Wakes the WatchNotifications streams of this instance after a commit.
    pub arrivals: Arrivals,
    /// Wakes the delivery dispatcher after a commit.
    pub deliveries: Arc<Notify>,
    pub fan_out: FanOut,
}

impl EventHandler for Intake {
    type Applied = Added;
    type Route<'a> = Feature<'a>;

    fn route(event: &Event) -> Option<Feature<'_>> {
        Some(match event {
            Event::ReferralSubmitted(r)
            | Event::ReferralAcknowledged(r)
            | Event::ReferralAccepted(r)
            | Event::ReferralDeclined(r)
            | Event::ReferralWithdrawn(r)
            | Event::ReferralPlaced(r)
            | Event::ReferralEscalated(r)
            | Event::ReferralReminded(r)
            | Event::ReferralCourtDecisionDue(r)
            | Event::ReferralCourtDecisionRecorded(r) => Feature::Referral(r),
            Event::DistrictDigestReady(d) => Feature::Digest(d),
            Event::AgencyEndpointsChanged(e) => Feature::Endpoints(e),
            // Not subscribed: nobody is told of these, and the endpoint disabled is this service's own.
            Event::AgencyRegistered(_)
            | Event::ServiceRegistered(_)
            | Event::ServiceCapacityChanged(_)
            | Event::CaseOpened(_)
            | Event::CasePlaced(_)
            | Event::CaseClosed(_)
            | Event::NotificationEndpointDisabled(_) => return None,
        })
    }

    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        route: Feature<'_>,
        event: &IncomingEvent,
    ) -> Result<Added, HandleError> {
        match route {
            Feature::Referral(referral) => {
                referrals::tell(&self.fan_out, tx, referral, event).await
            }
            Feature::Digest(d) => digest::tell(&self.fan_out, tx, d, event).await,
            Feature::Endpoints(set) => {
                endpoints::apply(tx, set).await?;
                Ok(Added::default())
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use placement_messaging::EventType;

    /// The queue is bound to every type its wildcard (`referral.*`) and its two other keys took before
    /// routing was typed.
    #[test]
    fn bindings_are_every_referral_type_the_endpoints_and_the_digest() {
        let bound: Vec<&str> = (EventType::ALL.iter())
            .filter(|t| Intake::subscribes(**t))
            .map(|t| t.as_str())
            .collect();
        let expected: Vec<&str> = (EventType::ALL.iter())
            .map(|t| t.as_str())
            .filter(|k| {
                k.starts_with("referral.")
                    || *k == EventType::AgencyEndpointsChanged.as_str()
                    || *k == EventType::DistrictDigestReady.as_str()
            })
            .collect();
        assert_eq!(bound, expected);
        assert_eq!(expected.len(), 12);
    }
}
