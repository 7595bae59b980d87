//! When a step happens. In production the database's clock says (`now()` of the step's transaction): one
//! clock for every instance, and nobody can date a step. A test that must build months of history with
//! known timings runs the service with `PLACEMENT_TEST_CLOCK=true` and tells each
//! request its time in the `x-placement-test-time` metadata (RFC 3339). Deadlines then fall due by the
//! latest time told, not by the wall clock, and a step a deadline takes is dated at the deadline: a
//! history told in order comes out as it would have happened. The test clock lets any caller date its
//! steps, so one variable must not turn it on in production: it needs development mode
//! (`PLACEMENT_AUTH_MODE=development`) as well, or the service refuses to start.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, Utc};
use placement_platform::error::{ServiceError, ServiceResult};
use tonic::Request;

/// The metadata key a test tells a request's time in.
pub const TOLD_TIME: &str = "x-placement-test-time";

#[derive(Clone, Debug, Default)]
pub struct StepClock {
    /// The latest time told, in microseconds since the epoch (0: none yet); `None` in production.
    told: Option<Arc<AtomicI64>>,
}

/// The test clock asked for outside development mode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "PLACEMENT_TEST_CLOCK=true is refused without PLACEMENT_AUTH_MODE=development: it lets any caller date its steps, so it is for tests only"
)]
pub struct TestClockRefused;

/// A request's told time is no RFC 3339 time.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{TOLD_TIME}: not an RFC 3339 time")]
pub struct UnreadableToldTime;

impl From<UnreadableToldTime> for ServiceError {
    fn from(_: UnreadableToldTime) -> Self {
        ServiceError::invalid(TOLD_TIME, "not an RFC 3339 time")
    }
}

impl StepClock {
    /// The clock the settings ask for: the told one only with `test_clock` in development mode.
    pub fn chosen(test_clock: bool, development: bool) -> Result<StepClock, TestClockRefused> {
        match (test_clock, development) {
            (false, _) => Ok(StepClock::database()),
            (true, true) => Ok(StepClock::told()),
            (true, false) => Err(TestClockRefused),
        }
    }

    /// The database's clock: told times are ignored.
    pub fn database() -> StepClock {
        StepClock { told: None }
    }

    /// A clock that takes each request's told time.
    pub fn told() -> StepClock {
        StepClock {
            told: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    /// The time the request was told to happen at; `None` means the database's clock.
    pub fn of_request<T>(&self, request: &Request<T>) -> ServiceResult<Option<DateTime<Utc>>> {
        let (Some(latest), Some(value)) = (&self.told, request.metadata().get(TOLD_TIME)) else {
            return Ok(None);
        };
        let at = value
            .to_str()
            .ok()
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .ok_or(UnreadableToldTime)?
            .to_utc();
        latest.fetch_max(at.timestamp_micros(), Ordering::SeqCst);
        Ok(Some(at))
    }

    /// The time deadlines fall due by: `None` means the database's `now()`.
    pub fn due_by(&self) -> Option<DateTime<Utc>> {
        let micros = self.told.as_ref()?.load(Ordering::SeqCst);
        (micros > 0).then(|| DateTime::from_timestamp_micros(micros))?
    }

    /// When a step taken by a deadline due at `due` happened: at its deadline when times are told (the
    /// told history goes on without waiting for the wall clock), else by the database's clock.
    pub fn of_deadline(&self, due: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.told.is_some().then_some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_at(value: &str) -> Request<()> {
        let mut r = Request::new(());
        r.metadata_mut()
            .insert(TOLD_TIME, value.parse().expect("ascii"));
        r
    }

    #[test]
    fn the_test_clock_is_refused_outside_development_mode() {
        assert_eq!(
            StepClock::chosen(true, false).map(|c| c.told.is_some()),
            Err(TestClockRefused)
        );
        assert!(
            TestClockRefused
                .to_string()
                .contains("PLACEMENT_AUTH_MODE=development")
        );
        assert_eq!(
            StepClock::chosen(true, true).map(|c| c.told.is_some()),
            Ok(true)
        );
        assert_eq!(
            StepClock::chosen(false, true).map(|c| c.told.is_some()),
            Ok(false)
        );
        assert_eq!(
            StepClock::chosen(false, false).map(|c| c.told.is_some()),
            Ok(false)
        );
    }

    #[test]
    fn production_ignores_a_told_time() {
        let clock = StepClock::database();
        let told = clock.of_request(&request_at("2026-03-02T09:00:00Z"));
        assert_eq!(told.expect("no error"), None);
        assert_eq!(clock.due_by(), None);
    }

    #[test]
    fn a_test_clock_keeps_the_latest_time_told() {
        let clock = StepClock::told();
        assert_eq!(
            clock.due_by(),
            None,
            "nothing told yet: the database's time"
        );
        let later = clock.of_request(&request_at("2026-03-02T09:00:00+02:00"));
        let earlier = clock.of_request(&request_at("2026-03-01T09:00:00Z"));
        let later = later.expect("valid").expect("told");
        assert_eq!(later.to_rfc3339(), "2026-03-02T07:00:00+00:00");
        assert!(earlier.expect("valid").expect("told") < later);
        assert_eq!(clock.due_by(), Some(later));
        assert!(clock.of_request(&request_at("yesterday")).is_err());
    }

    /// An unreadable told time is answered as before its type: the same code, field and text.
    #[test]
    fn an_unreadable_told_time_names_its_metadata_key() {
        let e = StepClock::told()
            .of_request(&request_at("yesterday"))
            .expect_err("not a time");
        assert!(matches!(&e, ServiceError::InvalidArgument { field, .. } if field == TOLD_TIME));
        assert_eq!(e.code_name(), "INVALID_ARGUMENT");
        assert_eq!(
            tonic::Status::from(e).message(),
            "x-placement-test-time: not an RFC 3339 time"
        );
    }
}
