//! The searches' SQL: a new search, one found by id or key (locked for a step that touches several of its
//! referrals), its referrals, its rounds (a new one, one that ran out), and the placement that closes it.

use chrono::{DateTime, Utc};
use placement_proto::v1::{ReferralStatus, ServiceType};
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
        "INSERT INTO searches (id, sender_agency_id, case_id, idempotency_key, created_at, region_codes,
             service_types, needed_by)
         VALUES ($1, $2, $3, $4, COALESCE($5, now()), $6, $7, $8)
         ON CONFLICT (sender_agency_id, idempotency_key) DO NOTHING
         RETURNING {SEARCH_COLUMNS}"
    ))
    .bind(s.id)
    .bind(s.sender)
    .bind(s.case_id)
    .bind(s.idempotency_key)
    .bind(s.at)
    .bind(s.region_codes)
    .bind(s.service_types)
    .bind(s.needed_by)
    .fetch_optional(conn)
    .await
}

/// Records that round `round` of the search was sent with the key `key`; `None` when a round was already
/// sent with that key.
pub async fn insert_round(
    conn: &mut PgConnection,
    search_id: Uuid,
    round: i16,
    key: &str,
    at: Option<DateTime<Utc>>,
) -> Result<Option<()>, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO search_rounds (search_id, round, idempotency_key, started_at)
         VALUES ($1, $2, $3, COALESCE($4, now()))
         ON CONFLICT (search_id, idempotency_key) DO NOTHING",
    )
    .bind(search_id)
    .bind(round)
    .bind(key)
    .bind(at)
    .execute(conn)
    .await?;
    Ok((done.rows_affected() == 1).then_some(()))
}

/// The round of the search sent with the key `key`, if any.
pub async fn round_of_key(
    conn: &mut PgConnection,
    search_id: Uuid,
    key: &str,
) -> Result<Option<i16>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT round FROM search_rounds WHERE search_id = $1 AND idempotency_key = $2",
    )
    .bind(search_id)
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// Starts the search's next round, which asks services of `types` too: no longer exhausted.
pub async fn next_round(
    conn: &mut PgConnection,
    search_id: Uuid,
    types: &[ServiceType],
) -> Result<SearchRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE searches SET round = round + 1, exhausted_at = NULL, version = version + 1,
             service_types = service_types || ARRAY(
                 SELECT t FROM UNNEST($2::text[]) AS t WHERE NOT (t = ANY(service_types)))
         WHERE id = $1 RETURNING {SEARCH_COLUMNS}"
    ))
    .bind(search_id)
    .bind(types)
    .fetch_one(conn)
    .await
}

/// Records that the search's current round ran out at `at` (`None`: the database's clock), suggesting
/// `suggested`; with whether this is the first time the round ran out (a round that got an offer meanwhile
/// may run out again, and is told once).
pub async fn record_exhausted(
    conn: &mut PgConnection,
    search_id: Uuid,
    at: Option<DateTime<Utc>>,
    suggested: &[Uuid],
) -> Result<(SearchRow, bool), sqlx::Error> {
    let row: SearchRow = sqlx::query_as(&format!(
        "UPDATE searches SET exhausted_at = COALESCE($2, now()), version = version + 1
         WHERE id = $1 RETURNING {SEARCH_COLUMNS}"
    ))
    .bind(search_id)
    .bind(at)
    .fetch_one(&mut *conn)
    .await?;
    let first = sqlx::query(
        "UPDATE search_rounds SET exhausted_at = $3, suggested_service_ids = $4
         WHERE search_id = $1 AND round = $2 AND exhausted_at IS NULL",
    )
    .bind(search_id)
    .bind(row.round)
    .bind(row.exhausted_at)
    .bind(suggested)
    .execute(conn)
    .await?
    .rows_affected()
        == 1;
    Ok((row, first))
}

/// The search waits for an answer again (an offer came after it ran out).
pub async fn reopen(conn: &mut PgConnection, search_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE searches SET exhausted_at = NULL, version = version + 1 WHERE id = $1")
        .bind(search_id)
        .execute(conn)
        .await?;
    Ok(())
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
