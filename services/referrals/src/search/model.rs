//! A search as stored, and its wire form.

use chrono::{DateTime, Utc};
use placement_platform::time::timestamp;
use placement_proto::v1::{Referral, Search};
use sqlx::FromRow;
use uuid::Uuid;

/// The columns a [`SearchRow`] is read from.
pub const SEARCH_COLUMNS: &str =
    "id, sender_agency_id, case_id, idempotency_key, created_at, placed_referral_id";

#[derive(Debug, Clone, FromRow)]
pub struct SearchRow {
    pub id: Uuid,
    pub sender_agency_id: Uuid,
    pub case_id: Uuid,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
    /// The referral whose placement the sender confirmed; `None` until then.
    pub placed_referral_id: Option<Uuid>,
}

/// A new search, as stored.
pub struct NewSearch<'a> {
    pub id: Uuid,
    pub sender: Uuid,
    pub case_id: Uuid,
    pub idempotency_key: &'a str,
    /// Its submission time; `None` for the database's clock.
    pub at: Option<DateTime<Utc>>,
}

impl SearchRow {
    /// The search with its referrals, which the caller gives in the order their services were asked.
    pub fn into_proto(self, referrals: Vec<Referral>) -> Search {
        Search {
            id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            sender_agency_id: self.sender_agency_id.to_string(),
            referrals,
            placed_referral_id: self
                .placed_referral_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            created_at: Some(timestamp(self.created_at)),
        }
    }
}
