//! The names of agencies and services registered before events carried them: an upgrade leaves the
//! directory's announcement pending, and its start-up step announces every agency and service again, once
//! however many instances start together. The consumers learn what they missed (the notifications service
//! the names, the referrals service a service's description, the reports its ages) and nothing else: no
//! notice, no place. One in-process stack; the start-up step is run by the test against the directory's
//! schema, twice at once and once more.

use std::collections::HashMap;

use placement_cli::{clients::as_agency, scenario::eventually};
use placement_directory::announcements::{Announced, announce_pending};
use placement_messaging::Outbox;
use placement_proto::v1::{
    AgencyKind, AgencyRegistered, CapacityChange, CreateAgencyRequest, CreateServiceRequest,
    EventEnvelope, ServiceCapacityChanged, ServiceType, UpdateCapacityRequest,
};
use prost::Message;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

const NATIONAL: Uuid = placement_platform::caller::NATIONAL_AUTHORITY;
const AGENCY_NAME: (&str, &str) = (
    "Сдружение „Детство“ – Враца",
    "Childhood Association Vratsa",
);
const SERVICE_NAME: (&str, &str) = ("ЦНСТДБУ Враца 1", "");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_of_agencies_and_services_are_announced_once_after_an_upgrade() {
    let f = Fixture::in_process().await;
    let (agency, service) = register(&f).await;
    let db = &pool(&f, None).await;
    learnt_from_registration(db, agency, service).await;
    forget_as_before_the_upgrade(db, agency, service).await;
    let before = Untouched::read(db, service).await;

    let first_new: i64 =
        sqlx::query_scalar("SELECT COALESCE(max(id), 0) + 1 FROM directory.outbox")
            .fetch_one(db)
            .await
            .expect("the outbox's last row");
    let directory = pool(&f, Some("directory")).await;
    let outbox = Outbox::new();
    let (one, other) = tokio::join!(
        announce_pending(&directory, &outbox),
        announce_pending(&directory, &outbox)
    );
    let (agencies, services): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM directory.agencies), (SELECT count(*) FROM directory.services)",
    )
    .fetch_one(db)
    .await
    .expect("the directory's counts");
    let mut both = [one.expect("one start"), other.expect("the other start")];
    both.sort_by_key(|a| a.agencies);
    assert_eq!(
        both,
        [Announced::default(), Announced { agencies, services }],
        "one of two instances starting together announces everything, the other nothing"
    );
    let again = announce_pending(&directory, &outbox)
        .await
        .expect("a restart");
    assert_eq!(
        again,
        Announced::default(),
        "a later start announces nothing"
    );
    directory.close().await;

    let events = announced_events(db, first_new).await;
    assert_eq!(events.len() as i64, agencies + services, "one event each");
    assert_announced_once(&events, agency, service);
    every_consumer_applied(db, &events).await;
    names_learnt_again(db, agency, service).await;
    let after = Untouched::read(db, service).await;
    assert_eq!(after, before, "no notice, delivery or place changed");
    description_and_ages_learnt_again(db, service).await;
    db.close().await;
}

/// A provider and a service of it, with places occupied (a later version than its registration).
async fn register(f: &Fixture<placement_e2e::InProcessStack>) -> (Uuid, Uuid) {
    let mut directory = f.clients.directory.clone();
    let agency = directory
        .create_agency(as_agency(
            NATIONAL,
            CreateAgencyRequest {
                kind: AgencyKind::ServiceProvider as i32,
                name: AGENCY_NAME.0.into(),
                name_en: AGENCY_NAME.1.into(),
                region_code: "VRC".into(),
                municipality_code: "VRC10".into(),
                contacts: Vec::new(),
            },
        ))
        .await
        .expect("CreateAgency")
        .into_inner()
        .id;
    let service = directory
        .create_service(as_agency(
            NATIONAL,
            CreateServiceRequest {
                provider_agency_id: agency.clone(),
                r#type: ServiceType::FamilyTypePlacementCentre as i32,
                name: SERVICE_NAME.0.into(),
                name_en: SERVICE_NAME.1.into(),
                municipality_code: "VRC10".into(),
                capacity: 12,
                occupied_places: 3,
                min_age: 3,
                max_age: 17,
            },
        ))
        .await
        .expect("CreateService")
        .into_inner()
        .id;
    directory
        .update_capacity(as_agency(
            NATIONAL,
            UpdateCapacityRequest {
                service_id: service.clone(),
                capacity: 12,
                occupied_places: Some(5),
                ..Default::default()
            },
        ))
        .await
        .expect("UpdateCapacity");
    let id = |s: &str| Uuid::parse_str(s).expect("an id");
    (id(&agency), id(&service))
}

/// Waits until every consumer holds what the registration and the change told.
async fn learnt_from_registration(db: &PgPool, agency: Uuid, service: Uuid) {
    eventually("the names, places and ages learnt", WAIT, || async move {
        let names: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notifications.directory_names WHERE id = ANY($1)")
                .bind([agency, service])
                .fetch_one(db)
                .await
                .ok()?;
        let referrals: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM referrals.service_places WHERE service_id = $1 AND region_code IS NOT NULL",
        )
        .bind(service)
        .fetch_optional(db)
        .await
        .ok()?;
        let reports: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM reports.services WHERE id = $1 AND min_age IS NOT NULL",
        )
        .bind(service)
        .fetch_optional(db)
        .await
        .ok()?;
        (names == 2 && referrals == Some(2) && reports == Some(2)).then_some(())
    })
    .await
    .expect("the registration learnt");
}

/// What the consumers hold that announcing again must leave as it is.
#[derive(Debug, PartialEq)]
struct Untouched {
    notices: i64,
    deliveries: i64,
    /// The referrals service's free places and version of the service.
    referrals: (i32, i64),
    /// The reports' capacity, free, held and occupied places and version of the service.
    reports: (i32, i32, i32, i32, i64),
}

impl Untouched {
    async fn read(db: &PgPool, service: Uuid) -> Self {
        let (notices, deliveries) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM notifications.notifications),
                    (SELECT count(*) FROM notifications.deliveries)",
        )
        .fetch_one(db)
        .await
        .expect("notices");
        let referrals = sqlx::query_as(
            "SELECT free_places, version FROM referrals.service_places WHERE service_id = $1",
        )
        .bind(service)
        .fetch_one(db)
        .await
        .expect("the referrals' copy");
        let reports = sqlx::query_as(
            "SELECT capacity, free_places, held_places, occupied_places, version FROM reports.services
             WHERE id = $1",
        )
        .bind(service)
        .fetch_one(db)
        .await
        .expect("the reports' copy");
        Untouched {
            notices,
            deliveries,
            referrals,
            reports,
        }
    }
}

/// The consumers as an installation upgraded to this release finds them: no names, services known by
/// their places alone (the referrals service) or without ages (the reports); and the announcement pending.
/// The referrals' free places are set apart from the directory's figure at the same version, so that a
/// figure replaced by the announcement would show.
async fn forget_as_before_the_upgrade(db: &PgPool, agency: Uuid, service: Uuid) {
    let statements = [
        "DELETE FROM notifications.directory_names WHERE id = ANY($1)",
        "UPDATE referrals.service_places SET provider_agency_id = NULL, region_code = NULL,
             service_type = NULL, status = NULL, min_age = NULL, max_age = NULL, free_places = free_places - 1
         WHERE service_id = ANY($1)",
        "UPDATE reports.services SET min_age = NULL, max_age = NULL WHERE id = ANY($1)",
    ];
    for sql in statements {
        let done = sqlx::query(sql)
            .bind([agency, service])
            .execute(db)
            .await
            .expect(sql);
        assert!(done.rows_affected() > 0, "{sql}");
    }
    let pending = sqlx::query(
        "UPDATE directory.announcements SET announced_at = NULL, events = 0 WHERE topic = 'names'",
    )
    .execute(db)
    .await
    .expect("the announcement pending again");
    assert_eq!(pending.rows_affected(), 1);
}

/// A pool on the stack's database as the schemas' owner: on `schema` (as a service's instances have it), or
/// naming each schema.
async fn pool(f: &Fixture<placement_e2e::InProcessStack>, schema: Option<&str>) -> PgPool {
    let mut options: PgConnectOptions = f.stack.database_url.parse().expect("the database URL");
    if let Some(schema) = schema {
        options = options.options([("search_path", schema)]);
    }
    PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .expect("the stack's database")
}

/// The events the directory's outbox holds from row `first` on.
async fn announced_events(db: &PgPool, first: i64) -> Vec<EventEnvelope> {
    let bodies: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT envelope FROM directory.outbox WHERE id >= $1 ORDER BY id")
            .bind(first)
            .fetch_all(db)
            .await
            .expect("the outbox");
    (bodies.iter())
        .map(|b| EventEnvelope::decode(b.as_slice()).expect("an envelope"))
        .collect()
}

/// Each agency and service once, the two registered here with their names, the service as it is now.
fn assert_announced_once(events: &[EventEnvelope], agency: Uuid, service: Uuid) {
    let mut per_record: HashMap<&str, usize> = HashMap::new();
    for e in events {
        *per_record.entry(e.aggregate_id.as_str()).or_default() += 1;
    }
    assert!(per_record.values().all(|n| *n == 1), "{per_record:?}");
    let about = |id: Uuid| {
        (events.iter())
            .find(|e| e.aggregate_id == id.to_string())
            .expect("announced")
    };
    let a = about(agency);
    assert_eq!(a.event_type, "agency.registered");
    let registered = AgencyRegistered::decode(a.payload.as_slice()).expect("AgencyRegistered");
    assert_eq!(
        (registered.name.as_str(), registered.name_en.as_str()),
        AGENCY_NAME
    );
    let s = about(service);
    assert_eq!(
        (s.event_type.as_str(), s.aggregate_version),
        ("service.registered", 2)
    );
    let places =
        ServiceCapacityChanged::decode(s.payload.as_slice()).expect("ServiceCapacityChanged");
    assert_eq!(places.change, CapacityChange::Announced as i32);
    assert_eq!(
        (places.name.as_str(), places.name_en.as_str()),
        SERVICE_NAME
    );
    assert_eq!(
        (places.capacity, places.occupied_places, places.free_places),
        (12, 5, 7)
    );
}

/// Waits until the notifications, referrals and reports services have each applied every event announced.
async fn every_consumer_applied(db: &PgPool, events: &[EventEnvelope]) {
    let ids: Vec<Uuid> = (events.iter())
        .map(|e| Uuid::parse_str(&e.event_id).expect("an event id"))
        .collect();
    for consumer in ["notifications", "referrals", "reports"] {
        let sql =
            &format!("SELECT count(*) FROM {consumer}.processed_events WHERE event_id = ANY($1)");
        let ids = &ids;
        eventually(
            &format!("{consumer} applying the announcement"),
            WAIT,
            || async move {
                let n: i64 = sqlx::query_scalar(sql).bind(ids).fetch_one(db).await.ok()?;
                (n as usize == ids.len()).then_some(())
            },
        )
        .await
        .expect("every event applied");
    }
}

async fn names_learnt_again(db: &PgPool, agency: Uuid, service: Uuid) {
    for (id, name) in [(agency, AGENCY_NAME), (service, SERVICE_NAME)] {
        let learnt: (String, String) =
            sqlx::query_as("SELECT name, name_en FROM notifications.directory_names WHERE id = $1")
                .bind(id)
                .fetch_one(db)
                .await
                .expect("the name learnt again");
        assert_eq!((learnt.0.as_str(), learnt.1.as_str()), name);
    }
}

/// The referrals service knows what the service is and where again, and the reports its ages.
async fn description_and_ages_learnt_again(db: &PgPool, service: Uuid) {
    let (region, provider, min_age, max_age): (
        Option<String>,
        Option<Uuid>,
        Option<i16>,
        Option<i16>,
    ) = sqlx::query_as(
        "SELECT region_code, provider_agency_id, min_age, max_age FROM referrals.service_places
             WHERE service_id = $1",
    )
    .bind(service)
    .fetch_one(db)
    .await
    .expect("the referrals' copy");
    assert_eq!(region.as_deref(), Some("VRC"));
    assert!(provider.is_some());
    assert_eq!((min_age, max_age), (Some(3), Some(17)));
    let ages: (Option<i32>, Option<i32>) =
        sqlx::query_as("SELECT min_age, max_age FROM reports.services WHERE id = $1")
            .bind(service)
            .fetch_one(db)
            .await
            .expect("the reports' copy");
    assert_eq!(ages, (Some(3), Some(17)));
}
