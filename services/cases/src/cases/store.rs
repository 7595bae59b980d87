//! The cases' SQL: cases and their children, opened, read, listed, closed and placed.

use chrono::{DateTime, Utc};
use placement_proto::v1::{CaseCloseReason, CaseStatus};
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::model::{CasePlacement, CaseRow, ChildRow, NewChild};

pub const CASE_COLUMNS: &str = "id, owner_agency_id, status, current_setting, opened_at, closed_at, \
     close_reason, placement_referral_id, placement_service_id, placement_provider_agency_id, \
     placement_region_code, placed_at, version, reference, placement_referral_reference";

/// Children of the given cases, in their order within each case.
pub async fn children_of(
    conn: &mut PgConnection,
    case_ids: &[Uuid],
) -> Result<Vec<ChildRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, case_id, pseudonym, birth_year, sex, needs, name_sealed, personal_number_sealed FROM children
         WHERE case_id = ANY($1) ORDER BY case_id, position",
    )
    .bind(case_ids)
    .fetch_all(conn)
    .await
}

pub async fn insert_case(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Uuid,
    current_setting: &str,
    reference: &str,
) -> Result<CaseRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO cases (id, owner_agency_id, status, current_setting, reference)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING {CASE_COLUMNS}"
    ))
    .bind(id)
    .bind(owner)
    .bind(CaseStatus::Open)
    .bind(current_setting)
    .bind(reference)
    .fetch_one(conn)
    .await
}

pub async fn insert_child(conn: &mut PgConnection, c: &NewChild<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO children (id, case_id, position, pseudonym, birth_year, sex, needs,
                               name_sealed, personal_number_sealed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(c.id)
    .bind(c.case_id)
    .bind(c.position)
    .bind(c.pseudonym)
    .bind(c.birth_year)
    .bind(c.sex.as_str_name())
    .bind(&c.needs)
    .bind(&c.name_sealed)
    .bind(&c.personal_number_sealed)
    .execute(conn)
    .await?;
    Ok(())
}

/// The case with its children, in their order, read together (one round trip, one snapshot).
pub async fn find_case_with_children(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<(CaseRow, Vec<ChildRow>)>, sqlx::Error> {
    // The children's columns are renamed: a case's columns hold `id` already.
    let rows = sqlx::query(&format!(
        "SELECT {CASE_COLUMNS}, ch.* FROM cases
         LEFT JOIN LATERAL (
             SELECT id AS child_id, position AS child_position, pseudonym, birth_year, sex, needs,
                    name_sealed, personal_number_sealed
             FROM children WHERE case_id = cases.id) ch ON true
         WHERE id = $1 ORDER BY ch.child_position"
    ))
    .bind(id)
    .fetch_all(conn)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let case = CaseRow::from_row(first)?;
    let mut children = Vec::with_capacity(rows.len());
    for row in &rows {
        // A case without children is one row with none.
        let Some(child_id) = row.try_get::<Option<Uuid>, _>("child_id")? else {
            continue;
        };
        children.push(ChildRow {
            id: child_id,
            case_id: case.id,
            pseudonym: row.try_get("pseudonym")?,
            birth_year: row.try_get("birth_year")?,
            sex: row.try_get("sex")?,
            needs: row.try_get("needs")?,
            name_sealed: row.try_get("name_sealed")?,
            personal_number_sealed: row.try_get("personal_number_sealed")?,
            name: String::new(),
            personal_number: String::new(),
        });
    }
    Ok(Some((case, children)))
}

/// The case, locked until the transaction ends.
pub async fn lock_case(conn: &mut PgConnection, id: Uuid) -> Result<Option<CaseRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Which of its cases an agency lists.
pub struct CaseFilter<'a> {
    pub owner: Uuid,
    pub status: Option<CaseStatus>,
    /// Only the case with this reference (as written).
    pub reference: Option<&'a str>,
}

/// The cases `filter.owner` owns, newest first, before `before` (opened at, id).
pub async fn list_cases(
    conn: &mut PgConnection,
    filter: &CaseFilter<'_>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE owner_agency_id = "
    ));
    q.push_bind(filter.owner);
    if let Some(status) = filter.status {
        q.push(" AND status = ").push_bind(status);
    }
    if let Some(reference) = filter.reference {
        q.push(" AND reference = ").push_bind(reference.to_string());
    }
    if let Some((at, id)) = before {
        q.push(" AND (opened_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY opened_at DESC, id DESC LIMIT ")
        .push_bind(limit);
    q.build_query_as().fetch_all(conn).await
}

pub async fn close_case(
    conn: &mut PgConnection,
    id: Uuid,
    reason: CaseCloseReason,
) -> Result<CaseRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE cases SET status = $2, close_reason = $3, closed_at = now(), version = version + 1
         WHERE id = $1 RETURNING {CASE_COLUMNS}"
    ))
    .bind(id)
    .bind(CaseStatus::Closed)
    .bind(reason)
    .fetch_one(conn)
    .await
}

/// Places the case; returns it, and how many children it has (for its event).
pub async fn place_case(
    conn: &mut PgConnection,
    p: &CasePlacement<'_>,
) -> Result<(CaseRow, u32), sqlx::Error> {
    let row = sqlx::query(&format!(
        "UPDATE cases SET status = $2, placement_referral_id = $3, placement_service_id = $4,
             placement_provider_agency_id = $5, placement_region_code = $6, placed_at = $7,
             placement_referral_reference = NULLIF($8, ''), version = version + 1
         WHERE id = $1
         RETURNING {CASE_COLUMNS}, (SELECT count(*) FROM children WHERE case_id = $1) AS children"
    ))
    .bind(p.case_id)
    .bind(CaseStatus::Placed)
    .bind(p.referral_id)
    .bind(p.service_id)
    .bind(p.provider)
    .bind(p.region_code)
    .bind(p.placed_at)
    .bind(p.referral_reference)
    .fetch_one(conn)
    .await?;
    let children: i64 = row.try_get("children")?;
    Ok((
        CaseRow::from_row(&row)?,
        u32::try_from(children).unwrap_or(u32::MAX),
    ))
}
