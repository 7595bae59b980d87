//! The submission's SQL: the new referral, its parties and timers, and the referral an idempotency key
//! already made.

use chrono::{DateTime, Utc};
use placement_proto::v1::ReferralStatus;
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

/// Stores a new referral as SUBMITTED, named `reference`; `None` when the sender already used its
/// idempotency key.
pub async fn insert_referral(
    conn: &mut PgConnection,
    r: &NewReferral<'_>,
    reference: &str,
) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO referrals (id, case_id, sender_agency_id, sender_region_code, service_id,
             receiving_agency_id, receiving_region_code, foster_team_agency_id, receiving_rdsa_agency_id,
             places, legal_basis_kind, legal_basis_number, legal_basis_date, legal_basis_court, reason,
             status, ack_deadline, idempotency_key, created_at, updated_at, youngest_child_age,
             oldest_child_age, search_id, search_position, search_round, reference, urgency, step_deadline)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                 COALESCE($19, now()), COALESCE($19, now()), $20, $21, $22, $23,
                 (SELECT round FROM searches WHERE id = $22), $24, $25, $17)
         ON CONFLICT (sender_agency_id, idempotency_key) DO NOTHING
         RETURNING {REFERRAL_COLUMNS}"
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
    .fetch_optional(conn)
    .await
}

/// Stores the agencies that must acknowledge a new referral.
pub async fn insert_parties(
    conn: &mut PgConnection,
    parties: &[PartyRow],
    created_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for p in parties {
        sqlx::query(
            "INSERT INTO referral_parties (referral_id, agency_id, receiving_provider, foster_care_team, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.referral_id)
        .bind(p.agency_id)
        .bind(p.receiving_provider)
        .bind(p.foster_care_team)
        .bind(created_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
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
