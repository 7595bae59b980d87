//! Numbers between the API's unsigned fields and the signed columns PostgreSQL stores, converted with
//! checks. A plain `as` cast wraps: a `u32::MAX` bound became -1 and matched every row. The workspace denies
//! such casts; these are the conversions to use instead.

use std::ops::RangeInclusive;

use crate::error::{ServiceError, ServiceResult};

/// A number from a request within `range`, as the INTEGER column stores it; otherwise INVALID_ARGUMENT
/// naming `field` and saying `why`.
pub fn within(
    field: &str,
    value: u32,
    range: RangeInclusive<u32>,
    why: impl FnOnce() -> String,
) -> ServiceResult<i32> {
    range
        .contains(&value)
        .then(|| i32::try_from(value).ok())
        .flatten()
        .ok_or_else(|| ServiceError::invalid(field, why()))
}

/// A number from a request, at most `max`, as the INTEGER column stores it.
pub fn at_most(field: &str, value: u32, max: u32) -> ServiceResult<i32> {
    within(field, value, 0..=max, || format!("at most {max}"))
}

/// A version or sequence from a request as the BIGINT column stores it; `None` when beyond any stored
/// value (so it matches nothing).
pub fn stored_serial(value: u64) -> Option<i64> {
    i64::try_from(value).ok()
}

/// A count the schema keeps at zero or above (CHECK constraints), for the API.
pub fn count(stored: i32) -> u32 {
    u32::try_from(stored).unwrap_or(0)
}

/// A version or sequence the schema keeps positive, for the API.
pub fn serial(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}

/// A length or position in memory as the number the API or the database carries, saturating.
pub fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A length or position in memory as BIGINT, saturating.
pub fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A length or position as INTEGER, saturating.
pub fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_never_wrap() {
        assert_eq!(at_most("places", 3, 10).unwrap(), 3);
        assert!(at_most("places", 11, 10).is_err());
        assert!(at_most("places", u32::MAX, u32::MAX).is_err());
        assert!(within("capacity", 0, 1..=10, || "between 1 and 10".into()).is_err());
        assert_eq!(within("capacity", 10, 1..=10, String::new).unwrap(), 10);
        assert_eq!(stored_serial(u64::MAX), None);
        assert_eq!(stored_serial(7), Some(7));
        assert_eq!(count(-1), 0);
        assert_eq!(serial(-5), 0);
        assert_eq!(len_i32(usize::MAX), i32::MAX);
    }
}
