//! The searches among a side's referrals: a search is one request sent to several services at once
//! (SubmitSearch), and a side sees its requests there (for the receiving side, those to the district's
//! services). A referral sent alone is not a search of one: it is in none of these figures, so that "per
//! search" means what a DSA chose to send at once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use placement_proto::v1::{DistrictSide, ReferralStatus};
use uuid::Uuid;

use super::{
    model::{PLACED_ELSEWHERE, count, durations, earliest},
    span,
    store::Milestones,
};

/// One search as a side sees it: its requests on the side submitted in the period.
struct Seen {
    /// Its first request's submission, from which its times run.
    submitted_at: DateTime<Utc>,
    requests: i64,
    /// Requests accepted, whatever became of them after.
    offers: i64,
    first_offer_at: Option<DateTime<Utc>>,
    /// The placement the sender confirmed.
    chosen_at: Option<DateTime<Utc>>,
    /// Whether a request is still open (neither declined nor withdrawn).
    open: bool,
    /// Whether the children were placed: by a request of it, or elsewhere (a request closed so).
    placed: bool,
}

impl Seen {
    fn new(submitted_at: DateTime<Utc>) -> Seen {
        Seen {
            submitted_at,
            requests: 0,
            offers: 0,
            first_offer_at: None,
            chosen_at: None,
            open: false,
            placed: false,
        }
    }

    fn add(&mut self, m: &Milestones) {
        use ReferralStatus as S;
        self.submitted_at = self.submitted_at.min(m.submitted_at);
        self.requests += 1;
        self.offers += i64::from(m.accepted_at.is_some());
        self.first_offer_at = earliest(self.first_offer_at, m.accepted_at);
        self.chosen_at = earliest(self.chosen_at, m.placed_at);
        self.open |= !matches!(m.status, S::Declined | S::Withdrawn);
        self.placed |= m.placed_at.is_some()
            || (m.status == S::Withdrawn && m.end_reason == Some(PLACED_ELSEWHERE));
    }
}

/// The search figures of a side, from the milestones of its referrals submitted in the period; every other
/// figure is left at its default.
pub fn figures(milestones: &[Milestones]) -> DistrictSide {
    let mut searches: BTreeMap<Uuid, Seen> = BTreeMap::new();
    for m in milestones {
        if let Some(id) = m.search_id {
            (searches.entry(id))
                .or_insert_with(|| Seen::new(m.submitted_at))
                .add(m);
        }
    }
    let spans = |working: bool, to: fn(&Seen) -> Option<DateTime<Utc>>| {
        let each = (searches.values()).map(|s| to(s).map(|at| span(s.submitted_at, at, working)));
        Some(durations(each))
    };
    let total = |of: fn(&Seen) -> i64| count(searches.values().map(of).sum());
    let (first, chosen): (Reached, Reached) = (|s| s.first_offer_at, |s| s.chosen_at);
    DistrictSide {
        searches: total(|_| 1),
        search_services_asked: total(|s| s.requests),
        search_offers: total(|s| s.offers),
        searches_without_place: total(|s| i64::from(!s.open && !s.placed)),
        time_to_first_offer: spans(false, first),
        time_to_chosen_offer: spans(false, chosen),
        working_time_to_first_offer: spans(true, first),
        working_time_to_chosen_offer: spans(true, chosen),
        ..Default::default()
    }
}

type Reached = fn(&Seen) -> Option<DateTime<Utc>>;

#[cfg(test)]
mod tests {
    use super::*;
    use placement_proto::v1::WithdrawReason;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::hours(hours)
    }

    /// A request of `search` submitted at hour 0, in `status`, accepted and placed at those hours.
    fn request(
        search: Option<Uuid>,
        status: ReferralStatus,
        accepted: Option<i64>,
        placed: Option<i64>,
        end_reason: Option<i32>,
    ) -> Milestones {
        Milestones {
            submitted_at: at(0),
            first_answer_at: None,
            all_acks_at: None,
            decided_at: None,
            placed_at: placed.map(at),
            sender_region_code: "SFO".into(),
            receiving_region_code: "VRC".into(),
            service_id: Uuid::new_v4(),
            accepted: accepted.is_some(),
            declined: status == ReferralStatus::Declined,
            search_id: search,
            accepted_at: accepted.map(at),
            status,
            end_reason,
        }
    }

    #[test]
    fn searches_are_counted_apart_from_referrals_sent_alone() {
        use ReferralStatus as S;
        let (placed, closed, open) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let elsewhere = Some(WithdrawReason::PlacedElsewhere as i32);
        let other = Some(WithdrawReason::Reintegrated as i32);
        let m = [
            // Placed: two offers, the first at 3 h, the second chosen at 10 h; one declined, one closed.
            request(Some(placed), S::Withdrawn, Some(3), None, elsewhere),
            request(Some(placed), S::Placed, Some(5), Some(10), None),
            request(Some(placed), S::Declined, None, None, Some(1)),
            // Every request declined or withdrawn (not as placed elsewhere): closed without a place.
            request(Some(closed), S::Declined, None, None, Some(2)),
            request(Some(closed), S::Withdrawn, Some(4), None, other),
            // One still open: not closed.
            request(Some(open), S::Declined, None, None, Some(1)),
            request(Some(open), S::Submitted, None, None, None),
            // Sent alone, accepted and placed: no search.
            request(None, S::Placed, Some(1), Some(2), None),
        ];
        let side = figures(&m);
        assert_eq!(side.searches, 3);
        assert_eq!(side.search_services_asked, 7);
        assert_eq!(side.search_offers, 3);
        assert_eq!(side.searches_without_place, 1);
        let first = side.time_to_first_offer.expect("first offers");
        assert_eq!(first.count, 2);
        assert_eq!(first.slowest.map(|d| d.seconds), Some(4 * 3600));
        let chosen = side.time_to_chosen_offer.expect("chosen offers");
        assert_eq!(
            (chosen.count, chosen.median.map(|d| d.seconds)),
            (1, Some(10 * 3600))
        );
        assert_eq!(side.submitted, 0, "the other figures are not these");
    }
}
