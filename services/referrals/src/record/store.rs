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

/// A party or a history entry of a referral: `assemble` and the lock of a step read both in one query.
/// Its columns are named apart from a referral's, so that a statement can return both side by side.
#[derive(Debug, FromRow)]
pub struct PartOfReferral {
    /// None on the one row a statement joining a referral to no parts returns.
    part_of: Option<Uuid>,
    is_party: Option<bool>,
    part_agency_id: Option<Uuid>,
    part_receiving_provider: Option<bool>,
    part_foster_care_team: Option<bool>,
    part_at: Option<DateTime<Utc>>,
    part_version: Option<i64>,
    part_action: Option<ReferralAction>,
    part_from_status: Option<ReferralStatus>,
    part_to_status: Option<ReferralStatus>,
}

/// The query of the parts of the referrals `referral_id` is compared with by `matching` (`= ANY($1)`, or
/// `= asked.id` inside a larger statement), as [`PartOfReferral`] reads them.
pub fn parts_query(matching: &str) -> String {
    format!(
        "SELECT referral_id AS part_of, true AS is_party, agency_id AS part_agency_id,
                receiving_provider AS part_receiving_provider, foster_care_team AS part_foster_care_team,
                acknowledged_at AS part_at, 0::bigint AS part_version, NULL::text AS part_action,
                NULL::text AS part_from_status, NULL::text AS part_to_status
         FROM referral_parties WHERE referral_id {matching}
         UNION ALL
         SELECT referral_id, false, actor_agency_id, false, false, at, version, action, from_status, to_status
         FROM referral_history WHERE referral_id {matching}"
    )
}

/// The parties and history of the referrals `ids`, in one query, each in the order [`assemble`] gives.
pub async fn parts_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<(Vec<PartyRow>, Vec<HistoryRow>), sqlx::Error> {
    let parts: Vec<PartOfReferral> = sqlx::query_as(&parts_query("= ANY($1)"))
        .bind(ids)
        .fetch_all(conn)
        .await?;
    Ok(split_parts(parts))
}

/// Parts as parties and history, each in the order [`parties_of`] and the history's versions give.
pub fn split_parts(parts: Vec<PartOfReferral>) -> (Vec<PartyRow>, Vec<HistoryRow>) {
    let mut parties = Vec::new();
    let mut history = Vec::new();
    for part in parts {
        let Some(referral_id) = part.part_of else {
            continue;
        };
        match (part.is_party, part.part_agency_id) {
            (Some(true), Some(agency_id)) => parties.push(PartyRow {
                referral_id,
                agency_id,
                receiving_provider: part.part_receiving_provider.unwrap_or(false),
                foster_care_team: part.part_foster_care_team.unwrap_or(false),
                acknowledged_at: part.part_at,
            }),
            (Some(false), actor_agency_id) => {
                if let (Some(at), Some(action), Some(to_status), Some(version)) = (
                    part.part_at,
                    part.part_action,
                    part.part_to_status,
                    part.part_version,
                ) {
                    history.push(HistoryRow {
                        referral_id,
                        version,
                        action,
                        from_status: part.part_from_status,
                        to_status,
                        actor_agency_id,
                        at,
                    });
                }
            }
            _ => {}
        }
    }
    // The order `parties_of` gives: the receiving provider first, then by agency; history by version.
    parties.sort_by_key(PartyRow::order);
    history.sort_by_key(|h| h.version);
    (parties, history)
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
