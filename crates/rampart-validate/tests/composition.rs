//! The allowlist respects composition: `allOf` extensions, `$ref` siblings, `anyOf` variants.

mod common;

use common::*;
use rampart_validate::{CompileOptions, CompiledSpec, ExtraFields, Reason};

const SPEC: &str = r#"
openapi: 3.1.0
info: { title: composition, version: '1' }
paths:
  /pets:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: '#/components/schemas/NewPet' }
      responses: { '201': { description: ok } }
  /shapes:
    post:
      requestBody:
        content:
          application/json:
            schema:
              anyOf:
                - { type: object, required: [radius], properties: { radius: { type: number } } }
                - { type: object, required: [side], properties: { side: { type: number } } }
      responses: { '201': { description: ok } }
components:
  schemas:
    Base:
      type: object
      required: [name]
      properties:
        name: { type: string }
        owner: { $ref: '#/components/schemas/Owner' }
    Owner:
      type: object
      properties:
        email: { type: string, format: email }
    NewPet:
      allOf:
        - $ref: '#/components/schemas/Base'
        - type: object
          properties:
            species: { type: string, enum: [cat, dog] }
"#;

fn spec(extra: ExtraFields) -> CompiledSpec {
    CompiledSpec::from_text(
        "composition.yaml",
        SPEC,
        None,
        &CompileOptions::default().with_extra_fields(extra),
    )
    .unwrap()
}

#[test]
fn all_of_extension_fields_are_declared_fields() {
    let s = spec(ExtraFields::Reject);
    assert_valid(&json(
        &s,
        "POST",
        "/pets",
        r#"{"name": "Tom", "species": "cat", "owner": {"email": "a@b.example"}}"#,
    ));
    let o = json(
        &s,
        "POST",
        "/pets",
        r#"{"name": "Tom", "species": "cat", "admin": true}"#,
    );
    assert_eq!(
        violations(&o),
        vec![("/body/admin".to_owned(), Reason::AdditionalField)]
    );
    assert_violation(
        &json(
            &s,
            "POST",
            "/pets",
            r#"{"name": "Tom", "owner": {"email": "a@b.example", "ssn": "x"}}"#,
        ),
        "/body/owner/ssn",
        Reason::AdditionalField,
    );
    assert_violation(
        &json(&s, "POST", "/pets", r#"{"name": "Tom", "species": "cow"}"#),
        "/body/species",
        Reason::Enum,
    );

    let open = spec(ExtraFields::Allow);
    assert_valid(&json(
        &open,
        "POST",
        "/pets",
        r#"{"name": "Tom", "admin": true, "owner": {"ssn": "x"}}"#,
    ));
}

#[test]
fn any_of_variants_each_declare_their_fields() {
    let s = spec(ExtraFields::Reject);
    assert_valid(&json(&s, "POST", "/shapes", r#"{"radius": 2}"#));
    assert_valid(&json(&s, "POST", "/shapes", r#"{"side": 2}"#));
    assert_valid(&json(&s, "POST", "/shapes", r#"{"side": 2, "radius": 1}"#));
    assert_violation(
        &json(&s, "POST", "/shapes", r#"{"side": 2, "color": "red"}"#),
        "/body/color",
        Reason::AdditionalField,
    );
    assert_violation(
        &json(&s, "POST", "/shapes", r#"{"color": "red"}"#),
        "/body",
        Reason::NoMatch,
    );
}

#[test]
fn wildcard_media_types_parse_by_the_request_type() {
    let text = r#"
openapi: 3.0.3
info: { title: wildcard, version: '1' }
paths:
  /w:
    post:
      requestBody:
        required: true
        content:
          '*/*':
            schema: { type: object, required: [a], properties: { a: { type: integer } } }
      responses: { '200': { description: ok } }
"#;
    let s = CompiledSpec::from_text("w.yaml", text, None, &CompileOptions::default()).unwrap();
    let post = |ct: &str, body: &str| run(&s, "POST", "/w", &[], Some(ct), Some(body.as_bytes()));
    assert_valid(&post("application/json", r#"{"a": 1}"#));
    assert_violation(
        &post("application/json", r#"{"a": "x"}"#),
        "/body/a",
        Reason::Type {
            expected: "integer".into(),
        },
    );
    assert_violation(
        &post("application/json", r#"{"a": 1, "b": 2}"#),
        "/body/b",
        Reason::AdditionalField,
    );
    assert_valid(&post("application/x-www-form-urlencoded", "a=5"));
    assert_violation(
        &post("application/x-www-form-urlencoded", "a=x"),
        "/body/a",
        Reason::Type {
            expected: "integer".into(),
        },
    );
    // Types the validator cannot read pass on type and size alone.
    assert_valid(&post("application/octet-stream", "\u{1}\u{2}"));
}
