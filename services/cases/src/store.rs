//! Case rows and their wire form.

use chrono::{DateTime, Utc};
use placement_platform::time::{opt_timestamp, timestamp};
use placement_proto::v1::{
    Case, CaseChanged, CaseCloseReason, CaseStatus, Child, ChildNeed, Placement, Sex,
};
use sqlx::{FromRow, PgConnection};
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
