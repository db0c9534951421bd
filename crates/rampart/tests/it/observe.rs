//! Events, metrics, health, graceful drain and the demo.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use bytes::Bytes;
use http_body_util::Full;

use crate::support::*;

fn one_route(up: &Upstream) -> String {
    format!(
        "[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n[[route]]\nname = \"app\"\nupstream = \"{}\"\n",
        up.url()
    )
}

#[tokio::test]
async fn every_request_has_an_access_event_without_secrets() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_route(&up)).await;
    let r = send(
        &client(),
        req(
            "GET",
            &gw.url("/cb?code=SECRET1&state=ok&access_token=SECRET2"),
        )
        .header("authorization", "Bearer SECRET3")
        .header("cookie", "session=SECRET4")
        .body(Full::default())
        .unwrap(),
    )
    .await;
    let id = r.header("x-request-id").unwrap().to_owned();
    let e = gw
        .event("the access event", |e| {
            e["event"] == "http.request" && e["request_id"] == id.as_str()
        })
        .await;
    assert_eq!(e["status"], 200);
    assert_eq!(e["route"], "app");
    assert_eq!(e["method"], "GET");
    assert_eq!(e["client_ip"], "127.0.0.1");
    assert!(e["duration_ms"].is_number() && e["bytes_out"].as_u64().unwrap() > 0);
    assert_eq!(e["uri"], "/cb?code=REDACTED&state=ok&access_token=REDACTED");
    let all = std::fs::read_to_string(&gw.events).unwrap();
    for secret in ["SECRET1", "SECRET2", "SECRET3", "SECRET4"] {
        assert!(!all.contains(secret), "{secret} reached the event log");
    }
    for key in [
        "ts",
        "level",
        "event",
        "request_id",
        "client_ip",
        "route",
        "method",
        "uri",
        "status",
        "mode",
        "rule_ids",
        "anomaly_score",
        "reason",
    ] {
        assert!(e.get(key).is_some(), "field {key} missing");
    }
}

#[tokio::test]
async fn admin_listener_serves_metrics_and_health() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_route(&up)).await;
    assert_eq!(get(&gw.url("/x")).await.status, 200);
    assert_eq!(get(&gw.admin_url("/healthz")).await.status, 200);
    assert_eq!(get(&gw.admin_url("/readyz")).await.status, 200);
    let m = get(&gw.admin_url("/metrics")).await;
    let text = String::from_utf8_lossy(&m.body).into_owned();
    assert!(
        text.contains("rampart_http_requests_total{route=\"app\",status=\"200\"}"),
        "{text}"
    );
    assert!(
        text.contains("rampart_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert_eq!(get(&gw.admin_url("/nope")).await.status, 404);
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let up = Upstream::start("a").await;
    let mut gw = Gateway::start(&one_route(&up)).await;
    let url = gw.url("/slow?ms=1500");
    let in_flight = tokio::spawn(async move { get(&url).await });
    eventually("the slow request to reach the upstream", || {
        (up.count() == 1).then_some(())
    })
    .await;
    gw.signal("TERM");
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "the in-flight request finishes");
    let child = &mut gw.child;
    let status = eventually("rampart to exit", || child.try_wait().ok().flatten()).await;
    assert!(status.success(), "{status}");
    let stop = gw
        .events()
        .into_iter()
        .find(|e| e["event"] == "server.stop")
        .expect("a server.stop event");
    assert_eq!(stop["reason"], "drained");
}

#[tokio::test]
async fn demo_runs_with_one_command() {
    let mut child = Command::new(bin())
        .args(["demo", "--bind", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.trim().strip_prefix("open") {
                // "open    URL   sign in as  demo / PASSWORD"
                let words: Vec<&str> = rest.split_whitespace().collect();
                let url = words.first().copied().unwrap_or("").to_owned();
                let password = words.last().copied().unwrap_or("").to_owned();
                let _ = tx.send((url, password));
            }
        }
    });
    let (url, password) = rx
        .recv_timeout(PATIENCE)
        .expect("the demo prints what to open");
    let url = url.replace("localhost", "127.0.0.1");
    let page = get(&url).await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("Rampart demo"));
    assert!(page.header("x-request-id").is_some());
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let csp = page.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    // The API needs a token; the demo user's one-time password gets one.
    assert_eq!(get(&format!("{url}api/hello")).await.status, 401);
    let login = send(
        &client(),
        req("POST", &format!("{url}auth/login"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                serde_json::json!({ "username": "demo", "password": password }).to_string(),
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert!(
        login
            .header("set-cookie")
            .is_some_and(|c| c.contains("HttpOnly") && c.contains("SameSite=Strict"))
    );
    let token = login.json()["access_token"].as_str().unwrap().to_owned();
    let hello = send(
        &client(),
        req("GET", &format!("{url}api/hello"))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(hello.status, 200);
    assert!(hello.json()["user"].is_string());
    let script = get(&format!("{url}rampart-client.js")).await;
    assert_eq!(script.status, 200);
    assert!(String::from_utf8_lossy(&script.body).contains("export function createClient"));
    let admin = get(&format!("{}admin/", url)).await;
    assert_eq!(admin.status, 403);
    let attack = get(&format!("{}api/hello?id=1%27%20OR%20%271%27%3D%271", url)).await;
    assert_eq!(
        attack.status, 403,
        "the demo blocks a SQL injection out of the box"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[tokio::test]
async fn access_log_can_be_turned_off_but_security_events_stay() {
    let up = Upstream::start("a").await;
    let body = format!(
        "[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n[[route]]\nname = \"admin\"\nupstream = \"{}\"\nallow_from = [\"10.0.0.0/8\"]\n",
        up.url()
    );
    let gw = Gateway::start_with_events(&body, "access_log = false").await;
    assert_eq!(get(&gw.url("/")).await.status, 403);
    assert_eq!(get(&gw.url("/")).await.status, 403);
    // One writer, in order: once the second request's event is written, any access event of
    // the first would be too.
    eventually("two security events", || {
        (gw.events()
            .iter()
            .filter(|e| e["event"] == "route.deny")
            .count()
            == 2)
            .then_some(())
    })
    .await;
    assert!(
        gw.events().iter().all(|e| e["event"] != "http.request"),
        "no access events"
    );
}
