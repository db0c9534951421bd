//! `[[rate_limit]]` on routes and `[bans]`: 429 with the IETF headers, detect mode, shared
//! limits through Redis, bans at accept.

use std::net::{IpAddr, SocketAddr};

use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

fn limited(up: &Upstream, policy: &str, extra: &str) -> String {
    format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
{extra}
{policy}
[[route]]
name = "api"
upstream = "{}"
rate_limit = ["p"]
"#,
        up.url()
    )
}

#[tokio::test]
async fn burst_passes_exactly_then_429_with_retry_after_and_ratelimit_headers() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&limited(
        &up,
        "[[rate_limit]]\nname = \"p\"\nkey = \"ip\"\nrate = \"1/h\"\nburst = 3\n",
        "",
    ))
    .await;
    let c = client();
    for i in 0..3 {
        let r = send(&c, req("GET", &gw.url("/")).body(Full::default()).unwrap()).await;
        assert_eq!(r.status, 200, "request {i} is within the burst");
        assert_eq!(r.header("ratelimit-policy"), Some("\"p\";q=3;w=10800"));
        assert!(
            r.header("ratelimit")
                .unwrap()
                .starts_with(&format!("\"p\";r={}", 2 - i)),
            "{:?}",
            r.header("ratelimit")
        );
    }
    let r = send(&c, req("GET", &gw.url("/")).body(Full::default()).unwrap()).await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert!(r.header("ratelimit").is_some() && r.header("ratelimit-policy").is_some());
    assert_eq!(r.json()["type"], "urn:rampart:problem:rate-limited");
    assert_eq!(
        up.count(),
        3,
        "the refused request never reaches the upstream"
    );
    gw.event("ratelimit.reject", |e| {
        e["event"] == "ratelimit.reject" && e["mode"] == "enforce" && e["status"] == 429
    })
    .await;
}

#[tokio::test]
async fn detect_mode_logs_and_forwards() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&limited(&up, "[[rate_limit]]\nname = \"p\"\nkey = \"ip\"\nrate = \"1/h\"\nburst = 1\nmode = \"detect\"\n", "")).await;
    for _ in 0..3 {
        assert_eq!(get(&gw.url("/")).await.status, 200);
    }
    assert_eq!(up.count(), 3);
    gw.event("ratelimit.reject detect", |e| {
        e["event"] == "ratelimit.reject" && e["mode"] == "detect"
    })
    .await;
}

#[tokio::test]
async fn header_keys_count_each_value_apart() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&limited(
        &up,
        "[[rate_limit]]\nname = \"p\"\nkey = \"header:X-Client\"\nrate = \"1/h\"\nburst = 1\n",
        "",
    ))
    .await;
    let c = client();
    let with = |v: &str| {
        req("GET", &gw.url("/"))
            .header("x-client", v)
            .body(Full::default())
            .unwrap()
    };
    assert_eq!(send(&c, with("alpha")).await.status, 200);
    assert_eq!(send(&c, with("alpha")).await.status, 429);
    assert_eq!(send(&c, with("beta")).await.status, 200);
}

#[tokio::test]
async fn two_gateways_sharing_redis_enforce_one_limit() {
    let up = Upstream::start("a").await;
    let name = unique("shared");
    let policy =
        format!("[[rate_limit]]\nname = \"{name}\"\nkey = \"route\"\nrate = \"1/h\"\nburst = 4\n");
    let body = limited(&up, &policy, "[shared]\nurl = \"redis://127.0.0.1:6379\"").replace(
        "rate_limit = [\"p\"]",
        &format!("rate_limit = [\"{name}\"]"),
    );
    let a = Gateway::start(&body).await;
    let b = Gateway::start(&body).await;
    let mut admitted = 0;
    for i in 0..10 {
        let gw = if i % 2 == 0 { &a } else { &b };
        if get(&gw.url("/")).await.status == 200 {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 4, "one budget for both nodes");
}

async fn answered_from(source: IpAddr, addr: SocketAddr) -> Option<String> {
    let mut s = connect_from(source, addr).await.ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut out)).await;
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out[..12.min(out.len())]).into_owned())
}

#[tokio::test]
async fn repeat_offenders_are_banned_at_accept() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&limited(
        &up,
        "[[rate_limit]]\nname = \"p\"\nkey = \"ip\"\nrate = \"1/h\"\nburst = 1\n",
        "[bans]\nthreshold = 3\nduration = \"1h\"",
    ))
    .await;
    let addr = gw.addr("public");
    let attacker: IpAddr = "127.0.0.21".parse().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        match answered_from(attacker, addr).await {
            Some(s) => statuses.push(s),
            None => break,
        }
    }
    assert!(
        statuses.len() < 10,
        "the flood should have been cut off: {statuses:?}"
    );
    assert!(statuses.iter().any(|s| s.contains("429")), "{statuses:?}");
    assert_eq!(
        answered_from(attacker, addr).await,
        None,
        "a banned client gets no byte"
    );
    gw.event("ban.add", |e| {
        e["event"] == "ban.add" && e["client_ip"] == "127.0.0.21"
    })
    .await;
    gw.event("ban.refuse", |e| {
        e["event"] == "ban.refuse" && e["client_ip"] == "127.0.0.21"
    })
    .await;
    let other = answered_from("127.0.0.22".parse().unwrap(), addr).await;
    assert_eq!(
        other.as_deref(),
        Some("HTTP/1.1 200"),
        "other clients are served"
    );
}
