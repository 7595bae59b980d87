//! A search as stored, what "fitting" means for it, and its wire form.

use chrono::{DateTime, NaiveDate, Utc};
use placement_platform::time::{opt_timestamp, timestamp};
use placement_proto::v1::{Referral, ReferralStatus, Search, SearchExhausted, ServiceType};
use sqlx::FromRow;
use uuid::Uuid;

use crate::{record::model::ReferralRow, referral::ChildrenAges};

/// The columns a [`SearchRow`] is read from.
pub const SEARCH_COLUMNS: &str = "id, sender_agency_id, case_id, idempotency_key, created_at, \
     placed_referral_id, region_codes, service_types, round, exhausted_at, version, needed_by";

#[derive(Debug, Clone, FromRow)]
pub struct SearchRow {
    pub id: Uuid,
    pub sender_agency_id: Uuid,
    pub case_id: Uuid,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
    /// The referral whose placement the sender confirmed; `None` until then.
    pub placed_referral_id: Option<Uuid>,
    /// The districts the sender chose; empty for those of the services asked.
    pub region_codes: Vec<String>,
    /// The types of the services asked.
    pub service_types: Vec<ServiceType>,
    /// The current round: 1, and one more with every extension.
    pub round: i16,
    /// When the current round ran out; `None` while the search waits for an answer.
    pub exhausted_at: Option<DateTime<Utc>>,
    /// Increases with every change the search's events announce.
    pub version: i64,
    /// The day the children need a place by, as the sender gave it.
    pub needed_by: Option<NaiveDate>,
}

/// A new search, as stored.
pub struct NewSearch<'a> {
    pub id: Uuid,
    pub sender: Uuid,
    pub case_id: Uuid,
    pub idempotency_key: &'a str,
    /// Its submission time; `None` for the database's clock.
    pub at: Option<DateTime<Utc>>,
    pub region_codes: &'a [String],
    pub service_types: &'a [ServiceType],
    pub needed_by: Option<NaiveDate>,
}

/// What the search's services fit, read from its referrals: the children (their number and ages) and the
/// services already asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Sought {
    pub places: i32,
    pub ages: ChildrenAges,
    pub asked: Vec<Uuid>,
    /// The districts to look in: the sender's choice, else those of the services asked, in the order asked.
    pub districts: Vec<String>,
}

impl SearchRow {
    /// What the search seeks, from its referrals (every one carries the same children); `None` for a
    /// search without referrals or one whose referrals predate the children's ages.
    pub fn sought(&self, referrals: &[ReferralRow]) -> Option<Sought> {
        let first = referrals.first()?;
        let age = |a: Option<i16>| a.and_then(|a| u32::try_from(a).ok());
        let ages = ChildrenAges {
            youngest: age(first.youngest_child_age)?,
            oldest: age(first.oldest_child_age)?,
        };
        let mut districts = self.region_codes.clone();
        if districts.is_empty() {
            for r in referrals {
                if !districts.contains(&r.receiving_region_code) {
                    districts.push(r.receiving_region_code.clone());
                }
            }
        }
        Some(Sought {
            places: first.places,
            ages,
            asked: referrals.iter().map(|r| r.service_id).collect(),
            districts,
        })
    }

    /// The search with its referrals (in the order their services were asked), the districts it looks in
    /// and, while it is exhausted, the services that fit now; the referral kept as a fallback is the one
    /// that says so.
    pub fn into_proto(
        self,
        referrals: Vec<Referral>,
        districts: Vec<String>,
        suggested: Vec<Uuid>,
    ) -> Search {
        let fallback = referrals.iter().find(|r| r.fallback_until.is_some());
        let (fallback_referral_id, fallback_until) = fallback
            .map(|r| (r.id.clone(), r.fallback_until))
            .unwrap_or_default();
        Search {
            fallback_referral_id,
            fallback_until,
            id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            sender_agency_id: self.sender_agency_id.to_string(),
            referrals,
            placed_referral_id: self
                .placed_referral_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            created_at: Some(timestamp(self.created_at)),
            rounds: u32::try_from(self.round).unwrap_or(0),
            exhausted_at: opt_timestamp(self.exhausted_at),
            needed_by: self.needed_by.map(placement_platform::time::date),
            suggested_service_ids: suggested.iter().map(Uuid::to_string).collect(),
            region_codes: districts,
            service_types: self.service_types.iter().map(|t| *t as i32).collect(),
        }
    }

    /// The event that says the current round ran out, suggesting `suggested`; `referrals` are the
    /// search's, in the order asked, whose references name the search for people.
    pub fn exhausted_event(
        &self,
        suggested: &[Uuid],
        referrals: &[ReferralRow],
    ) -> SearchExhausted {
        SearchExhausted {
            search_id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            sender_agency_id: self.sender_agency_id.to_string(),
            round: u32::try_from(self.round).unwrap_or(0),
            suggested_service_ids: suggested.iter().map(Uuid::to_string).collect(),
            referral_references: (referrals.iter())
                .map(|r| r.reference.clone())
                .filter(|r| !r.is_empty())
                .collect(),
        }
    }
}

/// Whether a request still keeps its search from running out: an offer that holds places or a placement,
/// or a request waiting for an answer within the deadline of its step (the acknowledgement's, or, once
/// acknowledged, the decision's: a late acknowledgement gives the service its own time to decide).
pub fn keeps_search_open(r: &ReferralRow) -> bool {
    use ReferralStatus as S;
    match r.status {
        S::Accepted | S::Placed => true,
        S::Submitted => r.escalated_at.is_none(),
        S::Acknowledged => r.step_escalated_at.is_none(),
        S::Declined | S::Withdrawn | S::Unspecified => false,
    }
}

/// The types of the services asked, each once, in the order first asked.
pub fn distinct_types(types: impl IntoIterator<Item = ServiceType>) -> Vec<ServiceType> {
    let mut out: Vec<ServiceType> = Vec::new();
    for t in types {
        if t != ServiceType::Unspecified && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}
