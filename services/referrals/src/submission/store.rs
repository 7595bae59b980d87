//! The submission's SQL: the new referral with its parties and history entry, its timers, and the
//! referral an idempotency key already made.

use chrono::{DateTime, Utc};
use placement_proto::v1::{ReferralAction, ReferralStatus};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::model::NewReferral;
use crate::{
    record::model::{PartyRow, REFERRAL_COLUMNS, ReferralRow},
    referral::Timer,
};

pub async fn start_timers(
    conn: &mut PgConnection,
    referral_id: Uuid,
    timers: &[(Timer, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    let steps: Vec<&str> = timers.iter().map(|(t, _)| t.stored()).collect();
    let due: Vec<DateTime<Utc>> = timers.iter().map(|(_, at)| *at).collect();
    sqlx::query(
        "INSERT INTO referral_timers (referral_id, step, due_at)
         SELECT $1, step, due_at FROM UNNEST($2::text[], $3::timestamptz[]) AS t (step, due_at)",
    )
    .bind(referral_id)
    .bind(&steps)
    .bind(&due)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a new referral as SUBMITTED, named `reference`, with the agencies that must acknowledge it
/// (`parties`) and its history entry, in one statement; `None` (and nothing stored) when the sender
/// already used its idempotency key. The entry is [`crate::record::model::HistoryRow::of_step`] of the
/// row, by the sender.
pub async fn insert_referral(
    conn: &mut PgConnection,
    r: &NewReferral<'_>,
    reference: &str,
    parties: &[PartyRow],
) -> Result<Option<ReferralRow>, sqlx::Error> {
    let agencies: Vec<Uuid> = parties.iter().map(|p| p.agency_id).collect();
    let providers: Vec<bool> = parties.iter().map(|p| p.receiving_provider).collect();
    let teams: Vec<bool> = parties.iter().map(|p| p.foster_care_team).collect();
    sqlx::query_as(&format!(
        "WITH inserted AS (
         INSERT INTO referrals (id, case_id, sender_agency_id, sender_region_code, service_id,
             receiving_agency_id, receiving_region_code, foster_team_agency_id, receiving_rdsa_agency_id,
             places, legal_basis_kind, legal_basis_number, legal_basis_date, legal_basis_court, reason,
             status, ack_deadline, idempotency_key, created_at, updated_at, youngest_child_age,
             oldest_child_age, search_id, search_position, search_round, reference, urgency, step_deadline)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                 COALESCE($19, now()), COALESCE($19, now()), $20, $21, $22, $23,
                 (SELECT round FROM searches WHERE id = $22), $24, $25, $17)
         ON CONFLICT (sender_agency_id, idempotency_key) DO NOTHING
         RETURNING {REFERRAL_COLUMNS}),
         parties AS (
         INSERT INTO referral_parties (referral_id, agency_id, receiving_provider, foster_care_team, created_at)
         SELECT inserted.id, p.agency_id, p.receiving_provider, p.foster_care_team, inserted.created_at
         FROM inserted, UNNEST($26::uuid[], $27::bool[], $28::bool[])
             AS p (agency_id, receiving_provider, foster_care_team)),
         noted AS (
         INSERT INTO referral_history (referral_id, version, action, from_status, to_status,
             actor_agency_id, at)
         SELECT id, version, $29, NULL, status, sender_agency_id, updated_at FROM inserted)
         SELECT {REFERRAL_COLUMNS} FROM inserted"
    ))
    .bind(r.id)
    .bind(r.case_id)
    .bind(r.sender)
    .bind(r.sender_region)
    .bind(r.service_id)
    .bind(r.provider)
    .bind(r.region_code)
    .bind(r.foster_team)
    .bind(r.rdsa)
    .bind(r.places)
    .bind(r.legal_basis_kind)
    .bind(r.legal_basis_number)
    .bind(r.legal_basis_date)
    .bind(r.legal_basis_court)
    .bind(r.reason)
    .bind(ReferralStatus::Submitted)
    .bind(r.ack_deadline)
    .bind(r.idempotency_key)
    .bind(r.at)
    .bind(i16::try_from(r.ages.youngest).unwrap_or(i16::MAX))
    .bind(i16::try_from(r.ages.oldest).unwrap_or(i16::MAX))
    .bind(r.search.map(|(search, _)| search))
    .bind(r.search.map(|(_, position)| position))
    .bind(reference)
    .bind(r.urgency)
    .bind(&agencies)
    .bind(&providers)
    .bind(&teams)
    .bind(ReferralAction::Submitted)
    .fetch_optional(conn)
    .await
}

pub async fn find_by_idempotency_key(
    pool: &PgPool,
    sender: Uuid,
    key: &str,
) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE sender_agency_id = $1 AND idempotency_key = $2"
    ))
    .bind(sender)
    .bind(key)
    .fetch_optional(pool)
    .await
}
