//! Validations per second for a typical 1 KB JSON body (and a parameter-only GET).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use rampart_validate::{CompileOptions, CompiledSpec, RequestParts};

const BODY: &str = r#"{
  "name": "Blue widget deluxe",
  "sku": "ABC-1234",
  "price": 129.95,
  "quantity": 42,
  "status": "active",
  "tags": ["tools", "blue", "garden", "outdoor", "steel", "sale"],
  "owner_email": "owner.name@example.com",
  "website": "https://shop.example.com/widgets/blue-deluxe?ref=catalog",
  "available_from": "2026-11-22T10:00:00Z",
  "dimensions": { "width": 120.5, "height": 40, "depth": 35.25 },
  "variants": [
    { "color": "blue", "size": "S", "stock": 12 },
    { "color": "blue", "size": "M", "stock": 30 },
    { "color": "black", "size": "L", "stock": 7 },
    { "color": "white", "size": "XL", "stock": 0 },
    { "color": "red", "size": "M", "stock": 19 }
  ],
  "metadata": { "origin": "EU", "warehouse": "north-2", "supplier": "ACME Industrial Supplies", "batch": "2026-47" },
  "notes": "Handle with care; ships in two boxes. Assembly instructions are included in the larger box."
}"#;

fn spec() -> CompiledSpec {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/items-3.1.yaml");
    CompiledSpec::load(&path, &CompileOptions::default()).expect("sample spec compiles")
}

fn bench(c: &mut Criterion) {
    let spec = spec();
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-api-version", HeaderValue::from_static("1"));
    assert!(
        (900..=1200).contains(&BODY.len()),
        "body is {} bytes",
        BODY.len()
    );

    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Elements(1));
    let post = RequestParts {
        method: &Method::POST,
        path: "/items",
        query: None,
        headers: &headers,
        body: Some(BODY.as_bytes()),
    };
    assert!(spec.validate(&post).is_valid());
    group.bench_function("post_json_1kb_valid", |b| {
        b.iter(|| spec.validate(black_box(&post)))
    });

    let bad = BODY
        .replace("\"quantity\": 42", "\"quantity\": 42, \"is_admin\": true")
        .replace("ABC-1234", "abc");
    let post_bad = RequestParts {
        body: Some(bad.as_bytes()),
        ..post
    };
    assert!(!spec.validate(&post_bad).is_valid());
    group.bench_function("post_json_1kb_invalid", |b| {
        b.iter(|| spec.validate(black_box(&post_bad)))
    });

    let list = RequestParts {
        method: &Method::GET,
        path: "/items",
        query: Some("limit=20&offset=40&status=active&status=draft&q=blue&sort=-price"),
        headers: &headers,
        body: None,
    };
    assert!(spec.validate(&list).is_valid());
    group.bench_function("get_query_params", |b| {
        b.iter(|| spec.validate(black_box(&list)))
    });
    let open_spec = CompiledSpec::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/items-3.1.yaml"),
        &CompileOptions::default().with_extra_fields(rampart_validate::ExtraFields::Allow),
    )
    .expect("sample spec compiles");
    group.bench_function("post_json_1kb_valid_extra_fields_allow", |b| {
        b.iter(|| open_spec.validate(black_box(&post)))
    });
    group.bench_function("parse_only_serde_json_1kb", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(BODY.as_bytes())))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
