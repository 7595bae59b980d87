//! Bounds on what one caller may hold at once: streams kept open, expensive reads in progress. Each bound
//! counts by a key (an agency, a person, or `()` for the whole process); past its limit a call is refused
//! with RESOURCE_EXHAUSTED, so that a flood from one caller costs the others nothing but its own share.

use std::{
    collections::HashMap,
    hash::Hash,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ServiceError;

type Held<K> = Arc<Mutex<HashMap<K, Arc<Semaphore>>>>;

/// At most `max` admissions per key at once.
pub struct Limit<K> {
    max: NonZeroUsize,
    /// What is counted, for the refusal: "watch streams per person".
    what: &'static str,
    /// Only keys with an admission (or a call waiting for one) have an entry: keys come and go without
    /// the map growing.
    held: Held<K>,
}

/// One admission; its place is given back when it is dropped.
pub struct Admitted<K: Eq + Hash> {
    // Declared first so that it is dropped first: the place is free before the entry may be forgotten.
    _permit: OwnedSemaphorePermit,
    _hold: Hold<K>,
}

/// A share in a key's entry; the last one dropped removes the entry.
struct Hold<K: Eq + Hash> {
    key: K,
    semaphore: Arc<Semaphore>,
    held: Held<K>,
}

impl<K: Eq + Hash> Drop for Hold<K> {
    fn drop(&mut self) {
        let mut held = self.held.lock().expect("not poisoned");
        // Shares are only taken under this lock, so two references (the map's and this one) mean nobody
        // else holds or waits for a place under this key.
        if Arc::strong_count(&self.semaphore) == 2 {
            held.remove(&self.key);
        }
    }
}

impl<K: Eq + Hash + Clone> Limit<K> {
    pub fn new(max: NonZeroUsize, what: &'static str) -> Self {
        Self {
            max,
            what,
            held: Arc::default(),
        }
    }

    pub fn max(&self) -> usize {
        self.max.get()
    }

    fn hold(&self, key: K) -> Hold<K> {
        let semaphore = self
            .held
            .lock()
            .expect("not poisoned")
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.max.get())))
            .clone();
        Hold {
            key,
            semaphore,
            held: self.held.clone(),
        }
    }

    fn refusal(&self) -> ServiceError {
        ServiceError::ResourceExhausted(format!(
            "at most {} {} at once; try again when one has ended",
            self.max, self.what
        ))
    }

    /// A place under `key` now, or RESOURCE_EXHAUSTED.
    pub fn admit(&self, key: K) -> Result<Admitted<K>, ServiceError> {
        let hold = self.hold(key);
        match hold.semaphore.clone().try_acquire_owned() {
            Ok(permit) => Ok(Admitted {
                _permit: permit,
                _hold: hold,
            }),
            Err(_) => Err(self.refusal()),
        }
    }

    /// A place under `key` within `wait`, or RESOURCE_EXHAUSTED: for short calls, whose places free up
    /// soon.
    pub async fn admit_within(&self, key: K, wait: Duration) -> Result<Admitted<K>, ServiceError> {
        let hold = self.hold(key);
        match tokio::time::timeout(wait, hold.semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Admitted {
                _permit: permit,
                _hold: hold,
            }),
            // The semaphore is never closed.
            Ok(Err(_)) | Err(_) => Err(self.refusal()),
        }
    }

    /// The keys with an entry (an admission or a call waiting), for tests.
    pub fn keys_held(&self) -> usize {
        self.held.lock().expect("not poisoned").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max: usize) -> Limit<&'static str> {
        Limit::new(NonZeroUsize::new(max).unwrap(), "streams per person")
    }

    #[test]
    fn a_key_past_its_limit_is_refused_and_a_place_given_back_is_taken_again() {
        let limit = limit(2);
        let first = limit.admit("ana").unwrap();
        let _second = limit.admit("ana").unwrap();
        let refused = tonic::Status::from(limit.admit("ana").err().unwrap());
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("at most 2 streams per person"),
            "{}",
            refused.message()
        );
        // Another key has its own places.
        let _other = limit.admit("boris").unwrap();
        drop(first);
        assert!(limit.admit("ana").is_ok());
    }

    #[test]
    fn keys_without_admissions_are_forgotten() {
        let limit = limit(1);
        let a = limit.admit("ana").unwrap();
        assert!(limit.admit("ana").is_err());
        assert_eq!(limit.keys_held(), 1);
        drop(a);
        assert_eq!(limit.keys_held(), 0);
        let many = Limit::<u32>::new(NonZeroUsize::MIN, "x");
        let admitted: Vec<_> = (0..100).map(|i| many.admit(i).unwrap()).collect();
        assert_eq!(many.keys_held(), 100);
        drop(admitted);
        assert_eq!(many.keys_held(), 0);
    }

    #[tokio::test]
    async fn a_waiting_call_gets_the_place_given_back_or_is_refused_after_its_wait() {
        let limit = Arc::new(limit(1));
        let first = limit.admit("ana").unwrap();
        let refused = limit
            .admit_within("ana", Duration::from_millis(20))
            .await
            .err()
            .unwrap();
        assert_eq!(refused.code_name(), "RESOURCE_EXHAUSTED");
        let waiting = {
            let limit = limit.clone();
            tokio::spawn(async move {
                limit
                    .admit_within("ana", Duration::from_secs(10))
                    .await
                    .is_ok()
            })
        };
        drop(first);
        assert!(waiting.await.unwrap());
        assert_eq!(limit.keys_held(), 0);
    }
}
