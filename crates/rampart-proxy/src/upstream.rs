//! Upstream pools: round-robin over the healthy upstreams of a route; an upstream that fails
//! `max_fails` times in a row is skipped for `fail_timeout` (passive health).

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::Uri;
use http::uri::{Authority, Scheme};
use rampart_config::PassiveHealth;

/// One upstream address of a route.
#[derive(Debug)]
pub struct Upstream {
    /// `http` (https comes with upstream TLS).
    pub scheme: Scheme,
    /// `host:port`.
    pub authority: Authority,
    /// Path prepended to the forwarded path (`""` or `/base`, no trailing slash).
    pub base_path: String,
    fails: AtomicU32,
    down_until_ms: AtomicU64,
}

/// The upstreams of a route.
#[derive(Debug)]
pub struct UpstreamPool {
    upstreams: Vec<Upstream>,
    next: AtomicUsize,
    max_fails: u32,
    fail_timeout: Duration,
    epoch: Instant,
}

impl UpstreamPool {
    /// Builds a pool from validated upstream URLs.
    pub fn new(urls: &[String], health: &PassiveHealth) -> UpstreamPool {
        let upstreams = urls
            .iter()
            .filter_map(|u| {
                // Validated at load: scheme http, an authority, no query.
                let uri: Uri = u.parse().ok()?;
                let parts = uri.into_parts();
                let path = parts
                    .path_and_query
                    .map(|p| p.path().trim_end_matches('/').to_owned())
                    .unwrap_or_default();
                Some(Upstream {
                    scheme: parts.scheme?,
                    authority: parts.authority?,
                    base_path: path,
                    fails: AtomicU32::new(0),
                    down_until_ms: AtomicU64::new(0),
                })
            })
            .collect();
        UpstreamPool {
            upstreams,
            next: AtomicUsize::new(0),
            max_fails: health.max_fails.max(1),
            fail_timeout: health.fail_timeout.get(),
            epoch: Instant::now(),
        }
    }

    /// Number of upstreams.
    pub fn len(&self) -> usize {
        self.upstreams.len()
    }

    /// Whether the pool is empty (never, for a validated route).
    pub fn is_empty(&self) -> bool {
        self.upstreams.is_empty()
    }

    /// The upstream at `i`.
    pub fn get(&self, i: usize) -> &Upstream {
        &self.upstreams[i]
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether upstream `i` is taken out by passive health now.
    pub fn is_down(&self, i: usize) -> bool {
        self.upstreams[i].down_until_ms.load(Ordering::Acquire) > self.now_ms()
    }

    /// The next upstream in round-robin order that is healthy and not in `tried`. When every
    /// untried upstream is down, the one that comes back soonest is tried anyway: a request
    /// then still has a chance, and a recovered upstream is noticed.
    pub fn pick(&self, tried: &[usize]) -> Option<usize> {
        let n = self.upstreams.len();
        if n == 0 || tried.len() >= n {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        let mut fallback: Option<(u64, usize)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if tried.contains(&i) {
                continue;
            }
            let until = self.upstreams[i].down_until_ms.load(Ordering::Acquire);
            if until <= now {
                return Some(i);
            }
            if fallback.is_none_or(|(u, _)| until < u) {
                fallback = Some((until, i));
            }
        }
        fallback.map(|(_, i)| i)
    }

    /// Records the outcome of a request to upstream `i`: failures are connection failures,
    /// resets and timeouts, not HTTP error statuses.
    pub fn report(&self, i: usize, ok: bool) {
        let u = &self.upstreams[i];
        if ok {
            if u.fails.load(Ordering::Relaxed) != 0 {
                u.fails.store(0, Ordering::Relaxed);
            }
            return;
        }
        let fails = u.fails.fetch_add(1, Ordering::AcqRel) + 1;
        if fails >= self.max_fails {
            u.fails.store(0, Ordering::Relaxed);
            let until = self.now_ms() + self.fail_timeout.as_millis() as u64;
            u.down_until_ms.store(until, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize, max_fails: u32) -> UpstreamPool {
        let urls: Vec<String> = (0..n)
            .map(|i| format!("http://127.0.0.1:{}", 1000 + i))
            .collect();
        let health = PassiveHealth {
            max_fails,
            fail_timeout: Duration::from_secs(3600).into(),
        };
        UpstreamPool::new(&urls, &health)
    }

    #[test]
    fn round_robin_visits_each() {
        let p = pool(3, 1);
        let picks: Vec<usize> = (0..6).map(|_| p.pick(&[]).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn failed_upstream_is_skipped_and_tried_list_is_honoured() {
        let p = pool(3, 2);
        p.report(1, false);
        assert!(!p.is_down(1), "one failure of two allowed");
        p.report(1, false);
        assert!(p.is_down(1));
        for _ in 0..10 {
            assert_ne!(p.pick(&[]), Some(1));
        }
        assert_eq!(
            p.pick(&[0, 2]),
            Some(1),
            "a down upstream is still tried when nothing else is left"
        );
        assert_eq!(p.pick(&[0, 1, 2]), None);
    }

    #[test]
    fn success_resets_the_failure_count() {
        let p = pool(1, 2);
        p.report(0, false);
        p.report(0, true);
        p.report(0, false);
        assert!(!p.is_down(0));
    }

    #[test]
    fn base_path_is_kept() {
        let p = UpstreamPool::new(
            &["http://10.0.0.1:3000/base/".to_owned()],
            &PassiveHealth::default(),
        );
        assert_eq!(p.get(0).base_path, "/base");
        assert_eq!(p.get(0).authority.as_str(), "10.0.0.1:3000");
    }
}
