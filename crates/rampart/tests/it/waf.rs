//! `[waf]`: built-in rules and the OWASP CRS, enforce and detect, bodies, audit log, rule errors.

use std::process::Command;

use bytes::Bytes;
use http_body_util::Full;

use crate::support::*;

fn shared_crs() -> String {
    format!("{}/../../../shared/crs", env!("CARGO_MANIFEST_DIR"))
}

fn config(up: &Upstream, waf: &str) -> String {
    format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[waf]
{waf}
[[route]]
name = "api"
upstream = "{}"
"#,
        up.url()
    )
}

#[tokio::test]
async fn builtin_rules_block_injection_in_enforce_mode() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        &up,
        "mode = \"enforce\"\naudit_log = \"waf.jsonl\"",
    ))
    .await;
    let r = get(&gw.url("/items?id=1%27%20OR%20%271%27%3D%271")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["type"], "urn:rampart:problem:waf-blocked");
    let xss = send(
        &client(),
        req("POST", &gw.url("/comments"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"text":"<script>alert(document.cookie)</script>"}"#,
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(xss.status, 403, "JSON bodies are inspected");
    assert_eq!(up.count(), 0, "blocked requests never reach the upstream");

    let benign = br#"{"text":"hello, world","tags":["a","b"]}"#;
    let ok = send(
        &client(),
        req("POST", &gw.url("/comments"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(benign)))
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        up.last().body_len,
        benign.len(),
        "an inspected body is forwarded whole"
    );
    let id = r.header("x-request-id").unwrap().to_owned();
    let e = gw
        .event("waf.block", |e| {
            e["event"] == "waf.block" && e["request_id"] == id.as_str()
        })
        .await;
    assert!(
        e["rule_ids"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(110)),
        "{e}"
    );
    assert_eq!(e["mode"], "enforce");
    let audit = eventually("the audit record", || {
        read_events(&gw.dir.path().join("waf.jsonl"))
            .into_iter()
            .find(|a| a["request_id"] == id.as_str())
    })
    .await;
    assert!(audit.to_string().contains("110"), "{audit}");
}

#[tokio::test]
async fn detect_mode_logs_and_forwards() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up, "mode = \"detect\"")).await;
    let r = get(&gw.url("/items?id=1%27%20OR%20%271%27%3D%271")).await;
    assert_eq!(r.status, 200);
    assert_eq!(up.count(), 1);
    gw.event("waf.match detect", |e| {
        e["event"] == "waf.match" && e["mode"] == "detect"
    })
    .await;
}

#[tokio::test]
async fn owasp_crs_at_paranoia_level_1_blocks_attacks_and_passes_normal_traffic() {
    let up = Upstream::start("a").await;
    let crs = shared_crs();
    let gw = Gateway::start(&config(
        &up,
        &format!("mode = \"enforce\"\nparanoia_level = 1\nrules = [\"{crs}/crs-setup.conf.example\", \"{crs}/rules/*.conf\"]"),
    ))
    .await;
    let browser = |url: String| {
        req("GET", &url)
            .header("host", "api.example.com")
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36")
            .header("accept", "text/html,application/json")
            .header("accept-language", "en-US,en;q=0.9")
            .body(Full::default())
            .unwrap()
    };
    let ok = send(&client(), browser(gw.url("/api/items?id=42&sort=name"))).await;
    assert_eq!(
        ok.status,
        200,
        "normal traffic passes: {:?}",
        String::from_utf8_lossy(&ok.body)
    );
    for attack in [
        "/api/items?id=1%27%20UNION%20SELECT%20password%20FROM%20users--",
        "/api/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/api/files?name=..%2F..%2F..%2Fetc%2Fpasswd",
    ] {
        let r = send(&client(), browser(gw.url(attack))).await;
        assert_eq!(r.status, 403, "{attack}");
    }
    let e = gw
        .event("CRS blocking rule", |e| e["event"] == "waf.block")
        .await;
    assert!(e["anomaly_score"].as_i64().unwrap() >= 5, "{e}");
    assert_eq!(up.count(), 1);
}

#[test]
fn broken_rule_files_are_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("bad.conf");
    std::fs::write(&rules, "SecRule ARGS \"@rx ok\" \"id:1,phase:2,pass\"\nSecRule ARGS \"@noSuchOperator x\" \"id:2,phase:2,deny\"\n").unwrap();
    let out = Command::new(bin())
        .args(["waf", "check"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.conf:2"), "{err}");

    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        format!("version = 1\n[[listener]]\nname = \"p\"\nbind = \"127.0.0.1:8080\"\n[waf]\nrules = [\"bad.conf\"]\n[[route]]\nname = \"a\"\nupstream = \"http://127.0.0.1:1\"\n"),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("waf.rules:") && err.contains("bad.conf:2"),
        "{err}"
    );
}

#[tokio::test]
async fn response_phases_inspect_headers_and_bodies() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("response.conf");
    std::fs::write(
        &rules,
        "SecRuleEngine On\nSecResponseBodyAccess On\nSecResponseBodyMimeType text/plain application/json\n\
SecRule RESPONSE_HEADERS:x-upstream \"@streq a\" \"id:201,phase:3,pass,log,msg:'seen upstream header'\"\n\
SecRule RESPONSE_BODY \"@contains leaked-secret\" \"id:202,phase:4,deny,status:403,log,msg:'data leak'\"\n",
    )
    .unwrap();
    let gw = Gateway::start(&config(
        &up,
        &format!("mode = \"enforce\"\nrules = [\"{}\"]", rules.display()),
    ))
    .await;
    let ok = get(&gw.url("/fine")).await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.json()["uri"],
        "/fine",
        "an inspected response body arrives whole"
    );
    let big = get(&gw.url("/big?n=2000000")).await;
    assert_eq!(
        big.body.len(),
        2_000_000,
        "past what the WAF reads, the body streams on"
    );
    let leak = get(&gw.url("/echo?x=leaked-secret")).await;
    assert_eq!(
        leak.status,
        403,
        "phase 4 blocks a leaking response: {:?} {:?}",
        leak.headers,
        read_events(&gw.dir.path().join("events.jsonl"))
            .iter()
            .filter(|e| e["event"] != "http.request")
            .collect::<Vec<_>>()
    );
    assert!(!String::from_utf8_lossy(&leak.body).contains("leaked-secret"));
    let e = gw
        .event("response rule", |e| {
            e["event"] == "waf.block" && e["rule_ids"].to_string().contains("202")
        })
        .await;
    assert!(e["rule_ids"].to_string().contains("201"), "{e}");
}

#[tokio::test]
async fn route_exclusions_lift_one_rule_from_one_field_on_one_route() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[waf]
mode = "enforce"
[[route]]
name = "snippets"
match = {{ path_prefix = "/snippets" }}
upstream = "{u}"
waf = {{ exclusions = ["ruleRemoveTargetById=110;ARGS:sql"] }}
[[route]]
name = "api"
upstream = "{u}"
"#,
        u = up.url()
    ))
    .await;
    let sqli = "1%27%20OR%20%271%27%3D%271";
    // The snippet store takes SQL in its `sql` field...
    assert_eq!(
        get(&gw.url(&format!("/snippets?sql={sqli}"))).await.status,
        200
    );
    // ...but nowhere else on that route, and the rule still runs on every other route.
    assert_eq!(
        get(&gw.url(&format!("/snippets?q={sqli}"))).await.status,
        403
    );
    assert_eq!(get(&gw.url(&format!("/api?sql={sqli}"))).await.status, 403);
    // Other rules still see the excluded field.
    assert_eq!(
        get(&gw.url("/snippets?sql=%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
            .await
            .status,
        403
    );
}

#[test]
fn a_bad_exclusion_is_a_config_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        "version = 1\n[[listener]]\nname = \"p\"\nbind = \"127.0.0.1:8080\"\n[waf]\n[[route]]\nname = \"a\"\nupstream = \"http://127.0.0.1:1\"\nwaf = { exclusions = [\"ruleRemoveById=942100\", \"ruleEngine=Off\"] }\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("route[0].waf.exclusions[1]"), "{err}");
}

/// A request target with characters RFC 3986 forbids unencoded is refused by the HTTP parser;
/// the gateway still answers it itself (problem+json, request id) and the WAF inspects it
/// first, so the attack it carries is logged and scored.
#[tokio::test]
async fn requests_the_http_parser_refuses_are_inspected_and_answered_with_an_id() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up, "mode = \"detect\"\naudit_log = \"waf.jsonl\"")).await;
    let addr = gw.addr("public");
    let answer = raw(
        addr,
        b"GET /search?q=<script>alert(1)</script> HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    let id = answer
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("no request id in {answer}"))
        .trim()
        .to_owned();
    assert!(
        answer.contains(&format!("\"request_id\":\"{id}\"")),
        "{answer}"
    );
    assert!(
        !answer.contains("<script>"),
        "nothing from the request is echoed"
    );
    // detect mode: logged as a match, never forwarded (the parser refused it)
    let e = gw
        .event("waf.match of the refused request", |e| {
            e["event"] == "waf.match" && e["request_id"] == id.as_str()
        })
        .await;
    assert!(
        e["rule_ids"].as_array().is_some_and(|ids| !ids.is_empty()),
        "{e}"
    );
    let audit = eventually("the audit record", || {
        read_events(&gw.dir.path().join("waf.jsonl"))
            .into_iter()
            .find(|a| a["request_id"] == id.as_str())
    })
    .await;
    assert!(audit.to_string().contains("script"), "{audit}");
    assert_eq!(up.count(), 0);
    // and it has its access log line, like any request
    let access = gw
        .event("http.request of the refused request", |e| {
            e["event"] == "http.request" && e["request_id"] == id.as_str()
        })
        .await;
    assert_eq!(access["status"], 400);
    assert_eq!(access["route"], "api");

    // an unknown HTTP version is read as 1.1 (and shown to the rules as sent), also when the
    // parser refuses it before the rest of the head has been read
    for head in [
        &b"GET /a/path/long/enough/to/be/read/whole HTTP/4.0\r\nHost: example.com\r\n\r\n"[..],
        b"GET / HTTP/4.0\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n",
    ] {
        let v4 = raw(addr, head).await;
        assert!(
            v4.starts_with("HTTP/1.1 400 ") && v4.contains("x-request-id"),
            "{v4}"
        );
    }

    // an HTTP/0.9 simple request is inspected too, and gets an HTTP/0.9 answer: the body
    // alone, then the connection closes
    let simple = raw(addr, b"GET /q=<script>\r\n").await;
    assert!(!simple.starts_with("HTTP/"), "{simple}");
    let problem: serde_json::Value = serde_json::from_str(&simple).expect("a problem body");
    assert_eq!(problem["status"], 400);
    let simple_id = problem["request_id"].as_str().unwrap().to_owned();
    gw.event("waf.match of the HTTP/0.9 request", |e| {
        e["event"] == "waf.match" && e["request_id"] == simple_id.as_str()
    })
    .await;

    // only a connection's first request is answered so: a later one gets the parser's own
    // bare 400, as does a head that does not parse even leniently
    let two = raw(
        addr,
        b"GET /a HTTP/1.1\r\nHost: example.com\r\n\r\nGET /<b> HTTP/1.1\r\nHost: example.com\r\n\r\n",
    )
    .await;
    assert!(two.starts_with("HTTP/1.1 200 "), "{two}");
    assert!(two.contains("HTTP/1.1 400 "), "{two}");
    assert_eq!(two.matches("x-request-id").count(), 1, "{two}");
    let junk = raw(addr, b"\x16\x03\x01 not http at all\r\n\r\n").await;
    assert!(!junk.contains("x-request-id"), "{junk}");
    // and ordinary requests are untouched
    let ok = get(&gw.url("/search?q=shoes")).await;
    assert_eq!(ok.status, 200);
}
