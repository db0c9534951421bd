//! Random input never panics and every violation pointer is rooted in a request part.

mod common;

use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use rampart_validate::{CompiledSpec, Outcome};

fn spec() -> &'static CompiledSpec {
    static SPEC: OnceLock<CompiledSpec> = OnceLock::new();
    SPEC.get_or_init(|| load("items-3.1.yaml"))
}

fn check(o: &Outcome) {
    for v in o.violations() {
        let rooted = ["/body", "/query", "/path/", "/header/", "/cookie/"]
            .iter()
            .any(|p| v.pointer.starts_with(p));
        assert!(rooted, "{v}");
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_owned()),
                    Just("price".to_owned()),
                    Just("variants".to_owned()),
                    Just("dimensions".to_owned()),
                    ".{0,8}".prop_map(String::from)
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_as_bodies(body in prop::collection::vec(any::<u8>(), 0..512), ct in prop_oneof![Just("application/json"), Just("application/x-www-form-urlencoded"), Just("text/plain"), Just("application/merge-patch+json")]) {
        for (m, p) in [("POST", "/items"), ("PATCH", "/items/3f2b8c1e-4d5a-4b6c-8e9f-0a1b2c3d4e5f"), ("POST", "/feedback")] {
            check(&run(spec(), m, p, &[], Some(ct), Some(&body)));
        }
    }

    #[test]
    fn random_json_bodies(v in json_value()) {
        let body = v.to_string();
        check(&json(spec(), "POST", "/items", &body));
        check(&json(spec(), "POST", "/items/3f2b8c1e-4d5a-4b6c-8e9f-0a1b2c3d4e5f/access", &body));
    }

    #[test]
    fn random_paths_and_queries(path in "(/[a-z0-9%{}.\\-]{0,12}){0,5}", query in "[a-z0-9=&%+\\[\\],.|]{0,60}") {
        let uri = format!("{path}?{query}");
        check(&get(spec(), &uri));
        check(&get(spec(), &format!("/items?{query}")));
        check(&get(spec(), &format!("/items/{}/reviews/{}", path.trim_start_matches('/'), query)));
    }

    #[test]
    fn random_headers(value in "[ -~]{0,40}", method in prop_oneof![Just("GET"), Just("POST"), Just("PATCH"), Just("HEAD"), Just("OPTIONS"), Just("BREW")]) {
        let o = run(spec(), method, "/items", &[("X-Api-Version", value.trim()), ("Cookie", value.trim())], Some(value.trim()), Some(value.as_bytes()));
        check(&o);
    }
}
