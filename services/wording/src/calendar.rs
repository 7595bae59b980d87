//! Times and days as people in Bulgaria write them: in Sofia's time, whatever the season, with the month
//! in words («6 декември 2026 г., 12:52»; «6 December 2026, 12:52»).

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Europe::Sofia;
use placement_proto::{
    prost_types::Timestamp,
    v1::{Date, Language},
};

const MONTHS_BG: [&str; 12] = [
    "януари",
    "февруари",
    "март",
    "април",
    "май",
    "юни",
    "юли",
    "август",
    "септември",
    "октомври",
    "ноември",
    "декември",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A moment in Sofia's time, e.g. «6 декември 2026 г., 12:52»; empty when there is none.
pub fn moment(t: Option<&Timestamp>, language: Language) -> String {
    let Some(at) = t.and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, 0)) else {
        return String::new();
    };
    let local = at.with_timezone(&Sofia);
    format!(
        "{}, {:02}:{:02}",
        date_in_words(local.date_naive(), language),
        local.hour(),
        local.minute()
    )
}

/// The day of a moment in Sofia, e.g. «6 декември 2026 г.»; empty when there is none.
pub fn day_of(t: Option<&Timestamp>, language: Language) -> String {
    t.and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, 0))
        .map(|at| date_in_words(at.with_timezone(&Sofia).date_naive(), language))
        .unwrap_or_default()
}

/// A calendar day, e.g. «2 ноември 2026 г.»; empty when there is none or it is not a day.
pub fn day(d: Option<&Date>, language: Language) -> String {
    d.and_then(|d| {
        NaiveDate::from_ymd_opt(
            d.year,
            u32::try_from(d.month).ok()?,
            u32::try_from(d.day).ok()?,
        )
    })
    .map(|d| date_in_words(d, language))
    .unwrap_or_default()
}

/// A day with its month in words.
pub fn date_in_words(d: NaiveDate, language: Language) -> String {
    let index = usize::try_from(d.month0()).unwrap_or(0);
    if language == Language::En {
        format!("{} {} {}", d.day(), MONTHS_EN[index], d.year())
    } else {
        format!("{} {} {} г.", d.day(), MONTHS_BG[index], d.year())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        let t: DateTime<Utc> = rfc3339.parse().unwrap();
        Timestamp {
            seconds: t.timestamp(),
            nanos: 0,
        }
    }

    #[test]
    fn moments_are_sofia_time_in_words() {
        let t = at("2026-12-06T10:52:00Z");
        assert_eq!(moment(Some(&t), Language::Bg), "6 декември 2026 г., 12:52");
        assert_eq!(moment(Some(&t), Language::En), "6 December 2026, 12:52");
        assert_eq!(moment(None, Language::Bg), "");
        // 23:30 UTC is already the next day in Sofia.
        let late = at("2026-11-29T23:30:00Z");
        assert_eq!(day_of(Some(&late), Language::Bg), "30 ноември 2026 г.");
        assert_eq!(day_of(Some(&late), Language::En), "30 November 2026");
        assert_eq!(day_of(None, Language::En), "");
    }

    /// Sofia moves its clocks on the last Sundays of March and October, at 03:00 and 04:00 local time.
    #[test]
    fn moments_follow_sofia_across_a_change_of_clocks() {
        let bg = |s| moment(Some(&at(s)), Language::Bg);
        // Spring: 00:30 UTC is 02:30 in winter time, 01:30 UTC already 04:30 in summer time.
        assert_eq!(bg("2026-03-29T00:30:00Z"), "29 март 2026 г., 02:30");
        assert_eq!(bg("2026-03-29T01:30:00Z"), "29 март 2026 г., 04:30");
        // Autumn: 03:30 happens twice, an hour apart.
        assert_eq!(bg("2026-10-25T00:30:00Z"), "25 октомври 2026 г., 03:30");
        assert_eq!(bg("2026-10-25T01:30:00Z"), "25 октомври 2026 г., 03:30");
        // Midnight in Sofia is the day before in UTC.
        assert_eq!(bg("2026-07-31T22:15:00Z"), "1 август 2026 г., 01:15");
    }

    #[test]
    fn days_are_written_in_words_and_a_bad_date_is_none() {
        let d = Date {
            year: 2026,
            month: 11,
            day: 2,
        };
        assert_eq!(day(Some(&d), Language::Bg), "2 ноември 2026 г.");
        assert_eq!(day(Some(&d), Language::En), "2 November 2026");
        let bad = Date {
            year: 2026,
            month: 13,
            day: 2,
        };
        assert_eq!(day(Some(&bad), Language::En), "");
    }
}
