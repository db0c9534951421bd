//! `[limits]`: head and body caps, header read and idle timeouts, connection caps.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn config(up: &Upstream, limits: &str) -> String {
    format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[limits]
{limits}
[[route]]
name = "small"
match = {{ path_prefix = "/small" }}
upstream = "{u}"
max_body_bytes = 1000
[[route]]
name = "app"
upstream = "{u}"
"#,
        u = up.url()
    )
}

#[tokio::test]
async fn oversized_heads_get_431_and_oversized_bodies_413() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        &up,
        "max_header_bytes = 4096\nmax_body_bytes = 100000",
    ))
    .await;
    let c = client();
    let r = send(
        &c,
        req("GET", &gw.url("/"))
            .header("x-big", "a".repeat(5000))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 431);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let huge = raw(
        gw.addr("public"),
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
            "b".repeat(200_000)
        )
        .as_bytes(),
    )
    .await;
    assert!(
        huge.starts_with("HTTP/1.1 431"),
        "{}",
        &huge[..huge.len().min(200)]
    );

    let r = send(
        &c,
        req("POST", &gw.url("/small"))
            .body(Full::new(Bytes::from(vec![1u8; 1001])))
            .unwrap(),
    )
    .await;
    assert_eq!(
        r.status, 413,
        "a declared length over the route cap is refused before reading"
    );
    let r = send(
        &c,
        req("POST", &gw.url("/"))
            .body(Full::new(Bytes::from(vec![1u8; 100_001])))
            .unwrap(),
    )
    .await;
    assert_eq!(
        r.status, 413,
        "the global cap applies where the route sets none"
    );
    let r = send(
        &c,
        req("POST", &gw.url("/small"))
            .body(Full::new(Bytes::from(vec![1u8; 1000])))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "exactly the cap passes");
    assert_eq!(up.count(), 1);

    let mut chunked =
        String::from("POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..10 {
        chunked.push_str(&format!("1f4\r\n{}\r\n", "c".repeat(500)));
    }
    chunked.push_str("0\r\n\r\n");
    let r = raw(gw.addr("public"), chunked.as_bytes()).await;
    assert!(
        r.starts_with("HTTP/1.1 413"),
        "a chunked body crossing the cap: {}",
        &r[..r.len().min(300)]
    );
    gw.event("limits.body event", |e| e["event"] == "limits.body")
        .await;
}

#[tokio::test]
async fn slow_heads_and_idle_connections_are_closed() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        &up,
        "header_read_timeout = \"500ms\"\nidle_timeout = \"1s\"",
    ))
    .await;

    // A client that never finishes its headers (slowloris) is cut off.
    let started = Instant::now();
    let mut s = TcpStream::connect(gw.addr("public")).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(PATIENCE, s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection should have been closed");
    assert!(started.elapsed() < PATIENCE);

    // A keep-alive connection left idle is closed after the request.
    let mut s = TcpStream::connect(gw.addr("public")).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    s.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(PATIENCE, s.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok(),
        "an idle keep-alive connection should have been closed"
    );
}

async fn open_from(source: IpAddr, addr: SocketAddr) -> TcpStream {
    connect_from(source, addr).await.unwrap()
}

/// Sends a request on `s`; true if an HTTP response came back.
async fn answered(s: &mut TcpStream) -> bool {
    if s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(
        tokio::time::timeout(PATIENCE, s.read_exact(&mut buf)).await,
        Ok(Ok(_))
    ) && &buf == b"HTTP/1.1 200"
}

#[tokio::test]
async fn connection_caps_per_client_and_in_total() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        &up,
        "max_connections = 3\nmax_connections_per_ip = 2",
    ))
    .await;
    let addr = gw.addr("public");
    let ip1: IpAddr = "127.0.0.11".parse().unwrap();
    let mut a = open_from(ip1, addr).await;
    let mut b = open_from(ip1, addr).await;
    assert!(answered(&mut a).await && answered(&mut b).await);
    let mut c = open_from(ip1, addr).await;
    assert!(
        !answered(&mut c).await,
        "a third connection from one client is closed at accept"
    );

    let mut d = open_from("127.0.0.12".parse().unwrap(), addr).await;
    assert!(answered(&mut d).await);
    let mut e = open_from("127.0.0.13".parse().unwrap(), addr).await;
    assert!(
        !answered(&mut e).await,
        "the total cap holds across clients"
    );
    gw.event("conn.limit event", |e| {
        e["event"] == "conn.limit" && e["reason"] == "max_connections"
    })
    .await;
    gw.event("conn.limit per ip event", |e| {
        e["event"] == "conn.limit" && e["reason"] == "max_connections_per_ip"
    })
    .await;

    drop(a);
    let mut ok = false;
    for _ in 0..100 {
        let mut f = open_from(ip1, addr).await;
        if answered(&mut f).await {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "closing a connection frees its place");
}

#[tokio::test]
async fn abuse_leaves_no_connection_behind() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        &up,
        "header_read_timeout = \"500ms\"\nidle_timeout = \"1s\"\nmax_header_bytes = 2048",
    ))
    .await;
    let addr = gw.addr("public");
    let mut held = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        match i % 4 {
            0 => s
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap(),
            1 => s
                .write_all(b"\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n")
                .await
                .unwrap(),
            2 => s
                .write_all(
                    format!(
                        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
                        "h".repeat(100_000)
                    )
                    .as_bytes(),
                )
                .await
                .unwrap_or(()),
            _ => s
                .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort")
                .await
                .unwrap(),
        }
        held.push(s);
    }
    drop(held);
    let open = eventually("every connection to be closed and counted out", || {
        let text = std::process::Command::new("curl")
            .arg("-s")
            .arg(gw.admin_url("/metrics"))
            .output()
            .ok()?
            .stdout;
        let text = String::from_utf8_lossy(&text).into_owned();
        let line = text
            .lines()
            .find(|l| l.starts_with("rampart_connections_open "))?
            .to_owned();
        line.ends_with(" 0").then_some(line)
    })
    .await;
    assert!(open.ends_with(" 0"));
    assert_eq!(get(&gw.url("/")).await.status, 200, "still serving");
}
