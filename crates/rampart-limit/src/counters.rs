//! Failure counters shared by every node through Redis (single node or Cluster): a count and
//! the time of the last hit per key, forgotten after a quiet period. The login throttle of the
//! auth server keeps its per-username and per-network counters here when `[shared] url` is
//! Redis, so a guesser cannot spread attempts over several gateways.
//!
//! Time is Redis's (`TIME` inside the scripts), so nodes with skewed clocks agree. Every call
//! has the store's deadline; callers keep a local count as well and use it when a call fails.

use std::time::Duration;

use crate::store::StoreConn;
use crate::{LimitError, StoreOptions, StoreUrl};

/// A key's failures as the shared store saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hits {
    /// Failures counted since the key was last quiet for `forget_after`.
    pub count: u32,
    /// Unix milliseconds (Redis clock) of the last failure.
    pub last_ms: i64,
}

/// Counts one hit: resets a key quiet for longer than ARGV[1] ms, then increments it.
/// Returns {count, last_ms}.
const RECORD: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local forget = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 'c', 'l')
local count = tonumber(v[1]) or 0
local last = tonumber(v[2]) or now
if now - last >= forget then count = 0 end
count = count + 1
redis.call('HSET', KEYS[1], 'c', count, 'l', now)
redis.call('PEXPIRE', KEYS[1], forget)
return {count, now}
";

/// Reads a key: {count, last_ms, now_ms}; count 0 when absent.
const READ: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local v = redis.call('HMGET', KEYS[1], 'c', 'l')
return {tonumber(v[1]) or 0, tonumber(v[2]) or 0, now}
";

/// Failure counters in Redis. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SharedCounters {
    conn: StoreConn,
    prefix: String,
    timeout: Duration,
    record: std::sync::Arc<redis::Script>,
    read: std::sync::Arc<redis::Script>,
}

impl SharedCounters {
    /// Counters under `{prefix}{namespace}:` at `url`; `Ok(None)` for `memory://` (no
    /// sharing). Connects lazily; inside a Tokio runtime.
    pub fn open(
        url: &str,
        namespace: &str,
        opts: &StoreOptions,
    ) -> Result<Option<Self>, LimitError> {
        let Some(conn) = StoreConn::open(&StoreUrl::parse(url)?, opts)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            conn,
            prefix: format!("{}{namespace}:", opts.prefix),
            timeout: opts.response_timeout,
            record: std::sync::Arc::new(redis::Script::new(RECORD)),
            read: std::sync::Arc::new(redis::Script::new(READ)),
        }))
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Counts a hit on `key`; a key without a hit for `forget_after` starts over.
    pub async fn record(&self, key: &str, forget_after: Duration) -> Result<Hits, LimitError> {
        let forget = u64::try_from(forget_after.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut inv = self.record.key(self.key(key));
        inv.arg(forget);
        let (count, last_ms): (i64, i64) = self.conn.invoke(&inv, self.timeout).await?;
        Ok(Hits {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            last_ms,
        })
    }

    /// The hits of `key` (None when it has none) and the store's current time (Unix ms).
    pub async fn read(&self, key: &str) -> Result<(Option<Hits>, i64), LimitError> {
        let inv = self.read.key(self.key(key));
        let (count, last_ms, now): (i64, i64, i64) = self.conn.invoke(&inv, self.timeout).await?;
        let hits = (count > 0).then(|| Hits {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            last_ms,
        });
        Ok((hits, now))
    }

    /// Forgets `key`.
    pub async fn clear(&self, key: &str) -> Result<(), LimitError> {
        let mut del = redis::cmd("DEL");
        del.arg(self.key(key));
        let _: i64 = self.conn.query(&del, self.timeout).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis_url() -> String {
        std::env::var("RAMPART_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    fn unique(name: &str) -> String {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        format!("{name}-{}", u64::from_le_bytes(b))
    }

    #[tokio::test]
    async fn two_instances_share_one_count_and_clear_it() {
        let opts = StoreOptions {
            prefix: format!("{}:", unique("rampart-test")),
            ..StoreOptions::default()
        };
        let a = SharedCounters::open(&redis_url(), "throttle", &opts)
            .unwrap()
            .unwrap();
        let b = SharedCounters::open(&redis_url(), "throttle", &opts)
            .unwrap()
            .unwrap();
        let forget = Duration::from_secs(60);
        assert_eq!(a.read("u:ada").await.unwrap().0, None);
        assert_eq!(a.record("u:ada", forget).await.unwrap().count, 1);
        assert_eq!(b.record("u:ada", forget).await.unwrap().count, 2);
        let (hits, now) = a.read("u:ada").await.unwrap();
        let hits = hits.unwrap();
        assert_eq!(hits.count, 2);
        assert!(hits.last_ms <= now && now - hits.last_ms < 60_000);
        assert_eq!(b.read("u:bob").await.unwrap().0, None);
        b.clear("u:ada").await.unwrap();
        assert_eq!(a.read("u:ada").await.unwrap().0, None);
    }

    #[tokio::test]
    async fn a_quiet_key_starts_over() {
        let opts = StoreOptions {
            prefix: format!("{}:", unique("rampart-test")),
            ..StoreOptions::default()
        };
        let c = SharedCounters::open(&redis_url(), "throttle", &opts)
            .unwrap()
            .unwrap();
        let forget = Duration::from_millis(50);
        c.record("n:198.51.100.7", forget).await.unwrap();
        c.record("n:198.51.100.7", forget).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        // Expired (PEXPIRE) or reset by the script: either way the count starts over.
        assert_eq!(c.record("n:198.51.100.7", forget).await.unwrap().count, 1);
    }

    #[tokio::test]
    async fn memory_url_has_no_shared_counters_and_a_dead_store_is_an_error() {
        let opts = StoreOptions::default();
        assert!(
            SharedCounters::open("memory://", "t", &opts)
                .unwrap()
                .is_none()
        );
        let dead = SharedCounters::open("redis://127.0.0.1:1", "t", &opts)
            .unwrap()
            .unwrap();
        assert!(dead.record("k", Duration::from_secs(1)).await.is_err());
        assert!(dead.read("k").await.is_err());
    }
}
