//! schemathesis, a property-based API tester, against a route validated by the sample OpenAPI
//! document (crates/rampart-validate/testdata/items-3.1.yaml). It generates requests the
//! document allows and requests it forbids; its own checks demand 2xx for the first kind
//! (only the upstream answers 2xx here) and 4xx for the second. Then its HAR report is held
//! against what the upstream received: every forwarded request arrived unchanged (method,
//! path, query, body), and the upstream saw nothing schemathesis was refused for.

use std::path::PathBuf;
use std::process::Command;

use crate::support::*;

/// The schemathesis CLI: `RAMPART_SCHEMATHESIS`, else the one scripts/services.sh installs,
/// else `st` on the PATH.
fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("RAMPART_SCHEMATHESIS") {
        return p.into();
    }
    let tools = std::env::var_os("RAMPART_TOOLS").unwrap_or_else(|| "/opt/rampart-tools".into());
    let installed = PathBuf::from(tools).join("py/bin/st");
    if installed.exists() {
        return installed;
    }
    "st".into()
}

fn spec() -> String {
    format!(
        "{}/../rampart-validate/testdata/items-3.1.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// One exchange of the HAR report.
#[derive(Debug)]
struct Exchange {
    method: String,
    /// Path and query as sent.
    target: String,
    body: Vec<u8>,
    status: u16,
    from_upstream: bool,
}

fn exchanges(har: &serde_json::Value) -> Vec<Exchange> {
    har["log"]["entries"]
        .as_array()
        .expect("HAR entries")
        .iter()
        .map(|e| {
            let url: http::Uri = e["request"]["url"].as_str().unwrap().parse().unwrap();
            let body = e["request"]["postData"]["text"]
                .as_str()
                .unwrap_or("")
                .as_bytes()
                .to_vec();
            let from_upstream = e["response"]["headers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| {
                    h["name"]
                        .as_str()
                        .unwrap()
                        .eq_ignore_ascii_case("x-upstream")
                });
            Exchange {
                method: e["request"]["method"].as_str().unwrap().to_owned(),
                target: url
                    .path_and_query()
                    .map_or("/".to_owned(), |p| p.to_string()),
                body,
                status: e["response"]["status"].as_u64().unwrap() as u16,
                from_upstream,
            }
        })
        .collect()
}

#[tokio::test]
async fn generated_requests_valid_ones_pass_unchanged_and_invalid_ones_never_reach_the_upstream() {
    let up = Upstream::start("api").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[route]]
name = "api"
match = {{ path_prefix = "/api/" }}
upstream = "{}"
schema = "{}"
"#,
        up.url(),
        spec()
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let har = dir.path().join("run.har");
    let mut cmd = Command::new(schemathesis());
    cmd.arg("run")
        .arg(spec())
        .args(["--url", &gw.url("/api")])
        .args(["--mode", "all"])
        .args([
            "--checks",
            "not_a_server_error,positive_data_acceptance,negative_data_rejection",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--max-examples",
            "40",
            "--seed",
            "20261204",
            "--workers",
            "1",
        ])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--report", "har", "--report-har-path"])
        .arg(&har)
        .current_dir(dir.path());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("schemathesis runs (scripts/services.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found a problem:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&har).expect("a HAR report")).unwrap();
    let all = exchanges(&report);
    let forwarded: Vec<&Exchange> = all.iter().filter(|e| e.from_upstream).collect();
    let refused: Vec<&Exchange> = all
        .iter()
        .filter(|e| !e.from_upstream && e.status == 400)
        .collect();
    eprintln!(
        "schemathesis: {} exchanges, {} forwarded, {} refused with 400\n{stdout}",
        all.len(),
        forwarded.len(),
        refused.len()
    );
    // Both kinds were exercised in earnest.
    assert!(forwarded.len() >= 100, "only {} forwarded", forwarded.len());
    assert!(refused.len() >= 100, "only {} refused", refused.len());
    for e in &all {
        if e.from_upstream {
            assert!((200..300).contains(&e.status), "{e:?}");
        } else {
            assert!((400..500).contains(&e.status), "the gateway answered {e:?}");
        }
    }

    // What the upstream received is exactly what schemathesis was answered 2xx for, request
    // by request and unchanged.
    let mut seen: Vec<Seen> = up.seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        forwarded.len(),
        "the upstream saw other requests"
    );
    for e in forwarded {
        let at = seen
            .iter()
            .position(|s| s.method == e.method && s.uri == e.target && s.body[..] == e.body[..])
            .unwrap_or_else(|| {
                panic!(
                    "forwarded request not received unchanged: {} {} {:?}",
                    e.method,
                    e.target,
                    String::from_utf8_lossy(&e.body)
                )
            });
        seen.swap_remove(at);
    }
    assert!(seen.is_empty());
}
