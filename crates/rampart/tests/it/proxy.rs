//! Reverse proxy: HTTP/1.1 and h2c, streaming, forwarding headers, routing, upstream pools.

use bytes::Bytes;
use http_body_util::Full;

use crate::support::*;

fn one_route(upstream: &Upstream) -> String {
    format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[route]]
name = "app"
upstream = "{}"
"#,
        upstream.url()
    )
}

#[tokio::test]
async fn http1_and_h2c_reach_the_upstream_with_hop_by_hop_headers_removed() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_route(&up)).await;

    let r = send(
        &client(),
        req("GET", &gw.url("/hello?x=1"))
            .header("connection", "keep-alive, x-private")
            .header("x-private", "secret")
            .header("keep-alive", "timeout=5")
            .header("x-kept", "yes")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["uri"], "/hello?x=1");
    let seen = up.last();
    assert!(
        seen.headers.get("x-private").is_none(),
        "headers named in Connection are hop-by-hop"
    );
    assert!(seen.headers.get("keep-alive").is_none());
    assert_eq!(seen.headers["x-kept"], "yes");

    let r = send(
        &h2_client(),
        req("GET", &gw.url("/over-h2"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["uri"], "/over-h2");
    let seen = up.last();
    assert_eq!(
        seen.headers["host"],
        gw.addr("public").to_string(),
        "the :authority becomes the upstream Host"
    );
}

#[tokio::test]
async fn bodies_stream_both_ways_intact() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_route(&up)).await;
    let upload = vec![7u8; 3 * 1024 * 1024];
    let r = send(
        &client(),
        req("POST", &gw.url("/upload"))
            .body(Full::new(Bytes::from(upload)))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(up.last().body_len, 3 * 1024 * 1024);
    let r = get(&gw.url("/big?n=5000000")).await;
    assert_eq!(r.body.len(), 5_000_000);
}

#[tokio::test]
async fn forwarding_headers_are_replaced_unless_the_peer_is_trusted() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[listener]]
name = "behind-lb"
bind = "127.0.0.1:0"
trusted_proxies = ["127.0.0.0/8"]
[[route]]
name = "app"
upstream = "{}"
"#,
        up.url()
    ))
    .await;
    let spoof = |url: String| {
        req("GET", &url)
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-proto", "https")
            .header("x-request-id", "client-chosen-id")
            .body(Full::default())
            .unwrap()
    };
    let r = send(&client(), spoof(gw.url("/"))).await;
    let seen = up.last();
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-real-ip"], "127.0.0.1");
    assert!(
        seen.headers["forwarded"]
            .to_str()
            .unwrap()
            .starts_with("for=127.0.0.1;proto=http")
    );
    assert_ne!(
        r.header("x-request-id"),
        Some("client-chosen-id"),
        "an untrusted client cannot choose the request id"
    );
    assert_eq!(
        seen.headers["x-request-id"].to_str().unwrap(),
        r.header("x-request-id").unwrap()
    );

    let r = send(
        &client(),
        spoof(format!("http://{}/", gw.addr("behind-lb"))),
    )
    .await;
    let seen = up.last();
    assert_eq!(seen.headers["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    assert_eq!(
        seen.headers["x-real-ip"], "6.6.6.6",
        "the client is the first untrusted hop"
    );
    assert_eq!(
        r.header("x-request-id"),
        Some("client-chosen-id"),
        "a trusted proxy's request id is kept"
    );
}

#[tokio::test]
async fn routes_match_host_and_longest_prefix_and_methods() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let c = Upstream::start("c").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[route]]
name = "root"
upstream = "{a}"
[[route]]
name = "api"
match = {{ path_prefix = "/api/", methods = ["GET", "POST"] }}
upstream = "{b}"
strip_prefix = true
[[route]]
name = "api-host"
match = {{ host = "api.example.com", path_prefix = "/api/" }}
upstream = "{c}"
[[route]]
name = "ro"
match = {{ path_prefix = "/ro", methods = ["GET"] }}
upstream = "{a}"
"#,
        a = a.url(),
        b = b.url(),
        c = c.url()
    ))
    .await;
    let r = get(&gw.url("/api/items")).await;
    assert_eq!(r.header("x-upstream"), Some("b"));
    assert_eq!(
        r.json()["uri"],
        "/items",
        "strip_prefix removes the matched prefix"
    );
    let r = send(
        &client(),
        req("GET", &gw.url("/api/items"))
            .header("host", "api.example.com")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.header("x-upstream"), Some("c"));
    let r = get(&gw.url("/apixyz")).await;
    assert_eq!(r.header("x-upstream"), Some("a"));
    let r = send(
        &client(),
        req("DELETE", &gw.url("/api/items"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(
        r.header("x-upstream"),
        Some("a"),
        "a method the longer route refuses falls to the next match"
    );
    let r = send(
        &client(),
        req("DELETE", &gw.url("/ro/x"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.header("x-upstream"), Some("a"));
    let r = get(&gw.url("/public/../api/items")).await;
    assert_eq!(
        r.header("x-upstream"),
        Some("b"),
        "dot segments are resolved before routing"
    );
    assert_eq!(r.json()["uri"], "/items");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problem_json() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[route]]
name = "items"
match = {{ path_prefix = "/items", methods = ["GET", "HEAD"] }}
upstream = "{}"
"#,
        up.url()
    ))
    .await;
    let r = get(&gw.url("/nothing")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let p = r.json();
    assert_eq!(p["status"], 404);
    assert_eq!(p["request_id"], r.header("x-request-id").unwrap());
    let r = send(
        &client(),
        req("PUT", &gw.url("/items/1"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = send(
        &client(),
        req("TRACE", &gw.url("/items/1"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 405, "TRACE is never forwarded");
    let r = get(&gw.url("/nothing/%3Cscript%3Ealert(1)%3C/script%3E")).await;
    assert!(
        !String::from_utf8_lossy(&r.body).contains("script"),
        "problem bodies never echo the request"
    );
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn round_robin_and_a_dead_upstream_is_skipped() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let dead = dead_addr();
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[route]]
name = "app"
upstream = ["{}", "{}", "http://{dead}"]
passive_health = {{ max_fails = 1, fail_timeout = "1h" }}
"#,
        a.url(),
        b.url()
    ))
    .await;
    let c = client();
    for _ in 0..30 {
        let r = send(&c, req("GET", &gw.url("/")).body(Full::default()).unwrap()).await;
        assert_eq!(
            r.status, 200,
            "a bodiless request is retried on the next upstream"
        );
    }
    assert!(
        a.count() >= 10 && b.count() >= 10,
        "both live upstreams share the load: a={} b={}",
        a.count(),
        b.count()
    );
}

#[tokio::test]
async fn upstream_failures_are_502_and_504() {
    let up = Upstream::start("a").await;
    let dead = dead_addr();
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[route]]
name = "dead"
match = {{ path_prefix = "/dead" }}
upstream = "http://{dead}"
[[route]]
name = "slow"
match = {{ path_prefix = "/slow" }}
upstream = "{}"
timeout = "200ms"
"#,
        up.url()
    ))
    .await;
    let r = get(&gw.url("/dead")).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["type"], "urn:rampart:problem:upstream-unavailable");
    let r = get(&gw.url("/slow?ms=5000")).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["type"], "urn:rampart:problem:upstream-timeout");
}

#[tokio::test]
async fn traceparent_is_propagated_or_created() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_route(&up)).await;
    let theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    send(
        &client(),
        req("GET", &gw.url("/"))
            .header("traceparent", theirs)
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(up.last().headers["traceparent"], theirs);
    send(
        &client(),
        req("GET", &gw.url("/"))
            .header("traceparent", "00-000-bad")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    let made = up.last().headers["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = made.split('-').collect();
    assert_eq!(parts.len(), 4, "{made}");
    assert_eq!(
        (parts[0], parts[1].len(), parts[2].len()),
        ("00", 32, 16),
        "{made}"
    );
}

#[tokio::test]
async fn upgrades_are_joined_end_to_end() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_route(&up)).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr("public"))
        .await
        .unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(PATIENCE, s.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed during the 101: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    s.write_all(b"ping through the gateway").await.unwrap();
    let mut echoed = [0u8; 24];
    tokio::time::timeout(PATIENCE, s.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping through the gateway");
}

#[tokio::test]
async fn malformed_requests_get_400_and_never_reach_the_upstream() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_route(&up)).await;
    let no_host = raw(
        gw.addr("public"),
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(no_host.starts_with("HTTP/1.1 400"), "{no_host}");
    let connect = raw(
        gw.addr("public"),
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(connect.starts_with("HTTP/1.1 400"), "{connect}");
    // RFC 9112 §3.2: one Host, naming a host
    for host in [
        &b"Host: \r\n"[..],
        b"Host: localhost%1F\r\n",
        b"Host: a.example@b.example\r\n",
        b"Host: a.example\r\nHost: b.example\r\n",
    ] {
        let mut request = b"GET / HTTP/1.1\r\n".to_vec();
        request.extend_from_slice(host);
        request.extend_from_slice(b"Connection: close\r\n\r\n");
        let answer = raw(gw.addr("public"), &request).await;
        assert!(
            answer.starts_with("HTTP/1.1 400") && answer.contains("valid host"),
            "{}: {answer}",
            String::from_utf8_lossy(host)
        );
    }
    assert_eq!(up.count(), 0);
    let ipv6 = raw(
        gw.addr("public"),
        b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(ipv6.starts_with("HTTP/1.1 200"), "{ipv6}");
}
