//! Format validation is on: each format refuses a malformed value and accepts a good one.

mod common;

use common::*;
use rampart_validate::{CompileOptions, CompiledSpec, Reason};

fn spec() -> CompiledSpec {
    let text = r#"
openapi: 3.1.0
info: { title: formats, version: '1' }
paths:
  /f:
    get:
      parameters:
        - { name: v, in: query, required: true, schema: { type: string, format: FORMAT } }
      responses: { '200': { description: ok } }
"#;
    let mut paths = String::new();
    for (i, f) in FORMATS.iter().enumerate() {
        let op = text
            .split("paths:\n")
            .nth(1)
            .unwrap()
            .replace("/f:", &format!("/f{i}:"))
            .replace("FORMAT", f.0);
        paths.push_str(&op);
    }
    let doc = format!("openapi: 3.1.0\ninfo: {{ title: formats, version: '1' }}\npaths:\n{paths}");
    CompiledSpec::from_text("formats.yaml", &doc, None, &CompileOptions::default()).unwrap()
}

/// (format, good, bad), values percent-encoded for the query.
const FORMATS: &[(&str, &str, &str)] = &[
    ("email", "ann%40example.com", "ann.example.com"),
    (
        "uuid",
        "3f2b8c1e-4d5a-4b6c-8e9f-0a1b2c3d4e5f",
        "3f2b8c1e-4d5a-4b6c-8e9f",
    ),
    (
        "date-time",
        "2026-11-22T10%3A00%3A00Z",
        "2026-11-22%2010%3A00",
    ),
    ("date", "2026-11-22", "2026-13-01"),
    ("time", "10%3A00%3A00Z", "25%3A00%3A00Z"),
    (
        "uri",
        "https%3A%2F%2Fexample.com%2Fa%3Fb%3Dc",
        "not%20a%20uri",
    ),
    ("ipv4", "192.0.2.1", "192.0.2.256"),
    ("ipv6", "2001%3Adb8%3A%3A1", "2001%3A%3Adb8%3A%3A1"),
    ("hostname", "api.example.com", "-bad-.example.com"),
    ("duration", "P1DT2H", "1 day"),
];

#[test]
fn every_format_is_enforced() {
    let spec = spec();
    for (i, (format, good, bad)) in FORMATS.iter().enumerate() {
        assert_valid(&run(
            &spec,
            "GET",
            &format!("/f{i}?v={good}"),
            &[],
            None,
            None,
        ));
        let o = run(&spec, "GET", &format!("/f{i}?v={bad}"), &[], None, None);
        assert_violation(&o, "/query/v", Reason::Format((*format).to_owned()));
    }
}
