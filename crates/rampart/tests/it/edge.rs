//! Edge controls: listener firewall at accept, route `allow_from`, security headers, CORS.

use std::net::{IpAddr, SocketAddr};

use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// Connects from `source`, sends a request, and returns what came back (empty when the
/// gateway closed the connection without answering).
async fn raw_from(source: IpAddr, addr: SocketAddr) -> Vec<u8> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(source, 0)).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let _ = s
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut out)).await;
    out
}

fn client_from(source: IpAddr) -> Client<HttpConnector, Full<bytes::Bytes>> {
    let mut http = HttpConnector::new();
    http.set_local_address(Some(source));
    Client::builder(TokioExecutor::new()).build(http)
}

#[tokio::test]
async fn listener_firewall_refuses_at_accept_and_detect_mode_only_logs() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
firewall = {{ allow = ["127.0.0.0/8"], deny = ["127.0.0.2"] }}
[[listener]]
name = "watch"
bind = "127.0.0.1:0"
firewall = {{ allow = ["127.0.0.1"], mode = "detect" }}
[[route]]
name = "app"
upstream = "{}"
"#,
        up.url()
    ))
    .await;
    let denied = raw_from("127.0.0.2".parse().unwrap(), gw.addr("public")).await;
    assert!(
        denied.is_empty(),
        "a denied source gets no byte: {:?}",
        String::from_utf8_lossy(&denied)
    );
    let allowed = raw_from("127.0.0.3".parse().unwrap(), gw.addr("public")).await;
    assert!(
        allowed.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&allowed)
    );
    gw.event("firewall.deny enforce", |e| {
        e["event"] == "firewall.deny" && e["mode"] == "enforce" && e["client_ip"] == "127.0.0.2"
    })
    .await;

    let r = send(
        &client_from("127.0.0.4".parse().unwrap()),
        req("GET", &format!("http://{}/", gw.addr("watch")))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "detect mode lets the connection in");
    gw.event("firewall.deny detect", |e| {
        e["event"] == "firewall.deny" && e["mode"] == "detect" && e["client_ip"] == "127.0.0.4"
    })
    .await;
    assert_eq!(up.count(), 2);
}

#[tokio::test]
async fn route_allow_from_answers_403_and_detect_mode_forwards() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[listener]]
name = "behind-lb"
bind = "127.0.0.1:0"
trusted_proxies = ["127.0.0.1"]
[[route]]
name = "admin"
match = {{ path_prefix = "/admin" }}
upstream = "{u}"
allow_from = ["10.0.0.0/8"]
[[route]]
name = "watched"
match = {{ path_prefix = "/watched" }}
upstream = "{u}"
allow_from = ["10.0.0.0/8"]
allow_from_mode = "detect"
"#,
        u = up.url()
    ))
    .await;
    let r = get(&gw.url("/admin/users")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["type"], "urn:rampart:problem:source-not-allowed");
    assert_eq!(up.count(), 0, "the upstream never sees a refused request");

    let r = send(
        &client(),
        req(
            "GET",
            &format!("http://{}/admin/users", gw.addr("behind-lb")),
        )
        .header("x-forwarded-for", "10.9.8.7")
        .body(Full::default())
        .unwrap(),
    )
    .await;
    assert_eq!(
        r.status, 200,
        "behind a trusted proxy the forwarded client address counts"
    );
    let r = send(
        &client(),
        req("GET", &gw.url("/admin/users"))
            .header("x-forwarded-for", "10.9.8.7")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(
        r.status, 403,
        "an untrusted peer cannot claim an allowed address"
    );

    let r = get(&gw.url("/watched")).await;
    assert_eq!(r.status, 200);
    gw.event("route.deny detect", |e| {
        e["event"] == "route.deny" && e["mode"] == "detect" && e["route"] == "watched"
    })
    .await;
    gw.event("route.deny enforce", |e| {
        e["event"] == "route.deny" && e["mode"] == "enforce" && e["status"] == 403
    })
    .await;
}

#[tokio::test]
async fn security_headers_are_added_and_routes_can_override() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[security_headers]
content_security_policy = "default-src 'self'"
[[route]]
name = "strict"
match = {{ path_prefix = "/strict" }}
upstream = "{u}"
security_headers = {{ frame_options = "DENY", referrer_policy = "no-referrer" }}
response_headers = {{ set = {{ "X-Served-By" = "rampart" }}, remove = ["x-upstream"] }}
[[route]]
name = "app"
upstream = "{u}"
"#,
        u = up.url()
    ))
    .await;
    let r = get(&gw.url("/plain")).await;
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        r.header("referrer-policy"),
        Some("strict-origin-when-cross-origin")
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        r.header("content-security-policy"),
        Some("default-src 'self'")
    );
    assert!(
        r.header("strict-transport-security").is_none(),
        "no HSTS on plain HTTP"
    );

    let r = get(&gw.url("/headers")).await;
    assert_eq!(
        r.header("x-frame-options"),
        Some("SAMEORIGIN"),
        "the upstream's own value is kept"
    );
    assert!(
        r.header("x-drop-me").is_none(),
        "hop-by-hop response headers are removed"
    );

    let r = get(&gw.url("/strict/headers")).await;
    assert_eq!(
        r.header("x-frame-options"),
        Some("DENY"),
        "the route overrides the upstream"
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("x-served-by"), Some("rampart"));
    assert!(r.header("x-upstream").is_none());

    let r = get(&gw.url("/strict/missing/../../nothing-here-but-root")).await;
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "gateway answers carry them too"
    );
}

#[tokio::test]
async fn cors_preflights_and_responses_follow_the_route_policy() {
    let up = Upstream::start("a").await;
    let dead = dead_addr();
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[cors]]
name = "spa"
allow_origins = ["https://app.example.com"]
allow_credentials = true
allow_methods = ["GET", "PUT", "DELETE"]
allow_headers = ["Content-Type", "X-Custom"]
max_age = "5m"
[[route]]
name = "api"
match = {{ path_prefix = "/api/" }}
upstream = "{u}"
cors = "spa"
[[route]]
name = "down"
match = {{ path_prefix = "/down/" }}
upstream = "http://{dead}"
cors = "spa"
"#,
        u = up.url()
    ))
    .await;
    let c = client();
    let preflight = |origin: &str, method: &str, headers: &str| {
        req("OPTIONS", &gw.url("/api/items"))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers)
            .body(Full::default())
            .unwrap()
    };
    let r = send(
        &c,
        preflight("https://app.example.com", "PUT", "content-type, x-custom"),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, PUT, DELETE")
    );
    assert_eq!(r.header("access-control-max-age"), Some("300"));
    assert_eq!(up.count(), 0, "preflights are answered by the gateway");

    for bad in [
        preflight("https://evil.example", "PUT", "content-type"),
        preflight("https://app.example.com", "PATCH", ""),
        preflight("https://app.example.com", "GET", "x-evil"),
    ] {
        let r = send(&c, bad).await;
        assert_eq!(r.status, 403);
        assert!(
            r.headers
                .keys()
                .all(|k| !k.as_str().starts_with("access-control-")),
            "{:?}",
            r.headers
        );
    }

    let actual = |origin: &str| {
        req("GET", &gw.url("/api/headers"))
            .header("origin", origin)
            .body(Full::default())
            .unwrap()
    };
    let r = send(&c, actual("https://app.example.com")).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com"),
        "the upstream's \"*\" is replaced"
    );
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .contains("X-Request-Id")
    );
    assert!(r.headers.get_all("vary").iter().any(|v| v == "Origin"));
    let r = send(&c, actual("https://evil.example")).await;
    assert_eq!(
        r.status, 200,
        "the request itself is served; the browser just cannot read it"
    );
    assert!(
        r.headers
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-")),
        "{:?}",
        r.headers
    );
    assert!(r.headers.get_all("vary").iter().any(|v| v == "Origin"));

    let r = send(
        &c,
        req("GET", &gw.url("/down/x"))
            .header("origin", "https://app.example.com")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 502);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com"),
        "errors are readable by allowed pages"
    );
}
