//! A new referral's reference, «Н-ВРЦ-2026-00042» (see [`placement_model::reference`] for why this form):
//! the next number of the sending district's counter for the year, taken in the transaction that inserts
//! the referral.

use chrono::{DateTime, Utc};
use placement_model::reference::Reference;
use sqlx::PgConnection;

/// The next reference of `region_code`'s referrals in the year of `at` (now when `None`; Europe/Sofia),
/// the counter raised and held until the transaction ends: a rolled-back submission gives its number
/// back, and submissions from the same district on any instance wait for it, so numbers are unique and
/// follow on. A search takes one per referral, in the order its services were asked. With it, the time of
/// the transaction (the database's `now()`, which an undated referral is written at), so that it is not
/// asked for on its own.
pub async fn next(
    conn: &mut PgConnection,
    region_code: &str,
    at: Option<DateTime<Utc>>,
) -> Result<(String, DateTime<Utc>), sqlx::Error> {
    let (year, number, now): (i32, i32, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO reference_counters AS c (region_code, year, last_number)
         SELECT upper($1), EXTRACT(YEAR FROM COALESCE($2, now()) AT TIME ZONE 'Europe/Sofia')::int,
                skipped + 1
         FROM reference_floor
         ON CONFLICT (region_code, year) DO UPDATE SET last_number = c.last_number + 1
         RETURNING year, last_number, now()",
    )
    .bind(region_code)
    .bind(at)
    .fetch_one(conn)
    .await?;
    let reference = Reference::referral(region_code, year, u32::try_from(number).unwrap_or(0));
    Ok((reference.to_string(), now))
}
