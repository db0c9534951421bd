//! WAF evaluation on the full CRS at paranoia level 1 (engine On): a sample GET, a 1 KB and a
//! 10 KB JSON POST, all five phases. Rules come from `shared/` (`RAMPART_SHARED_DIR` to override).
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_waf::{ConnInfo, EngineOptions, RuleEngineMode, WafEngine};

fn engine() -> WafEngine {
    let shared = std::env::var_os("RAMPART_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
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
    WafEngine::from_files(&paths, &opts).expect("CRS loads")
}

fn run(e: &WafEngine, method: &str, uri: &str, headers: &[(&[u8], &[u8])], body: &[u8]) -> i64 {
    let mut tx = e.transaction(ConnInfo {
        request_id: "bench".into(),
        ..Default::default()
    });
    tx.process_request_headers(method, uri, "HTTP/1.1", headers);
    if tx.wants_request_body() {
        tx.append_request_body(body);
    }
    tx.process_request_body();
    tx.process_response_headers(
        200,
        "HTTP/1.1",
        &[
            (b"Content-Type", b"application/json"),
            (b"Content-Length", b"2"),
        ],
    );
    if tx.wants_response_body() {
        tx.append_response_body(b"{}");
    }
    tx.process_response_body();
    tx.process_logging();
    tx.inbound_anomaly_score()
}

fn bench(c: &mut Criterion) {
    let e = engine();
    let get: &[(&[u8], &[u8])] = &[
        (b"Host", b"shop.example.com"),
        (
            b"User-Agent",
            b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            b"Accept",
            b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        (b"Accept-Language", b"en-US,en;q=0.5"),
        (b"Accept-Encoding", b"gzip, deflate, br"),
        (
            b"Cookie",
            b"session=3f2a9c1b7d; theme=dark; _ga=GA1.2.123456789.1700000000",
        ),
        (b"Referer", b"https://shop.example.com/catalog?page=2"),
    ];
    c.bench_function("crs_pl1_get", |b| {
        b.iter(|| {
            black_box(run(
                &e,
                "GET",
                "/catalog/item/42?color=blue&size=m&ref=home",
                get,
                b"",
            ))
        })
    });
    let mut json = String::from("{\"order\":{\"id\":12345,\"items\":[");
    while json.len() < 950 {
        json.push_str("{\"sku\":\"AB-1234\",\"qty\":2,\"note\":\"gift wrap please\"},");
    }
    json.pop();
    json.push_str("]},\"email\":\"jane@example.com\"}");
    let len = json.len().to_string();
    let post: Vec<(&[u8], &[u8])> = vec![
        (b"Host", b"api.example.com"),
        (b"User-Agent", b"example-client/1.4"),
        (b"Accept", b"application/json"),
        (b"Content-Type", b"application/json"),
        (b"Content-Length", len.as_bytes()),
    ];
    c.bench_function("crs_pl1_json_post_1k", |b| {
        b.iter(|| black_box(run(&e, "POST", "/api/orders", &post, json.as_bytes())))
    });
    let mut big = String::from("{\"order\":{\"id\":12345,\"items\":[");
    while big.len() < 10_200 {
        big.push_str(
            "{\"sku\":\"AB-1234\",\"qty\":2,\"note\":\"gift wrap please, and thanks\",\"price\":19.99},",
        );
    }
    big.pop();
    big.push_str("]},\"email\":\"jane@example.com\"}");
    let big_len = big.len().to_string();
    let mut post_big = post.clone();
    post_big[4] = (b"Content-Length", big_len.as_bytes());
    c.bench_function("crs_pl1_json_post_10k", |b| {
        b.iter(|| black_box(run(&e, "POST", "/api/orders", &post_big, big.as_bytes())))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
