//! The reads' SQL: a referral as it is, a page of an agency's referrals, and every referral's changes.

use chrono::{DateTime, Utc};
use placement_proto::v1::ReferralStatus;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::record::model::{REFERRAL_COLUMNS, ReferralRow};

/// The referral as it is.
pub async fn find_referral(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Which referrals a list shows: those an agency sent, or those it is a party to.
pub struct ReferralFilter {
    pub agency: Uuid,
    pub incoming: bool,
    pub status: Option<ReferralStatus>,
    /// Only the referral with this reference (as written).
    pub reference: Option<String>,
    /// Only those created before this (time, id), newest first.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Up to `limit` referrals whose last change is after `after` (time, id), oldest change first.
pub async fn referral_changes(
    conn: &mut PgConnection,
    after: (DateTime<Utc>, Uuid),
    limit: i64,
) -> Result<Vec<ReferralRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE (updated_at, id) > ($1, $2)
         ORDER BY updated_at, id LIMIT $3"
    ))
    .bind(after.0)
    .bind(after.1)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn list_referrals(
    conn: &mut PgConnection,
    filter: &ReferralFilter,
) -> Result<Vec<ReferralRow>, sqlx::Error> {
    let columns = REFERRAL_COLUMNS
        .split(", ")
        .map(|c| format!("r.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {columns} FROM referrals r "));
    if filter.incoming {
        q.push("JOIN referral_parties p ON p.referral_id = r.id WHERE p.agency_id = ")
            .push_bind(filter.agency);
    } else {
        q.push("WHERE r.sender_agency_id = ")
            .push_bind(filter.agency);
    }
    if let Some(status) = filter.status {
        q.push(" AND r.status = ").push_bind(status);
    }
    if let Some(reference) = &filter.reference {
        q.push(" AND r.reference = ").push_bind(reference.clone());
    }
    if let Some((at, id)) = filter.before {
        q.push(" AND (r.created_at, r.id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY r.created_at DESC, r.id DESC LIMIT ")
        .push_bind(filter.limit);
    q.build_query_as().fetch_all(conn).await
}
