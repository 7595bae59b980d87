//! The digest before each meeting: on the configured weekday and time (Sofia), and whenever asked, each
//! RDSA is sent its district's figures of the seven days before and the referrals stalled now, as a
//! `report.digest_ready` event the notifications service turns into its inbox notice and e-mail. A
//! scheduled digest is recorded once per RDSA and slot, in the transaction that writes its event, so
//! several instances send it once; a slot missed while no instance ran is sent when one starts, within
//! [`CATCH_UP`] of it.

pub mod model;
pub mod store;

use std::time::Duration;

use chrono::{DateTime, Utc};
use placement_messaging::{Event, EventBuilder, Outbox};
use placement_platform::error::ServiceResult;
use placement_platform::time::timestamp;
use placement_proto::v1::DistrictDigestReady;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{agencies, figures::district_report};
pub use model::{DigestError, Schedule, ScheduleError};

const EVENTS: EventBuilder =
    <crate::Reports as placement_messaging::service::Service>::DEFINITION.events();
/// How long after its slot a digest nobody sent is still sent (a service down at 07:00 on Monday sends it
/// when it is back that morning, not on Thursday).
pub const CATCH_UP: chrono::Duration = chrono::Duration::hours(12);
/// The week a digest tells of.
const WEEK: chrono::Duration = chrono::Duration::days(7);

/// How often the schedule is looked at: a slot is sent this long after it at most, or after an RDSA
/// becomes known (the check is one query when nothing is due).
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Sends digests at their slots until shutdown, looking every [`LOOK_EVERY`] (and at start).
pub async fn on_schedule(
    pool: PgPool,
    outbox: Outbox,
    schedule: Schedule,
    shutdown: CancellationToken,
) {
    if schedule.is_off() {
        tracing::info!("digests off (PLACEMENT_REPORTS_DIGEST_AT=off)");
        return;
    }
    loop {
        let now = Utc::now();
        if let Some(slot) = schedule.latest(now).filter(|s| now - *s < CATCH_UP) {
            match send_scheduled(&pool, &outbox, slot).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(digests = n, %slot, "digests sent"),
                Err(e) => tracing::warn!(error = %e, %slot, "digests not sent yet; trying again"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(LOOK_EVERY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Sends the slot's digest to every RDSA that has not had it; returns how many this call sent.
async fn send_scheduled(
    pool: &PgPool,
    outbox: &Outbox,
    slot: DateTime<Utc>,
) -> ServiceResult<usize> {
    let mut sent = 0;
    let due = store::rdsas_without_digest(&mut *pool.acquire().await?, slot).await?;
    for (agency, region) in due {
        if send(pool, outbox, agency, &region, Some(slot))
            .await?
            .is_some()
        {
            sent += 1;
        }
    }
    Ok(sent)
}

/// Sends one RDSA its district's digest of the week before now: once per `slot` (`None` when it was sent
/// already), or, without a slot, each time. Returns the digest's id. The week ends when it is sent, not at
/// the slot, so a digest sent late (catching up) is no staler for it.
pub async fn send(
    pool: &PgPool,
    outbox: &Outbox,
    agency: Uuid,
    region: &str,
    slot: Option<DateTime<Utc>>,
) -> ServiceResult<Option<Uuid>> {
    let end = Utc::now();
    let period = (end - WEEK, end);
    let id = Uuid::now_v7();
    let mut tx = placement_platform::db::begin(pool).await?;
    // A second instance waits here for the first one's commit, then finds the slot taken.
    if !store::note_digest(&mut tx, id, agency, region, slot, period).await? {
        return Ok(None);
    }
    let report = district_report(pool, region, period).await?;
    let digest = DistrictDigestReady {
        digest_id: id.to_string(),
        region_code: region.to_string(),
        rdsa_agency_id: agency.to_string(),
        report: Some(report),
        period_start: Some(timestamp(period.0)),
        period_end: Some(timestamp(period.1)),
    };
    let mut event = EVENTS.build(Event::DistrictDigestReady(digest), id, 1, id);
    // The digest's id is its event's: the notification names the event, and so the digest.
    event.event_id = id.to_string();
    Outbox::enqueue(&mut tx, &event).await?;
    outbox.commit(tx).await?;
    tracing::info!(digest_id = %id, %agency, region, scheduled = slot.is_some(), "digest sent");
    Ok(Some(id))
}

/// Sends a district's digest now, to its first RDSA known; returns the digest's id and the RDSA's.
pub async fn send_to_district(
    pool: &PgPool,
    outbox: &Outbox,
    region: &str,
) -> ServiceResult<(Uuid, Uuid)> {
    let rdsas = agencies::store::rdsas_of(&mut *pool.acquire().await?, region).await?;
    let Some(&agency) = rdsas.first() else {
        return Err(DigestError::NoRdsa {
            region_code: region.to_string(),
        }
        .into());
    };
    let id = send(pool, outbox, agency, region, None)
        .await?
        .expect("a digest asked for has no slot to find taken");
    Ok((id, agency))
}
