//! The 3.1 sample spec (`testdata/items-3.1.yaml`): operations, parameters, bodies, allowlist.

mod common;

use common::*;
use http::{Method, StatusCode};
use rampart_validate::{BasePath, CompileOptions, ExtraFields, Outcome, Reason};
use serde_json::json;

const ID: &str = "3f2b8c1e-4d5a-4b6c-8e9f-0a1b2c3d4e5f";

#[test]
fn valid_requests_pass_with_their_operation_id() {
    let spec = load("items-3.1.yaml");
    let o = get(
        &spec,
        "/items?limit=10&offset=0&status=draft&status=active&q=blue%20widget&sort=-price",
    );
    assert_eq!(
        o,
        Outcome::Valid {
            operation_id: "listItems".into(),
            path_template: "/items".into()
        }
    );
    assert_valid(&json(&spec, "POST", "/items", ITEM));
    assert_valid(&json(&spec, "PUT", &format!("/items/{ID}"), ITEM));
    assert_valid(&run(
        &spec,
        "PATCH",
        &format!("/items/{ID}"),
        &[],
        Some("application/merge-patch+json"),
        Some(br#"{"price": 3}"#),
    ));
    assert_valid(&run(
        &spec,
        "DELETE",
        &format!("/items/{ID}"),
        &[],
        None,
        None,
    ));
    assert_valid(&get(&spec, &format!("/items/{ID}/reviews/7?verbose=true")));
}

#[test]
fn unknown_path_is_404_and_unknown_method_is_405_with_allow() {
    let spec = load("items-3.1.yaml");
    let o = get(&spec, "/nope");
    assert_eq!(o, Outcome::UnknownPath);
    assert_eq!(o.status(), Some(StatusCode::NOT_FOUND));
    // Exact matching: no trailing slash, no extra segment, no dot segments.
    assert_eq!(get(&spec, "/items/"), Outcome::UnknownPath);
    assert_eq!(
        get(&spec, &format!("/items/{ID}/extra")),
        Outcome::UnknownPath
    );
    assert_eq!(get(&spec, "/items/%2e%2e"), Outcome::UnknownPath);
    let o = run(&spec, "DELETE", "/items", &[], None, None);
    let Outcome::MethodNotAllowed { allow } = &o else {
        panic!("{o:?}")
    };
    assert_eq!(allow, &[Method::GET, Method::HEAD, Method::POST]);
    assert_eq!(o.status(), Some(StatusCode::METHOD_NOT_ALLOWED));
    assert_eq!(o.allow_header().unwrap(), "GET, HEAD, POST");
    // HEAD is served by the GET operation.
    assert_valid(&run(
        &spec,
        "HEAD",
        "/items",
        &[("X-Api-Version", "2")],
        None,
        None,
    ));
}

#[test]
fn path_parameters_are_typed() {
    let spec = load("items-3.1.yaml");
    assert_violation(
        &get(&spec, "/items/not-a-uuid"),
        "/path/id",
        Reason::Format("uuid".into()),
    );
    let o = get(&spec, &format!("/items/{ID}/reviews/abc"));
    assert_violation(
        &o,
        "/path/reviewId",
        Reason::Type {
            expected: "integer".into(),
        },
    );
    assert_violation(
        &get(&spec, &format!("/items/{ID}/reviews/0")),
        "/path/reviewId",
        Reason::Minimum("1".into()),
    );
    assert_violation(
        &get(&spec, &format!("/items/{ID}/reviews/1.5")),
        "/path/reviewId",
        Reason::Type {
            expected: "integer".into(),
        },
    );
    assert_violation(
        &get(&spec, &format!("/items/{ID}/reviews/1?verbose=yes")),
        "/query/verbose",
        Reason::Type {
            expected: "boolean".into(),
        },
    );
}

#[test]
fn query_parameters_are_typed_bounded_and_allowlisted() {
    let spec = load("items-3.1.yaml");
    assert_violation(
        &get(&spec, "/items?limit=abc"),
        "/query/limit",
        Reason::Type {
            expected: "integer".into(),
        },
    );
    assert_violation(
        &get(&spec, "/items?limit=500"),
        "/query/limit",
        Reason::Maximum("100".into()),
    );
    assert_violation(
        &get(&spec, "/items?limit=0"),
        "/query/limit",
        Reason::Minimum("1".into()),
    );
    assert_violation(
        &get(&spec, "/items?limit=1&limit=2"),
        "/query/limit",
        Reason::Duplicate,
    );
    assert_violation(
        &get(&spec, "/items?status=bogus"),
        "/query/status/0",
        Reason::Enum,
    );
    assert_violation(
        &get(
            &spec,
            "/items?status=draft&status=active&status=archived&status=draft",
        ),
        "/query/status",
        Reason::MaxItems(3),
    );
    assert_violation(&get(&spec, "/items?q="), "/query/q", Reason::MinLength(1));
    assert_violation(
        &get(&spec, &format!("/items?q={}", "a".repeat(65))),
        "/query/q",
        Reason::MaxLength(64),
    );
    assert_violation(&get(&spec, "/items?sort=evil"), "/query/sort", Reason::Enum);
    assert_violation(
        &get(&spec, "/items?debug=1"),
        "/query/debug",
        Reason::UnknownParameter,
    );
    assert_violation(&get(&spec, "/items?q=%ff"), "/query", Reason::Encoding);
}

#[test]
fn required_header_is_checked() {
    let spec = load("items-3.1.yaml");
    let o = run(&spec, "GET", "/items", &[], None, None);
    assert_violation(&o, "/header/X-Api-Version", Reason::Required);
    let o = run(
        &spec,
        "GET",
        "/items",
        &[("x-api-version", "3")],
        None,
        None,
    );
    assert_violation(&o, "/header/X-Api-Version", Reason::Enum);
}

#[test]
fn json_body_fields_are_checked() {
    let spec = load("items-3.1.yaml");
    let post = |f: fn(&mut serde_json::Value)| json(&spec, "POST", "/items", &item_with(f));
    assert_violation(
        &post(|v| {
            v.as_object_mut().unwrap().remove("name");
        }),
        "/body/name",
        Reason::Required,
    );
    assert_violation(
        &post(|v| v["name"] = json!(42)),
        "/body/name",
        Reason::Type {
            expected: "string".into(),
        },
    );
    assert_violation(
        &post(|v| v["name"] = json!("")),
        "/body/name",
        Reason::MinLength(1),
    );
    assert_violation(
        &post(|v| v["name"] = json!("x".repeat(65))),
        "/body/name",
        Reason::MaxLength(64),
    );
    assert_violation(
        &post(|v| v["name"] = json!("semi;colon")),
        "/body/name",
        Reason::Pattern,
    );
    assert_violation(
        &post(|v| v["sku"] = json!("abc-1234")),
        "/body/sku",
        Reason::Pattern,
    );
    assert_violation(
        &post(|v| v["price"] = json!(0)),
        "/body/price",
        Reason::ExclusiveMinimum("0".into()),
    );
    assert_violation(
        &post(|v| v["quantity"] = json!(10001)),
        "/body/quantity",
        Reason::Maximum("10000".into()),
    );
    assert_violation(
        &post(|v| v["quantity"] = json!(1.5)),
        "/body/quantity",
        Reason::Type {
            expected: "integer".into(),
        },
    );
    assert_violation(
        &post(|v| v["status"] = json!("deleted")),
        "/body/status",
        Reason::Enum,
    );
    assert_violation(
        &post(|v| v["tags"] = json!(["a", "a"])),
        "/body/tags",
        Reason::UniqueItems,
    );
    assert_violation(
        &post(|v| v["tags"] = json!(vec!["t"; 11])),
        "/body/tags",
        Reason::MaxItems(10),
    );
    assert_violation(
        &post(|v| v["owner_email"] = json!("not-an-email")),
        "/body/owner_email",
        Reason::Format("email".into()),
    );
    assert_violation(
        &post(|v| v["website"] = json!("not a uri")),
        "/body/website",
        Reason::Format("uri".into()),
    );
    assert_violation(
        &post(|v| v["available_from"] = json!("yesterday")),
        "/body/available_from",
        Reason::Format("date-time".into()),
    );
    assert_violation(
        &post(|v| v["variants"][0]["color"] = json!("pink")),
        "/body/variants/0/color",
        Reason::Enum,
    );
    assert_violation(
        &post(|v| v["dimensions"]["width"] = json!(-1)),
        "/body/dimensions/width",
        Reason::Minimum("0".into()),
    );
    assert_violation(
        &post(|v| v["metadata"]["k"] = json!(1)),
        "/body/metadata/k",
        Reason::Type {
            expected: "string".into(),
        },
    );
    assert_violation(
        &post(|v| v["notes"] = json!(5)),
        "/body/notes",
        Reason::Type {
            expected: "null or string".into(),
        },
    );
}

#[test]
fn undeclared_fields_are_refused_at_every_level() {
    let spec = load("items-3.1.yaml");
    let post = |f: fn(&mut serde_json::Value)| json(&spec, "POST", "/items", &item_with(f));
    let o = post(|v| v["is_admin"] = json!(true));
    assert_eq!(
        violations(&o),
        vec![("/body/is_admin".to_owned(), Reason::AdditionalField)]
    );
    // Through a $ref into another file.
    assert_violation(
        &post(|v| v["dimensions"]["weight"] = json!(1)),
        "/body/dimensions/weight",
        Reason::AdditionalField,
    );
    assert_violation(
        &post(|v| v["variants"][0]["price"] = json!(1)),
        "/body/variants/0/price",
        Reason::AdditionalField,
    );
    // A map declared with additionalProperties stays open.
    assert_valid(&post(|v| v["metadata"]["anything"] = json!("goes")));
    // One bad field does not make its valid siblings "additional".
    let o = post(|v| v["price"] = json!("free"));
    assert_eq!(
        violations(&o),
        vec![(
            "/body/price".to_owned(),
            Reason::Type {
                expected: "number".into()
            }
        )]
    );
}

#[test]
fn one_of_respects_the_allowlist() {
    let spec = load("items-3.1.yaml");
    let url = format!("/items/{ID}/access");
    assert_valid(&json(
        &spec,
        "POST",
        &url,
        r#"{"network": {"ipv4": "10.1.2.3"}}"#,
    ));
    assert_valid(&json(
        &spec,
        "POST",
        &url,
        r#"{"network": {"ipv6": "2001:db8::1"}, "expires": "2027-01-01T00:00:00Z"}"#,
    ));
    assert_violation(
        &json(&spec, "POST", &url, r#"{"network": {"ipv4": "999.1.2.3"}}"#),
        "/body/network",
        Reason::NoMatch,
    );
    assert_violation(
        &json(
            &spec,
            "POST",
            &url,
            r#"{"network": {"ipv4": "10.1.2.3", "mask": "8"}}"#,
        ),
        "/body/network",
        Reason::NoMatch,
    );
}

#[test]
fn content_type_must_be_declared() {
    let spec = load("items-3.1.yaml");
    let o = run(
        &spec,
        "POST",
        "/items",
        &[],
        Some("text/plain"),
        Some(ITEM.as_bytes()),
    );
    assert_eq!(
        o,
        Outcome::UnsupportedMediaType {
            operation_id: "createItem".into()
        }
    );
    assert_eq!(o.status(), Some(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    let o = run(&spec, "POST", "/items", &[], None, Some(ITEM.as_bytes()));
    assert!(matches!(o, Outcome::UnsupportedMediaType { .. }));
    let o = run(
        &spec,
        "POST",
        "/items",
        &[],
        Some("application/json; charset=latin1"),
        Some(ITEM.as_bytes()),
    );
    assert!(matches!(o, Outcome::UnsupportedMediaType { .. }));
    assert_valid(&run(
        &spec,
        "POST",
        "/items",
        &[],
        Some("Application/JSON; charset=UTF-8"),
        Some(ITEM.as_bytes()),
    ));
}

#[test]
fn body_presence_size_depth_and_syntax() {
    let spec = load("items-3.1.yaml");
    assert_violation(
        &run(&spec, "POST", "/items", &[], Some("application/json"), None),
        "/body",
        Reason::Required,
    );
    assert_violation(
        &run(
            &spec,
            "POST",
            "/items",
            &[],
            Some("application/json"),
            Some(b""),
        ),
        "/body",
        Reason::Required,
    );
    let o = run(
        &spec,
        "DELETE",
        &format!("/items/{ID}"),
        &[],
        Some("application/json"),
        Some(b"{}"),
    );
    assert_violation(&o, "/body", Reason::BodyNotAllowed);
    assert_violation(
        &json(&spec, "POST", "/items", "{\"name\": "),
        "/body",
        Reason::MalformedJson,
    );
    assert_violation(
        &json(&spec, "POST", "/items", r#"{"name": "a", "name": "b"}"#),
        "/body",
        Reason::DuplicateKey,
    );
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    assert_violation(
        &json(&spec, "POST", "/items", &deep),
        "/body",
        Reason::MaxDepth(32),
    );
    let deeper = "[".repeat(100_000);
    assert_violation(
        &json(&spec, "POST", "/items", &deeper),
        "/body",
        Reason::MaxDepth(32),
    );

    let small = load_with(
        "items-3.1.yaml",
        &CompileOptions::default()
            .with_max_body_bytes(64)
            .with_max_depth(2),
    );
    let o = json(&small, "POST", "/items", ITEM);
    assert_eq!(o, Outcome::BodyTooLarge { limit: 64 });
    assert_eq!(o.status(), Some(StatusCode::PAYLOAD_TOO_LARGE));
    assert_violation(
        &json(
            &small,
            "PATCH",
            &format!("/items/{ID}"),
            r#"{"tags":[[1]]}"#,
        ),
        "/body",
        Reason::MaxDepth(2),
    );
}

#[test]
fn form_bodies_are_converted_and_checked() {
    let spec = load("items-3.1.yaml");
    let form = |body: &str| {
        run(
            &spec,
            "POST",
            "/feedback",
            &[],
            Some("application/x-www-form-urlencoded"),
            Some(body.as_bytes()),
        )
    };
    assert_valid(&form(
        "name=Ann+Lee&email=ann%40example.com&rating=5&subscribe=yes&topics=price&topics=quality",
    ));
    assert_valid(&form("email=ann@example.com&rating=1&topics=delivery"));
    assert_violation(
        &form("email=ann@example.com&rating=abc"),
        "/body/rating",
        Reason::Type {
            expected: "integer".into(),
        },
    );
    assert_violation(
        &form("email=ann@example.com&rating=9"),
        "/body/rating",
        Reason::Maximum("5".into()),
    );
    assert_violation(
        &form("email=nope&rating=2"),
        "/body/email",
        Reason::Format("email".into()),
    );
    assert_violation(&form("rating=2"), "/body/email", Reason::Required);
    assert_violation(
        &form("email=ann@example.com&rating=2&role=admin"),
        "/body/role",
        Reason::AdditionalField,
    );
    assert_violation(
        &form("email=ann@example.com&rating=2&rating=5"),
        "/body/rating",
        Reason::Duplicate,
    );
    assert_violation(
        &form("email=ann@example.com&rating=2&topics=spam"),
        "/body/topics/0",
        Reason::Enum,
    );
    let o = run(
        &spec,
        "POST",
        "/feedback",
        &[],
        Some("application/json"),
        Some(br#"{"email":"a@b.c","rating":1}"#),
    );
    assert!(matches!(o, Outcome::UnsupportedMediaType { .. }));
}

#[test]
fn extra_fields_allow_opens_query_but_not_what_the_spec_closes() {
    let spec = load_with(
        "items-3.1.yaml",
        &CompileOptions::default().with_extra_fields(ExtraFields::Allow),
    );
    assert_valid(&get(&spec, "/items?debug=1"));
    // The sample spec says additionalProperties: false itself: that still holds.
    assert_violation(
        &json(
            &spec,
            "POST",
            "/items",
            &item_with(|v| v["is_admin"] = json!(true)),
        ),
        "/body/is_admin",
        Reason::AdditionalField,
    );
    // Declared fields are still checked.
    assert_violation(
        &json(
            &spec,
            "POST",
            "/items",
            &item_with(|v| v["price"] = json!(-1)),
        ),
        "/body/price",
        Reason::ExclusiveMinimum("0".into()),
    );
    // Where the spec is silent, allow means allow (3.0 sample: no additionalProperties).
    let open = load_with(
        "items-3.0.yaml",
        &CompileOptions::default().with_extra_fields(ExtraFields::Allow),
    );
    assert_valid(&json(
        &open,
        "POST",
        "/items",
        r#"{"name": "a", "price": 5, "role": "x"}"#,
    ));
}

#[test]
fn base_path_from_servers_or_fixed() {
    let spec = load_with(
        "items-3.1.yaml",
        &CompileOptions::default().with_base_path(BasePath::Servers),
    );
    assert_valid(&get(&spec, "/api/items"));
    assert_eq!(get(&spec, "/items"), Outcome::UnknownPath);
    assert_eq!(get(&spec, "/apiitems"), Outcome::UnknownPath);
    let spec = load_with(
        "items-3.1.yaml",
        &CompileOptions::default().with_base_path(BasePath::Fixed("/gw/".into())),
    );
    assert_valid(&get(&spec, "/gw/items"));
    assert_eq!(get(&spec, "/api/items"), Outcome::UnknownPath);
}

#[test]
fn violation_caps_bound_the_report() {
    let spec = load_with(
        "items-3.1.yaml",
        &CompileOptions::default().with_max_violations(2),
    );
    let o = get(&spec, "/items?a=1&b=2&c=3&d=4");
    assert_eq!(violations(&o).len(), 2);
}

#[test]
fn compiled_spec_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<rampart_validate::CompiledSpec>();
}

#[test]
fn large_bodies_report_their_first_violation() {
    let spec = load_with(
        "items-3.1.yaml",
        &CompileOptions::default().with_max_body_bytes(1 << 20),
    );
    let tags: Vec<String> = (0..10_000)
        .map(|i| format!("{i:x}{}", "x".repeat(40)))
        .collect();
    let o = json(
        &spec,
        "POST",
        "/items",
        &item_with(|v| v["tags"] = json!(tags)),
    );
    assert_eq!(violations(&o).len(), 1, "{o:?}");
    let o = json(
        &spec,
        "POST",
        "/items",
        &item_with(|v| v["tags"] = json!(["a".repeat(40), "b".repeat(40)])),
    );
    assert_eq!(violations(&o).len(), 2, "{o:?}");
}
