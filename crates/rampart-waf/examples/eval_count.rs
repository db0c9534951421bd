//! Runs a few CRS PL1 transactions (the harness's W1 GET and a 1 KB JSON POST): a fixed workload for
//! instruction-count profiling (`valgrind --tool=callgrind --toggle-collect='*workload*'`),
//! steadier than wall-clock benches on a shared machine. `EVAL_RULES` replaces the rules glob
//! (`crs/rules/*.conf`) to profile a subset; `EVAL_SETUP` replaces the CRS CI setup file
//! (`crs-setup-test.conf`, whose rule 999999 for test runs ends the preamble), e.g. with
//! `crs/crs-setup.conf.example` as the benchmark harness loads it; `EVAL_WITHOUT_PREAMBLE=1`
//! runs the preamble's rules on every transaction.
use std::path::PathBuf;

use rampart_waf::{ConnInfo, EngineOptions, RuleEngineMode, WafEngine};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The harness's W1 request carries a 300-byte bearer token.
const JWT: &[u8] = b"Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20vIiwic3ViIjoidXNlci0xMjM0IiwiYXVkIjoiYXBpLmV4YW1wbGUuY29tIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDAsInNjb3BlIjoiaXRlbXM6cmVhZCBpdGVtczp3cml0ZSIsInBhZCI6Inh4eHh4eCJ9.Ds8iLBWN_MkAjAQZujmIqFRtTVACIZLogB1iHOUAIEw";

type Req<'a> = (&'a str, &'a str, Vec<(&'a [u8], &'a [u8])>);

/// The measured transactions; `warm_up` runs the same first so that lazily built regex
/// states and caches are in place, as they are in a gateway that has served a few requests.
#[inline(never)]
fn workload(e: &WafEngine, json: &[u8]) -> i64 {
    transactions(e, json)
}

#[inline(never)]
fn warm_up(e: &WafEngine, json: &[u8]) -> i64 {
    transactions(e, json)
}

fn transactions(e: &WafEngine, json: &[u8]) -> i64 {
    let mut total = 0;
    // `EVAL_ONLY=GET` or `EVAL_ONLY=POST` profiles one kind of request.
    let only = std::env::var("EVAL_ONLY").ok();
    for i in 0..20 {
        match only.as_deref() {
            Some("GET") if i % 2 == 1 => continue,
            Some("POST") if i % 2 == 0 => continue,
            _ => {}
        }
        let mut tx = e.transaction(ConnInfo {
            request_id: format!("r{i}"),
            ..Default::default()
        });
        let len = json.len().to_string();
        let (m, uri, h): Req<'_> = if i % 2 == 0 {
            (
                "GET",
                "/api/items?id=42",
                vec![
                    (b"Host", b"api.example.com"),
                    (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
                    (b"Accept", b"application/json, text/plain, */*"),
                    (b"Accept-Language", b"en-US,en;q=0.9"),
                    (b"Accept-Encoding", b"gzip, deflate, br"),
                    (b"Authorization", JWT),
                    (b"Cookie", b"session_id=5f1c2a9e7b3d4c60a8e1f29b0c7d3e41; theme=dark; locale=en-US"),
                    (b"Referer", b"https://app.example.com/items"),
                    (b"X-Request-ID", b"3b2f8c1e-6a4d-4f0b-9e7a-2c5d8f1a0b63"),
                ],
            )
        } else {
            (
                "POST",
                "/api/orders",
                vec![
                    (b"Host", b"api.example.com"),
                    (b"User-Agent", b"client/1.4"),
                    (b"Accept", b"application/json"),
                    (b"Content-Type", b"application/json"),
                    (b"Content-Length", len.as_bytes()),
                ],
            )
        };
        tx.process_request_headers(m, uri, "HTTP/1.1", &h);
        if m == "POST" && tx.wants_request_body() {
            tx.append_request_body(json);
        }
        tx.process_request_body();
        tx.process_response_headers(200, "HTTP/1.1", &[(b"Content-Type", b"application/json")]);
        tx.process_response_body();
        tx.process_logging();
        total += tx.inbound_anomaly_score();
    }
    total
}

fn main() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let paths = [
        shared.join("tools/ftw/crs-test/engine.conf"),
        std::env::var("EVAL_SETUP")
            .map(PathBuf::from)
            .unwrap_or(shared.join("tools/ftw/crs-test/crs-setup-test.conf")),
        std::env::var("EVAL_RULES")
            .map(PathBuf::from)
            .unwrap_or(shared.join("crs/rules/*.conf")),
    ];
    let opts = EngineOptions {
        mode_override: Some(RuleEngineMode::On),
        paranoia_level: Some(1),
        without_preamble: std::env::var_os("EVAL_WITHOUT_PREAMBLE").is_some(),
        ..Default::default()
    };
    let e = WafEngine::from_files(&paths, &opts).expect("CRS loads");
    let mut json = String::from("{\"order\":{\"id\":12345,\"items\":[");
    while json.len() < 950 {
        json.push_str("{\"sku\":\"AB-1234\",\"qty\":2,\"note\":\"gift wrap please\"},");
    }
    json.pop();
    json.push_str("]},\"email\":\"jane@example.com\"}");
    let warm = warm_up(&e, json.as_bytes());
    println!("{}", workload(&e, json.as_bytes()) + warm);
    // `EVAL_REPEAT=n`: the workload n times more, timed (wall clock, for comparing builds
    // on a quiet machine; instruction counts are the steadier measure)
    if let Some(n) = std::env::var("EVAL_REPEAT")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
    {
        let per_run = match std::env::var("EVAL_ONLY").as_deref() {
            Ok("GET") | Ok("POST") => 10,
            _ => 20,
        };
        let t = std::time::Instant::now();
        let mut total = 0;
        for _ in 0..n {
            total += transactions(&e, json.as_bytes());
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / f64::from(n * per_run);
        eprintln!("{per:.1} us per transaction ({total})");
    }
}
