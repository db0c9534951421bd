//! The limiter the gateway holds: one backend chosen by `[shared] url`.

use std::sync::Arc;

use crate::LimitError;
use crate::clock::{Clock, SystemClock};
use crate::decision::{RateDecision, RateVerdict};
use crate::key::LimitKey;
use crate::memory::MemoryBackend;
use crate::policy::Policy;
use crate::redis_backend::RedisBackend;
use crate::store::{StoreConn, StoreOptions, StoreUrl};

/// Rate limiter over the in-memory or the Redis backend.
///
/// Holds no policy: each call names its [`Policy`] and [`LimitKey`], so a config reload only
/// swaps the policies. Share it behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub enum Limiter {
    /// This process only.
    Memory(MemoryBackend),
    /// Shared through Redis / Redis Cluster.
    Redis(RedisBackend),
}

impl Limiter {
    /// An in-memory limiter on the system clock.
    pub fn memory() -> Self {
        Limiter::Memory(MemoryBackend::with_system_clock())
    }

    /// An in-memory limiter on `clock` (tests pass a [`crate::ManualClock`]).
    pub fn memory_with_clock(clock: Arc<dyn Clock>) -> Self {
        Limiter::Memory(MemoryBackend::new(clock))
    }

    /// The limiter for a `[shared] url`: `memory://`, `redis://...` or `redis+cluster://...`.
    ///
    /// Connects lazily, so it succeeds while Redis is down (decisions then follow
    /// `fail_open`). Must run inside a Tokio runtime for the Redis forms.
    pub fn from_url(url: &str, options: StoreOptions) -> Result<Self, LimitError> {
        Self::from_url_with_clock(url, options, Arc::new(SystemClock::new()))
    }

    /// [`Limiter::from_url`] with an explicit clock (the Redis backend uses it only for its
    /// local refusal cache; GCRA itself runs on the Redis clock).
    pub fn from_url_with_clock(
        url: &str,
        options: StoreOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, LimitError> {
        let url = StoreUrl::parse(url)?;
        Ok(match StoreConn::open(&url, &options)? {
            None => Limiter::Memory(MemoryBackend::new(clock).with_max_keys(options.max_keys)),
            Some(conn) => Limiter::Redis(RedisBackend::new(conn, options, clock)),
        })
    }

    /// Decides one request against one policy.
    pub async fn check(&self, policy: &Policy, key: &LimitKey) -> RateDecision {
        match self {
            Limiter::Memory(m) => m.check(policy, key),
            Limiter::Redis(r) => r.check(policy, key).await,
        }
    }

    /// Decides one request against every policy of a phase; all must admit, and a refusal
    /// takes no budget from the others (see the backends for how).
    pub async fn check_all(&self, checks: &[(&Policy, &LimitKey)]) -> RateVerdict {
        match self {
            Limiter::Memory(m) => m.check_all(checks),
            Limiter::Redis(r) => r.check_all(checks).await,
        }
    }

    /// Whether the shared store is considered down (always false in memory): a call failed
    /// and no probe has succeeded since. For `/readyz` and metrics.
    pub fn is_degraded(&self) -> bool {
        match self {
            Limiter::Memory(_) => false,
            Limiter::Redis(r) => r.is_degraded(),
        }
    }

    /// Drops state that no longer matters (full buckets in memory, expired cached refusals
    /// for Redis). Call every few seconds from a timer; returns how many entries went.
    pub fn sweep(&self) -> usize {
        match self {
            Limiter::Memory(m) => m.sweep(),
            Limiter::Redis(r) => r.sweep(),
        }
    }
}
