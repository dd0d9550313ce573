//! A set of keys the store holds, complete in memory, so that a key never seen before
//! needs no round trip to learn it is absent: every revoked JWT id (a token seen for the
//! first time is known unrevoked), and every opaque token digest (an unknown token is
//! known unknown). Changes only ever add to a set; it is read again from the store after
//! each purge, to drop what expired.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::RwLock;

struct State<T> {
    /// Every key, when known completely.
    complete: Option<HashSet<T>>,
    /// While a snapshot is being read: the keys added since it began.
    pending: Option<HashSet<T>>,
    /// The last snapshot found more keys than fit: requests ask the store, and only a
    /// purge or a feed loss makes another read worth trying.
    too_large: bool,
}

impl<T> Default for State<T> {
    fn default() -> Self {
        State {
            complete: None,
            pending: None,
            too_large: false,
        }
    }
}

pub struct KnownSet<T> {
    state: RwLock<State<T>>,
    /// Beyond this many keys, the set is not kept: lookups go through the store.
    max: usize,
}

/// How a snapshot of the store's keys ended.
pub enum Snapshot<T> {
    Read(HashSet<T>),
    TooLarge,
    Failed,
}

impl<T: Eq + Hash> KnownSet<T> {
    pub fn new(max: usize) -> Self {
        KnownSet {
            state: RwLock::new(State::default()),
            max,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// `Some(present)` when the set is complete; `None` when the store must be asked.
    pub fn contains<Q>(&self, key: &Q) -> Option<bool>
    where
        T: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.complete.as_ref().map(|keys| keys.contains(key))
    }

    /// Whether a request that found the set unknown should start a read: not while one
    /// is under way, nor after one found too many ids.
    pub fn wanted(&self) -> bool {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.complete.is_none() && state.pending.is_none() && !state.too_large
    }

    /// Records a key this process has heard of. Past `max` keys the set is given up, as
    /// when a snapshot is too large.
    pub fn add(&self, key: T)
    where
        T: Clone,
    {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(keys) = state.pending.as_mut() {
            keys.insert(key.clone());
        }
        if let Some(keys) = state.complete.as_mut() {
            keys.insert(key);
            if keys.len() > self.max {
                state.complete = None;
                state.too_large = true;
            }
        }
    }

    /// Forgets the set, and the snapshot being read, when changes may have been missed.
    pub fn forget(&self) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        *state = State::default();
    }

    /// Starts reading a snapshot; false when one is being read already.
    pub fn begin(&self) -> bool {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state.pending.is_some() {
            return false;
        }
        state.pending = Some(HashSet::new());
        true
    }

    /// Installs a snapshot read since [`KnownSet::begin`], with the keys heard of
    /// meanwhile, unless the set was forgotten in between.
    pub fn finish(&self, snapshot: Snapshot<T>) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let Some(pending) = state.pending.take() else {
            return;
        };
        match snapshot {
            Snapshot::Read(mut keys) if keys.len() + pending.len() <= self.max => {
                keys.extend(pending);
                state.complete = Some(keys);
                state.too_large = false;
            }
            Snapshot::Read(_) | Snapshot::TooLarge => {
                state.complete = None;
                state.too_large = true;
            }
            Snapshot::Failed => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type RevokedSet = KnownSet<String>;

    fn ids(list: &[&str]) -> HashSet<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn unknown_until_a_snapshot_is_installed() {
        let set = RevokedSet::new(10);
        assert_eq!(set.contains("a"), None);
        assert!(set.begin());
        assert!(!set.begin(), "one snapshot at a time");
        set.finish(Snapshot::Read(ids(&["a"])));
        assert_eq!(set.contains("a"), Some(true));
        assert_eq!(set.contains("b"), Some(false));
    }

    #[test]
    fn revocations_heard_while_reading_are_kept() {
        let set = RevokedSet::new(10);
        set.begin();
        set.add("late".to_owned());
        set.finish(Snapshot::Read(ids(&["early"])));
        assert_eq!(set.contains("late"), Some(true));
        assert_eq!(set.contains("early"), Some(true));
    }

    #[test]
    fn a_snapshot_begun_before_a_loss_is_discarded() {
        let set = RevokedSet::new(10);
        set.begin();
        set.forget();
        set.finish(Snapshot::Read(ids(&[])));
        assert_eq!(set.contains("x"), None);
    }

    #[test]
    fn a_refresh_keeps_answering_and_a_failure_keeps_the_old_set() {
        let set = RevokedSet::new(10);
        set.begin();
        set.finish(Snapshot::Read(ids(&["a"])));
        set.begin();
        set.add("b".to_owned());
        assert_eq!(
            set.contains("b"),
            Some(true),
            "the old set answers meanwhile"
        );
        set.finish(Snapshot::Failed);
        assert_eq!(set.contains("a"), Some(true));
        set.begin();
        set.finish(Snapshot::TooLarge);
        assert_eq!(set.contains("a"), None);
    }

    #[test]
    fn the_set_gives_way_to_the_store_once_it_outgrows_max() {
        let set = RevokedSet::new(2);
        set.begin();
        set.finish(Snapshot::Read(ids(&["a", "b"])));
        set.add("b".to_owned());
        assert_eq!(set.contains("a"), Some(true), "no new id, still within max");
        set.add("c".to_owned());
        assert_eq!(set.contains("a"), None);
        assert!(!set.wanted(), "too large: not read again until a purge");
    }

    #[test]
    fn requests_start_a_read_only_when_one_could_help() {
        let set = RevokedSet::new(10);
        assert!(set.wanted(), "never read");
        set.begin();
        assert!(!set.wanted(), "being read");
        set.finish(Snapshot::Failed);
        assert!(set.wanted(), "the read failed");
        set.begin();
        set.finish(Snapshot::TooLarge);
        assert!(
            !set.wanted(),
            "too many ids: the store answers until a purge"
        );
        set.forget();
        assert!(set.wanted(), "changes were missed: read again");
        set.begin();
        set.finish(Snapshot::Read(ids(&[])));
        assert!(!set.wanted(), "complete");
    }
}
