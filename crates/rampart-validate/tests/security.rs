//! Refusals never echo what the client sent, and linear-time regexes are enforced.

mod common;

use std::time::Instant;

use common::*;
use rampart_validate::{CompileOptions, CompiledSpec, Outcome, Reason, SpecError};

const EVIL: &str = "<script>alert(1)</script>";
const EVIL_ENC: &str = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";

fn text_of(o: &Outcome) -> String {
    let v = o.violations();
    assert!(!v.is_empty(), "expected violations, got {o:?}");
    let display: Vec<String> = v.iter().map(ToString::to_string).collect();
    format!(
        "{}\n{}\n{:?}",
        display.join("\n"),
        serde_json::to_string(v).unwrap(),
        v
    )
}

#[track_caller]
fn assert_no_echo(o: &Outcome) {
    let text = text_of(o);
    for needle in ["script", "alert", "<", ">"] {
        assert!(!text.contains(needle), "{needle:?} echoed in {text}");
    }
}

#[test]
fn malicious_values_never_appear_in_violations() {
    let spec = load("items-3.1.yaml");
    // Values in the query, the path, a header, the body (strings, enum, format, pattern).
    assert_no_echo(&get(
        &spec,
        &format!("/items?q={EVIL_ENC}&sort={EVIL_ENC}&limit={EVIL_ENC}"),
    ));
    assert_no_echo(&get(&spec, &format!("/items/{EVIL_ENC}")));
    assert_no_echo(&get(
        &spec,
        &format!("/items/3f2b8c1e-4d5a-4b6c-8e9f-0a1b2c3d4e5f/reviews/{EVIL_ENC}"),
    ));
    assert_no_echo(&run(
        &spec,
        "GET",
        "/items",
        &[("X-Api-Version", EVIL)],
        None,
        None,
    ));
    for field in [
        "name",
        "sku",
        "status",
        "owner_email",
        "website",
        "available_from",
        "price",
    ] {
        let body = item_with(|v| v[field] = serde_json::Value::from(EVIL));
        assert_no_echo(&json(&spec, "POST", "/items", &body));
    }
    let body = item_with(|v| v["tags"] = serde_json::json!([EVIL, EVIL]));
    assert_no_echo(&json(&spec, "POST", "/items", &body));
    // Names the client chose: undeclared query parameters and body fields.
    assert_no_echo(&get(&spec, &format!("/items?{EVIL_ENC}=1")));
    let body = item_with(|v| v[EVIL] = serde_json::Value::from(EVIL));
    let o = json(&spec, "POST", "/items", &body);
    assert_no_echo(&o);
    assert_violation(&o, "/body/*", Reason::AdditionalField);
    let body = item_with(|v| v["metadata"][EVIL] = serde_json::Value::from(1));
    assert_no_echo(&json(&spec, "POST", "/items", &body));
    // Form bodies.
    let o = run(
        &spec,
        "POST",
        "/feedback",
        &[],
        Some("application/x-www-form-urlencoded"),
        Some(format!("email={EVIL_ENC}&rating={EVIL_ENC}&{EVIL_ENC}=x").as_bytes()),
    );
    assert_no_echo(&o);
}

#[test]
fn patterns_use_a_linear_time_engine() {
    // A classic catastrophic-backtracking pattern: linear with the `regex` engine.
    let spec = CompiledSpec::from_text(
        "redos.yaml",
        r#"
openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /x:
    post:
      requestBody:
        content:
          application/json:
            schema: { type: string, pattern: '^(a+)+$' }
      responses: { '200': { description: ok } }
"#,
        None,
        &CompileOptions::default(),
    )
    .unwrap();
    let evil = format!("\"{}!\"", "a".repeat(100_000));
    let start = Instant::now();
    let o = json(&spec, "POST", "/x", &evil);
    assert_violation(&o, "/body", Reason::Pattern);
    // Not a timing test: a backtracking engine would not finish at all.
    let _ = start.elapsed();

    // Backtracking-only syntax is refused at load, naming where it is.
    let err = CompiledSpec::from_text(
        "backref.yaml",
        r#"
openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /x:
    post:
      requestBody:
        content:
          application/json:
            schema: { type: object, properties: { a: { type: string, pattern: '^(a)\1$' } } }
      responses: { '200': { description: ok } }
"#,
        None,
        &CompileOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SpecError::Schema { .. }), "{msg}");
    assert!(
        msg.starts_with(
            "backref.yaml: #/paths/~1x/post/requestBody/content/application~1json/schema"
        ),
        "{msg}"
    );
}
