//! `google.protobuf.Timestamp` and `Date` to and from chrono.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use placement_proto::v1::Date;
use prost_types::Timestamp;

pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        // Below 2·10⁹ always (a leap second adds at most 10⁹).
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(999_999_999),
    }
}

pub fn opt_timestamp(t: Option<DateTime<Utc>>) -> Option<Timestamp> {
    t.map(timestamp)
}

pub fn from_timestamp(t: &Timestamp) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.seconds, u32::try_from(t.nanos).ok()?)
        .single()
}

pub fn date(d: NaiveDate) -> Date {
    Date {
        year: d.year(),
        month: i32::try_from(d.month()).expect("1 to 12"),
        day: i32::try_from(d.day()).expect("1 to 31"),
    }
}

pub fn from_date(d: &Date) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        d.year,
        u32::try_from(d.month).ok()?,
        u32::try_from(d.day).ok()?,
    )
}

/// The first year a legal act in the exchange may bear: orders and decisions concern children, so none
/// that still matters is older than this; an earlier year is a typing error.
pub const FIRST_PLAUSIBLE_YEAR: i32 = 2000;

/// A legal act's date from a request: a calendar date, from [`FIRST_PLAUSIBLE_YEAR`] to today.
pub fn past_act_date(field: &str, date: Option<&Date>) -> crate::error::ServiceResult<NaiveDate> {
    let invalid = |why: &str| crate::error::ServiceError::invalid(field, why);
    let date = date.ok_or_else(|| invalid("required"))?;
    if date.year < FIRST_PLAUSIBLE_YEAR {
        return Err(invalid(&format!("year before {FIRST_PLAUSIBLE_YEAR}")));
    }
    let date = from_date(date).ok_or_else(|| invalid("not a calendar date"))?;
    if date > Utc::now().date_naive() {
        return Err(invalid("in the future"));
    }
    Ok(date)
}

/// The last day to apply to the court after a DSA director's order: one month later (Child Protection Act,
/// Art. 26(1)); the end of a shorter month when the day does not exist in it.
pub fn court_application_due(order: NaiveDate) -> NaiveDate {
    order
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(NaiveDate::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn court_application_is_due_a_month_after_the_order() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(court_application_due(d(2026, 11, 5)), d(2026, 12, 5));
        assert_eq!(court_application_due(d(2026, 1, 31)), d(2026, 2, 28));
    }

    #[test]
    fn timestamps_round_trip() {
        let now = Utc::now();
        assert_eq!(from_timestamp(&timestamp(now)), Some(now));
    }

    #[test]
    fn invalid_dates_are_none() {
        assert!(
            from_date(&Date {
                year: 2026,
                month: 2,
                day: 30
            })
            .is_none()
        );
        assert!(
            from_date(&Date {
                year: 2026,
                month: -1,
                day: 1
            })
            .is_none()
        );
        let d = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        assert_eq!(from_date(&date(d)), Some(d));
    }
}
