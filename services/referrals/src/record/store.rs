//! The statements every feature shares to read a referral's record: its parties, its history, and the
//! whole referral assembled for the wire; and the history entry that every step writes with its change.

use chrono::{DateTime, Utc};
use placement_proto::v1::{Referral, ReferralAction, ReferralStatus};
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::record::model::{HistoryRow, PartyRow, ReferralRow};

pub async fn parties_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<PartyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT referral_id, agency_id, receiving_provider, foster_care_team, acknowledged_at
         FROM referral_parties WHERE referral_id = ANY($1)
         ORDER BY referral_id, receiving_provider DESC, agency_id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Pushes the statement that writes the history entry of the step whose row the CTE `source` returns
/// (`id`, `version`, `status`, `updated_at` among its columns), so the entry is written with the change
/// that it records, in one statement. What it writes is [`HistoryRow::of_step`] of that row.
pub fn push_history_entry(
    q: &mut QueryBuilder<'_, Postgres>,
    source: &str,
    action: ReferralAction,
    from: ReferralStatus,
    actor: Option<Uuid>,
) {
    q.push(
        "INSERT INTO referral_history (referral_id, version, action, from_status, to_status, \
         actor_agency_id, at) SELECT id, version, ",
    )
    .push_bind(action)
    .push(", ")
    .push_bind(HistoryRow::stored_from(from))
    .push(", status, ")
    .push_bind(actor)
    .push(format!(", updated_at FROM {source}"));
}

/// A party or a history entry of a referral: `assemble` reads both in one query.
#[derive(Debug, FromRow)]
struct PartOfReferral {
    referral_id: Uuid,
    is_party: bool,
    agency_id: Option<Uuid>,
    receiving_provider: bool,
    foster_care_team: bool,
    at: Option<DateTime<Utc>>,
    version: i64,
    action: Option<ReferralAction>,
    from_status: Option<ReferralStatus>,
    to_status: Option<ReferralStatus>,
}

/// The parties and history of the referrals `ids`, in one query, each in the order [`assemble`] gives.
pub async fn parts_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<(Vec<PartyRow>, Vec<HistoryRow>), sqlx::Error> {
    let parts: Vec<PartOfReferral> = sqlx::query_as(
        "SELECT referral_id, true AS is_party, agency_id, receiving_provider, foster_care_team,
                acknowledged_at AS at, 0::bigint AS version, NULL::text AS action, NULL::text AS from_status,
                NULL::text AS to_status
         FROM referral_parties WHERE referral_id = ANY($1)
         UNION ALL
         SELECT referral_id, false, actor_agency_id, false, false, at, version, action, from_status, to_status
         FROM referral_history WHERE referral_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    let mut parties = Vec::new();
    let mut history = Vec::new();
    for part in parts {
        if part.is_party {
            if let Some(agency_id) = part.agency_id {
                parties.push(PartyRow {
                    referral_id: part.referral_id,
                    agency_id,
                    receiving_provider: part.receiving_provider,
                    foster_care_team: part.foster_care_team,
                    acknowledged_at: part.at,
                });
            }
        } else if let (Some(at), Some(action), Some(to_status)) =
            (part.at, part.action, part.to_status)
        {
            history.push(HistoryRow {
                referral_id: part.referral_id,
                version: part.version,
                action,
                from_status: part.from_status,
                to_status,
                actor_agency_id: part.agency_id,
                at,
            });
        }
    }
    // The order `parties_of` gives: the receiving provider first, then by agency; history by version.
    parties.sort_by_key(PartyRow::order);
    history.sort_by_key(|h| h.version);
    Ok((parties, history))
}

/// Assembles full referrals from rows, loading their parties and history in one query.
pub async fn assemble(
    conn: &mut PgConnection,
    rows: Vec<ReferralRow>,
) -> Result<Vec<Referral>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let (parties, history) = parts_of(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let p = parties
                .iter()
                .filter(|p| p.referral_id == row.id)
                .cloned()
                .collect();
            let h = history
                .iter()
                .filter(|h| h.referral_id == row.id)
                .cloned()
                .collect();
            row.into_proto(p, h)
        })
        .collect())
}
