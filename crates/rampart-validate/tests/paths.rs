//! Path matching: literal segments win over templates, templates inside a segment, encoded slashes.

mod common;

use common::*;
use rampart_validate::{CompileOptions, CompiledSpec, Outcome, Reason};

const SPEC: &str = r#"
openapi: 3.1.0
info: { title: paths, version: '1' }
paths:
  /files/{id}:
    get:
      operationId: byId
      parameters: [ { name: id, in: path, required: true, schema: { type: integer } } ]
      responses: { '200': { description: ok } }
  /files/latest:
    get:
      operationId: latest
      responses: { '200': { description: ok } }
  /files/{name}.{ext}/raw:
    get:
      operationId: raw
      parameters:
        - { name: name, in: path, required: true, schema: { type: string, maxLength: 8 } }
        - { name: ext, in: path, required: true, schema: { type: string, enum: [txt, csv] } }
      responses: { '200': { description: ok } }
  /tags/{tags}:
    get:
      operationId: tags
      parameters: [ { name: tags, in: path, required: true, schema: { type: array, maxItems: 2, items: { type: integer } } } ]
      responses: { '200': { description: ok } }
  /:
    get:
      operationId: root
      responses: { '200': { description: ok } }
"#;

fn spec() -> CompiledSpec {
    CompiledSpec::from_text("paths.yaml", SPEC, None, &CompileOptions::default()).unwrap()
}

fn op(o: &Outcome) -> &str {
    match o {
        Outcome::Valid { operation_id, .. } => operation_id,
        other => panic!("expected Valid, got {other:?}"),
    }
}

#[test]
fn literal_segments_win_and_templates_match_inside_segments() {
    let s = spec();
    let go = |p: &str| run(&s, "GET", p, &[], None, None);
    assert_eq!(op(&go("/files/latest")), "latest");
    assert_eq!(op(&go("/files/42")), "byId");
    assert_eq!(op(&go("/files/report.csv/raw")), "raw");
    assert_eq!(op(&go("/")), "root");
    assert_violation(&go("/files/report.pdf/raw"), "/path/ext", Reason::Enum);
    assert_violation(
        &go("/files/verylongname.txt/raw"),
        "/path/name",
        Reason::MaxLength(8),
    );
    assert_violation(
        &go("/files/abc"),
        "/path/id",
        Reason::Type {
            expected: "integer".into(),
        },
    );
    // An encoded slash stays inside its segment.
    assert_violation(
        &go("/files/a%2Fb"),
        "/path/id",
        Reason::Type {
            expected: "integer".into(),
        },
    );
    assert_eq!(go("/files/a/b"), Outcome::UnknownPath);
    assert_eq!(go("/files/%ff"), Outcome::UnknownPath);
    assert_eq!(go("files/1"), Outcome::UnknownPath);
    assert_eq!(go("//files/1"), Outcome::UnknownPath);
}

#[test]
fn array_path_parameters() {
    let s = spec();
    let go = |p: &str| run(&s, "GET", p, &[], None, None);
    assert_eq!(op(&go("/tags/1,2")), "tags");
    assert_violation(
        &go("/tags/1,x"),
        "/path/tags/1",
        Reason::Type {
            expected: "integer".into(),
        },
    );
    assert_violation(&go("/tags/1,2,3"), "/path/tags", Reason::MaxItems(2));
}
