//! What the app keeps of what the services said and rarely changes (agencies' and services' names,
//! agencies' kinds and districts), so a page showing many asks once. Bounded: beyond the bound, everything
//! kept is forgotten at once and read again when needed.

use std::{borrow::Borrow, collections::HashMap, hash::Hash, sync::Mutex};

/// At most this many values are kept.
const BOUND: usize = 10_000;

pub struct Remembered<K, V> {
    kept: Mutex<HashMap<K, V>>,
}

impl<K, V> Default for Remembered<K, V> {
    fn default() -> Self {
        Self {
            kept: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Remembered<K, V> {
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.kept.lock().expect("not poisoned").get(key).cloned()
    }

    pub fn keep(&self, key: K, value: V) {
        let mut kept = self.kept.lock().expect("not poisoned");
        if kept.len() > BOUND {
            kept.clear();
        }
        kept.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept_is_given_back_and_the_bound_forgets_everything() {
        let r: Remembered<String, u32> = Remembered::default();
        r.keep("a".into(), 1);
        assert_eq!(r.get("a"), Some(1));
        assert_eq!(r.get("b"), None);
        for i in 0..=BOUND {
            r.keep(i.to_string(), 2);
        }
        r.keep("last".into(), 3);
        assert_eq!(r.get("a"), None, "forgotten past the bound");
        assert_eq!(r.get("last"), Some(3));
    }
}
