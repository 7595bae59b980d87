//! Keyset pagination: page tokens are opaque to clients and never drive an OFFSET scan.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

/// The page size to use, from a request's `page_size` (0 means the default).
pub fn page_size(field: &str, requested: u32) -> ServiceResult<i64> {
    match requested {
        0 => Ok(i64::from(DEFAULT_PAGE_SIZE)),
        n if n > MAX_PAGE_SIZE => Err(ServiceError::invalid(
            field,
            format!("at most {MAX_PAGE_SIZE}"),
        )),
        n => Ok(i64::from(n)),
    }
}

/// Keeps the first `limit` of `rows` (fetched with `limit + 1`) and returns the next page's token, made
/// from the last row kept, or an empty token when there is no next page.
pub fn take_page<T>(rows: &mut Vec<T>, limit: i64, token: impl Fn(&T) -> String) -> String {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(token).unwrap_or_default()
    } else {
        String::new()
    }
}

/// A position in a list ordered by (time, id), newest first or oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at.timestamp_micros(), self.id.simple())
    }

    pub fn decode(field: &str, token: &str) -> ServiceResult<Option<Self>> {
        if token.is_empty() {
            return Ok(None);
        }
        let bad = || ServiceError::invalid(field, "not a page token from this service");
        let (micros, id) = token.split_once('.').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        let id = Uuid::parse_str(id).map_err(|_| bad())?;
        Ok(Some(Self { at, id }))
    }
}

/// A page token that is just the last id (lists ordered by id).
pub fn decode_id_token(field: &str, token: &str) -> ServiceResult<Option<Uuid>> {
    if token.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(token)
        .map(Some)
        .map_err(|_| ServiceError::invalid(field, "not a page token from this service"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_end_with_an_empty_token() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(take_page(&mut rows, 2, |r| r.to_string()), "2");
        assert_eq!(rows, vec![1, 2]);
        let mut rows = vec![1, 2];
        assert_eq!(take_page(&mut rows, 2, |r| r.to_string()), "");
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(
            Cursor::decode("page.page_token", &c.encode()).unwrap(),
            Some(c)
        );
        assert_eq!(Cursor::decode("t", "").unwrap(), None);
        assert!(Cursor::decode("t", "x.y").is_err());
        assert!(page_size("page.page_size", 501).is_err());
        assert_eq!(page_size("page.page_size", 0).unwrap(), 50);
    }
}
