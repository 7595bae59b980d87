//! A new case's reference, «С-2026-00042» (see [`placement_model::reference`] for why this form): the
//! next number of the year's counter, taken in the transaction that opens the case.

use placement_model::reference::Reference;
use sqlx::PgConnection;

/// The next case reference of this year (Europe/Sofia), the year's counter raised and held until the
/// transaction ends: a rolled-back opening gives its number back, and openings on other instances wait for
/// it, so numbers are unique and follow on.
pub async fn next(conn: &mut PgConnection) -> Result<String, sqlx::Error> {
    let (year, number): (i32, i32) = sqlx::query_as(
        "INSERT INTO reference_counters AS c (year, last_number)
         SELECT EXTRACT(YEAR FROM now() AT TIME ZONE 'Europe/Sofia')::int, skipped + 1 FROM reference_floor
         ON CONFLICT (year) DO UPDATE SET last_number = c.last_number + 1
         RETURNING year, last_number",
    )
    .fetch_one(conn)
    .await?;
    Ok(Reference::case(year, u32::try_from(number).unwrap_or(0)).to_string())
}
