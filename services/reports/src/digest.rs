//! The digest before each meeting: on the configured weekday and time (Sofia), and whenever asked, each
//! RDSA is sent its district's figures of the seven days before and the referrals stalled now, as a
//! `report.digest_ready` event the notifications service turns into its inbox notice and e-mail. A
//! scheduled digest is recorded once per RDSA and slot, in the transaction that writes its event, so
//! several instances send it once; a slot missed while no instance ran is sent when one starts, within
//! [`CATCH_UP`] of it.

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Sofia;
use placement_messaging::{Event, EventBuilder, Outbox};
use placement_platform::{error::ServiceResult, time::timestamp};
use placement_proto::v1::DistrictDigestReady;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{district_report::district_report, store};

const EVENTS: EventBuilder =
    <crate::Reports as placement_messaging::service::Service>::DEFINITION.events();
/// How long after its slot a digest nobody sent is still sent (a service down at 07:00 on Monday sends it
/// when it is back that morning, not on Thursday).
pub const CATCH_UP: chrono::Duration = chrono::Duration::hours(12);
/// The week a digest tells of.
const WEEK: chrono::Duration = chrono::Duration::days(7);

/// When digests go out: a weekday and a time of day in Sofia (`PLACEMENT_REPORTS_DIGEST_AT`, e.g.
/// `MON 07:00`), or never (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule(Option<(Weekday, NaiveTime)>);

#[derive(Debug, thiserror::Error)]
#[error(
    "PLACEMENT_REPORTS_DIGEST_AT is a weekday and a time (e.g. \"MON 07:00\") or \"off\", not {0:?}"
)]
pub struct ScheduleError(String);

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(Schedule(None));
        }
        let bad = || ScheduleError(s.to_string());
        let (day, time) = s.trim().split_once(' ').ok_or_else(bad)?;
        let day = day.parse::<Weekday>().map_err(|_| bad())?;
        let time = NaiveTime::parse_from_str(time.trim(), "%H:%M").map_err(|_| bad())?;
        Ok(Schedule(Some((day, time))))
    }
}

impl Schedule {
    /// The newest slot at or before `now`; none when digests are off.
    pub fn latest(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (weekday, time) = self.0?;
        let local = now.with_timezone(&Sofia);
        let back =
            (7 + local.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
        let day = local.date_naive() - chrono::Duration::days(i64::from(back));
        let at = |d: chrono::NaiveDate| {
            // A time the clocks skip in spring is taken as the hour after it.
            Sofia
                .from_local_datetime(&d.and_time(time))
                .earliest()
                .or_else(|| {
                    Sofia
                        .from_local_datetime(&(d.and_time(time) + chrono::Duration::hours(1)))
                        .earliest()
                })
                .map(|t| t.to_utc())
        };
        let slot = at(day)?;
        if slot <= now {
            Some(slot)
        } else {
            at(day - chrono::Duration::days(7))
        }
    }
}

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
    if schedule.0.is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn the_schedule_is_read_from_its_setting() {
        assert_eq!("off".parse::<Schedule>().unwrap(), Schedule(None));
        let monday = "MON 07:00".parse::<Schedule>().unwrap();
        assert_eq!(
            monday,
            Schedule(Some((
                Weekday::Mon,
                NaiveTime::from_hms_opt(7, 0, 0).unwrap()
            )))
        );
        for bad in ["", "MON", "monday at seven", "XYZ 07:00", "MON 25:00"] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_latest_slot_is_the_last_weekday_at_that_sofia_time() {
        let monday = "MON 07:00".parse::<Schedule>().unwrap();
        // Winter: 07:00 in Sofia is 05:00 UTC. Monday 30 November 2026.
        assert_eq!(
            monday.latest(at("2026-11-30T05:00:00Z")),
            Some(at("2026-11-30T05:00:00Z"))
        );
        assert_eq!(
            monday.latest(at("2026-11-30T04:59:00Z")),
            Some(at("2026-11-23T05:00:00Z"))
        );
        assert_eq!(
            monday.latest(at("2026-12-02T18:00:00Z")),
            Some(at("2026-11-30T05:00:00Z"))
        );
        // Summer: 04:00 UTC.
        assert_eq!(
            monday.latest(at("2026-07-08T12:00:00Z")),
            Some(at("2026-07-06T04:00:00Z"))
        );
        assert_eq!(
            "off"
                .parse::<Schedule>()
                .unwrap()
                .latest(at("2026-07-08T12:00:00Z")),
            None
        );
    }

    #[test]
    fn a_time_the_clocks_skip_is_the_hour_after() {
        // 29 March 2026, a Sunday: at 03:00 Sofia's clocks go to 04:00.
        let sunday = "SUN 03:30".parse::<Schedule>().unwrap();
        assert_eq!(
            sunday.latest(at("2026-03-29T12:00:00Z")),
            Some(at("2026-03-29T01:30:00Z"))
        );
    }
}
