//! The directory's SQL: rows of its tables, their wire form, and one function per statement.

use chrono::{DateTime, Utc};
use placement_platform::time::timestamp;
use placement_proto::v1::{
    Agency, AgencyKind, ContactEndpoint, EndpointSnapshot, Language, Municipality,
    NotificationChannel, NotificationEndpoint, Region, ServiceCapacityChanged, ServiceStatus,
    ServiceType, SocialService,
};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection, PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::social_service::PlacesAndAges;

pub const AGENCY_COLUMNS: &str =
    "id, kind, name, region_code, municipality_code, contacts, created_at";
pub const SERVICE_COLUMNS: &str = "id, provider_agency_id, type, name, region_code, municipality_code, \
     capacity, held_places, occupied_places, min_age, max_age, status, version, updated_at";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contact {
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct AgencyRow {
    pub id: Uuid,
    pub kind: AgencyKind,
    pub name: String,
    pub region_code: Option<String>,
    pub municipality_code: Option<String>,
    pub contacts: sqlx::types::Json<Vec<Contact>>,
    pub created_at: DateTime<Utc>,
}

impl AgencyRow {
    pub fn kind(&self) -> AgencyKind {
        self.kind
    }

    pub fn into_proto(self) -> Agency {
        Agency {
            id: self.id.to_string(),
            kind: self.kind() as i32,
            name: self.name,
            region_code: self.region_code.unwrap_or_default(),
            municipality_code: self.municipality_code.unwrap_or_default(),
            contacts: self
                .contacts
                .0
                .into_iter()
                .map(|c| ContactEndpoint {
                    kind: c.kind,
                    value: c.value,
                })
                .collect(),
            created_at: Some(timestamp(self.created_at)),
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct ServiceRow {
    pub id: Uuid,
    pub provider_agency_id: Uuid,
    #[sqlx(rename = "type")]
    pub service_type: ServiceType,
    pub name: String,
    pub region_code: String,
    pub municipality_code: String,
    pub capacity: i32,
    pub held_places: i32,
    pub occupied_places: i32,
    pub min_age: i32,
    pub max_age: i32,
    pub status: ServiceStatus,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl ServiceRow {
    /// Places neither held nor occupied. Never below zero, even when a capacity cut raced an acceptance.
    pub fn free_places(&self) -> u32 {
        placement_platform::numbers::count(self.capacity - self.held_places - self.occupied_places)
    }

    pub fn service_type(&self) -> ServiceType {
        self.service_type
    }

    pub fn status(&self) -> ServiceStatus {
        self.status
    }

    pub fn to_proto(&self) -> SocialService {
        SocialService {
            id: self.id.to_string(),
            provider_agency_id: self.provider_agency_id.to_string(),
            r#type: self.service_type() as i32,
            name: self.name.clone(),
            region_code: self.region_code.clone(),
            municipality_code: self.municipality_code.clone(),
            capacity: placement_platform::numbers::count(self.capacity),
            free_places: self.free_places(),
            held_places: placement_platform::numbers::count(self.held_places),
            occupied_places: placement_platform::numbers::count(self.occupied_places),
            min_age: placement_platform::numbers::count(self.min_age),
            max_age: placement_platform::numbers::count(self.max_age),
            status: self.status() as i32,
            version: placement_platform::numbers::serial(self.version),
            updated_at: Some(timestamp(self.updated_at)),
        }
    }

    /// The event announcing this row's places after a change.
    pub fn capacity_event(
        &self,
        change: placement_proto::v1::CapacityChange,
        referral_id: Option<Uuid>,
        places: u32,
    ) -> ServiceCapacityChanged {
        ServiceCapacityChanged {
            service_id: self.id.to_string(),
            provider_agency_id: self.provider_agency_id.to_string(),
            region_code: self.region_code.clone(),
            service_type: self.service_type() as i32,
            status: self.status() as i32,
            capacity: placement_platform::numbers::count(self.capacity),
            free_places: self.free_places(),
            held_places: placement_platform::numbers::count(self.held_places),
            occupied_places: placement_platform::numbers::count(self.occupied_places),
            change: change as i32,
            referral_id: referral_id.map(|r| r.to_string()).unwrap_or_default(),
            places,
            min_age: Some(placement_platform::numbers::count(self.min_age)),
            max_age: Some(placement_platform::numbers::count(self.max_age)),
        }
    }
}

pub async fn regions(pool: &PgPool) -> Result<Vec<Region>, sqlx::Error> {
    let rows = sqlx::query("SELECT code, name_bg, name_en FROM regions ORDER BY code")
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Region {
                code: r.try_get("code")?,
                name_bg: r.try_get("name_bg")?,
                name_en: r.try_get("name_en")?,
            })
        })
        .collect()
}

/// The municipalities of a district, or of the country when `region_code` is empty.
pub async fn municipalities(
    pool: &PgPool,
    region_code: &str,
) -> Result<Vec<Municipality>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT code, region_code, name_bg, name_en FROM municipalities
         WHERE ($1 = '' OR region_code = $1) ORDER BY code",
    )
    .bind(region_code)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Municipality {
                code: r.try_get("code")?,
                region_code: r.try_get("region_code")?,
                name_bg: r.try_get("name_bg")?,
                name_en: r.try_get("name_en")?,
            })
        })
        .collect()
}

pub async fn region_exists(pool: &PgPool, code: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM regions WHERE code = $1)")
        .bind(code)
        .fetch_one(pool)
        .await
}

pub async fn region_of_municipality(
    pool: &PgPool,
    code: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT region_code FROM municipalities WHERE code = $1")
        .bind(code)
        .fetch_optional(pool)
        .await
}

/// Agencies by id, of a district (empty: all) and a kind (None: all), after `after`.
pub async fn list_agencies(
    pool: &PgPool,
    region_code: &str,
    kind: Option<AgencyKind>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AgencyRow>, sqlx::Error> {
    let mut q =
        QueryBuilder::<Postgres>::new(format!("SELECT {AGENCY_COLUMNS} FROM agencies WHERE true"));
    if !region_code.is_empty() {
        q.push(" AND region_code = ").push_bind(region_code);
    }
    if let Some(kind) = kind {
        q.push(" AND kind = ").push_bind(kind.as_str_name());
    }
    if let Some(after) = after {
        q.push(" AND id > ").push_bind(after);
    }
    q.push(" ORDER BY id LIMIT ").push_bind(limit);
    q.build_query_as().fetch_all(pool).await
}

pub async fn find_agency(pool: &PgPool, id: Uuid) -> Result<Option<AgencyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AGENCY_COLUMNS} FROM agencies WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub async fn find_service(pool: &PgPool, id: Uuid) -> Result<Option<ServiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The service, locked until the transaction ends.
pub async fn lock_service(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ServiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub struct NewAgency<'a> {
    pub id: Uuid,
    pub kind: AgencyKind,
    pub name: &'a str,
    /// Empty for the national authority.
    pub region_code: &'a str,
    /// Empty when the agency is not tied to one municipality.
    pub municipality_code: &'a str,
    pub contacts: Vec<Contact>,
}

pub async fn insert_agency(
    conn: &mut PgConnection,
    a: &NewAgency<'_>,
) -> Result<AgencyRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO agencies (id, kind, name, region_code, municipality_code, contacts)
         VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6) RETURNING {AGENCY_COLUMNS}"
    ))
    .bind(a.id)
    .bind(a.kind)
    .bind(a.name)
    .bind(a.region_code)
    .bind(a.municipality_code)
    .bind(sqlx::types::Json(&a.contacts))
    .fetch_one(conn)
    .await
}

pub struct NewService<'a> {
    pub id: Uuid,
    pub provider: Uuid,
    pub service_type: ServiceType,
    pub name: &'a str,
    pub region_code: &'a str,
    pub municipality_code: &'a str,
    pub places: PlacesAndAges,
}

/// Registers an active service.
pub async fn insert_service(
    conn: &mut PgConnection,
    s: &NewService<'_>,
) -> Result<ServiceRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO services (id, provider_agency_id, type, name, region_code, municipality_code,
             capacity, occupied_places, min_age, max_age, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {SERVICE_COLUMNS}"
    ))
    .bind(s.id)
    .bind(s.provider)
    .bind(s.service_type)
    .bind(s.name)
    .bind(s.region_code)
    .bind(s.municipality_code)
    .bind(s.places.capacity)
    .bind(s.places.occupied)
    .bind(s.places.min_age)
    .bind(s.places.max_age)
    .bind(ServiceStatus::Active)
    .fetch_one(conn)
    .await
}

pub async fn set_capacity(
    conn: &mut PgConnection,
    id: Uuid,
    capacity: i32,
    occupied: i32,
    status: ServiceStatus,
) -> Result<ServiceRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE services SET capacity = $2, occupied_places = $3, status = $4,
             version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING {SERVICE_COLUMNS}"
    ))
    .bind(id)
    .bind(capacity)
    .bind(occupied)
    .bind(status)
    .fetch_one(conn)
    .await
}

/// What a search for services asks: most free places first.
pub struct ServiceSearch<'a> {
    pub status: ServiceStatus,
    pub region_code: &'a str,
    pub exclude_region_code: &'a str,
    pub service_type: Option<ServiceType>,
    pub min_free_places: i32,
    pub child_age: Option<i32>,
    /// After (free places, id) of the last one seen.
    pub after: Option<(i32, Uuid)>,
    pub limit: i64,
}

pub async fn search_services(
    pool: &PgPool,
    f: &ServiceSearch<'_>,
) -> Result<Vec<ServiceRow>, sqlx::Error> {
    const FREE: &str = "GREATEST(capacity - held_places - occupied_places, 0)";
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE status = "
    ));
    q.push_bind(f.status.as_str_name());
    if !f.region_code.is_empty() {
        q.push(" AND region_code = ").push_bind(f.region_code);
    }
    if !f.exclude_region_code.is_empty() {
        q.push(" AND region_code <> ")
            .push_bind(f.exclude_region_code);
    }
    if let Some(service_type) = f.service_type {
        q.push(" AND type = ").push_bind(service_type.as_str_name());
    }
    if f.min_free_places > 0 {
        q.push(format!(" AND {FREE} >= "))
            .push_bind(f.min_free_places);
    }
    if let Some(age) = f.child_age {
        q.push(" AND min_age <= ")
            .push_bind(age)
            .push(" AND max_age >= ")
            .push_bind(age);
    }
    if let Some((free, id)) = f.after {
        q.push(format!(" AND ({FREE} < "))
            .push_bind(free)
            .push(format!(" OR ({FREE} = "))
            .push_bind(free)
            .push(" AND id > ")
            .push_bind(id)
            .push("))");
    }
    q.push(format!(" ORDER BY {FREE} DESC, id LIMIT "))
        .push_bind(f.limit);
    q.build_query_as().fetch_all(pool).await
}

/// The state of the places a referral holds, locked until the transaction ends.
pub async fn lock_hold_state(
    conn: &mut PgConnection,
    referral_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT state FROM place_holds WHERE referral_id = $1 FOR UPDATE")
        .bind(referral_id)
        .fetch_optional(conn)
        .await
}

/// Records the state of the places a referral holds at a service.
pub async fn set_hold(
    conn: &mut PgConnection,
    referral_id: Uuid,
    service_id: Uuid,
    places: i32,
    state: &str,
    referral_version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO place_holds (referral_id, service_id, places, state, referral_version)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (referral_id) DO UPDATE SET state = EXCLUDED.state,
             referral_version = EXCLUDED.referral_version, updated_at = now()",
    )
    .bind(referral_id)
    .bind(service_id)
    .bind(places)
    .bind(state)
    .bind(referral_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds `held` held and `occupied` occupied places (either may be negative) to a service.
pub async fn move_places(
    conn: &mut PgConnection,
    service_id: Uuid,
    held: i32,
    occupied: i32,
) -> Result<ServiceRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE services SET held_places = held_places + $2, occupied_places = occupied_places + $3,
             version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING {SERVICE_COLUMNS}"
    ))
    .bind(service_id)
    .bind(held)
    .bind(occupied)
    .fetch_one(conn)
    .await
}

pub async fn agency_exists(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM agencies WHERE id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await
}

/// Locks an agency's row: changes to one agency's endpoints are serialised by it, so their count and
/// version are right.
pub async fn lock_agency(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT id FROM agencies WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks the agency's row (see [`lock_agency`]) and counts its endpoints.
pub async fn lock_agency_and_count_endpoints(
    conn: &mut PgConnection,
    agency: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM notification_endpoints
         WHERE agency_id = (SELECT id FROM agencies WHERE id = $1 FOR UPDATE)",
    )
    .bind(agency)
    .fetch_one(conn)
    .await
}

pub const ENDPOINT_COLUMNS: &str = "id, agency_id, channel, address, event_types, language, enabled, disabled_reason, \
     secret_version, created_at, updated_at";

/// A notification endpoint an agency registered, as the directory keeps it.
#[derive(Debug, Clone, FromRow)]
pub struct RegisteredEndpoint {
    pub id: Uuid,
    pub agency_id: Uuid,
    pub channel: NotificationChannel,
    pub address: String,
    pub event_types: Vec<String>,
    pub language: Language,
    pub enabled: bool,
    pub disabled_reason: String,
    pub secret_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RegisteredEndpoint {
    pub fn channel(&self) -> NotificationChannel {
        self.channel
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn into_proto(self, secret: Option<String>) -> NotificationEndpoint {
        NotificationEndpoint {
            id: self.id.to_string(),
            agency_id: self.agency_id.to_string(),
            channel: self.channel() as i32,
            address: self.address.clone(),
            language: self.language() as i32,
            event_types: self.event_types,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            secret: secret.unwrap_or_default(),
            secret_version: placement_platform::numbers::count(self.secret_version),
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
        }
    }

    pub fn snapshot(&self) -> EndpointSnapshot {
        EndpointSnapshot {
            endpoint_id: self.id.to_string(),
            channel: self.channel() as i32,
            address: self.address.clone(),
            event_types: self.event_types.clone(),
            language: self.language() as i32,
            enabled: self.enabled,
            secret_version: placement_platform::numbers::count(self.secret_version),
        }
    }
}

pub async fn find_endpoint(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<RegisteredEndpoint>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM notification_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The agency's endpoints, oldest first.
pub async fn endpoints_of(
    conn: &mut PgConnection,
    agency: Uuid,
) -> Result<Vec<RegisteredEndpoint>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM notification_endpoints WHERE agency_id = $1 ORDER BY created_at, id"
    ))
    .bind(agency)
    .fetch_all(conn)
    .await
}

pub struct NewEndpoint<'a> {
    pub id: Uuid,
    pub agency: Uuid,
    pub channel: NotificationChannel,
    pub address: &'a str,
    pub event_types: &'a [String],
    pub language: Language,
}

/// Adds an endpoint; None if the agency already has one of this channel and address.
pub async fn insert_endpoint(
    conn: &mut PgConnection,
    e: &NewEndpoint<'_>,
) -> Result<Option<RegisteredEndpoint>, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO notification_endpoints (id, agency_id, channel, address, event_types, language)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (agency_id, channel, address) DO NOTHING RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(e.id)
    .bind(e.agency)
    .bind(e.channel)
    .bind(e.address)
    .bind(e.event_types)
    .bind(e.language)
    .fetch_optional(conn)
    .await
}

/// A change to an endpoint; None leaves a setting as it is.
pub struct EndpointChange {
    pub id: Uuid,
    pub event_types: Option<Vec<String>>,
    pub language: Option<Language>,
    pub enabled: Option<bool>,
    pub rotate_secret: bool,
}

pub async fn update_endpoint(
    conn: &mut PgConnection,
    c: &EndpointChange,
) -> Result<Option<RegisteredEndpoint>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE notification_endpoints SET
             event_types = COALESCE($2, event_types),
             language = COALESCE($3, language),
             enabled = COALESCE($4, enabled),
             disabled_reason = CASE WHEN COALESCE($4, enabled) THEN '' ELSE
                 CASE WHEN $4 = false THEN 'disabled by the agency' ELSE disabled_reason END END,
             secret_version = secret_version + CASE WHEN $5 THEN 1 ELSE 0 END,
             updated_at = now()
         WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(c.id)
    .bind(&c.event_types)
    .bind(c.language)
    .bind(c.enabled)
    .bind(c.rotate_secret)
    .fetch_optional(conn)
    .await
}

/// Removes an endpoint; returns whether there was one.
pub async fn delete_endpoint(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM notification_endpoints WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(removed > 0)
}

/// The next version of the agency's set of endpoints.
pub async fn next_endpoints_version(
    conn: &mut PgConnection,
    agency: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE agencies SET endpoints_version = endpoints_version + 1 WHERE id = $1 RETURNING endpoints_version",
    )
    .bind(agency)
    .fetch_one(conn)
    .await
}

/// Disables an enabled endpoint; returns its agency, or None if it was disabled or removed already.
pub async fn disable_endpoint(
    conn: &mut PgConnection,
    id: Uuid,
    reason: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE notification_endpoints SET enabled = false, disabled_reason = $2, updated_at = now()
         WHERE id = $1 AND enabled RETURNING agency_id",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(conn)
    .await
}

pub async fn upsert_region(
    conn: &mut PgConnection,
    code: &str,
    name_bg: &str,
    name_en: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO regions (code, name_bg, name_en) VALUES ($1, $2, $3)
         ON CONFLICT (code) DO UPDATE SET name_bg = EXCLUDED.name_bg, name_en = EXCLUDED.name_en",
    )
    .bind(code)
    .bind(name_bg)
    .bind(name_en)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn upsert_municipality(
    conn: &mut PgConnection,
    code: &str,
    region_code: &str,
    name_bg: &str,
    name_en: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO municipalities (code, region_code, name_bg, name_en) VALUES ($1, $2, $3, $4)
         ON CONFLICT (code) DO UPDATE SET region_code = EXCLUDED.region_code,
             name_bg = EXCLUDED.name_bg, name_en = EXCLUDED.name_en",
    )
    .bind(code)
    .bind(region_code)
    .bind(name_bg)
    .bind(name_en)
    .execute(conn)
    .await?;
    Ok(())
}

/// A service imported from the register, with the register's id and its address.
#[derive(Debug, Clone, FromRow)]
pub struct ImportedService {
    #[sqlx(flatten)]
    pub row: ServiceRow,
    pub external_id: String,
    pub address: String,
}

/// The imported services of `region` (every district's when `None`).
pub async fn imported_services(
    pool: &PgPool,
    region: Option<&str>,
) -> Result<Vec<ImportedService>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS}, external_id, address FROM services
          WHERE external_id IS NOT NULL AND ($1::text IS NULL OR region_code = $1)"
    ))
    .bind(region)
    .fetch_all(pool)
    .await
}

/// An agency that may run services, as an import finds it: by its register id, else by name in its district.
#[derive(Debug, Clone, FromRow)]
pub struct ProviderRow {
    pub id: Uuid,
    pub name: String,
    pub region_code: Option<String>,
    pub external_id: Option<String>,
}

pub async fn providers(
    pool: &PgPool,
    region: Option<&str>,
) -> Result<Vec<ProviderRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, region_code, external_id FROM agencies
          WHERE kind IN ('AGENCY_KIND_SERVICE_PROVIDER', 'AGENCY_KIND_FOSTER_CARE_TEAM')
            AND ($1::text IS NULL OR region_code = $1 OR external_id IS NOT NULL)",
    )
    .bind(region)
    .fetch_all(pool)
    .await
}

/// A provider the register names, to be registered.
pub struct NewProvider<'a> {
    pub id: Uuid,
    pub kind: AgencyKind,
    pub name: &'a str,
    pub region_code: &'a str,
    pub municipality_code: &'a str,
    pub external_id: Option<&'a str>,
}

/// Registers `providers` in one statement.
pub async fn insert_providers(
    conn: &mut PgConnection,
    providers: &[NewProvider<'_>],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO agencies (id, kind, name, region_code, municipality_code, external_id)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])",
    )
    .bind(providers.iter().map(|p| p.id).collect::<Vec<Uuid>>())
    .bind(providers.iter().map(|p| p.kind).collect::<Vec<AgencyKind>>())
    .bind(providers.iter().map(|p| p.name).collect::<Vec<&str>>())
    .bind(providers.iter().map(|p| p.region_code).collect::<Vec<&str>>())
    .bind(providers.iter().map(|p| p.municipality_code).collect::<Vec<&str>>())
    .bind(providers.iter().map(|p| p.external_id).collect::<Vec<Option<&str>>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// A service as the register describes it.
pub struct RegisterService<'a> {
    pub id: Uuid,
    pub provider: Uuid,
    pub external_id: &'a str,
    pub service_type: ServiceType,
    pub name: &'a str,
    pub region_code: &'a str,
    pub municipality_code: &'a str,
    pub capacity: i32,
    pub occupied: i32,
    pub min_age: i32,
    pub max_age: i32,
    pub status: ServiceStatus,
    pub address: &'a str,
}

/// Inserts `services` in one statement; returns their rows.
pub async fn insert_imported_services(
    conn: &mut PgConnection,
    services: &[RegisterService<'_>],
) -> Result<Vec<ServiceRow>, sqlx::Error> {
    let column = |f: fn(&RegisterService<'_>) -> i32| services.iter().map(f).collect::<Vec<i32>>();
    let text = |f: for<'b> fn(&'b RegisterService<'_>) -> &'b str| {
        services.iter().map(f).collect::<Vec<&str>>()
    };
    sqlx::query_as(&format!(
        "INSERT INTO services (id, provider_agency_id, type, name, region_code, municipality_code,
             capacity, occupied_places, min_age, max_age, status, external_id, address)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::int[], $8::int[], $9::int[], $10::int[], $11::text[], $12::text[], $13::text[])
         RETURNING {SERVICE_COLUMNS}"
    ))
    .bind(services.iter().map(|s| s.id).collect::<Vec<Uuid>>())
    .bind(services.iter().map(|s| s.provider).collect::<Vec<Uuid>>())
    .bind(services.iter().map(|s| s.service_type).collect::<Vec<ServiceType>>())
    .bind(text(|s| s.name))
    .bind(text(|s| s.region_code))
    .bind(text(|s| s.municipality_code))
    .bind(column(|s| s.capacity))
    .bind(column(|s| s.occupied))
    .bind(column(|s| s.min_age))
    .bind(column(|s| s.max_age))
    .bind(services.iter().map(|s| s.status).collect::<Vec<ServiceStatus>>())
    .bind(text(|s| s.external_id))
    .bind(text(|s| s.address))
    .fetch_all(conn)
    .await
}

/// Sets every field the register describes (the id and external id stay); returns the new row.
pub async fn update_imported_service(
    conn: &mut PgConnection,
    s: &RegisterService<'_>,
) -> Result<ServiceRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE services SET provider_agency_id = $2, type = $3, name = $4, region_code = $5,
             municipality_code = $6, capacity = $7, occupied_places = $8, min_age = $9, max_age = $10,
             status = $11, address = $12, version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING {SERVICE_COLUMNS}"
    ))
    .bind(s.id)
    .bind(s.provider)
    .bind(s.service_type)
    .bind(s.name)
    .bind(s.region_code)
    .bind(s.municipality_code)
    .bind(s.capacity)
    .bind(s.occupied)
    .bind(s.min_age)
    .bind(s.max_age)
    .bind(s.status)
    .bind(s.address)
    .fetch_one(conn)
    .await
}

/// What one import did, for its record.
pub struct ImportRecord<'a> {
    pub id: Uuid,
    pub agency_id: Uuid,
    pub file_name: &'a str,
    pub file_sha256: &'a str,
    pub counts: [i32; 7],
}

pub async fn record_import(
    conn: &mut PgConnection,
    r: &ImportRecord<'_>,
) -> Result<(), sqlx::Error> {
    let [
        rows,
        created,
        updated,
        unchanged,
        refused,
        closed,
        providers,
    ] = r.counts;
    sqlx::query(
        "INSERT INTO service_imports (id, agency_id, file_name, file_sha256, rows, created, updated,
             unchanged, refused, closed, providers_created)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(r.id)
    .bind(r.agency_id)
    .bind(r.file_name)
    .bind(r.file_sha256)
    .bind(rows)
    .bind(created)
    .bind(updated)
    .bind(unchanged)
    .bind(refused)
    .bind(closed)
    .bind(providers)
    .execute(conn)
    .await?;
    Ok(())
}

/// A service as the export shows it: its row, register id and address.
#[derive(Debug, Clone, FromRow)]
pub struct ExportedService {
    #[sqlx(flatten)]
    pub row: ServiceRow,
    pub external_id: Option<String>,
    pub address: String,
}

/// Up to `limit` services changed after `modified_after`, in the order of their last change, after the
/// (change, id) `after`; and how many services changed after `modified_after` in all.
pub async fn services_changed(
    pool: &PgPool,
    modified_after: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<(Vec<ExportedService>, i64), sqlx::Error> {
    let rows = sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS}, external_id, address FROM services
          WHERE ($1::timestamptz IS NULL OR updated_at > $1)
            AND ($2::timestamptz IS NULL OR (updated_at, id) > ($2, $3))
          ORDER BY updated_at, id LIMIT $4"
    ))
    .bind(modified_after)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar(
        "SELECT count(*) FROM services WHERE ($1::timestamptz IS NULL OR updated_at > $1)",
    )
    .bind(modified_after)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// An agency as the export shows it: its row and its id in the register (the provider's EIK), if any.
#[derive(Debug, Clone, FromRow)]
pub struct ExportedAgency {
    #[sqlx(flatten)]
    pub agency: AgencyRow,
    #[sqlx(rename = "external_id")]
    pub register_id: Option<String>,
}

/// The agencies with these ids, with their register ids.
pub async fn agencies_with_ids(
    pool: &PgPool,
    ids: &[Uuid],
) -> Result<Vec<ExportedAgency>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AGENCY_COLUMNS}, external_id FROM agencies WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await
}
