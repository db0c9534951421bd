//! A broken spec is an error naming the file and the place inside it.

use std::fs;

use rampart_validate::{CompileOptions, CompiledSpec, SpecError};

fn from(text: &str) -> Result<CompiledSpec, SpecError> {
    CompiledSpec::from_text("spec.yaml", text, None, &CompileOptions::default())
}

const HEAD: &str = "openapi: 3.1.0\ninfo: { title: t, version: '1' }\n";

#[test]
fn unresolvable_ref_names_file_and_pointer() {
    let err = from(&format!(
        "{HEAD}paths:\n  /a:\n    get:\n      parameters:\n        - {{ name: q, in: query, schema: {{ $ref: '#/components/schemas/Nope' }} }}\n      responses: {{}}\n"
    ))
    .unwrap_err();
    assert!(matches!(err, SpecError::Ref { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "spec.yaml: #/paths/~1a/get/parameters/0/schema: unresolvable $ref \"#/components/schemas/Nope\""
    );
}

#[test]
fn remote_refs_are_refused() {
    let err = from(&format!(
        "{HEAD}paths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {{ $ref: 'https://example.com/s.json' }}\n      responses: {{}}\n"
    ))
    .unwrap_err();
    assert!(matches!(err, SpecError::RemoteRef { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("#/paths/~1a/post/requestBody/content/application~1json/schema"),
        "{err}"
    );
}

#[test]
fn invalid_schema_keyword_is_located() {
    let err = from(&format!(
        "{HEAD}paths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {{ $ref: '#/components/schemas/S' }}\n      responses: {{}}\ncomponents:\n  schemas:\n    S: {{ type: object, properties: {{ n: {{ type: strnig }} }} }}\n"
    ))
    .unwrap_err();
    assert!(matches!(err, SpecError::Schema { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("spec.yaml: #/components/schemas/S/properties/n"),
        "{err}"
    );
}

#[test]
fn structural_errors() {
    let err = from("openapi: 2.0\n").unwrap_err();
    assert!(matches!(err, SpecError::Version { .. }), "{err}");
    let err = from("swagger: '2.0'\n").unwrap_err();
    assert!(matches!(err, SpecError::Version { .. }), "{err}");
    let err = from("{ not: yaml: at all").unwrap_err();
    assert!(matches!(err, SpecError::Parse { .. }), "{err}");
    let err = from(&format!(
        "{HEAD}paths:\n  /a:\n    get:\n      parameters:\n        - {{ name: q, in: body }}\n"
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.yaml: #/paths/~1a/get/parameters/0: `in` must be path, query, header or cookie"
    );
    let err = from(&format!("{HEAD}paths:\n  a: {{ get: {{}} }}\n")).unwrap_err();
    assert!(
        err.to_string()
            .contains("#/paths/a: path must start with '/'"),
        "{err}"
    );
    let err = from(&format!("{HEAD}paths:\n  /a:\n    get:\n      parameters:\n        - {{ name: q, in: path, style: matrix }}\n")).unwrap_err();
    assert!(
        err.to_string()
            .contains("#/paths/~1a/get/parameters/0/style"),
        "{err}"
    );
}

#[test]
fn missing_files_are_named() {
    let err = CompiledSpec::load(
        std::path::Path::new("/nonexistent/openapi.yaml"),
        &CompileOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, SpecError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/openapi.yaml: cannot read"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("openapi.yaml");
    fs::write(
        &main,
        format!("{HEAD}paths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {{ $ref: 'other.yaml#/S' }}\n      responses: {{}}\n"),
    )
    .unwrap();
    let err = CompiledSpec::load(&main, &CompileOptions::default()).unwrap_err();
    assert!(matches!(err, SpecError::Read { .. }), "{err}");
    assert!(err.to_string().contains("other.yaml: cannot read"), "{err}");

    // Once the file exists, a bad pointer inside it is reported against the referring file.
    fs::write(dir.path().join("other.yaml"), "T: { type: string }\n").unwrap();
    let err = CompiledSpec::load(&main, &CompileOptions::default()).unwrap_err();
    assert!(matches!(err, SpecError::Ref { .. }), "{err}");
    // A faulty schema in the other file is reported against that file.
    fs::write(
        dir.path().join("other.yaml"),
        "S: { type: string, maxLength: -3 }\n",
    )
    .unwrap();
    let err = CompiledSpec::load(&main, &CompileOptions::default()).unwrap_err();
    assert!(matches!(err, SpecError::Schema { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("other.yaml: #/S/maxLength: schema does not compile"),
        "{err}"
    );
    fs::write(
        dir.path().join("other.yaml"),
        "S: { type: string, maxLength: 3 }\n",
    )
    .unwrap();
    let spec = CompiledSpec::load(&main, &CompileOptions::default()).unwrap();
    assert_eq!(spec.operation_count(), 1);
}

#[test]
fn recursive_schemas_compile() {
    let spec = from(&format!(
        "{HEAD}paths:\n  /t:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {{ $ref: '#/components/schemas/Node' }}\n      responses: {{}}\ncomponents:\n  schemas:\n    Node:\n      type: object\n      properties:\n        v: {{ type: integer }}\n        children: {{ type: array, items: {{ $ref: '#/components/schemas/Node' }} }}\n"
    ))
    .unwrap();
    let headers = http::HeaderMap::new();
    let mut h = headers.clone();
    h.insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    let req = |body: &'static str| rampart_validate::RequestParts {
        method: &http::Method::POST,
        path: "/t",
        query: None,
        headers: &h,
        body: Some(body.as_bytes()),
    };
    assert!(
        spec.validate(&req(r#"{"v":1,"children":[{"v":2,"children":[{"v":3}]}]}"#))
            .is_valid()
    );
    let o = spec.validate(&req(
        r#"{"v":1,"children":[{"v":2,"children":[{"v":"x","w":1}]}]}"#,
    ));
    let pointers: Vec<&str> = o.violations().iter().map(|v| v.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/body/children/0/children/0/v",
            "/body/children/0/children/0/w"
        ],
        "{o:?}"
    );
}
