//! Time sources: a monotonic clock for decisions and a wall clock for ban expiry.
//!
//! Decisions use monotonic nanoseconds so a wall-clock step never refills or drains a bucket;
//! bans carry wall-clock instants because they are shared with other nodes. Tests drive a
//! [`ManualClock`] instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of time for limiters and bans.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Monotonic nanoseconds since an arbitrary origin fixed for this clock's lifetime.
    /// Never goes backwards.
    fn now(&self) -> u64;
    /// Wall-clock milliseconds since the Unix epoch (used for ban expiry shared across nodes).
    fn unix_millis(&self) -> u64;
}

/// The production clock: the CPU's invariant TSC through `quanta` (falling back to the OS
/// monotonic clock where there is none) for decisions, [`SystemTime`] for bans.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: quanta::Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is the moment of this call. The first clock of the
    /// process calibrates the TSC (a few milliseconds).
    pub fn new() -> Self {
        Self {
            origin: quanta::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        // u64 nanoseconds last 584 years of uptime; saturate rather than wrap.
        let d = quanta::Instant::now().saturating_duration_since(self.origin);
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    fn unix_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to: tests advance it instead of sleeping.
///
/// Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
    epoch_millis: u64,
}

impl ManualClock {
    /// A clock at monotonic time 1 s whose wall clock reads 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self {
            nanos: Arc::new(AtomicU64::new(1_000_000_000)),
            epoch_millis: 1_767_225_600_000,
        }
    }

    /// Moves the clock forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        let add = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(add))
            });
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.nanos.load(Ordering::Acquire)
    }

    fn unix_millis(&self) -> u64 {
        self.epoch_millis.saturating_add(self.now() / 1_000_000)
    }
}
