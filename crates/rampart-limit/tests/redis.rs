//! Redis backend and shared bans against real Redis processes: boundaries, the local refusal
//! cache, two instances sharing one limit, outage with fail_open and recovery, Cluster.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    RedisProc, cleanup, cli, free_port, have_redis_server, shared_redis, start_cluster,
    unique_prefix,
};
use rampart_limit::{
    BanPolicy, BanReason, Bans, LimitKey, Limiter, Policy, RateDecision, RateVerdict, StoreOptions,
};

fn opts(prefix: &str) -> StoreOptions {
    StoreOptions {
        prefix: prefix.to_owned(),
        ..StoreOptions::default()
    }
}

async fn admitted(l: &Limiter, p: &Policy, k: &LimitKey, n: usize) -> usize {
    let mut a = 0;
    for _ in 0..n {
        if matches!(l.check(p, k).await, RateDecision::Allowed { .. }) {
            a += 1;
        }
    }
    a
}

/// Polls `f` every 50 ms until it is true; fails after `cap`.
async fn eventually<F, Fut>(cap: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + cap;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

macro_rules! need_redis {
    () => {
        if !have_redis_server() {
            eprintln!("SKIPPED: redis-server is not installed");
            return;
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_boundary_and_local_refusal_cache() {
    need_redis!();
    let (url, _guard) = shared_redis();
    let prefix = unique_prefix("boundary");
    let l = Limiter::from_url(&url, opts(&prefix)).unwrap();
    assert!(matches!(l, Limiter::Redis(_)));
    let p = Policy::parse("login", "ip", "60/h", 5, false).unwrap();
    let k = LimitKey::ip(&p, "192.0.2.10".parse().unwrap());
    for i in 0..5u32 {
        match l.check(&p, &k).await {
            RateDecision::Allowed {
                remaining, limit, ..
            } => {
                assert_eq!((limit, remaining), (5, 4 - i));
            }
            d => panic!("request {i}: {d:?}"),
        }
    }
    let d = l.check(&p, &k).await;
    let RateDecision::Limited {
        retry_after,
        reset,
        limit,
    } = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(limit, 5);
    assert!((59..=60).contains(&retry_after), "{retry_after}");
    assert!((299..=300).contains(&reset), "{reset}");

    // The refusal is cached: with the Redis key deleted behind its back, the limiter still
    // refuses, so it did not ask Redis.
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let key = format!("{prefix}rl:{{{}}}", k.as_str());
    assert_eq!(cli(port, &["DEL", &key]).trim(), "1");
    let Limiter::Redis(backend) = &l else {
        unreachable!()
    };
    let trips = backend.round_trips();
    for _ in 0..100 {
        assert!(matches!(
            l.check(&p, &k).await,
            RateDecision::Limited { .. }
        ));
    }
    assert_eq!(backend.round_trips(), trips);
    assert_eq!(cli(port, &["EXISTS", &key]).trim(), "0");
    // Another key is unaffected.
    let other = LimitKey::ip(&p, "192.0.2.11".parse().unwrap());
    assert_eq!(admitted(&l, &p, &other, 7).await, 5);
    assert_eq!(l.sweep(), 0, "cached refusals stay until their retry time");
    cleanup(&url, &prefix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_enforce_one_global_limit() {
    need_redis!();
    let (url, _guard) = shared_redis();
    let prefix = unique_prefix("global");
    let a = Limiter::from_url(&url, opts(&prefix)).unwrap();
    let b = Limiter::from_url(&url, opts(&prefix)).unwrap();

    // Alternating requests on a slow policy: exactly the burst passes in total.
    let p = Policy::parse("api", "api_key", "1/h", 50, false).unwrap();
    let k = LimitKey::new(&p, "key-123");
    let mut total = 0;
    for i in 0..200 {
        let l = if i % 2 == 0 { &a } else { &b };
        if l.check(&p, &k).await.is_allowed() {
            total += 1;
        }
    }
    assert!((50..=51).contains(&total), "admitted {total}, burst 50");

    // Both instances flooding at once on a fast policy: admitted <= burst + rate × elapsed,
    // with 5 % tolerance (the bound only loosens on a slow machine).
    let fast = Arc::new(Policy::parse("fast", "ip", "200/s", 20, false).unwrap());
    let key = LimitKey::new(&fast, "198.51.100.1");
    let (a, b) = (Arc::new(a), Arc::new(b));
    let start = Instant::now();
    let tasks: Vec<_> = [a, b]
        .into_iter()
        .map(|l| {
            let (fast, key) = (fast.clone(), key.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                for _ in 0..1500 {
                    if l.check(&fast, &key).await.is_allowed() {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let mut admitted_total = 0;
    for t in tasks {
        admitted_total += t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let bound = (20.0 + 200.0 * elapsed) * 1.05;
    assert!(admitted_total >= 20, "admitted {admitted_total}");
    assert!(
        (admitted_total as f64) <= bound,
        "admitted {admitted_total} > bound {bound:.1} over {elapsed:.3}s"
    );
    cleanup(&url, &prefix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_all_on_redis_refunds_the_others() {
    need_redis!();
    let (url, _guard) = shared_redis();
    let prefix = unique_prefix("all");
    let l = Limiter::from_url(&url, opts(&prefix)).unwrap();
    let wide = Policy::parse("wide", "ip", "1/h", 5, true).unwrap();
    let narrow = Policy::parse("narrow", "user", "1/h", 1, true).unwrap();
    let kw = LimitKey::ip(&wide, "192.0.2.1".parse().unwrap());
    let kn = LimitKey::new(&narrow, "bob");
    let checks = [(&wide, &kw), (&narrow, &kn)];
    assert!(l.check_all(&checks).await.is_allowed());
    for _ in 0..5 {
        let v = l.check_all(&checks).await;
        assert!(matches!(v, RateVerdict::Limited { index: 1, .. }), "{v:?}");
    }
    // Only the first request took from `wide`.
    assert_eq!(admitted(&l, &wide, &kw, 10).await, 4);
    cleanup(&url, &prefix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_follows_fail_open_and_limits_return_after_restart() {
    need_redis!();
    let mut redis = RedisProc::start(free_port(false), false);
    let o = StoreOptions {
        retry_pause: Duration::from_millis(100),
        ..opts(&unique_prefix("outage"))
    };
    let l = Limiter::from_url(&redis.url(), o).unwrap();
    let open = Policy::parse("open", "ip", "1/h", 2, true).unwrap();
    let closed = Policy::parse("closed", "ip", "1/h", 2, false).unwrap();
    let ko = LimitKey::new(&open, "192.0.2.50");
    let kc = LimitKey::new(&closed, "192.0.2.50");
    assert_eq!(admitted(&l, &open, &ko, 3).await, 2);
    assert_eq!(admitted(&l, &closed, &kc, 1).await, 1);

    redis.stop();
    eventually(
        Duration::from_secs(30),
        "decisions report the outage",
        || async {
            matches!(
                l.check(&closed, &kc).await,
                RateDecision::Unavailable { fail_open: false }
            )
        },
    )
    .await;
    let d = l.check(&open, &LimitKey::new(&open, "192.0.2.51")).await;
    assert_eq!(d, RateDecision::Unavailable { fail_open: true });
    assert!(d.is_allowed());
    let d = l
        .check(&closed, &LimitKey::new(&closed, "192.0.2.51"))
        .await;
    assert!(!d.is_allowed());
    assert_eq!(d.retry_after(), Some(1));
    let v = l.check_all(&[(&open, &ko), (&closed, &kc)]).await;
    // `open` is cached as refused from before the outage; otherwise `closed` is unavailable.
    assert!(!v.is_allowed());

    // Same port, empty data: limits apply again without rebuilding the limiter.
    redis.restart();
    let fresh = LimitKey::new(&closed, "192.0.2.52");
    eventually(
        Duration::from_secs(30),
        "decisions come from Redis again",
        || async { matches!(l.check(&closed, &fresh).await, RateDecision::Allowed { .. }) },
    )
    .await;
    assert_eq!(
        admitted(&l, &closed, &fresh, 5).await,
        1,
        "burst 2: one left, then refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bans_reach_other_nodes_and_lifts_too() {
    need_redis!();
    let (url, _guard) = shared_redis();
    let prefix = unique_prefix("bans");
    let a = Arc::new(Bans::new(BanPolicy::default()).unwrap());
    let b = Arc::new(Bans::new(BanPolicy::default()).unwrap());
    let poll = Duration::from_millis(100);
    a.spawn_sync(&url, opts(&prefix), poll)
        .unwrap()
        .expect("a sync task");
    b.spawn_sync(&url, opts(&prefix), poll)
        .unwrap()
        .expect("b sync task");
    let ip: IpAddr = "2001:db8:77::1".parse().unwrap();
    a.ban(ip, Duration::from_secs(600), "abuse").unwrap();
    eventually(Duration::from_secs(10), "node b learns the ban", || async {
        b.is_banned("2001:db8:77::ffff".parse().unwrap()).is_some()
    })
    .await;
    let info = b.is_banned(ip).unwrap();
    assert_eq!(
        info.reason,
        BanReason::Manual {
            note: "abuse".into()
        }
    );
    // A behaviour ban placed on b reaches a.
    let bad: IpAddr = "203.0.113.66".parse().unwrap();
    while b
        .record(bad, rampart_limit::Offence::WafMatch)
        .banned
        .is_none()
    {}
    eventually(
        Duration::from_secs(10),
        "node a learns the behaviour ban",
        || async { a.is_banned(bad).is_some() },
    )
    .await;
    // Lifting on b lifts on a.
    assert!(b.unban(ip));
    eventually(Duration::from_secs(10), "node a lifts the ban", || async {
        a.is_banned(ip).is_none()
    })
    .await;
    assert!(a.is_banned(bad).is_some());
    assert_eq!(a.list().len(), 1);
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(300)).await; // let the sync tasks stop
    cleanup(&url, &prefix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_limits_and_bans() {
    need_redis!();
    let nodes = start_cluster();
    let url = format!(
        "redis+cluster://{}",
        nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    );
    let prefix = unique_prefix("cluster");
    let a = Limiter::from_url(&url, opts(&prefix)).unwrap();
    let b = Limiter::from_url(&url, opts(&prefix)).unwrap();
    let p = Policy::parse("per-user", "user", "1/h", 3, false).unwrap();
    // Many keys, so every node of the cluster holds some.
    for u in 0..30 {
        let k = LimitKey::new(&p, &format!("user-{u}"));
        let mut n = 0;
        for i in 0..6 {
            let l = if i % 2 == 0 { &a } else { &b };
            let d = l.check(&p, &k).await;
            assert!(
                !matches!(d, RateDecision::Unavailable { .. }),
                "cluster unavailable: {d:?}"
            );
            if d.is_allowed() {
                n += 1;
            }
        }
        assert_eq!(n, 3, "user-{u}");
    }
    let used: Vec<usize> = nodes
        .iter()
        .map(|n| cli(n.port, &["DBSIZE"]).trim().parse().unwrap_or(0))
        .collect();
    assert!(
        used.iter().filter(|c| **c > 0).count() >= 2,
        "keys spread over nodes: {used:?}"
    );

    let x = Arc::new(Bans::new(BanPolicy::default()).unwrap());
    let y = Arc::new(Bans::new(BanPolicy::default()).unwrap());
    x.spawn_sync(&url, opts(&prefix), Duration::from_millis(100))
        .unwrap()
        .unwrap();
    y.spawn_sync(&url, opts(&prefix), Duration::from_millis(100))
        .unwrap()
        .unwrap();
    let ip: IpAddr = "192.0.2.200".parse().unwrap();
    x.ban(ip, Duration::from_secs(60), "cluster").unwrap();
    eventually(
        Duration::from_secs(10),
        "ban crosses the cluster",
        || async { y.is_banned(ip).is_some() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bans_survive_a_store_restart() {
    need_redis!();
    let mut redis = RedisProc::start(free_port(false), false);
    let prefix = unique_prefix("banrestart");
    let o = StoreOptions {
        retry_pause: Duration::from_millis(100),
        ..opts(&prefix)
    };
    let poll = Duration::from_millis(100);
    let a = Arc::new(Bans::new(BanPolicy::default()).unwrap());
    a.spawn_sync(&redis.url(), o.clone(), poll)
        .unwrap()
        .unwrap();
    let ip: IpAddr = "198.51.100.23".parse().unwrap();
    a.ban(ip, Duration::from_secs(600), "before restart")
        .unwrap();
    let set_key = format!("{prefix}{{bans}}:set");
    eventually(Duration::from_secs(10), "ban written to Redis", || async {
        cli(redis.port, &["HLEN", &set_key]).trim() == "1"
    })
    .await;
    redis.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.restart();
    assert!(a.is_banned(ip).is_some(), "an outage does not lift bans");
    // A node that joins after the restart learns the ban: `a` shared it again.
    let c = Arc::new(Bans::new(BanPolicy::default()).unwrap());
    c.spawn_sync(&redis.url(), o, poll).unwrap().unwrap();
    eventually(
        Duration::from_secs(20),
        "new node learns the re-shared ban",
        || async { c.is_banned(ip).is_some() },
    )
    .await;
}

/// A TCP forwarder to the Redis on `target` that, on the first connection where a write
/// (`INCRBY`) is followed by a version read (`GET`), wipes the store and cuts the connection
/// instead of passing the read on: the store "restarts" between a node's push and its next
/// look at the version. Every other connection and command passes through.
/// Returns the port and whether that happened.
async fn forwarder_losing_data_after_a_push(
    target: u16,
) -> (u16, Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    fn has(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let done = Arc::new(AtomicBool::new(false));
    let lost = Arc::clone(&done);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                let (mut from_client, to_client) = client.into_split();
                let (from_server, mut to_server) = server.into_split();
                let back = tokio::spawn(async move {
                    let (mut r, mut w) = (from_server, to_client);
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
                let mut buf = vec![0u8; 64 * 1024];
                let mut pushed = false;
                loop {
                    let n = match from_client.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let chunk = &buf[..n];
                    if !done.load(Ordering::SeqCst) {
                        if has(chunk, b"\r\nINCR") {
                            pushed = true;
                        } else if pushed && has(chunk, b"\r\nGET\r\n") {
                            done.store(true, Ordering::SeqCst);
                            assert_eq!(cli(target, &["FLUSHALL"]).trim(), "OK");
                            back.abort();
                            return;
                        }
                    }
                    if to_server.write_all(chunk).await.is_err() {
                        break;
                    }
                }
                back.abort();
            });
        }
    });
    (port, lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_loses_data_right_after_a_push_gets_the_bans_again() {
    need_redis!();
    let redis = RedisProc::start(free_port(false), false);
    let (via, lost) = forwarder_losing_data_after_a_push(redis.port).await;
    let prefix = unique_prefix("banlost");
    let o = StoreOptions {
        retry_pause: Duration::from_millis(100),
        ..opts(&prefix)
    };
    let a = Arc::new(Bans::new(BanPolicy::default()).unwrap());
    let ip: IpAddr = "198.51.100.24".parse().unwrap();
    // Placed before the sync starts: its first round pushes it, then reads the version,
    // and the store loses everything in between.
    a.ban(ip, Duration::from_secs(600), "before the loss")
        .unwrap();
    a.spawn_sync(
        &format!("redis://127.0.0.1:{via}"),
        o,
        Duration::from_millis(100),
    )
    .unwrap()
    .unwrap();
    eventually(
        Duration::from_secs(20),
        "the store loses its data",
        || async { lost.load(std::sync::atomic::Ordering::SeqCst) },
    )
    .await;
    let set_key = format!("{prefix}{{bans}}:set");
    eventually(
        Duration::from_secs(20),
        "the node writes its ban again",
        || async { cli(redis.port, &["HLEN", &set_key]).trim() == "1" },
    )
    .await;
    assert!(a.is_banned(ip).is_some(), "the node kept its ban");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_store_is_probed_by_one_request_per_pause() {
    // Nothing listens on this port: every call fails. Time is a ManualClock, so the pause
    // is exact and nothing sleeps.
    let port = free_port(false);
    let clock = rampart_limit::ManualClock::new();
    let o = StoreOptions {
        retry_pause: Duration::from_secs(1),
        ..opts("probe:")
    };
    let l = Arc::new(
        Limiter::from_url_with_clock(
            &format!("redis://127.0.0.1:{port}"),
            o,
            Arc::new(clock.clone()),
        )
        .unwrap(),
    );
    let Limiter::Redis(backend) = &*l else {
        unreachable!()
    };
    let p = Arc::new(Policy::parse("p", "ip", "1/s", 1, false).unwrap());
    let k = LimitKey::new(&p, "192.0.2.1");
    assert_eq!(
        l.check(&p, &k).await,
        RateDecision::Unavailable { fail_open: false }
    );
    assert!(backend.is_degraded());
    assert_eq!(backend.round_trips(), 1);
    for _ in 0..100 {
        assert_eq!(
            l.check(&p, &k).await,
            RateDecision::Unavailable { fail_open: false }
        );
    }
    assert_eq!(backend.round_trips(), 1, "no call during the pause");
    clock.advance(Duration::from_secs(1));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (l, p, k) = (l.clone(), p.clone(), k.clone());
            tokio::spawn(async move { l.check(&p, &k).await })
        })
        .collect();
    for t in tasks {
        assert!(!t.await.unwrap().is_allowed());
    }
    assert_eq!(backend.round_trips(), 2, "one probe after the pause");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_commands_reach_running_nodes() {
    need_redis!();
    let (url, _guard) = shared_redis();
    let prefix = unique_prefix("bancli");
    let node = Arc::new(Bans::new(BanPolicy::default()).unwrap());
    node.spawn_sync(&url, opts(&prefix), Duration::from_millis(100))
        .unwrap()
        .unwrap();
    let store = rampart_limit::BanStore::open(&url, &opts(&prefix))
        .unwrap()
        .unwrap();
    let exempt = ["10.0.0.0/8".parse().unwrap()];
    let ip: IpAddr = "2001:db8:5::9".parse().unwrap();
    assert!(matches!(
        store
            .add(
                "10.1.1.1".parse().unwrap(),
                Duration::from_secs(60),
                "x",
                &exempt
            )
            .await,
        Err(rampart_limit::LimitError::Exempt(_))
    ));
    let added = store
        .add(ip, Duration::from_secs(600), "cli", &exempt)
        .await
        .unwrap();
    assert_eq!(added.net.to_string(), "2001:db8:5::/64");
    eventually(
        Duration::from_secs(10),
        "the running node applies the CLI ban",
        || async { node.is_banned(ip).is_some() },
    )
    .await;
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].reason, BanReason::Manual { note: "cli".into() });
    assert!(store.remove(ip).await.unwrap());
    assert!(!store.remove(ip).await.unwrap());
    eventually(
        Duration::from_secs(10),
        "the running node lifts the ban",
        || async { node.is_banned(ip).is_none() },
    )
    .await;
    drop(node);
    tokio::time::sleep(Duration::from_millis(300)).await;
    cleanup(&url, &prefix);
}
