//! Working time: what "answered within two working days" means to a directorate, for the reports'
//! durations and the referrals' step deadlines alike. Monday to Friday,
//! 09:00–17:30 in Sofia, without Bulgaria's official holidays (Labour Code, art. 154): 1 January,
//! 3 March, 1 May, 6 May, 24 May, 6 September, 22 September, 24–26 December, and Orthodox Good Friday to
//! Easter Monday; a fixed holiday that falls on a Saturday or Sunday makes the next working day a day off.
//! Days the government moves by decree are not known here.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Europe::Sofia;

const OPENS: NaiveTime = NaiveTime::from_hms_opt(9, 0, 0).expect("a time");
const CLOSES: NaiveTime = NaiveTime::from_hms_opt(17, 30, 0).expect("a time");

/// (month, day) of the holidays on fixed dates.
const FIXED: [(u32, u32); 10] = [
    (1, 1),
    (3, 3),
    (5, 1),
    (5, 6),
    (5, 24),
    (9, 6),
    (9, 22),
    (12, 24),
    (12, 25),
    (12, 26),
];

/// Working time from `from` to `to` (zero when `to` is not after `from`).
pub fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    if to <= from {
        return Duration::zero();
    }
    Duration::microseconds(worked_by(to) - worked_by(from))
}

/// The instant at which `working` time has been worked since `from` (`from` itself for none): a deadline
/// that falls at a closing time is that closing, not the next opening. `None` past the calendar's last year.
pub fn after(from: DateTime<Utc>, working: Duration) -> Option<DateTime<Utc>> {
    let needed = working.num_microseconds()?;
    if needed <= 0 {
        return Some(from);
    }
    let c = calendar();
    let target = worked_by(from).checked_add(needed)?;
    if target > c.worked_before[DAYS] {
        return None;
    }
    // The last day that begins with less worked than the target is a working day (the next begins with
    // more), and the target falls within its office hours.
    let i = c
        .worked_before
        .partition_point(|w| *w < target)
        .checked_sub(1)?;
    DateTime::from_timestamp_micros(c.opens[i] + (target - c.worked_before[i]))
}

/// The instant `days` working days after `from`: the same office time `days` working days on (from a
/// Friday at 16:00, two working days are Tuesday at 16:00); from outside office hours, the count starts at
/// the next opening, so it ends at a closing. `None` past the calendar's last year.
pub fn after_working_days(from: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
    after(
        from,
        Duration::microseconds(open_for()) * i32::try_from(days).ok()?,
    )
}

/// The office's closing time in Sofia on `day`, as an instant: when a wait "until" that day ends.
pub fn closing(day: NaiveDate) -> DateTime<Utc> {
    let local = day.and_time(CLOSES);
    local
        .and_local_timezone(Sofia)
        .earliest()
        .map(|t| t.to_utc())
        // 17:30 is never skipped by a clock change in Sofia; the UTC reading is within three hours.
        .unwrap_or_else(|| local.and_utc())
}

/// The first day counted, and how many: 1970 to 2099, the years Orthodox Easter is computed for.
const FIRST_DAY: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
const DAYS: usize = 47_482;

/// For each day from [`FIRST_DAY`] (and the one after the last): the UTC instants, in microseconds, of
/// its midnight and its opening in Sofia, and the working microseconds before it. A report's durations
/// are then a few look-ups each, without a time-zone conversion, however many days they span (a year of a
/// district's referrals is tens of thousands, each with eight durations).
struct Calendar {
    midnight: Vec<i64>,
    opens: Vec<i64>,
    worked_before: Vec<i64>,
}

fn calendar() -> &'static Calendar {
    static TABLE: std::sync::OnceLock<Calendar> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let day_length = open_for();
        let mut c = Calendar {
            midnight: Vec::with_capacity(DAYS + 1),
            opens: Vec::with_capacity(DAYS + 1),
            worked_before: Vec::with_capacity(DAYS + 1),
        };
        let (mut total, mut day) = (0, FIRST_DAY);
        for _ in 0..=DAYS {
            let at = |time: NaiveTime| {
                // Today the clocks change at 03:00 and 04:00; in some earlier years at midnight, when the
                // day began an hour later.
                let local = day.and_time(time);
                (local.and_local_timezone(Sofia).earliest())
                    .or_else(|| {
                        (local + Duration::hours(1))
                            .and_local_timezone(Sofia)
                            .earliest()
                    })
                    .expect("on the clock within an hour")
                    .timestamp_micros()
            };
            c.midnight.push(at(NaiveTime::MIN));
            c.opens.push(at(OPENS));
            c.worked_before.push(total);
            if is_working_day(day) {
                total += day_length;
            }
            day = day.succ_opt().expect("a date");
        }
        c
    })
}

/// Microseconds the office is open on a working day.
fn open_for() -> i64 {
    (CLOSES - OPENS).num_microseconds().expect("hours fit")
}

const DAY_MICROS: i64 = 86_400_000_000;
const HOUR_MICROS: i64 = 3_600_000_000;

/// Working microseconds from [`FIRST_DAY`] to `t` (clamped to the years counted).
fn worked_by(t: DateTime<Utc>) -> i64 {
    let c = calendar();
    let us = t.timestamp_micros();
    if us < c.midnight[0] {
        return 0;
    }
    if us >= c.midnight[DAYS] {
        return c.worked_before[DAYS];
    }
    // Sofia is two or three hours ahead of UTC: the day in Sofia is the UTC day of t + 2 h or the next.
    let first = FIRST_DAY
        .and_time(NaiveTime::MIN)
        .and_utc()
        .timestamp_micros();
    let guess = usize::try_from((us + 2 * HOUR_MICROS - first).div_euclid(DAY_MICROS)).unwrap_or(0);
    let mut i = guess.min(DAYS - 1);
    if us >= c.midnight[i + 1] {
        i += 1;
    }
    while i > 0 && us < c.midnight[i] {
        i -= 1;
    }
    let today = if c.worked_before[i + 1] > c.worked_before[i] {
        (us - c.opens[i]).clamp(0, open_for())
    } else {
        0
    };
    c.worked_before[i] + today
}

/// The day it is in Sofia at `at`: the day people there would write.
pub fn sofia_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&Sofia).date_naive()
}

pub fn is_working_day(day: NaiveDate) -> bool {
    !is_weekend(day) && !is_day_off(day)
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// A holiday, or a weekday off in place of a fixed holiday that fell on a weekend.
fn is_day_off(day: NaiveDate) -> bool {
    holidays(day.year()).contains(&day) || moved_days_off(day.year()).contains(&day)
}

fn holidays(year: i32) -> Vec<NaiveDate> {
    let mut days: Vec<NaiveDate> = FIXED
        .iter()
        .filter_map(|&(m, d)| NaiveDate::from_ymd_opt(year, m, d))
        .collect();
    if let Some(easter) = orthodox_easter(year) {
        days.extend([-2, -1, 0, 1].map(|d| easter + Duration::days(d)));
    }
    days
}

/// Each fixed holiday on a weekend gives the first following weekday that is neither a holiday nor
/// already given (25 and 26 December on a weekend give two).
fn moved_days_off(year: i32) -> Vec<NaiveDate> {
    let all = holidays(year);
    let mut moved: Vec<NaiveDate> = Vec::new();
    for (m, d) in FIXED {
        let Some(day) = NaiveDate::from_ymd_opt(year, m, d) else {
            continue;
        };
        if !is_weekend(day) {
            continue;
        }
        let mut next = day + Duration::days(1);
        while is_weekend(next) || all.contains(&next) || moved.contains(&next) {
            next += Duration::days(1);
        }
        moved.push(next);
    }
    moved
}

/// Orthodox Easter Sunday in the Gregorian calendar (Meeus' Julian algorithm, then the calendars'
/// difference, 13 days from 1900 to 2099).
pub fn orthodox_easter(year: i32) -> Option<NaiveDate> {
    if !(1900..=2099).contains(&year) {
        return None;
    }
    let (a, b, c) = (year % 4, year % 7, year % 19);
    let d = (19 * c + 15) % 30;
    let e = (2 * a + 4 * b - d + 34) % 7;
    let month = (d + e + 114) / 31;
    let day = (d + e + 114) % 31 + 1;
    let julian =
        NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)?;
    Some(julian + Duration::days(13))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Working time up to `t` the slow way, converting to Sofia's clock: what the tables must agree with.
    fn worked_by_converting(t: DateTime<Utc>) -> i64 {
        let local = t.with_timezone(&Sofia);
        let i = usize::try_from((local.date_naive() - FIRST_DAY).num_days()).expect("after 1970");
        let c = calendar();
        let today = if is_working_day(local.date_naive()) {
            (local.time() - OPENS)
                .num_microseconds()
                .expect("a day")
                .clamp(0, open_for())
        } else {
            0
        };
        c.worked_before[i] + today
    }

    #[test]
    fn the_tables_agree_with_the_clock_in_sofia() {
        // Every 7 min 13 s through 2025-2027 (each day's opening, closing, midnights and the clock
        // changes among them), and each clock change's edges.
        use chrono::TimeZone;
        let mut t = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        while t.year() < 2028 {
            assert_eq!(worked_by(t), worked_by_converting(t), "at {t}");
            t += Duration::seconds(433);
        }
        for edge in [
            "2026-03-29T00:59:59Z",
            "2026-03-29T01:00:00Z",
            "2026-10-25T00:59:59Z",
            "2026-10-25T01:00:00Z",
            "2026-12-31T21:59:59.999999Z",
            "2026-12-31T22:00:00Z",
        ] {
            let t = DateTime::parse_from_rfc3339(edge).unwrap().to_utc();
            assert_eq!(worked_by(t), worked_by_converting(t), "at {t}");
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn working_days_after_skip_nights_weekends_and_holidays() {
        let after = |from: &str, days| after_working_days(at(from), days).expect("in the calendar");
        // Wednesday 10:00 Sofia (08:00 UTC, winter): two working days on is Friday 10:00.
        assert_eq!(after("2026-12-02T08:00:00Z", 2), at("2026-12-04T08:00:00Z"));
        // Friday 16:00 Sofia: two working days on is Tuesday 16:00, the weekend not counted.
        assert_eq!(after("2026-12-04T14:00:00Z", 2), at("2026-12-08T14:00:00Z"));
        // Saturday: the count starts at Monday's opening and ends at a closing.
        assert_eq!(after("2026-12-05T10:00:00Z", 1), at("2026-12-07T15:30:00Z"));
        // Wednesday 2 December after closing: one working day is Thursday's whole day.
        assert_eq!(after("2026-12-02T18:00:00Z", 1), at("2026-12-03T15:30:00Z"));
        // Over Liberation Day (Tuesday 3 March 2026): Monday 10:00 + 1 is Wednesday 10:00.
        assert_eq!(after("2026-03-02T08:00:00Z", 1), at("2026-03-04T08:00:00Z"));
        // Over Easter 2026 (Good Friday 10 April to Easter Monday 13 April): Thursday 9 April 12:00 Sofia
        // (09:00 UTC, summer) + 1 is Tuesday 14 April 12:00.
        assert_eq!(after("2026-04-09T09:00:00Z", 1), at("2026-04-14T09:00:00Z"));
        // Over Christmas 2026 (24-26 December and Monday 28 off): Wednesday 23 at 16:00 Sofia + 1 is
        // Tuesday 29 at 16:00.
        assert_eq!(after("2026-12-23T14:00:00Z", 1), at("2026-12-29T14:00:00Z"));
        // No time is no time; the working time between the two ends is what was asked.
        let from = at("2026-12-04T14:00:00Z");
        assert_eq!(after_working_days(from, 0), Some(from));
        assert_eq!(
            between(from, after_working_days(from, 5).unwrap()),
            Duration::minutes(5 * 510)
        );
        // Past the calendar's last year there is no answer.
        assert_eq!(after_working_days(at("2099-12-31T12:00:00Z"), 5), None);
    }

    #[test]
    fn closing_is_half_past_five_in_sofia() {
        assert_eq!(closing(day("2026-12-02")), at("2026-12-02T15:30:00Z"));
        assert_eq!(closing(day("2026-07-01")), at("2026-07-01T14:30:00Z"));
    }

    #[test]
    fn orthodox_easter_falls_where_the_church_calendar_says() {
        for (year, easter) in [
            (2024, "2024-05-05"),
            (2025, "2025-04-20"),
            (2026, "2026-04-12"),
            (2027, "2027-05-02"),
        ] {
            assert_eq!(orthodox_easter(year), Some(day(easter)), "{year}");
        }
    }

    #[test]
    fn weekends_holidays_and_days_moved_are_not_worked() {
        for off in [
            "2026-12-05", // Saturday
            "2026-03-03", // Liberation Day, a Tuesday
            "2026-04-10", // Good Friday
            "2026-04-13", // Easter Monday
            "2026-12-24",
            "2026-05-25", // 24 May 2026 is a Sunday: Monday is off
            "2026-12-28", // 26 December 2026 is a Saturday
            "2027-12-27", // 25 and 26 December 2027 are Saturday and Sunday:
            "2027-12-28", // 24 (Friday) is a holiday, so Monday and Tuesday are off
        ] {
            assert!(!is_working_day(day(off)), "{off}");
        }
        for on in ["2026-12-02", "2026-05-26", "2027-12-29", "2026-04-14"] {
            assert!(is_working_day(day(on)), "{on}");
        }
    }

    #[test]
    fn working_time_counts_only_office_hours() {
        // Winter: Sofia is UTC+2, so the office is open 07:00–15:30 UTC.
        let h = Duration::hours;
        // Within one morning.
        assert_eq!(
            between(at("2026-12-02T08:00:00Z"), at("2026-12-02T09:30:00Z")),
            h(1) + Duration::minutes(30)
        );
        // Submitted in the evening, answered the next morning at 10:00 Sofia: one hour.
        assert_eq!(
            between(at("2026-12-02T18:00:00Z"), at("2026-12-03T08:00:00Z")),
            h(1)
        );
        // Friday 16:30 Sofia to Monday 09:30 Sofia: an hour on Friday and half an hour on Monday.
        assert_eq!(
            between(at("2026-12-04T14:30:00Z"), at("2026-12-07T07:30:00Z")),
            h(1) + Duration::minutes(30)
        );
        // A whole working week: five days of eight and a half hours.
        assert_eq!(
            between(at("2026-11-30T00:00:00Z"), at("2026-12-05T00:00:00Z")),
            h(5 * 8) + Duration::minutes(150)
        );
        // Over Christmas 2026: 24 and 25 December (Thursday, Friday), 26 (a Saturday, so Monday 28 is
        // off too); open again on Tuesday 29.
        assert_eq!(
            between(at("2026-12-23T15:30:00Z"), at("2026-12-29T08:00:00Z")),
            h(1)
        );
        // To the microsecond, as the calendar durations.
        assert_eq!(
            between(
                at("2026-12-02T08:00:00.000250Z"),
                at("2026-12-02T08:00:01.5Z")
            ),
            Duration::microseconds(1_499_750)
        );
        // Summer time: UTC+3, the office opens at 06:00 UTC.
        assert_eq!(
            between(at("2026-07-01T05:00:00Z"), at("2026-07-01T07:00:00Z")),
            h(1)
        );
        assert_eq!(
            between(at("2026-07-01T07:00:00Z"), at("2026-07-01T05:00:00Z")),
            Duration::zero()
        );
    }
}
