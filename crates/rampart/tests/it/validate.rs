//! Route `schema`: requests checked against an OpenAPI document before the upstream sees them.

use bytes::Bytes;
use http_body_util::Full;

use crate::support::*;

fn spec() -> String {
    format!(
        "{}/../rampart-validate/testdata/items-3.1.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn config(up: &Upstream, validation: &str) -> String {
    format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[route]]
name = "api"
match = {{ path_prefix = "/api/" }}
upstream = "{}"
schema = "{}"
validation = {{ {validation} }}
"#,
        up.url(),
        spec()
    )
}

fn post(url: String, body: &'static str) -> http::Request<Full<Bytes>> {
    req("POST", &url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test]
async fn valid_requests_pass_unchanged_and_invalid_ones_never_reach_the_upstream() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up, "mode = \"enforce\"")).await;
    let c = client();
    let good = r#"{"name":"Widget","sku":"ABC-1234","price":9.5,"status":"active"}"#;
    let r = send(&c, post(gw.url("/api/items"), good)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(up.last().body_len, good.len());

    let bad = r#"{"name":"<script>alert(1)</script>","sku":"nope","price":-1,"status":"active","is_admin":true}"#;
    let r = send(&c, post(gw.url("/api/items"), bad)).await;
    assert_eq!(r.status, 400);
    let p = r.json();
    assert_eq!(p["type"], "urn:rampart:problem:invalid-request");
    let pointers: Vec<&str> = p["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["pointer"].as_str().unwrap())
        .collect();
    for expected in ["/body/name", "/body/sku", "/body/price"] {
        assert!(pointers.contains(&expected), "{pointers:?}");
    }
    assert!(
        pointers.iter().any(|p| p.contains("is_admin")),
        "undeclared fields are refused: {pointers:?}"
    );
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        !text.contains("<script>") && !text.contains("nope"),
        "values are never echoed: {text}"
    );

    let r = send(
        &c,
        req("GET", &gw.url("/api/items?limit=5000"))
            .header("x-api-version", "1")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400, "query parameters are typed and bounded");
    let r = send(
        &c,
        req("GET", &gw.url("/api/items?limit=5&debug=1"))
            .header("x-api-version", "1")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400, "undeclared query parameters are refused");
    let r = send(
        &c,
        req("GET", &gw.url("/api/items?limit=5"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400, "required headers are checked");
    let r = send(
        &c,
        req("POST", &gw.url("/api/items"))
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(b"x")))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 415);
    let r = get(&gw.url("/api/unknown")).await;
    assert_eq!(r.status, 404);
    let r = send(
        &c,
        req("PATCH", &gw.url("/api/feedback"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 405);
    assert!(r.header("allow").is_some());
    assert_eq!(up.count(), 1, "only the valid request reached the upstream");
    gw.event("validation.reject", |e| {
        e["event"] == "validation.reject" && e["status"] == 400
    })
    .await;
}

#[tokio::test]
async fn detect_mode_logs_and_forwards() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up, "mode = \"detect\"")).await;
    let r = send(&client(), post(gw.url("/api/items"), r#"{"unexpected":1}"#)).await;
    assert_eq!(r.status, 200);
    assert_eq!(up.count(), 1);
    gw.event("validation.reject detect", |e| {
        e["event"] == "validation.reject" && e["mode"] == "detect"
    })
    .await;
}

#[test]
fn broken_schemas_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("openapi.yaml"), "openapi: 3.1.0\npaths:\n  /x:\n    get:\n      parameters: [{ $ref: '#/components/parameters/Missing' }]\n").unwrap();
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, "version = 1\n[[listener]]\nname = \"p\"\nbind = \"127.0.0.1:8080\"\n[[route]]\nname = \"a\"\nupstream = \"http://127.0.0.1:1\"\nschema = \"openapi.yaml\"\n").unwrap();
    let out = std::process::Command::new(bin())
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("route[0].schema") && err.contains("openapi.yaml"),
        "{err}"
    );
}
