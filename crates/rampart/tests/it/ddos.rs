//! L7 DDoS defenses under real attacks: slow bodies and request deadlines (408), load
//! shedding (503 + Retry-After), HTTP/2 rapid reset (connection closed, client banned), and
//! attack tools — slowhttptest (slowloris, slow body) and a wrk flood — while a normal client
//! from another address keeps being served; rate limits across a Redis restart. Attackers and
//! normal clients use distinct 127.0.0.x source addresses; every run is bounded in time.

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn config(up: &Upstream, extra: &str) -> String {
    format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
{extra}
[[route]]
name = "app"
upstream = "{}"
"#,
        up.url()
    )
}

/// One `GET path` from `source` on a new connection: the status, or None when the
/// connection is refused, closed without an answer, or too slow (5 s).
async fn status_from(source: IpAddr, addr: SocketAddr, path: &str) -> Option<u16> {
    let attempt = async {
        let mut s = connect_from(source, addr).await.ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
}

/// A client from `source` asking every 100 ms until `stop`; (answered 200, asked).
fn normal_client(
    source: IpAddr,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, usize)> {
    tokio::spawn(async move {
        let (mut ok, mut asked) = (0, 0);
        while !stop.load(Ordering::Acquire) {
            asked += 1;
            if status_from(source, addr, "/").await == Some(200) {
                ok += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (ok, asked)
    })
}

#[tokio::test]
async fn slow_bodies_and_late_requests_are_cut_with_408() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        &up,
        "[limits]\nbody_timeout = \"1s\"\nmin_body_rate = 1000\nrequest_timeout = \"4s\"",
    ))
    .await;
    let addr = gw.addr("public");

    // Ten bytes of a 100 kB body, then nothing: cut once the grace is used up.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut answer))
        .await
        .expect("the gateway closes the connection")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("urn:rampart:problem:request-timeout"),
        "{answer}"
    );
    gw.event("limits.slow_body", |e| {
        e["event"] == "limits.slow_body" && e["status"] == 408
    })
    .await;

    // Fast enough for the rate (2 kB a second), but never finished: the request deadline.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let reader = async {
        let mut buf = [0u8; 4096];
        loop {
            tokio::select! {
                n = s.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                },
                _ = tokio::time::sleep(Duration::from_millis(250)) => {
                    if s.write_all(&[b'x'; 512]).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::time::timeout(PATIENCE, reader)
        .await
        .expect("the request deadline ends the upload");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // The upstream never got a whole request from either.
    assert!(up.seen.lock().unwrap().iter().all(|s| s.body_len < 100_000));
}

#[tokio::test]
async fn requests_beyond_the_in_flight_cap_are_shed_at_once_with_503() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up, "[limits]\nmax_requests_in_flight = 2")).await;
    let held: Vec<_> = (0..2)
        .map(|_| {
            let url = gw.url("/slow?ms=60000");
            tokio::spawn(async move { get(&url).await })
        })
        .collect();
    eventually("two requests held at the upstream", || {
        (up.count() == 2).then_some(())
    })
    .await;
    let r = get(&gw.url("/now")).await;
    assert_eq!(r.status, 503, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["type"], "urn:rampart:problem:overloaded");
    assert_eq!(up.count(), 2, "a shed request never reaches the upstream");
    gw.event("load.shed", |e| e["event"] == "load.shed").await;
    // Clients that give up free their places.
    for h in held {
        h.abort();
    }
    let mut served = false;
    for _ in 0..300 {
        if get(&gw.url("/now")).await.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "places freed by cancelled requests are reused");
}

#[tokio::test]
async fn http2_rapid_reset_closes_the_connection_and_bans_the_client() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        &up,
        "[limits]\nh2_max_resets = 10\n[bans]\nthreshold = 10\nduration = \"1h\"",
    ))
    .await;
    let addr = gw.addr("public");
    let attacker: IpAddr = "127.0.0.31".parse().unwrap();
    let tcp = connect_from(attacker, addr).await.unwrap();
    let (mut h2, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(conn);
    let mut reset = 0;
    for i in 0..50 {
        let Ok(ready) = h2.clone().ready().await else {
            break;
        };
        h2 = ready;
        let req = http::Request::get(format!("http://x/slow?ms=60000&i={i}"))
            .body(())
            .unwrap();
        let Ok((resp, _send)) = h2.send_request(req, true) else {
            break;
        };
        // Wait until the gateway is working on it (the upstream has it), then cancel.
        let seen = i + 1;
        let arrived = tokio::time::timeout(PATIENCE, async {
            while up.count() < seen && !driver.is_finished() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        if arrived.is_err() || driver.is_finished() {
            break;
        }
        drop(resp);
        reset += 1;
    }
    let ended = tokio::time::timeout(PATIENCE, driver).await;
    assert!(
        ended.is_ok(),
        "the gateway should have closed the connection"
    );
    assert!(
        (11..50).contains(&reset),
        "closed after the 11th reset, not at {reset}"
    );
    gw.event("conn.abuse", |e| {
        e["event"] == "conn.abuse" && e["client_ip"] == "127.0.0.31"
    })
    .await;
    gw.event("ban.add", |e| {
        e["event"] == "ban.add" && e["client_ip"] == "127.0.0.31"
    })
    .await;
    assert_eq!(
        status_from(attacker, addr, "/").await,
        None,
        "banned at accept"
    );
    assert_eq!(
        status_from("127.0.0.32".parse().unwrap(), addr, "/").await,
        Some(200),
        "other clients are served"
    );
}

/// Runs `slowhttptest` with `args` against `url` (bounded by its own `-l`).
fn slowhttptest(url: &str, args: &[&str]) -> std::process::Output {
    Command::new("slowhttptest")
        .args(args)
        .args(["-u", url])
        .stdin(Stdio::null())
        .output()
        .expect("slowhttptest runs (scripts/services.sh installs it)")
}

async fn survives_slowhttptest(mode: &'static str, client: &'static str) {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        &up,
        "[limits]\nheader_read_timeout = \"2s\"\nbody_timeout = \"2s\"\nmin_body_rate = 1000\nmax_connections_per_ip = 200",
    ))
    .await;
    let addr = gw.addr("public");
    let stop = Arc::new(AtomicBool::new(false));
    let normal = normal_client(client.parse().unwrap(), addr, Arc::clone(&stop));
    let url = gw.url("/");
    let attack = tokio::task::spawn_blocking(move || {
        // 400 connections at 100/s, each sending a little every 1 s, for 12 s.
        slowhttptest(
            &url,
            &[
                mode, "-c", "400", "-r", "100", "-i", "1", "-l", "12", "-s", "65536", "-x", "8",
                "-p", "3",
            ],
        )
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Release);
    let (ok, asked) = normal.await.unwrap();
    let report = String::from_utf8_lossy(&attack.stdout);
    assert!(
        report.contains("closed"),
        "slowhttptest did not run:\n{report}{}",
        String::from_utf8_lossy(&attack.stderr)
    );
    assert!(asked >= 20, "the normal client asked only {asked} times");
    assert!(
        ok * 100 >= asked * 95,
        "the normal client got {ok} of {asked} answers during {mode}:\n{report}"
    );
}

#[tokio::test]
async fn slowloris_from_slowhttptest_leaves_other_clients_served() {
    survives_slowhttptest("-H", "127.0.0.41").await;
}

#[tokio::test]
async fn slow_body_from_slowhttptest_is_cut_and_other_clients_are_served() {
    survives_slowhttptest("-B", "127.0.0.42").await;
}

#[tokio::test]
async fn a_wrk_flood_gets_its_address_banned_while_others_are_served() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[rate_limit]]
name = "per-ip"
key = "ip"
rate = "50/s"
burst = 50
[bans]
threshold = 20
duration = "1h"
[[route]]
name = "app"
upstream = "{}"
rate_limit = ["per-ip"]
"#,
        up.url()
    ))
    .await;
    let addr = gw.addr("public");
    let stop = Arc::new(AtomicBool::new(false));
    let normal = normal_client("127.0.0.51".parse().unwrap(), addr, Arc::clone(&stop));
    // wrk connects from 127.0.0.1.
    let url = gw.url("/");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("wrk")
            .args(["-t", "2", "-c", "32", "-d", "5s", "--timeout", "2s"])
            .arg(&url)
            .output()
            .expect("wrk runs (scripts/services.sh installs it)")
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Release);
    let (ok, asked) = normal.await.unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("requests in"), "wrk did not run:\n{report}");
    gw.event("the flooding address banned", |e| {
        e["event"] == "ban.add" && e["client_ip"] == "127.0.0.1"
    })
    .await;
    gw.event("the flooding address refused at accept", |e| {
        e["event"] == "ban.refuse" && e["client_ip"] == "127.0.0.1"
    })
    .await;
    // The upstream saw about the burst, not the flood.
    let seen_from_flood = up.count();
    assert!(
        seen_from_flood < 1000,
        "the upstream saw {seen_from_flood} requests"
    );
    assert!(asked >= 20, "the normal client asked only {asked} times");
    assert!(
        ok * 100 >= asked * 95,
        "the normal client got {ok} of {asked} answers during the flood"
    );
}

/// A private redis-server on `port`, killed on drop.
struct Redis(Child);

impl Redis {
    fn start(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/services.sh installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis(child)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn limits_follow_fail_open_while_redis_is_down_and_apply_again_after_a_restart() {
    let port = dead_addr().port();
    let redis = Redis::start(port);
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[shared]
url = "redis://127.0.0.1:{port}"
[[rate_limit]]
name = "closed"
key = "route"
rate = "1/h"
burst = 3
fail_open = false
[[rate_limit]]
name = "open"
key = "route"
rate = "1/h"
burst = 3
[[route]]
name = "strict"
match = {{ path_prefix = "/strict" }}
upstream = "{u}"
rate_limit = ["closed"]
[[route]]
name = "lenient"
upstream = "{u}"
rate_limit = ["open"]
"#,
        u = up.url()
    ))
    .await;
    let statuses = |path: &'static str, n: usize| {
        let url = gw.url(path);
        async move {
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(get(&url).await.status.as_u16());
            }
            v
        }
    };
    // Within the burst: a refused key would be answered from the local cache until its
    // Retry-After, without asking Redis at all.
    assert_eq!(statuses("/strict", 2).await, [200, 200]);
    assert_eq!(statuses("/", 2).await, [200, 200]);

    drop(redis);
    let mut down = false;
    for _ in 0..300 {
        if get(&gw.url("/strict")).await.status == 503 {
            down = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(down, "a fail-closed policy answers 503 while Redis is down");
    assert_eq!(
        get(&gw.url("/")).await.status,
        200,
        "a fail-open policy lets requests through while Redis is down"
    );
    gw.event("ratelimit.unavailable", |e| {
        e["event"] == "ratelimit.unavailable"
    })
    .await;

    // A fresh Redis on the same port: limits apply again, without a restart.
    let _redis = Redis::start(port);
    let mut back = Vec::new();
    for _ in 0..300 {
        let s = get(&gw.url("/strict")).await.status.as_u16();
        if s != 503 {
            back.push(s);
            if s == 429 {
                break;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(
        back.last(),
        Some(&429),
        "the limit applies again once Redis is back: {back:?}"
    );
    assert!(back.len() <= 4, "{back:?}");
}

#[tokio::test]
async fn grpc_streams_are_not_cut_by_the_body_pace() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        &up,
        "[limits]\nbody_timeout = \"1s\"\nmin_body_rate = 1000\nrequest_timeout = \"2s\"",
    ))
    .await;
    let tcp = TcpStream::connect(gw.addr("public")).await.unwrap();
    let (h2, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let request = |content_type: &'static str| {
        http::Request::post("http://x/svc.Echo/Stream")
            .header("content-type", content_type)
            .body(())
            .unwrap()
    };
    // A quiet stream past both the grace time and the request deadline, then its last message.
    let mut h2 = h2.ready().await.unwrap();
    let (resp, mut body) = h2.send_request(request("application/grpc"), false).unwrap();
    body.send_data(bytes::Bytes::from_static(b"\0\0\0\0\x01x"), false)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    body.send_data(bytes::Bytes::from_static(b"\0\0\0\0\x01y"), true)
        .unwrap();
    let resp = tokio::time::timeout(PATIENCE, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.last().body_len, 12);
    // The same pace without gRPC's content type is cut.
    let mut h2 = h2.ready().await.unwrap();
    let (resp, mut body) = h2
        .send_request(request("application/octet-stream"), false)
        .unwrap();
    body.send_data(bytes::Bytes::from_static(b"x"), false)
        .unwrap();
    let resp = tokio::time::timeout(PATIENCE, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), 408);
}

#[tokio::test]
async fn a_ban_also_ends_the_connections_the_client_already_holds() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[rate_limit]]
name = "per-ip"
key = "ip"
rate = "1/h"
burst = 1
[bans]
threshold = 3
duration = "1h"
[[route]]
name = "app"
upstream = "{}"
rate_limit = ["per-ip"]
"#,
        up.url()
    ))
    .await;
    // One keep-alive connection, opened before the ban: the ban-at-accept check never sees
    // it again, the request path does.
    let c = client();
    let mut statuses = Vec::new();
    let mut banned = None;
    for _ in 0..10 {
        let r = send(
            &c,
            req("GET", &gw.url("/")).body(Default::default()).unwrap(),
        )
        .await;
        statuses.push(r.status.as_u16());
        if r.status == 403 {
            banned = Some(r);
            break;
        }
    }
    let r = banned.unwrap_or_else(|| panic!("never refused as banned: {statuses:?}"));
    assert_eq!(r.json()["type"], "urn:rampart:problem:banned");
    assert!(
        r.header("retry-after")
            .is_some_and(|v| v.parse::<u64>().unwrap() > 60)
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(statuses[0], 200);
    assert!(
        statuses[1..statuses.len() - 1].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
}
