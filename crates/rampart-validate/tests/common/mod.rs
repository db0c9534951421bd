#![allow(dead_code)]

use std::path::PathBuf;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use rampart_validate::{CompileOptions, CompiledSpec, Outcome, Reason, RequestParts};

pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

pub fn load(name: &str) -> CompiledSpec {
    load_with(name, &CompileOptions::default())
}

pub fn load_with(name: &str, options: &CompileOptions) -> CompiledSpec {
    match CompiledSpec::load(&testdata(name), options) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// Run one request: `uri` may hold a query; `ct` is the Content-Type.
pub fn run(
    spec: &CompiledSpec,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    ct: Option<&str>,
    body: Option<&[u8]>,
) -> Outcome {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (uri, None),
    };
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    if let Some(ct) = ct {
        map.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_str(ct).unwrap(),
        );
    }
    spec.validate(&RequestParts {
        method: &method,
        path,
        query,
        headers: &map,
        body,
    })
}

pub fn get(spec: &CompiledSpec, uri: &str) -> Outcome {
    run(spec, "GET", uri, &[("X-Api-Version", "1")], None, None)
}

pub fn json(spec: &CompiledSpec, method: &str, uri: &str, body: &str) -> Outcome {
    run(
        spec,
        method,
        uri,
        &[],
        Some("application/json"),
        Some(body.as_bytes()),
    )
}

pub fn violations(o: &Outcome) -> Vec<(String, Reason)> {
    match o {
        Outcome::Invalid { violations, .. } => violations
            .iter()
            .map(|v| (v.pointer.clone(), v.reason.clone()))
            .collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

pub fn pointers(o: &Outcome) -> Vec<String> {
    violations(o).into_iter().map(|(p, _)| p).collect()
}

#[track_caller]
pub fn assert_valid(o: &Outcome) {
    assert!(o.is_valid(), "expected Valid, got {o:?}");
}

/// The one violation at `pointer` has the reason `reason`.
#[track_caller]
pub fn assert_violation(o: &Outcome, pointer: &str, reason: Reason) {
    let v = violations(o);
    assert!(
        v.iter().any(|(p, r)| p == pointer && *r == reason),
        "expected {pointer}: {reason} in {v:?}"
    );
}

pub const ITEM: &str = r#"{
  "name": "Blue widget",
  "sku": "ABC-1234",
  "price": 12.5,
  "quantity": 3,
  "status": "active",
  "tags": ["tools", "blue"],
  "owner_email": "owner@example.com",
  "website": "https://example.com/widgets/blue",
  "available_from": "2026-11-22T10:00:00Z",
  "dimensions": { "width": 10, "height": 2.5 },
  "variants": [ { "color": "blue", "size": "M", "stock": 12 } ],
  "metadata": { "origin": "EU" },
  "notes": null
}"#;

/// ITEM with `f` applied to its JSON.
pub fn item_with(f: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(ITEM).unwrap();
    f(&mut v);
    v.to_string()
}
