//! Revoked session ids, held in memory until every access token of the session has expired,
//! and checked on every verification. [`RevocationSink`] is the hook through which revocations
//! made here reach other nodes (see [`crate::redis_sync`] for the Redis pub/sub one).

use std::sync::atomic::{AtomicBool, Ordering};

use dashmap::DashMap;

/// The in-memory set of revoked `sid`s of one node.
#[derive(Debug)]
pub struct RevocationList {
    sids: DashMap<String, i64>,
    synced: AtomicBool,
    hold_secs: i64,
}

impl RevocationList {
    /// An empty, synced list; entries are kept `hold_secs` after revocation (the longest
    /// access-token lifetime plus leeway).
    pub fn new(hold_secs: i64) -> Self {
        Self {
            sids: DashMap::new(),
            synced: AtomicBool::new(true),
            hold_secs: hold_secs.max(1),
        }
    }

    /// How long an entry is kept after its revocation.
    pub fn hold_secs(&self) -> i64 {
        self.hold_secs
    }

    /// Records a revocation made at `now`; returns the time until which it is held.
    pub fn revoke(&self, sid: &str, now: i64) -> i64 {
        let until = now.saturating_add(self.hold_secs);
        self.insert_until(sid, until);
        until
    }

    /// Records a revocation held until `until` (from another node or a re-sync).
    pub fn insert_until(&self, sid: &str, until: i64) {
        let mut e = self.sids.entry(sid.to_owned()).or_insert(until);
        if *e < until {
            *e = until;
        }
    }

    /// True while `sid` is revoked and its tokens could still be valid.
    pub fn is_revoked(&self, sid: &str, now: i64) -> bool {
        self.sids.get(sid).is_some_and(|until| now <= *until)
    }

    /// Drops entries whose tokens have all expired.
    pub fn purge(&self, now: i64) {
        self.sids.retain(|_, until| now <= *until);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.sids.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.sids.is_empty()
    }

    /// Marks whether the list is known complete. While not synced (the shared store's
    /// subscription is down and not re-synced), tokens carrying a `sid` fail closed.
    pub fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::SeqCst);
    }

    /// See [`RevocationList::set_synced`].
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }
}

/// Where revocations made on this node are published for the other nodes.
#[async_trait::async_trait]
pub trait RevocationSink: Send + Sync + std::fmt::Debug {
    /// Publishes that `sid` is revoked and must be refused until `until` (Unix seconds).
    async fn publish(&self, sid: &str, until: i64) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_until_tokens_expire() {
        let l = RevocationList::new(900);
        l.revoke("s1", 100);
        assert!(l.is_revoked("s1", 100));
        assert!(l.is_revoked("s1", 1000));
        assert!(!l.is_revoked("s1", 1001));
        assert!(!l.is_revoked("s2", 100));
        l.purge(2000);
        assert!(l.is_empty());
    }
}
