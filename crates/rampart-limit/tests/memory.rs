//! In-memory backend: GCRA boundaries, refill, multi-policy checks, eviction, concurrency.
//! Time is driven by a ManualClock; nothing sleeps.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rampart_limit::{
    Clock, LimitKey, Limiter, ManualClock, MemoryBackend, Policy, RateDecision, RateLimitHeaders,
    RateVerdict,
};

fn setup() -> (MemoryBackend, ManualClock) {
    let clock = ManualClock::new();
    (MemoryBackend::new(Arc::new(clock.clone())), clock)
}

fn admitted(m: &MemoryBackend, p: &Policy, k: &LimitKey, n: usize) -> usize {
    (0..n)
        .filter(|_| matches!(m.check(p, k), RateDecision::Allowed { .. }))
        .count()
}

#[test]
fn burst_n_passes_and_the_next_is_refused() {
    for burst in [1u32, 3, 10, 200] {
        let (m, _) = setup();
        let p = Policy::parse("per-ip", "ip", "100/s", burst, true).unwrap();
        let k = LimitKey::ip(&p, "192.0.2.1".parse().unwrap());
        for i in 0..burst {
            match m.check(&p, &k) {
                RateDecision::Allowed {
                    limit, remaining, ..
                } => {
                    assert_eq!(limit, burst);
                    assert_eq!(remaining, burst - 1 - i);
                }
                d => panic!("request {i} of burst {burst} refused: {d:?}"),
            }
        }
        match m.check(&p, &k) {
            RateDecision::Limited {
                retry_after,
                limit,
                reset,
            } => {
                assert_eq!(retry_after, 1);
                assert_eq!(limit, burst);
                assert!(reset >= 1);
            }
            d => panic!("request {burst} admitted: {d:?}"),
        }
    }
}

#[test]
fn refills_at_the_rate() {
    let (m, clock) = setup();
    let p = Policy::parse("slow", "user", "6/m", 2, true).unwrap(); // one per 10 s
    let k = LimitKey::new(&p, "alice");
    assert_eq!(admitted(&m, &p, &k, 5), 2);
    match m.check(&p, &k) {
        RateDecision::Limited {
            retry_after, reset, ..
        } => {
            assert_eq!(retry_after, 10);
            assert_eq!(reset, 20);
        }
        d => panic!("{d:?}"),
    }
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(admitted(&m, &p, &k, 1), 0);
    clock.advance(Duration::from_millis(1));
    assert_eq!(admitted(&m, &p, &k, 3), 1);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        admitted(&m, &p, &k, 5),
        2,
        "a long idle time never gives more than burst"
    );
}

#[test]
fn keys_are_independent_and_ipv6_shares_a_64() {
    let (m, _) = setup();
    let p = Policy::parse("per-ip", "ip", "1/h", 2, true).unwrap();
    let a: IpAddr = "2001:db8:1:1::1".parse().unwrap();
    let a2: IpAddr = "2001:db8:1:1::2".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    assert_eq!(admitted(&m, &p, &LimitKey::ip(&p, a), 1), 1);
    assert_eq!(admitted(&m, &p, &LimitKey::ip(&p, a2), 5), 1);
    assert_eq!(admitted(&m, &p, &LimitKey::ip(&p, b), 5), 2);
}

#[test]
fn check_all_refuses_without_taking_from_the_others() {
    let (m, _) = setup();
    let wide = Policy::parse("wide", "ip", "1/h", 5, true).unwrap();
    let narrow = Policy::parse("narrow", "route", "1/h", 1, true).unwrap();
    let kw = LimitKey::ip(&wide, "192.0.2.1".parse().unwrap());
    let kn = LimitKey::new(&narrow, "api");
    let checks = [(&wide, &kw), (&narrow, &kn)];
    let v = m.check_all(&checks);
    let RateVerdict::Allowed(ds) = &v else {
        panic!("{v:?}")
    };
    assert_eq!(ds.len(), 2);
    let h = v.headers(&[&wide, &narrow]);
    assert_eq!(h.rate_limit, "\"wide\";r=4;t=3600, \"narrow\";r=0;t=3600");
    assert_eq!(
        h.rate_limit_policy,
        "\"wide\";q=5;w=18000, \"narrow\";q=1;w=3600"
    );
    assert_eq!(h.retry_after, None);
    for _ in 0..10 {
        let v = m.check_all(&checks);
        assert!(matches!(v, RateVerdict::Limited { index: 1, .. }), "{v:?}");
        let h = v.headers(&[&wide, &narrow]);
        assert_eq!(h.rate_limit, "\"narrow\";r=0;t=3600");
        assert_eq!(h.retry_after, Some(3600));
    }
    // The refusals took nothing from `wide`: 4 of its 5 remain.
    assert_eq!(admitted(&m, &wide, &kw, 10), 4);
}

#[test]
fn sweep_evicts_only_full_buckets() {
    let (m, clock) = setup();
    let p = Policy::parse("p", "ip", "1/s", 10, true).unwrap();
    for i in 0..1000u32 {
        let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        m.check(&p, &LimitKey::ip(&p, ip));
    }
    let busy = LimitKey::new(&p, "10.255.0.1");
    assert_eq!(admitted(&m, &p, &busy, 10), 10);
    assert_eq!(m.len(), 1001);
    assert_eq!(m.sweep(), 0);
    clock.advance(Duration::from_secs(1)); // the one-request keys are full again
    assert_eq!(m.sweep(), 1000);
    assert_eq!(m.len(), 1);
    assert_eq!(
        admitted(&m, &p, &busy, 10),
        1,
        "state of a busy key survives the sweep"
    );
    clock.advance(Duration::from_secs(11));
    assert_eq!(m.sweep(), 1);
    assert!(m.is_empty());
}

#[test]
fn concurrent_requests_never_over_admit() {
    let clock = ManualClock::new();
    let m = Arc::new(MemoryBackend::new(Arc::new(clock.clone())));
    let p = Arc::new(Policy::parse("p", "ip", "1/h", 1000, true).unwrap());
    let k = LimitKey::new(&p, "203.0.113.5");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (m, p, k) = (m.clone(), p.clone(), k.clone());
            std::thread::spawn(move || admitted(&m, &p, &k, 1000))
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 1000);
}

#[tokio::test]
async fn limiter_front_uses_memory_for_memory_url() {
    let clock = ManualClock::new();
    let l = Limiter::from_url_with_clock("memory://", Default::default(), Arc::new(clock.clone()))
        .unwrap();
    assert!(matches!(l, Limiter::Memory(_)));
    let p = Policy::parse("p", "header:x-tenant", "2/s", 2, false).unwrap();
    let k = LimitKey::new(&p, "acme");
    assert!(l.check(&p, &k).await.is_allowed());
    assert!(l.check(&p, &k).await.is_allowed());
    let d = l.check(&p, &k).await;
    assert_eq!(d.retry_after(), Some(1));
    let h = RateLimitHeaders::render([(&p, d)]);
    assert_eq!(h.rate_limit, "\"p\";r=0;t=1");
    clock.advance(Duration::from_millis(500));
    assert!(l.check(&p, &k).await.is_allowed());
    assert!(clock.now() > 0);
    assert_eq!(l.sweep(), 0);
}

#[test]
fn a_flood_of_fresh_keys_is_bounded_and_still_limited() {
    let clock = ManualClock::new();
    let m = MemoryBackend::new(Arc::new(clock.clone())).with_max_keys(100);
    let p = Policy::parse("tenant", "header:x-tenant", "1/s", 3, true).unwrap();
    let known = LimitKey::new(&p, "acme");
    assert_eq!(admitted(&m, &p, &known, 1), 1);
    // 10 000 attacker-chosen values: the map stops growing at the cap and the extra keys
    // share one overflow bucket, which is limited like any other.
    let fresh = (0..10_000)
        .filter(|i| {
            m.check(&p, &LimitKey::new(&p, &format!("rnd-{i}")))
                .is_allowed()
        })
        .count();
    assert!(m.len() <= 101, "{} keys", m.len());
    assert_eq!(
        fresh,
        99 + 3,
        "99 keys fit under the cap, then the overflow bucket's burst"
    );
    // Known keys keep their own budget.
    assert_eq!(admitted(&m, &p, &known, 5), 2);
    // A sweep after the buckets refilled makes room again.
    clock.advance(Duration::from_secs(10));
    assert!(m.sweep() >= 100);
    assert!(m.check(&p, &LimitKey::new(&p, "new-client")).is_allowed());
    assert_eq!(m.len(), 1);
}
