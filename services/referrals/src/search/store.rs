//! The searches' SQL: a new search, one found by id or key (locked for a step that touches several of its
//! referrals), its referrals, and the placement that closes it.

use placement_proto::v1::ReferralStatus;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::model::{NewSearch, SEARCH_COLUMNS, SearchRow};
use crate::record::model::{REFERRAL_COLUMNS, ReferralRow};

/// Stores a new search; `None` when the sender already used its idempotency key.
pub async fn insert_search(
    conn: &mut PgConnection,
    s: &NewSearch<'_>,
) -> Result<Option<SearchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO searches (id, sender_agency_id, case_id, idempotency_key, created_at)
         VALUES ($1, $2, $3, $4, COALESCE($5, now()))
         ON CONFLICT (sender_agency_id, idempotency_key) DO NOTHING
         RETURNING {SEARCH_COLUMNS}"
    ))
    .bind(s.id)
    .bind(s.sender)
    .bind(s.case_id)
    .bind(s.idempotency_key)
    .bind(s.at)
    .fetch_optional(conn)
    .await
}

pub async fn find_by_idempotency_key(
    pool: &PgPool,
    sender: Uuid,
    key: &str,
) -> Result<Option<SearchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SEARCH_COLUMNS} FROM searches WHERE sender_agency_id = $1 AND idempotency_key = $2"
    ))
    .bind(sender)
    .bind(key)
    .fetch_optional(pool)
    .await
}

pub async fn find_search(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<SearchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SEARCH_COLUMNS} FROM searches WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The search, locked: every step on one of its referrals waits here first.
pub async fn lock_search(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<SearchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SEARCH_COLUMNS} FROM searches WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The search's referrals, in the order their services were asked.
pub async fn referrals_of(
    conn: &mut PgConnection,
    search_id: Uuid,
) -> Result<Vec<ReferralRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE search_id = $1 ORDER BY search_position, id"
    ))
    .bind(search_id)
    .fetch_all(conn)
    .await
}

/// The search of a referral, if it is one of a search's.
pub async fn search_of_referral(
    conn: &mut PgConnection,
    referral_id: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    let found: Option<(Option<Uuid>,)> =
        sqlx::query_as("SELECT search_id FROM referrals WHERE id = $1")
            .bind(referral_id)
            .fetch_optional(conn)
            .await?;
    Ok(found.and_then(|(s,)| s))
}

/// The referrals of the search other than `except` still in `statuses`, in the order asked.
pub async fn others_in(
    conn: &mut PgConnection,
    search_id: Uuid,
    except: Uuid,
    statuses: &[ReferralStatus],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str_name()).collect();
    let ids: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM referrals WHERE search_id = $1 AND id <> $2 AND status = ANY($3)
         ORDER BY search_position, id",
    )
    .bind(search_id)
    .bind(except)
    .bind(&statuses)
    .fetch_all(conn)
    .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// The submitted referrals of the search other than `except` on which `agency` is the foster-care team
/// (and not also the provider) and has not acknowledged, in the order asked.
pub async fn awaiting_foster_team(
    conn: &mut PgConnection,
    search_id: Uuid,
    except: Uuid,
    agency: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let ids: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT r.id FROM referrals r
         JOIN referral_parties p ON p.referral_id = r.id
         WHERE r.search_id = $1 AND r.id <> $2 AND r.status = $4
           AND p.agency_id = $3 AND p.foster_care_team AND NOT p.receiving_provider
           AND p.acknowledged_at IS NULL
         ORDER BY r.search_position, r.id",
    )
    .bind(search_id)
    .bind(except)
    .bind(agency)
    .bind(ReferralStatus::Submitted)
    .fetch_all(conn)
    .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Records the referral whose placement closed the search.
pub async fn record_placement(
    conn: &mut PgConnection,
    search_id: Uuid,
    referral_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE searches SET placed_referral_id = $2 WHERE id = $1")
        .bind(search_id)
        .bind(referral_id)
        .execute(conn)
        .await?;
    Ok(())
}
