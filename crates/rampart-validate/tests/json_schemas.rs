//! Plain JSON Schemas per operation, and the route config types.

mod common;

use common::*;
use http::Method;
use rampart_validate::{
    CompileOptions, CompiledSpec, ExtraFields, Mode, OperationSchema, Outcome, Reason,
    UnknownOperations, ValidationConfig,
};

#[test]
fn per_operation_json_schemas() {
    let ops = [
        OperationSchema {
            method: Method::POST,
            path: "/things".into(),
            body_schema: Some(testdata("item.schema.json")),
        },
        OperationSchema {
            method: Method::PUT,
            path: "/things/{id}".into(),
            body_schema: Some(testdata("item.schema.json")),
        },
        OperationSchema {
            method: Method::GET,
            path: "/things/{id}".into(),
            body_schema: None,
        },
    ];
    let spec = CompiledSpec::load_json_schemas(&ops, &CompileOptions::default()).unwrap();
    assert_valid(&json(
        &spec,
        "POST",
        "/things",
        r#"{"name": "a", "count": 99, "child": {"n": 1}}"#,
    ));
    assert_valid(&json(&spec, "PUT", "/things/7", r#"{"name": "a"}"#));
    assert_valid(&run(&spec, "GET", "/things/7?anything=1", &[], None, None));
    assert_violation(
        &json(&spec, "POST", "/things", r#"{"name": "a", "count": 100}"#),
        "/body/count",
        Reason::ExclusiveMaximum("100".into()),
    );
    assert_violation(
        &json(&spec, "POST", "/things", r#"{"name": "a", "x": 1}"#),
        "/body/x",
        Reason::AdditionalField,
    );
    assert_violation(
        &json(
            &spec,
            "POST",
            "/things",
            r#"{"name": "a", "child": {"m": 1}}"#,
        ),
        "/body/child/m",
        Reason::AdditionalField,
    );
    assert_eq!(
        run(&spec, "DELETE", "/things/7", &[], None, None),
        Outcome::MethodNotAllowed {
            allow: vec![Method::GET, Method::HEAD, Method::PUT]
        }
    );
    assert_eq!(
        run(&spec, "GET", "/other", &[], None, None),
        Outcome::UnknownPath
    );
}

#[test]
fn config_keys_deserialize_strictly() {
    let c: ValidationConfig = serde_json::from_str(
        r#"{"mode": "detect", "extra_fields": "allow", "unknown_operations": "pass"}"#,
    )
    .unwrap();
    assert_eq!(c.mode, Mode::Detect);
    assert_eq!(c.extra_fields, ExtraFields::Allow);
    assert_eq!(c.unknown_operations, UnknownOperations::Pass);
    assert_eq!(c.max_depth, 32);
    let d: ValidationConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(d, ValidationConfig::default());
    assert_eq!(d.mode, Mode::Enforce);
    assert!(
        serde_json::from_str::<ValidationConfig>(r#"{"mode": "enforce", "extra": "allow"}"#)
            .is_err()
    );
    assert!(serde_json::from_str::<ValidationConfig>(r#"{"mode": "block"}"#).is_err());
    assert_eq!(
        CompileOptions::from_config(&c).extra_fields,
        ExtraFields::Allow
    );

    // unknown_operations decides whether 404/405 outcomes refuse.
    let pass = c;
    assert!(!Outcome::UnknownPath.is_refused(&pass));
    assert!(Outcome::UnknownPath.is_refused(&d));
    assert!(Outcome::BodyTooLarge { limit: 1 }.is_refused(&pass));
}
