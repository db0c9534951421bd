//! WAF evaluation on the full CRS at paranoia level 1 (engine On): a sample GET, a 1 KB and a
//! 10 KB JSON POST, all five phases. Rules come from `shared/` (`RAMPART_SHARED_DIR` to override).
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_waf::{ConnInfo, EngineOptions, RuleEngineMode, WafEngine};

/// The gateway's allocator: allocation is a share of the per-request cost.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    // The shared load harness's W1 and W2 requests (`../shared/bench/lua`), so the crate
    // bench and the full-gateway runs measure the same work.
    let jwt = "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20vIiwic3ViIjoidXNlci0xMjM0IiwiYXVkIjoiYXBpLmV4YW1wbGUuY29tIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDAsInNjb3BlIjoiaXRlbXM6cmVhZCBpdGVtczp3cml0ZSIsInBhZCI6Inh4eHh4eCJ9.Ds8iLBWN_MkAjAQZujmIqFRtTVACIZLogB1iHOUAIEw";
    let harness: Vec<(&[u8], &[u8])> = vec![
        (b"Host", b"api.example.com"),
        (
            b"User-Agent",
            b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        ),
        (b"Accept", b"application/json, text/plain, */*"),
        (b"Accept-Language", b"en-US,en;q=0.9"),
        (b"Accept-Encoding", b"gzip, deflate, br"),
        (b"Authorization", jwt.as_bytes()),
        (
            b"Cookie",
            b"session_id=5f1c2a9e7b3d4c60a8e1f29b0c7d3e41; theme=dark; locale=en-US",
        ),
        (b"Referer", b"https://app.example.com/items"),
        (b"X-Request-ID", b"3b2f8c1e-6a4d-4f0b-9e7a-2c5d8f1a0b63"),
    ];
    c.bench_function("harness_w1_get", |b| {
        b.iter(|| black_box(run(&e, "GET", "/api/items?id=42", &harness, b"")))
    });
    let w2_body = r#"{"name":"Ergonomic Office Chair","sku":"CHR-2041-BLK","category":"furniture/office","price":249.99,"currency":"USD","quantity":12,"in_stock":true,"tags":["office","chair","ergonomic","adjustable","mesh"],"dimensions":{"width_cm":66,"depth_cm":61,"height_cm":118,"weight_kg":17.5},"attributes":{"color":"black","material":"mesh and aluminium","warranty_years":5,"assembly_required":true},"supplier":{"id":7781,"name":"Lindqvist Seating GmbH","country":"DE"},"images":["https://cdn.example.com/img/chr-2041-front.jpg","https://cdn.example.com/img/chr-2041-side.jpg"],"description":"A comfortable chair with lumbar support and breathable mesh back that keeps you cool during long working days and adjusts to many body sizes with ease and comes with a five year warranty A comfortable chair with lumbar support and breathable mesh back that keeps you cool during long working days and adjusts to many body sizes with ease and comes with a five year warranty A comfortable chair with lumbar support and breathable mesh back tha"}"#;
    let w2_len = w2_body.len().to_string();
    let mut w2 = harness.clone();
    w2[7] = (b"Referer", b"https://app.example.com/items/new");
    w2[8] = (b"X-Request-ID", b"9d4e7a21-0c3b-4e8f-a6d2-71b5c9e0f384");
    w2.push((b"Content-Type", b"application/json"));
    w2.push((b"Content-Length", w2_len.as_bytes()));
    c.bench_function("harness_w2_post", |b| {
        b.iter(|| black_box(run(&e, "POST", "/api/items", &w2, w2_body.as_bytes())))
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
