//! The demo in a real browser: `clients/browser` drives Debian's chromium with playwright-core
//! against this build's binary (sign-in, the protected API, reload, silent refresh, logout,
//! CORS from other origins) and the OAuth code flow through the sign-in and consent pages with
//! JavaScript off. `scripts/services.sh` installs chromium and the npm package.

use std::path::Path;
use std::process::Command;

use crate::support::bin;

#[tokio::test]
async fn the_demo_works_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("clients/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists()
            && Path::new("/usr/bin/chromium").exists(),
        "chromium or playwright-core is missing: run scripts/services.sh"
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("--test")
            .current_dir(&dir)
            .env("RAMPART_BIN", bin())
            .env("ARTIFACTS", root.join("target/browser-artifacts"))
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("# pass 3") && text.contains("# fail 0"),
        "{text}"
    );
}
