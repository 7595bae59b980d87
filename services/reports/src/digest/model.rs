//! When digests go out: a weekday and a time of day in Sofia, or never.

use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Sofia;
use placement_platform::error::ServiceError;

/// Why a digest asked for is not sent.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// The district has no RDSA this service has learnt of, so nobody to send it to.
    #[error("region_code: no RDSA of district {region_code} is known not found")]
    NoRdsa { region_code: String },
}

impl From<DigestError> for ServiceError {
    fn from(e: DigestError) -> Self {
        match e {
            DigestError::NoRdsa { region_code } => ServiceError::not_found(format!(
                "region_code: no RDSA of district {region_code} is known"
            )),
        }
    }
}

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

    /// Whether digests are off.
    pub fn is_off(self) -> bool {
        self.0.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal is answered as before its enum: the same code and text.
    #[test]
    fn refusals_keep_their_codes_and_text() {
        let refusal = DigestError::NoRdsa {
            region_code: "VRC".into(),
        };
        let message = "region_code: no RDSA of district VRC is known not found";
        assert_eq!(refusal.to_string(), message);
        let e = ServiceError::from(refusal);
        assert_eq!(e.code_name(), "NOT_FOUND");
        assert_eq!(tonic::Status::from(e).message(), message);
    }

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
