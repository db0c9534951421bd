//! The Redis / Valkey backend: one atomic Lua GCRA script per decision.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use redis::Script;

use crate::LimitError;
use crate::clock::Clock;
use crate::decision::{RateDecision, RateVerdict};
use crate::key::{LimitKey, PrehashedState};
use crate::policy::Policy;
use crate::store::{StoreConn, StoreOptions};

/// GCRA in microseconds on the Redis clock (`TIME`), so every gateway node sees one clock.
/// Reply: `{1, ahead, 0}` when admitted, `{0, wait, drain}` when refused.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > tolerance then
  return {0, ahead - tolerance, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.floor(ahead / 1000) + 1)
return {1, ahead, 0}
";

/// Gives back one interval taken by a request that another policy then refused.
const REFUND_LUA: &str = r"
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat then
  redis.call('SET', KEYS[1], string.format('%.0f', tat - tonumber(ARGV[1])), 'KEEPTTL')
end
return 1
";

/// Most refused keys remembered locally.
const MAX_CACHED_REFUSALS: usize = 200_000;

#[derive(Debug, Clone, Copy)]
struct Rejected {
    /// Local monotonic time when one request fits again.
    until: u64,
    /// Local monotonic time when the bucket is full.
    full_at: u64,
}

/// Rate limits shared through Redis or a Redis Cluster.
///
/// Each decision is one `EVALSHA` of an atomic GCRA script on the Redis clock, so any number
/// of gateway nodes enforce one limit. Keys are `PREFIX{policy|kind|value}`: the hash tag is
/// the whole key text, so a Cluster routes each key by its own slot. A refused key is cached
/// locally until its retry time: a flood on one key costs no round trip. After a store error
/// the backend answers [`RateDecision::Unavailable`] without trying for
/// [`StoreOptions::retry_pause`], then tries again; the connection reconnects by itself.
#[derive(Debug)]
pub struct RedisBackend {
    conn: StoreConn,
    opts: StoreOptions,
    clock: Arc<dyn Clock>,
    rejected: DashMap<LimitKey, Rejected, PrehashedState>,
    rejected_count: AtomicUsize,
    down_until: AtomicU64,
    round_trips: AtomicU64,
    gcra: Script,
    refund: Script,
}

impl RedisBackend {
    pub(crate) fn new(conn: StoreConn, opts: StoreOptions, clock: Arc<dyn Clock>) -> Self {
        Self {
            conn,
            opts,
            clock,
            rejected: DashMap::with_hasher_and_shard_amount(
                PrehashedState,
                crate::memory::shard_amount(),
            ),
            rejected_count: AtomicUsize::new(0),
            down_until: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
            gcra: Script::new(GCRA_LUA),
            refund: Script::new(REFUND_LUA),
        }
    }

    fn redis_key(&self, key: &LimitKey) -> String {
        format!("{}rl:{{{}}}", self.opts.prefix, key.as_str())
    }

    fn cached(&self, policy: &Policy, key: &LimitKey, now: u64) -> Option<RateDecision> {
        let r = *self.rejected.get(key)?;
        if r.until > now {
            metrics::counter!("rampart_ratelimit_local_rejections_total").increment(1);
            return Some(RateDecision::limited(
                policy,
                r.until - now,
                r.full_at.saturating_sub(now),
            ));
        }
        if self
            .rejected
            .remove_if(key, |_, r| r.until <= now)
            .is_some()
        {
            self.rejected_count.fetch_sub(1, Ordering::Relaxed);
        }
        None
    }

    fn mark_down(&self, err: &LimitError) {
        let until = self
            .clock
            .now()
            .saturating_add(nanos(self.opts.retry_pause));
        let prev = self.down_until.swap(until, Ordering::AcqRel);
        metrics::counter!("rampart_ratelimit_store_errors_total").increment(1);
        if prev == 0 {
            tracing::warn!(error = %err, "rate-limit store unavailable; policies follow fail_open");
        }
    }

    /// Decides one request for `key` under `policy`: at most one round trip, none when the
    /// key is cached as refused or the store is known to be down.
    pub async fn check(&self, policy: &Policy, key: &LimitKey) -> RateDecision {
        let now = self.clock.now();
        if let Some(d) = self.cached(policy, key, now) {
            return d;
        }
        let down = self.down_until.load(Ordering::Acquire);
        if down != 0 {
            // Known down: answer at once. When the pause is over, one request claims the
            // probe (moving the pause on) and the others keep answering at once, so a store
            // that hangs instead of refusing costs one request a deadline, not all of them.
            let claim = now.saturating_add(nanos(self.opts.retry_pause));
            if now < down
                || self
                    .down_until
                    .compare_exchange(down, claim, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
            {
                return RateDecision::Unavailable {
                    fail_open: policy.fail_open(),
                };
            }
        }
        let interval = (policy.interval_nanos() / 1000).max(1);
        let tolerance = interval.saturating_mul(u64::from(policy.burst()));
        let mut inv = self.gcra.prepare_invoke();
        inv.key(self.redis_key(key)).arg(interval).arg(tolerance);
        let unavailable = RateDecision::Unavailable {
            fail_open: policy.fail_open(),
        };
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let reply = match self
            .conn
            .invoke::<Vec<i64>>(&inv, self.opts.response_timeout)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                self.mark_down(&e);
                return unavailable;
            }
        };
        let [admitted, a, b] = reply[..] else {
            self.mark_down(&LimitError::StoreReply(
                "gcra script reply is not 3 integers",
            ));
            return unavailable;
        };
        if down != 0 {
            self.down_until.store(0, Ordering::Release);
            tracing::info!("rate-limit store reachable again");
        }
        let a = u64::try_from(a).unwrap_or(0).saturating_mul(1000);
        let b = u64::try_from(b).unwrap_or(0).saturating_mul(1000);
        if admitted == 1 {
            RateDecision::allowed(policy, a)
        } else {
            let now = self.clock.now();
            let r = Rejected {
                until: now.saturating_add(a),
                full_at: now.saturating_add(b),
            };
            // Bounded: past the cap, refusals are simply not cached (more round trips, no
            // more memory).
            if self.rejected_count.load(Ordering::Relaxed) < MAX_CACHED_REFUSALS
                && self.rejected.insert(key.clone(), r).is_none()
            {
                self.rejected_count.fetch_add(1, Ordering::Relaxed);
            }
            RateDecision::limited(policy, a, b)
        }
    }

    /// Decides one request against several policies; all must admit.
    ///
    /// Locally cached refusals are found first, with no round trip and nothing taken. Then
    /// each policy is one script call, in order; at the first refusal (or fail-closed outage)
    /// the units already taken by earlier policies are given back (one extra call each, only
    /// on that first refusal: later requests hit the local cache).
    pub async fn check_all(&self, checks: &[(&Policy, &LimitKey)]) -> RateVerdict {
        let now = self.clock.now();
        for (index, (policy, key)) in checks.iter().enumerate() {
            if let Some(decision) = self.cached(policy, key, now) {
                return RateVerdict::Limited { index, decision };
            }
        }
        let mut decisions = Vec::with_capacity(checks.len());
        for (index, (policy, key)) in checks.iter().enumerate() {
            let d = self.check(policy, key).await;
            let verdict = match d {
                RateDecision::Limited { .. } => RateVerdict::Limited { index, decision: d },
                RateDecision::Unavailable { fail_open: false } => {
                    RateVerdict::Unavailable { index }
                }
                _ => {
                    decisions.push(d);
                    continue;
                }
            };
            for (i, (p, k)) in checks[..index].iter().enumerate() {
                if matches!(decisions.get(i), Some(RateDecision::Allowed { .. })) {
                    self.give_back(p, k).await;
                }
            }
            return verdict;
        }
        RateVerdict::Allowed(decisions)
    }

    async fn give_back(&self, policy: &Policy, key: &LimitKey) {
        let interval = (policy.interval_nanos() / 1000).max(1);
        let mut inv = self.refund.prepare_invoke();
        inv.key(self.redis_key(key)).arg(interval);
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self
            .conn
            .invoke::<i64>(&inv, self.opts.response_timeout)
            .await
        {
            self.mark_down(&e);
        }
    }

    /// Forgets cached refusals that have expired; returns how many.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now();
        let mut removed = 0;
        self.rejected.retain(|_, r| {
            let keep = r.until > now;
            removed += usize::from(!keep);
            keep
        });
        let _ = self
            .rejected_count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(removed))
            });
        removed
    }

    /// Whether the store is considered down: a call failed and no probe has succeeded since.
    pub fn is_degraded(&self) -> bool {
        self.down_until.load(Ordering::Acquire) != 0
    }

    /// Script calls sent to the store so far (decisions and give-backs), for metrics and tests.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
