//! Every event the service consumes, routed to the feature it concerns: referral events to
//! [`referrals`], district digests to [`digest`], searches that ran out to [`searches`], endpoint sets to
//! the copy of the directory's [`endpoints`], the names of agencies and services registered to [`names`].

use std::sync::Arc;

use placement_messaging::{Event, EventHandler, HandleError, IncomingEvent};
use placement_proto::v1::{
    AgencyEndpointsChanged, DistrictDigestReady, ReferralEvent, SearchExhausted,
};
use sqlx::{Postgres, Transaction};
use tokio::sync::Notify;

use crate::{
    deliveries::FanOut,
    digest, endpoints,
    inbox::{Added, Arrivals, watch::Watching},
    names, referrals, searches,
};

/// Where an event goes in the notifications service.
pub enum Feature<'a> {
    /// A referral's step, told to the agencies concerned.
    Referral(&'a ReferralEvent),
    /// A district's digest, told to its RDSA.
    Digest(&'a DistrictDigestReady),
    /// An agency's whole set of endpoints.
    Endpoints(&'a AgencyEndpointsChanged),
    /// A search that ran out, told to its sender.
    Search(&'a SearchExhausted),
    /// An agency or service registered: its name, to word notices with.
    Named {
        id: &'a str,
        name: &'a str,
        name_en: &'a str,
    },
}

pub struct Intake {
    /// Wakes the WatchNotifications streams of this instance after a commit.
    pub arrivals: Arrivals,
    /// The agencies this instance's streams watch: a referral's notices are worded for them.
    pub watching: Watching,
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
            | Event::ReferralCourtDecisionRecorded(r)
            | Event::ReferralArrived(r)
            | Event::ReferralPostponed(r) => Feature::Referral(r),
            Event::DistrictDigestReady(d) => Feature::Digest(d),
            Event::AgencyEndpointsChanged(e) => Feature::Endpoints(e),
            Event::SearchExhausted(s) => Feature::Search(s),
            Event::AgencyRegistered(a) => Feature::Named {
                id: &a.agency_id,
                name: &a.name,
                name_en: &a.name_en,
            },
            Event::ServiceRegistered(s) => Feature::Named {
                id: &s.service_id,
                name: &s.name,
                name_en: &s.name_en,
            },
            // Not subscribed: nobody is told of these, and the endpoint disabled is this service's own.
            Event::ServiceCapacityChanged(_)
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
                referrals::tell(&self.fan_out, &self.watching, tx, referral, event).await
            }
            Feature::Digest(d) => digest::tell(&self.fan_out, tx, d, event).await,
            Feature::Search(s) => searches::tell(&self.fan_out, tx, s, event).await,
            Feature::Endpoints(set) => {
                endpoints::apply(tx, set).await?;
                Ok(Added::default())
            }
            Feature::Named { id, name, name_en } => {
                let id = placement_messaging::payload_id("id", id)?;
                names::learn(tx, id, name, name_en).await?;
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
                    || *k == EventType::SearchExhausted.as_str()
                    || *k == EventType::AgencyRegistered.as_str()
                    || *k == EventType::ServiceRegistered.as_str()
            })
            .collect();
        assert_eq!(bound, expected);
        assert_eq!(expected.len(), 17);
    }
}
