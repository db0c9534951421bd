//! Decision throughput: in-memory (one key, many keys, two threads) and Redis (sequential and
//! 64 in flight). Run: `cargo bench -p rampart-limit --bench decisions`.
//! The Redis group needs a Redis at 127.0.0.1:6379 (or `RAMPART_BENCH_REDIS=redis://...`).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_limit::{LimitKey, Limiter, MemoryBackend, Policy, StoreOptions};

fn memory(c: &mut Criterion) {
    let m = MemoryBackend::with_system_clock();
    // Admit path: a rate high enough that every request is admitted (CAS every time).
    let open = Policy::parse("open", "ip", "4000000000/s", 1_000_000, true).unwrap();
    // Refuse path: a key that is over budget (read only).
    let tight = Policy::parse("tight", "ip", "1/h", 1, true).unwrap();
    let one = LimitKey::ip(&open, IpAddr::from([192, 0, 2, 1]));
    let tight_key = LimitKey::ip(&tight, IpAddr::from([192, 0, 2, 1]));
    let keys: Vec<LimitKey> = (0..100_000u32)
        .map(|i| LimitKey::ip(&open, IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i))))
        .collect();

    let mut g = c.benchmark_group("memory");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_key_admit", |b| {
        b.iter(|| black_box(m.check(&open, &one)))
    });
    let clock = rampart_limit::SystemClock::new();
    g.bench_function("clock_read", |b| {
        b.iter(|| black_box(rampart_limit::Clock::now(&clock)))
    });
    let now = rampart_limit::Clock::now(&clock);
    g.bench_function("one_key_admit_given_now", |b| {
        b.iter(|| black_box(m.check_at(&open, &one, black_box(now))))
    });
    m.check(&tight, &tight_key);
    g.bench_function("one_key_refuse", |b| {
        b.iter(|| black_box(m.check(&tight, &tight_key)))
    });
    let mut i = 0;
    g.bench_function("100k_keys_admit", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(m.check(&open, &keys[i]))
        })
    });
    // The same two loops measured in CPU time of this thread (from /proc/thread-self/schedstat)
    // instead of wall time: decisions per second *of one core*, even on a busy machine.
    if thread_cpu_nanos().is_some() {
        g.bench_function("one_key_admit_cpu_time", |b| {
            b.iter_custom(|iters| {
                cpu_time(|| {
                    for _ in 0..iters {
                        black_box(m.check(&open, &one));
                    }
                })
            })
        });
        g.bench_function("100k_keys_admit_cpu_time", |b| {
            b.iter_custom(|iters| {
                cpu_time(|| {
                    for n in 0..iters as usize {
                        black_box(m.check(&open, &keys[n % keys.len()]));
                    }
                })
            })
        });
    }
    g.bench_function("key_build_ip", |b| {
        b.iter(|| {
            black_box(LimitKey::ip(
                &open,
                black_box(IpAddr::from([203, 0, 113, 9])),
            ))
        })
    });
    let m = Arc::new(m);
    let keys = Arc::new(keys);
    let open = Arc::new(open);
    g.throughput(Throughput::Elements(2));
    g.bench_function("2_threads_100k_keys_admit_per_pair", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let hs: Vec<_> = (0..2usize)
                .map(|t| {
                    let (m, keys, open) = (m.clone(), keys.clone(), open.clone());
                    std::thread::spawn(move || {
                        for n in 0..iters as usize {
                            black_box(m.check(&open, &keys[(n * 2 + t) % keys.len()]));
                        }
                    })
                })
                .collect();
            for h in hs {
                let _ = h.join();
            }
            start.elapsed()
        })
    });
    g.finish();
}

/// CPU time this thread has run, in ns (Linux schedstat), if readable.
fn thread_cpu_nanos() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn cpu_time(f: impl FnOnce()) -> Duration {
    let a = thread_cpu_nanos().unwrap_or(0);
    f();
    Duration::from_nanos(thread_cpu_nanos().unwrap_or(0).saturating_sub(a))
}

fn redis(c: &mut Criterion) {
    let url =
        std::env::var("RAMPART_BENCH_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let opts = StoreOptions {
        prefix: format!("rlbench:{}:", std::process::id()),
        ..Default::default()
    };
    let l = match rt.block_on(async { Limiter::from_url(&url, opts) }) {
        Ok(l) => Arc::new(l),
        Err(e) => return eprintln!("SKIPPED redis benches: {e}"),
    };
    let p = Arc::new(Policy::parse("open", "ip", "4000000000/s", 1_000_000, true).unwrap());
    let k = LimitKey::new(&p, "192.0.2.1");
    let probe = rt.block_on(l.check(&p, &k));
    if !matches!(probe, rampart_limit::RateDecision::Allowed { .. }) {
        return eprintln!("SKIPPED redis benches: no Redis at {url} ({probe:?})");
    }
    let mut g = c.benchmark_group("redis");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    g.bench_function("sequential", |b| b.iter(|| rt.block_on(l.check(&p, &k))));
    g.bench_function("64_in_flight", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let per = iters.div_ceil(64);
                let tasks: Vec<_> = (0..64)
                    .map(|t| {
                        let (l, p) = (l.clone(), p.clone());
                        let k = LimitKey::new(&p, &format!("198.51.100.{t}"));
                        tokio::spawn(async move {
                            for _ in 0..per {
                                black_box(l.check(&p, &k).await);
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    let _ = t.await;
                }
                start.elapsed()
            })
        })
    });
    // A flood on one refused key: answered from the local cache, no round trip.
    let tight = Policy::parse("tight", "ip", "1/h", 1, true).unwrap();
    let tk = LimitKey::new(&tight, "192.0.2.99");
    rt.block_on(l.check(&tight, &tk));
    rt.block_on(l.check(&tight, &tk));
    g.bench_function("refused_key_cached", |b| {
        b.iter(|| rt.block_on(l.check(&tight, &tk)))
    });
    g.finish();
}

criterion_group!(benches, memory, redis);
criterion_main!(benches);
