//! Case rows and their wire form.

use chrono::{DateTime, Utc};
use placement_platform::time::{opt_timestamp, timestamp};
use placement_proto::v1::{
    Case, CaseChanged, CaseCloseReason, CaseStatus, Child, ChildNeed, Placement, Sex,
};
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

pub const CASE_COLUMNS: &str = "id, owner_agency_id, status, current_setting, opened_at, closed_at, \
     close_reason, placement_referral_id, placement_service_id, placement_provider_agency_id, \
     placement_region_code, placed_at, version";

#[derive(Debug, Clone, FromRow)]
pub struct CaseRow {
    pub id: Uuid,
    pub owner_agency_id: Uuid,
    pub status: CaseStatus,
    pub current_setting: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<CaseCloseReason>,
    pub placement_referral_id: Option<Uuid>,
    pub placement_service_id: Option<Uuid>,
    pub placement_provider_agency_id: Option<Uuid>,
    pub placement_region_code: Option<String>,
    pub placed_at: Option<DateTime<Utc>>,
    pub version: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ChildRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub pseudonym: String,
    pub birth_year: i32,
    pub sex: Sex,
    pub needs: Vec<ChildNeed>,
    pub name_sealed: Option<Vec<u8>>,
    pub personal_number_sealed: Option<Vec<u8>>,
    /// Opened from the sealed columns, for the owner only (see `personal`).
    #[sqlx(skip)]
    pub name: String,
    #[sqlx(skip)]
    pub personal_number: String,
}

impl CaseRow {
    pub fn status(&self) -> CaseStatus {
        self.status
    }

    pub fn into_proto(self, children: Vec<ChildRow>) -> Case {
        let placement = self.placement_referral_id.map(|referral_id| Placement {
            referral_id: referral_id.to_string(),
            service_id: opt_id(self.placement_service_id),
            provider_agency_id: opt_id(self.placement_provider_agency_id),
            region_code: self.placement_region_code.clone().unwrap_or_default(),
            placed_at: opt_timestamp(self.placed_at),
        });
        Case {
            id: self.id.to_string(),
            owner_agency_id: self.owner_agency_id.to_string(),
            status: self.status() as i32,
            children: children.into_iter().map(ChildRow::into_proto).collect(),
            current_setting: self.current_setting,
            placement,
            opened_at: Some(timestamp(self.opened_at)),
            closed_at: opt_timestamp(self.closed_at),
            close_reason: self.close_reason.unwrap_or(CaseCloseReason::Unspecified) as i32,
            version: placement_platform::numbers::serial(self.version),
        }
    }

    /// The event announcing this case's state: ids and counts only.
    pub fn event(&self, children: u32) -> CaseChanged {
        CaseChanged {
            case_id: self.id.to_string(),
            owner_agency_id: self.owner_agency_id.to_string(),
            status: self.status() as i32,
            children,
            referral_id: opt_id(self.placement_referral_id),
            service_id: opt_id(self.placement_service_id),
        }
    }
}

impl ChildRow {
    fn into_proto(self) -> Child {
        Child {
            id: self.id.to_string(),
            pseudonym: self.pseudonym,
            birth_year: self.birth_year,
            sex: self.sex as i32,
            needs: self.needs.iter().map(|n| *n as i32).collect(),
            name: self.name,
            personal_number: self.personal_number,
        }
    }
}

fn opt_id(id: Option<Uuid>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

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

pub async fn child_count(conn: &mut PgConnection, case_id: Uuid) -> Result<u32, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM children WHERE case_id = $1")
        .bind(case_id)
        .fetch_one(conn)
        .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

pub async fn insert_case(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Uuid,
    current_setting: &str,
) -> Result<CaseRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO cases (id, owner_agency_id, status, current_setting) VALUES ($1, $2, $3, $4)
         RETURNING {CASE_COLUMNS}"
    ))
    .bind(id)
    .bind(owner)
    .bind(CaseStatus::Open)
    .bind(current_setting)
    .fetch_one(conn)
    .await
}

/// A child of a new case, its name and personal number sealed.
pub struct NewChild<'a> {
    pub id: Uuid,
    pub case_id: Uuid,
    pub position: i32,
    pub pseudonym: &'a str,
    pub birth_year: i32,
    pub sex: Sex,
    pub needs: Vec<ChildNeed>,
    pub name_sealed: Option<Vec<u8>>,
    pub personal_number_sealed: Option<Vec<u8>>,
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

pub async fn find_case(conn: &mut PgConnection, id: Uuid) -> Result<Option<CaseRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
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

/// The cases `owner` owns, newest first, before `before` (opened at, id).
pub async fn list_cases(
    conn: &mut PgConnection,
    owner: Uuid,
    status: Option<CaseStatus>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE owner_agency_id = "
    ));
    q.push_bind(owner);
    if let Some(status) = status {
        q.push(" AND status = ").push_bind(status);
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

/// Whether a referral of the case is in progress.
pub async fn has_active_referral(
    conn: &mut PgConnection,
    case_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM case_referrals WHERE case_id = $1 AND active)")
        .bind(case_id)
        .fetch_one(conn)
        .await
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

/// Whether `agency` receives (or received and placed) a referral of the case.
pub async fn receives_case(
    conn: &mut PgConnection,
    case_id: Uuid,
    agency: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM case_referrals WHERE case_id = $1 AND open_or_placed
                         AND (receiving_agency_id = $2 OR foster_team_agency_id = $2))",
    )
    .bind(case_id)
    .bind(agency)
    .fetch_one(conn)
    .await
}

/// What the cases service knows of one referral of a case, as of the referral's `version`.
pub struct CaseReferral {
    pub referral_id: Uuid,
    pub case_id: Uuid,
    pub active: bool,
    pub version: i64,
    pub receiving_agency_id: Option<Uuid>,
    pub foster_team_agency_id: Option<Uuid>,
    pub open_or_placed: bool,
}

/// Records what is known of a referral of a case; newer knowledge wins, an older event arriving late
/// changes nothing. Returns whether it changed anything.
pub async fn note_case_referral(
    conn: &mut PgConnection,
    r: &CaseReferral,
) -> Result<bool, sqlx::Error> {
    let applied = sqlx::query(
        "INSERT INTO case_referrals (referral_id, case_id, active, version, receiving_agency_id,
                                     foster_team_agency_id, open_or_placed)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (referral_id) DO UPDATE SET active = EXCLUDED.active, version = EXCLUDED.version,
             receiving_agency_id = EXCLUDED.receiving_agency_id,
             foster_team_agency_id = EXCLUDED.foster_team_agency_id,
             open_or_placed = EXCLUDED.open_or_placed
         WHERE case_referrals.version < EXCLUDED.version",
    )
    .bind(r.referral_id)
    .bind(r.case_id)
    .bind(r.active)
    .bind(r.version)
    .bind(r.receiving_agency_id)
    .bind(r.foster_team_agency_id)
    .bind(r.open_or_placed)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(applied > 0)
}

/// Where the children of a case were placed.
pub struct CasePlacement<'a> {
    pub case_id: Uuid,
    pub referral_id: Uuid,
    pub service_id: Uuid,
    pub provider: Uuid,
    pub region_code: &'a str,
    pub placed_at: DateTime<Utc>,
}

pub async fn place_case(
    conn: &mut PgConnection,
    p: &CasePlacement<'_>,
) -> Result<CaseRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE cases SET status = $2, placement_referral_id = $3, placement_service_id = $4,
             placement_provider_agency_id = $5, placement_region_code = $6, placed_at = $7,
             version = version + 1
         WHERE id = $1 RETURNING {CASE_COLUMNS}"
    ))
    .bind(p.case_id)
    .bind(CaseStatus::Placed)
    .bind(p.referral_id)
    .bind(p.service_id)
    .bind(p.provider)
    .bind(p.region_code)
    .bind(p.placed_at)
    .fetch_one(conn)
    .await
}
