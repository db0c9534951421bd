//! `check-config` and hot reload.

use std::process::Command;

use crate::support::*;

fn route_config(up: &Upstream, version: &str) -> String {
    format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[[route]]
name = "app"
upstream = "{}"
response_headers = {{ set = {{ "X-Config-Version" = "{version}" }} }}
"#,
        up.url()
    )
}

#[test]
fn check_config_names_every_error_by_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
version = 1
[[listener]]
name = "public"
bind = "127.0.0.1:8080"
[[cors]]
name = "spa"
allow_origins = ["*"]
allow_credentials = true
[[route]]
name = "a"
upstream = "http://127.0.0.1:3000"
cors = "missing"
[[route]]
name = "b"
upstream = []
tiemout = "5s"
"#,
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["check-config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cors[0].allow_origins[0]:"), "{stderr}");
    assert!(
        stderr.contains("route[0].cors: no [[cors]] policy is named \"missing\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("route[1]") && stderr.contains("tiemout"),
        "{stderr}"
    );

    let good = dir.path().join("good.toml");
    std::fs::write(&good, "version = 1\n[[listener]]\nname = \"p\"\nbind = \"127.0.0.1:8080\"\n[[route]]\nname = \"a\"\nupstream = \"http://127.0.0.1:3000\"\n").unwrap();
    let out = Command::new(bin())
        .args(["check-config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn file_changes_reload_and_bad_files_keep_the_running_config() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&route_config(&up, "1")).await;
    assert_eq!(
        get(&gw.url("/")).await.header("x-config-version"),
        Some("1")
    );

    // A request in flight keeps the config it started with.
    let slow_url = gw.url("/slow?ms=1500");
    let in_flight = tokio::spawn(async move { get(&slow_url).await });
    eventually("the slow request to reach the upstream", || {
        (up.count() >= 2).then_some(())
    })
    .await;
    gw.rewrite_config(&route_config(&up, "2"));
    gw.event("config.reload", |e| {
        e["event"] == "config.reload" && e["level"] == "info"
    })
    .await;
    assert_eq!(
        get(&gw.url("/")).await.header("x-config-version"),
        Some("2")
    );
    assert_eq!(
        in_flight.await.unwrap().header("x-config-version"),
        Some("1")
    );

    gw.rewrite_config("[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n[[route]]\nname = \"app\"\nupstream = []\n");
    let refused = gw
        .event("refused reload", |e| {
            e["event"] == "config.reload" && e["level"] == "error"
        })
        .await;
    assert!(
        refused["errors"].to_string().contains("route[0].upstream"),
        "{refused}"
    );
    assert_eq!(
        get(&gw.url("/")).await.header("x-config-version"),
        Some("2"),
        "the last good config stays"
    );
}

#[tokio::test]
async fn sighup_reloads() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&route_config(&up, "1")).await;
    // Write without renaming and touch nothing else; SIGHUP must be enough either way.
    std::fs::write(&gw.config, format!("version = 1\ndata_dir = \"./data\"\n[admin]\nbind = \"127.0.0.1:0\"\n[events]\nsink = \"events.jsonl\"\n{}", route_config(&up, "3")))
        .unwrap();
    gw.signal("HUP");
    let mut seen = None;
    for _ in 0..600 {
        let v = get(&gw.url("/"))
            .await
            .header("x-config-version")
            .map(str::to_owned);
        if v.as_deref() == Some("3") {
            seen = v;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(seen.as_deref(), Some("3"));
}
