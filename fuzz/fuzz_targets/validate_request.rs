//! Request validation against an OpenAPI 3.1 document: arbitrary methods, paths, queries,
//! headers, cookies and bodies (JSON, form, anything) through `CompiledSpec::validate`.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use rampart_validate::{CompileOptions, CompiledSpec, RequestParts};

fn spec() -> &'static CompiledSpec {
    static SPEC: OnceLock<CompiledSpec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/rampart-validate/testdata/items-3.1.yaml");
        CompiledSpec::load(&path, &CompileOptions::default()).expect("the test document loads")
    })
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "BREW"];

// input: one byte for the method, then path, query, content type and a header value
// separated by newlines, then the body
fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let method = Method::from_bytes(METHODS[m as usize % METHODS.len()].as_bytes()).unwrap();
    let mut parts = rest.splitn(5, |&b| b == b'\n');
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let query = parts.next().map(String::from_utf8_lossy);
    let content_type = parts.next().unwrap_or_default();
    let header = parts.next().unwrap_or_default();
    let body = parts.next();
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(content_type) {
        headers.insert(http::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_bytes(header) {
        headers.insert("x-api-version", v.clone());
        headers.insert(http::header::COOKIE, v);
    }
    let outcome = spec().validate(&RequestParts {
        method: &method,
        path: &path,
        query: query.as_deref(),
        headers: &headers,
        body,
    });
    let _ = outcome.status();
    for v in outcome.violations() {
        let _ = v.to_string();
    }
});
