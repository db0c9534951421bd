//! Password-guessing defense: failure counters per username and per client network that first
//! slow attempts down (each failure past a threshold doubles the wait before the next attempt
//! is even checked) and then block them for a while. Attempts refused here never reach the
//! password hash, so a guesser cannot use the server's CPU either.
//!
//! Counters forget a key after `forget_after` without failures; a successful login clears its
//! username's counter (not the network's, which may be shared by an attacker and the user).
//! Memory is bounded: at most `max_keys` keys, the stalest dropped first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// When to slow down and when to block, for one kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Failures allowed without any wait.
    pub free: u32,
    /// Failures after which attempts are refused for `block_for` since the last one.
    pub block_at: u32,
    /// How long a blocked key stays blocked after its last failure.
    pub block_for: Duration,
    /// Longest wait while slowed (before the block).
    pub max_delay: Duration,
}

/// The throttle's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Limits per username (case-insensitive).
    pub per_user: ThrottleLimits,
    /// Limits per client network (IPv4 address, IPv6 /64), looser: networks are shared.
    pub per_network: ThrottleLimits,
    /// A key with no failure for this long is forgotten.
    pub forget_after: Duration,
    /// Keys tracked at most.
    pub max_keys: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            per_user: ThrottleLimits {
                free: 5,
                block_at: 10,
                block_for: Duration::from_secs(15 * 60),
                max_delay: Duration::from_secs(60),
            },
            per_network: ThrottleLimits {
                free: 20,
                block_at: 100,
                block_for: Duration::from_secs(15 * 60),
                max_delay: Duration::from_secs(60),
            },
            forget_after: Duration::from_secs(60 * 60),
            max_keys: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// Unix milliseconds of the last failure.
    last_ms: i64,
}

/// Why an attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// When the next attempt may be made.
    pub retry_after: Duration,
    /// Whether the key is blocked (past `block_at`) rather than slowed.
    pub blocked: bool,
}

/// The failure counters (one per node).
#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    keys: Mutex<HashMap<String, Failures>>,
}

impl LoginThrottle {
    /// A throttle with `policy`.
    pub fn new(policy: ThrottlePolicy) -> Self {
        LoginThrottle {
            policy,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The throttle's settings.
    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// The counter key of a username (case-insensitive, at most 256 characters kept).
    pub fn user_key(username: &str) -> String {
        let mut k = String::from("u:");
        k.extend(username.chars().take(256).flat_map(char::to_lowercase));
        k
    }

    /// The counter key of a client network (as `rampart_listen::ip_group` prints it).
    pub fn network_key(network: &str) -> String {
        format!("n:{network}")
    }

    /// How long a key with `count` failures, the last at `last_ms`, must wait at `now_ms`
    /// under `limits` (None: it may try now). Also used with counts kept in a shared store.
    pub fn wait_for(
        limits: &ThrottleLimits,
        count: u32,
        last_ms: i64,
        now_ms: i64,
    ) -> Option<Throttled> {
        Self::wait(limits, &Failures { count, last_ms }, now_ms)
    }

    /// The longer of two waits.
    pub fn longer(a: Option<Throttled>, b: Option<Throttled>) -> Option<Throttled> {
        match (a, b) {
            (None, None) => None,
            (Some(a), None) | (None, Some(a)) => Some(a),
            (Some(a), Some(b)) => Some(if a.retry_after >= b.retry_after { a } else { b }),
        }
    }

    fn wait(limits: &ThrottleLimits, f: &Failures, now_ms: i64) -> Option<Throttled> {
        let since = Duration::from_millis(u64::try_from(now_ms - f.last_ms).unwrap_or(0));
        let (needed, blocked) = if f.count >= limits.block_at {
            (limits.block_for, true)
        } else if f.count >= limits.free {
            let doublings = (f.count - limits.free).min(30);
            let d = Duration::from_secs(1u64 << doublings).min(limits.max_delay);
            (d, false)
        } else {
            return None;
        };
        (since < needed).then(|| Throttled {
            retry_after: needed - since,
            blocked,
        })
    }

    /// Whether an attempt for `username` from `network` may be checked now (`now_ms`: Unix
    /// milliseconds). The longer of the two waits wins.
    pub fn check(&self, username: &str, network: &str, now_ms: i64) -> Result<(), Throttled> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let user = keys
            .get(&Self::user_key(username))
            .and_then(|f| Self::wait(&self.policy.per_user, f, now_ms));
        let net = keys
            .get(&Self::network_key(network))
            .and_then(|f| Self::wait(&self.policy.per_network, f, now_ms));
        match Self::longer(user, net) {
            None => Ok(()),
            Some(t) => Err(t),
        }
    }

    /// Counts a failed attempt.
    pub fn failed(&self, username: &str, network: &str, now_ms: i64) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let forget = i64::try_from(self.policy.forget_after.as_millis()).unwrap_or(i64::MAX);
        if keys.len() >= self.policy.max_keys {
            keys.retain(|_, f| now_ms - f.last_ms < forget);
            while keys.len() >= self.policy.max_keys {
                let Some(stalest) = keys
                    .iter()
                    .min_by_key(|(_, f)| f.last_ms)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                keys.remove(&stalest);
            }
        }
        for key in [Self::user_key(username), Self::network_key(network)] {
            let f = keys.entry(key).or_insert(Failures {
                count: 0,
                last_ms: now_ms,
            });
            if now_ms - f.last_ms >= forget {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last_ms = now_ms;
        }
    }

    /// A successful login: the username's counter starts over.
    pub fn succeeded(&self, username: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.remove(&Self::user_key(username));
    }

    /// Drops keys without a failure for `forget_after`.
    pub fn sweep(&self, now_ms: i64) {
        let forget = i64::try_from(self.policy.forget_after.as_millis()).unwrap_or(i64::MAX);
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.retain(|_, f| now_ms - f.last_ms < forget);
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    #[test]
    fn failures_first_pass_then_slow_down_then_block() {
        let t = LoginThrottle::new(ThrottlePolicy::default());
        let mut now = 1_000_000 * S;
        for _ in 0..5 {
            assert_eq!(t.check("ada", "198.51.100.7", now), Ok(()));
            t.failed("ada", "198.51.100.7", now);
        }
        // Sixth attempt right away: slowed by 1 s, then by 2 s after the next failure.
        let w = t.check("ADA", "203.0.113.9", now).unwrap_err();
        assert!(!w.blocked);
        assert_eq!(w.retry_after, Duration::from_secs(1));
        now += S;
        assert_eq!(t.check("ada", "203.0.113.9", now), Ok(()));
        t.failed("ada", "203.0.113.9", now);
        assert_eq!(
            t.check("ada", "203.0.113.9", now).unwrap_err().retry_after,
            Duration::from_secs(2)
        );
        // Keep failing, waiting each time: blocked at the tenth failure.
        let mut n = 6;
        while n < 10 {
            now += 120 * S;
            assert_eq!(t.check("ada", "203.0.113.9", now), Ok(()));
            t.failed("ada", "203.0.113.9", now);
            n += 1;
        }
        let w = t.check("ada", "192.0.2.1", now + 60 * S).unwrap_err();
        assert!(w.blocked);
        assert_eq!(w.retry_after, Duration::from_secs(14 * 60));
        assert_eq!(t.check("ada", "192.0.2.1", now + 15 * 60 * S), Ok(()));
        // Other users are not affected.
        assert_eq!(t.check("grace", "192.0.2.1", now), Ok(()));
    }

    #[test]
    fn one_network_guessing_many_users_is_slowed_too() {
        let t = LoginThrottle::new(ThrottlePolicy::default());
        let now = 5_000 * S;
        for i in 0..20 {
            let user = format!("user{i}");
            assert_eq!(t.check(&user, "2001:db8::/64", now), Ok(()));
            t.failed(&user, "2001:db8::/64", now);
        }
        let w = t.check("someone-else", "2001:db8::/64", now).unwrap_err();
        assert_eq!(w.retry_after, Duration::from_secs(1));
        assert_eq!(t.check("someone-else", "192.0.2.5", now), Ok(()));
    }

    #[test]
    fn success_clears_the_user_and_old_failures_are_forgotten() {
        let t = LoginThrottle::new(ThrottlePolicy::default());
        let now = 10_000 * S;
        for _ in 0..7 {
            t.failed("ada", "n1", now);
        }
        assert!(t.check("ada", "n2", now).is_err());
        t.succeeded("ada");
        assert_eq!(t.check("ada", "n2", now), Ok(()));
        for _ in 0..7 {
            t.failed("bob", "n3", now);
        }
        t.sweep(now + 2 * 3600 * S);
        assert!(t.is_empty());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_usernames() {
        let policy = ThrottlePolicy {
            max_keys: 100,
            ..ThrottlePolicy::default()
        };
        let t = LoginThrottle::new(policy);
        for i in 0..1000 {
            t.failed(&format!("u{i}"), "n", i64::from(i) * S);
        }
        assert!(t.len() <= 100, "{}", t.len());
    }
}
