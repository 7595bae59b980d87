//! Announcements owed once per installation: a migration that adds something consumers learn only from
//! the directory's events (the names of agencies and services) leaves a pending row in `announcements`,
//! and the first instance to start after it announces every agency and service again, unchanged:
//! "agency.registered" as at registration, "service.registered" with the service as it is at its version
//! and `change` ANNOUNCED. Consumers keep these idempotently: a version they hold changes no places, and
//! nobody is notified of a registration.

pub(crate) mod store;

use placement_messaging::{Event, Outbox};
use placement_proto::v1::CapacityChange;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::EVENTS;

/// Rows read, and events written, at a time.
const PAGE: i64 = 500;

/// What one announcement wrote to the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Announced {
    pub agencies: i64,
    pub services: i64,
}

/// Announces every agency and service again if an announcement is pending, in the transaction that marks
/// it made: exactly once per installation, however many instances start at once (see
/// [`store::claim_pending`]). Nothing when none is pending.
pub async fn announce_pending(pool: &PgPool, outbox: &Outbox) -> Result<Announced, sqlx::Error> {
    let mut tx = placement_platform::db::begin(pool).await?;
    let topics = store::claim_pending(&mut tx).await?;
    if topics.is_empty() {
        return Ok(Announced::default());
    }
    let correlation = Uuid::now_v7();
    let announced = Announced {
        agencies: announce_agencies(&mut tx, correlation).await?,
        services: announce_services(&mut tx, correlation).await?,
    };
    store::record_events(&mut tx, &topics, announced.agencies + announced.services).await?;
    outbox.commit(tx).await?;
    tracing::info!(
        ?topics,
        agencies = announced.agencies,
        services = announced.services,
        "announced every agency and service again"
    );
    Ok(announced)
}

async fn announce_agencies(conn: &mut PgConnection, correlation: Uuid) -> Result<i64, sqlx::Error> {
    let (mut after, mut count) = (None, 0);
    loop {
        let rows = store::agencies_after(conn, after, PAGE).await?;
        let Some(last) = rows.last() else {
            return Ok(count);
        };
        after = Some(last.id);
        let events: Vec<_> = (rows.iter())
            .map(|a| {
                EVENTS.build(
                    Event::AgencyRegistered(a.registration()),
                    a.id,
                    1,
                    correlation,
                )
            })
            .collect();
        Outbox::enqueue_all(conn, &events).await?;
        count += placement_platform::numbers::len_i64(events.len());
    }
}

async fn announce_services(conn: &mut PgConnection, correlation: Uuid) -> Result<i64, sqlx::Error> {
    let (mut after, mut count) = (None, 0);
    loop {
        let rows = store::services_after(conn, after, PAGE).await?;
        let Some(last) = rows.last() else {
            return Ok(count);
        };
        after = Some(last.id);
        let events: Vec<_> = (rows.iter())
            .map(|s| {
                EVENTS.build(
                    Event::ServiceRegistered(s.capacity_event(CapacityChange::Announced, None, 0)),
                    s.id,
                    placement_platform::numbers::serial(s.version),
                    correlation,
                )
            })
            .collect();
        Outbox::enqueue_all(conn, &events).await?;
        count += placement_platform::numbers::len_i64(events.len());
    }
}
