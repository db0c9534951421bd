//! Runs a few CRS PL1 transactions (a GET and a 1 KB JSON POST): a fixed workload for
//! instruction-count profiling (`valgrind --tool=callgrind --toggle-collect='*workload*'`),
//! steadier than wall-clock benches on a shared machine.
use std::path::PathBuf;

use rampart_waf::{ConnInfo, EngineOptions, RuleEngineMode, WafEngine};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    for i in 0..20 {
        let mut tx = e.transaction(ConnInfo {
            request_id: format!("r{i}"),
            ..Default::default()
        });
        let len = json.len().to_string();
        let (m, uri, h): Req<'_> = if i % 2 == 0 {
            (
                "GET",
                "/catalog/item/42?color=blue&size=m&ref=home",
                vec![
                    (b"Host", b"shop.example.com"),
                    (
                        b"User-Agent",
                        b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                    ),
                    (b"Accept", b"text/html"),
                    (b"Cookie", b"session=3f2a9c1b7d; theme=dark"),
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
        shared.join("tools/ftw/crs-test/crs-setup-test.conf"),
        shared.join("crs/rules/*.conf"),
    ];
    let opts = EngineOptions {
        mode_override: Some(RuleEngineMode::On),
        paranoia_level: Some(1),
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
}
