//! Every revoked JWT id in memory, so that a token seen for the first time needs no
//! round trip to learn it is not revoked. Revocations only ever add to the set; it is
//! read again from the store after each purge, to drop expired ids.

use std::collections::HashSet;
use std::sync::RwLock;

#[derive(Default)]
struct State {
    /// Every revoked id, when known completely.
    complete: Option<HashSet<String>>,
    /// While a snapshot is being read: the ids revoked since it began.
    pending: Option<HashSet<String>>,
    /// The last snapshot found more ids than fit: requests ask the store, and only a
    /// purge or a feed loss makes another read worth trying.
    too_large: bool,
}

pub struct RevokedSet {
    state: RwLock<State>,
    /// Beyond this many revoked ids, the set is not kept: lookups go through the store.
    max: usize,
}

/// How a snapshot of the store's revoked ids ended.
pub enum Snapshot {
    Read(HashSet<String>),
    TooLarge,
    Failed,
}

impl RevokedSet {
    pub fn new(max: usize) -> Self {
        RevokedSet {
            state: RwLock::new(State::default()),
            max,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// `Some(revoked)` when the set is complete; `None` when the store must be asked.
    pub fn contains(&self, jti: &str) -> Option<bool> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.complete.as_ref().map(|ids| ids.contains(jti))
    }

    /// Whether a request that found the set unknown should start a read: not while one
    /// is under way, nor after one found too many ids.
    pub fn wanted(&self) -> bool {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.complete.is_none() && state.pending.is_none() && !state.too_large
    }

    /// Records a revocation this process has heard of. Past `max` ids the set is given
    /// up, as when a snapshot is too large.
    pub fn add(&self, jti: &str) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(ids) = state.complete.as_mut() {
            ids.insert(jti.to_owned());
            if ids.len() > self.max {
                state.complete = None;
                state.too_large = true;
            }
        }
        if let Some(ids) = state.pending.as_mut() {
            ids.insert(jti.to_owned());
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

    /// Installs a snapshot read since [`RevokedSet::begin`], with the revocations heard
    /// of meanwhile, unless the set was forgotten in between.
    pub fn finish(&self, snapshot: Snapshot) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let Some(pending) = state.pending.take() else {
            return;
        };
        match snapshot {
            Snapshot::Read(mut ids) => {
                ids.extend(pending);
                state.complete = Some(ids);
                state.too_large = false;
            }
            Snapshot::TooLarge => {
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
        set.add("late");
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
        set.add("b");
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
        set.add("b");
        assert_eq!(set.contains("a"), Some(true), "no new id, still within max");
        set.add("c");
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
