//! The 3.0 sample spec: dialect conversion (nullable, boolean exclusive bounds, int formats),
//! parameter styles, `readOnly` in requests, YAML and JSON giving the same spec.

mod common;

use common::*;
use rampart_validate::{CompileOptions, CompiledSpec, ExtraFields, Outcome, Reason};

fn both() -> Vec<CompiledSpec> {
    vec![load("items-3.0.yaml"), load("items-3.0.json")]
}

fn post(spec: &CompiledSpec, body: &str) -> Outcome {
    json(spec, "POST", "/items", body)
}

#[test]
fn nullable_and_exclusive_bounds_are_converted() {
    for spec in both() {
        assert_valid(&post(
            &spec,
            r#"{"name": "a", "price": 5, "discount": null, "kind": null}"#,
        ));
        assert_valid(&post(
            &spec,
            r#"{"name": "a", "price": 5, "discount": 10, "kind": "toy"}"#,
        ));
        assert_violation(
            &post(&spec, r#"{"name": "a", "price": 0}"#),
            "/body/price",
            Reason::ExclusiveMinimum("0".into()),
        );
        assert_violation(
            &post(&spec, r#"{"name": "a", "price": 1000}"#),
            "/body/price",
            Reason::ExclusiveMaximum("1000".into()),
        );
        assert_violation(
            &post(&spec, r#"{"name": "a", "price": 5, "kind": "car"}"#),
            "/body/kind",
            Reason::Enum,
        );
        assert_violation(
            &post(&spec, r#"{"name": null, "price": 5}"#),
            "/body/name",
            Reason::Type {
                expected: "string".into(),
            },
        );
        // format: int32 bounds integers.
        assert_violation(
            &post(
                &spec,
                r#"{"name": "a", "price": 5, "pair": [1, 4294967296]}"#,
            ),
            "/body/pair/1",
            Reason::Maximum("2147483647".into()),
        );
        // An explicitly open object accepts anything.
        assert_valid(&post(
            &spec,
            r#"{"name": "a", "price": 5, "extra": {"x": {"y": [1]}}}"#,
        ));
    }
}

#[test]
fn read_only_fields_are_not_required_and_not_accepted_in_requests() {
    for spec in both() {
        assert_valid(&post(&spec, r#"{"name": "a", "price": 5}"#));
        assert_violation(
            &post(&spec, r#"{"id": 7, "name": "a", "price": 5}"#),
            "/body/id",
            Reason::NotAllowed,
        );
    }
    let open = load_with(
        "items-3.0.yaml",
        &CompileOptions::default().with_extra_fields(ExtraFields::Allow),
    );
    assert_valid(&post(&open, r#"{"id": 7, "name": "a", "price": 5}"#));
}

#[test]
fn parameter_styles() {
    for spec in both() {
        assert_valid(&get(&spec, "/items?status=draft,active&limit=5"));
        assert_violation(
            &get(&spec, "/items?status=draft,bogus"),
            "/query/status/1",
            Reason::Enum,
        );
        assert_valid(&get(
            &spec,
            "/items?filter[color]=red&filter[min_price]=2.5",
        ));
        assert_violation(
            &get(&spec, "/items?filter[color]=pink"),
            "/query/filter/color",
            Reason::Enum,
        );
        assert_violation(
            &get(&spec, "/items?filter[min_price]=cheap"),
            "/query/filter/min_price",
            Reason::Type {
                expected: "number".into(),
            },
        );
        assert_violation(
            &get(&spec, "/items?filter[owner]=me"),
            "/query/filter/owner",
            Reason::AdditionalField,
        );
        assert_violation(
            &get(&spec, "/items?limit=99999999999"),
            "/query/limit",
            Reason::Maximum("100".into()),
        );
        assert_valid(&get(&spec, "/items/12"));
        assert_violation(
            &get(&spec, "/items/0"),
            "/path/id",
            Reason::Minimum("1".into()),
        );
        assert_violation(
            &get(&spec, "/items/twelve"),
            "/path/id",
            Reason::Type {
                expected: "integer".into(),
            },
        );
        let o = run(
            &spec,
            "GET",
            "/items/12",
            &[("X-Trace", &"t".repeat(17))],
            None,
            None,
        );
        assert_violation(&o, "/header/X-Trace", Reason::MaxLength(16));
        let o = run(
            &spec,
            "GET",
            "/items/12",
            &[("X-Trace", "a"), ("X-Trace", "b")],
            None,
            None,
        );
        assert_violation(&o, "/header/X-Trace", Reason::Duplicate);
    }
}

#[test]
fn servers_base_path_of_an_absolute_url() {
    let spec = load_with(
        "items-3.0.yaml",
        &CompileOptions::default().with_base_path(rampart_validate::BasePath::Servers),
    );
    assert_valid(&get(&spec, "/v1/items/3"));
    assert_eq!(get(&spec, "/items/3"), Outcome::UnknownPath);
}

#[test]
fn allowlist_is_added_where_the_schema_is_silent() {
    // items-3.0.yaml never says additionalProperties: false on Item.
    for spec in both() {
        let o = post(&spec, r#"{"name": "a", "price": 5, "role": "admin"}"#);
        assert_eq!(
            violations(&o),
            vec![("/body/role".to_owned(), Reason::AdditionalField)]
        );
    }
}

#[test]
fn cookie_parameters() {
    for spec in both() {
        assert_valid(&run(
            &spec,
            "GET",
            "/items/3",
            &[("Cookie", "a=b; theme=dark")],
            None,
            None,
        ));
        let o = run(
            &spec,
            "GET",
            "/items/3",
            &[("Cookie", "theme=neon")],
            None,
            None,
        );
        assert_violation(&o, "/cookie/theme", Reason::Enum);
    }
}
