//! The in-memory backend: sharded map of atomic theoretical arrival times.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::clock::{Clock, SystemClock};
use crate::decision::{RateDecision, RateVerdict};
use crate::gcra::{Step, step};
use crate::key::{LimitKey, PrehashedState};
use crate::policy::Policy;

/// Rate limits kept in this process: one `u64` theoretical arrival time per key, updated by
/// compare-and-swap. The map is sharded (DashMap); a decision takes one shard's read lock and
/// one CAS, so there is no global lock. Idle keys stay until [`MemoryBackend::sweep`].
///
/// Memory is bounded: past `max_keys` keys (default [`MemoryBackend::DEFAULT_MAX_KEYS`]),
/// requests on keys not yet tracked share one overflow bucket per policy until a sweep makes
/// room. A flood of fresh keys (random header values, many IPv6 /64s) is then still limited,
/// at the cost of new legitimate clients sharing that bucket meanwhile; known keys are
/// unaffected. Each overflow is counted in `rampart_ratelimit_key_overflow_total`.
#[derive(Debug)]
pub struct MemoryBackend {
    map: DashMap<LimitKey, AtomicU64, PrehashedState>,
    clock: Arc<dyn Clock>,
    count: AtomicUsize,
    max_keys: usize,
}

impl MemoryBackend {
    /// Default key cap: about 100 MB of keys.
    pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

    /// An empty backend reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            map: DashMap::with_hasher_and_shard_amount(PrehashedState, shard_amount()),
            clock,
            count: AtomicUsize::new(0),
            max_keys: Self::DEFAULT_MAX_KEYS,
        }
    }

    /// The same backend with a different key cap (at least 1).
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// An empty backend on the system clock.
    pub fn with_system_clock() -> Self {
        Self::new(Arc::new(SystemClock::new()))
    }

    /// The clock this backend reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Decides one request for `key` under `policy`, now.
    pub fn check(&self, policy: &Policy, key: &LimitKey) -> RateDecision {
        self.check_at(policy, key, self.clock.now())
    }

    /// Decides one request at monotonic time `now` (nanoseconds of this backend's clock).
    pub fn check_at(&self, policy: &Policy, key: &LimitKey, now: u64) -> RateDecision {
        if let Some(cell) = self.map.get(key) {
            return cas_step(policy, &cell, now);
        }
        if self.count.load(Ordering::Relaxed) >= self.max_keys && !key.is_overflow() {
            metrics::counter!("rampart_ratelimit_key_overflow_total").increment(1);
            return self.check_at(policy, &LimitKey::overflow(policy), now);
        }
        match self.map.entry(key.clone()) {
            Entry::Occupied(e) => cas_step(policy, e.get(), now),
            Entry::Vacant(v) => match step(policy, 0, now) {
                Step::Admit { new_tat, ahead } => {
                    v.insert(AtomicU64::new(new_tat));
                    self.count.fetch_add(1, Ordering::Relaxed);
                    RateDecision::allowed(policy, ahead)
                }
                // Unreachable with burst >= 1; answered correctly anyway, without storing.
                Step::Refuse { wait, drain } => RateDecision::limited(policy, wait, drain),
            },
        }
    }

    /// What a request would get now, without taking anything.
    pub fn peek(&self, policy: &Policy, key: &LimitKey) -> RateDecision {
        let now = self.clock.now();
        let tat = self.map.get(key).map_or(0, |c| c.load(Ordering::Acquire));
        match step(policy, tat, now) {
            Step::Admit { ahead, .. } => RateDecision::allowed(policy, ahead),
            Step::Refuse { wait, drain } => RateDecision::limited(policy, wait, drain),
        }
    }

    /// Decides one request against several policies; all must admit.
    ///
    /// All or nothing: when one policy refuses, no budget of the others is taken. The refusal
    /// is found first by reading every key; then each key is taken by CAS. If a concurrent
    /// request made a later key refuse between the two passes, the units already taken are
    /// given back (the theoretical arrival time moves back by one interval).
    pub fn check_all(&self, checks: &[(&Policy, &LimitKey)]) -> RateVerdict {
        let now = self.clock.now();
        for (index, (policy, key)) in checks.iter().enumerate() {
            let tat = self.map.get(*key).map_or(0, |c| c.load(Ordering::Acquire));
            if let Step::Refuse { wait, drain } = step(policy, tat, now) {
                return RateVerdict::Limited {
                    index,
                    decision: RateDecision::limited(policy, wait, drain),
                };
            }
        }
        let mut decisions = Vec::with_capacity(checks.len());
        for (index, (policy, key)) in checks.iter().enumerate() {
            let d = self.check_at(policy, key, now);
            if let RateDecision::Limited { .. } = d {
                for (p, k) in &checks[..index] {
                    self.refund(p, k);
                }
                return RateVerdict::Limited { index, decision: d };
            }
            decisions.push(d);
        }
        RateVerdict::Allowed(decisions)
    }

    fn refund(&self, policy: &Policy, key: &LimitKey) {
        if let Some(cell) = self.map.get(key) {
            let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_sub(policy.interval_nanos()))
            });
        }
    }

    /// Removes keys whose bucket is full again (indistinguishable from absent keys) and
    /// returns how many were removed. Call it from a timer (every few seconds); it locks one
    /// shard at a time.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now();
        let mut removed = 0;
        self.map.retain(|_, tat| {
            let keep = tat.load(Ordering::Acquire) > now;
            removed += usize::from(!keep);
            keep
        });
        let _ = self
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(removed))
            });
        removed
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Many more shards than cores, so two cores rarely take the same shard lock (each read lock
/// is an atomic write to the shard's lock word, and a shared cache line costs more than the
/// whole decision).
pub(crate) fn shard_amount() -> usize {
    let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
    (cpus * 64).clamp(64, 4096).next_power_of_two()
}

fn cas_step(policy: &Policy, cell: &AtomicU64, now: u64) -> RateDecision {
    let mut tat = cell.load(Ordering::Acquire);
    loop {
        match step(policy, tat, now) {
            Step::Refuse { wait, drain } => return RateDecision::limited(policy, wait, drain),
            Step::Admit { new_tat, ahead } => {
                match cell.compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return RateDecision::allowed(policy, ahead),
                    Err(actual) => tat = actual,
                }
            }
        }
    }
}
