//! `[auth]`: users from the CLI, login, refresh rotation and reuse, logout at once, JWT
//! routes, scopes, JWKS, CSRF defense on cookie endpoints.

use std::io::Write;
use std::process::{Command, Stdio};

use bytes::Bytes;
use http_body_util::Full;

use crate::support::*;

fn config(up: &Upstream) -> String {
    format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[auth]
issuer = "https://auth.example.com"
audience = ["api"]
default_scopes = ["items:read"]
refresh_reuse_grace = "1ms"
[[route]]
name = "api"
match = {{ path_prefix = "/api/" }}
upstream = "{u}"
auth = ["jwt"]
[[rate_limit]]
name = "per-user"
key = "user"
rate = "1/h"
burst = 3
[[route]]
name = "limited"
match = {{ path_prefix = "/limited/" }}
upstream = "{u}"
auth = ["jwt"]
rate_limit = ["per-user"]
[[route]]
name = "admin"
match = {{ path_prefix = "/admin/" }}
upstream = "{u}"
auth = ["jwt"]
scopes = ["admin"]
[[route]]
name = "public"
upstream = "{u}"
auth = ["none"]
"#,
        u = up.url()
    )
}

fn add_user(gw: &Gateway, name: &str, password: &str) {
    add_user_with_key(gw, name, password, "");
}

fn add_user_with_key(gw: &Gateway, name: &str, password: &str, key: &str) {
    let mut child = Command::new(bin())
        .args(["user", "add", "--config"])
        .arg(&gw.config)
        .arg(name)
        .env("RAMPART_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn login(gw: &Gateway, user: &str, password: &str) -> Reply {
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    send(
        &client(),
        req("POST", &gw.url("/auth/login"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await
}

fn refresh_cookie(r: &Reply) -> String {
    let c = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("rampart_refresh="))
        .expect("a refresh cookie");
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/auth",
        "Max-Age=",
    ] {
        assert!(c.contains(attr), "{attr} missing in {c}");
    }
    c.split(';').next().unwrap().to_owned()
}

fn bearer(url: String, token: &str) -> http::Request<Full<Bytes>> {
    req("GET", &url)
        .header("authorization", format!("Bearer {token}"))
        .header("x-rampart-subject", "forged")
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn login_refresh_rotation_reuse_and_logout() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up)).await;
    add_user(&gw, "alice", "correct horse battery staple");

    let bad = login(&gw, "alice", "wrong").await;
    let unknown = login(&gw, "mallory", "wrong").await;
    assert_eq!(bad.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown.json()["detail"],
        bad.json()["detail"],
        "same answer for unknown users"
    );

    let r = login(&gw, "alice", "correct horse battery staple").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        body.get("refresh_token").is_none(),
        "the refresh token is only in the cookie"
    );
    let access = body["access_token"].as_str().unwrap().to_owned();
    let cookie1 = refresh_cookie(&r);

    let ok = send(&client(), bearer(gw.url("/api/items"), &access)).await;
    assert_eq!(ok.status, 200);
    let seen = up.last();
    assert_ne!(
        seen.headers["x-rampart-subject"], "forged",
        "identity headers come from the token only"
    );
    assert_eq!(seen.headers["x-rampart-scopes"], "items:read");
    assert!(seen.headers.get("x-rampart-session").is_some());

    let r = send(
        &client(),
        req("GET", &gw.url("/api/items"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let r = send(&client(), bearer(gw.url("/admin/x"), &access)).await;
    assert_eq!(r.status, 403, "a missing scope is 403");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    assert_eq!(
        send(
            &client(),
            req("GET", &gw.url("/open")).body(Full::default()).unwrap()
        )
        .await
        .status,
        200
    );

    let c = client();
    let refresh = |cookie: String| {
        send(
            &c,
            req("POST", &gw.url("/auth/refresh"))
                .header("cookie", cookie)
                .body(Full::default())
                .unwrap(),
        )
    };
    let r = refresh(cookie1.clone()).await;
    assert_eq!(r.status, 200);
    let cookie2 = refresh_cookie(&r);
    assert_ne!(cookie1, cookie2, "refresh tokens rotate");
    let access2 = r.json()["access_token"].as_str().unwrap().to_owned();

    assert_eq!(
        send(&client(), bearer(gw.url("/api/items"), &access2))
            .await
            .status,
        200
    );

    // Past the grace window, presenting the rotated token again means it was stolen: the
    // whole session ends, its access tokens included.
    // Session times are kept in whole seconds: step past the next one.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let reused = refresh(cookie1).await;
    assert_eq!(reused.status, 401);
    gw.event("auth.refresh.reuse", |e| e["event"] == "auth.refresh.reuse")
        .await;
    assert_eq!(
        send(&client(), bearer(gw.url("/api/items"), &access2))
            .await
            .status,
        401,
        "the family is revoked at once"
    );
    assert_eq!(refresh(cookie2).await.status, 401);

    // Logout ends the session's access tokens at once.
    let r = login(&gw, "alice", "correct horse battery staple").await;
    let access3 = r.json()["access_token"].as_str().unwrap().to_owned();
    let cookie3 = refresh_cookie(&r);
    assert_eq!(
        send(&client(), bearer(gw.url("/api/items"), &access3))
            .await
            .status,
        200
    );
    let out = send(
        &client(),
        req("POST", &gw.url("/auth/logout"))
            .header("cookie", cookie3.clone())
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, 204);
    assert_eq!(
        send(&client(), bearer(gw.url("/api/items"), &access3))
            .await
            .status,
        401,
        "revoked at once"
    );
    assert_eq!(refresh(cookie3).await.status, 401);
}

#[tokio::test]
async fn forged_tokens_and_cross_site_logins_are_refused() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up)).await;
    add_user(&gw, "bob", "another long passphrase");
    let b64 = |v: &serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({"iss":"https://auth.example.com","aud":"api","sub":"admin","exp":now+600,"iat":now,"scope":"admin"});
    let none = format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg":"none","typ":"at+jwt"})),
        b64(&claims)
    );
    assert_eq!(
        send(&client(), bearer(gw.url("/api/x"), &none))
            .await
            .status,
        401,
        "alg none never passes"
    );
    let jwks = get(&gw.url("/.well-known/jwks.json")).await;
    assert_eq!(jwks.status, 200);
    let keys = jwks.json()["keys"].as_array().unwrap().clone();
    assert!(!keys.is_empty() && keys[0]["kid"].is_string());

    let r = login(&gw, "bob", "another long passphrase").await;
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    parts[1] = b64(&claims);
    let tampered = parts.join(".");
    assert_eq!(
        send(&client(), bearer(gw.url("/admin/x"), &tampered))
            .await
            .status,
        401,
        "a changed payload fails the signature"
    );

    let body =
        serde_json::json!({"username":"bob","password":"another long passphrase"}).to_string();
    let cross = send(
        &client(),
        req("POST", &gw.url("/auth/login"))
            .header("origin", "https://evil.example")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(cross.status, 403, "cookie endpoints refuse other sites");
    gw.event("auth.login.fail", |e| {
        e["event"] == "auth.login.fail" || e["event"] == "auth.csrf"
    })
    .await;
}

#[tokio::test]
async fn per_user_limits_count_the_verified_user() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up)).await;
    add_user(&gw, "carol", "a third long passphrase");
    add_user(&gw, "dave", "a fourth long passphrase");
    let carol = login(&gw, "carol", "a third long passphrase").await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let dave = login(&gw, "dave", "a fourth long passphrase").await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        let r = send(&client(), bearer(gw.url("/limited/x"), &carol)).await;
        assert_eq!(r.status, 200);
        assert!(r.header("ratelimit-policy").unwrap().contains("per-user"));
    }
    assert_eq!(
        send(&client(), bearer(gw.url("/limited/x"), &carol))
            .await
            .status,
        429
    );
    assert_eq!(
        send(&client(), bearer(gw.url("/limited/x"), &dave))
            .await
            .status,
        200,
        "another user has its own budget"
    );
}

fn apikey(gw: &Gateway, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("apikey")
        .args(args)
        .arg("--config")
        .arg(&gw.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn api_keys_from_the_cli_work_until_revoked() {
    let up = Upstream::start("a").await;
    let body = config(&up).replace(
        "[[route]]\nname = \"admin\"",
        "[[route]]\nname = \"machines\"\nmatch = { path_prefix = \"/machines/\" }\nupstream = \"UP\"\nauth = [\"jwt\", \"api_key\"]\nscopes = [\"reports:read\"]\n[[route]]\nname = \"admin\"",
    )
    .replace("UP", &up.url());
    let gw = Gateway::start(&body).await;
    let key = apikey(
        &gw,
        &[
            "create",
            "nightly-job",
            "--scope",
            "reports:read",
            "--owner",
            "reporting",
        ],
    );
    assert!(key.starts_with("rk_"), "{key}");
    let weak = apikey(&gw, &["create", "other-job", "--scope", "other"]);
    let listed = apikey(&gw, &["list"]);
    assert!(
        listed.contains("nightly-job") && !listed.contains(&key),
        "lists never show secrets"
    );

    let with_header = |k: &str| {
        req("GET", &gw.url("/machines/report"))
            .header("x-api-key", k)
            .body(Full::default())
            .unwrap()
    };
    let r = send(&client(), with_header(&key)).await;
    assert_eq!(r.status, 200);
    let seen = up.last();
    assert_eq!(seen.headers["x-rampart-subject"], "reporting");
    assert!(
        seen.headers.get("x-api-key").is_none(),
        "the key is not passed on"
    );
    let r = send(
        &client(),
        req("GET", &gw.url("/machines/report"))
            .header("authorization", format!("ApiKey {key}"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        send(&client(), with_header(&weak)).await.status,
        403,
        "scopes apply to keys too"
    );
    let r = send(
        &client(),
        req("GET", &gw.url("/machines/report"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate").unwrap().contains("ApiKey"),
        "every accepted scheme is named"
    );
    assert_eq!(
        send(&client(), with_header("rk_0000_forged")).await.status,
        401
    );

    let prefix = key.split('_').nth(1).unwrap().to_owned();
    apikey(&gw, &["revoke", &prefix]);
    assert_eq!(
        send(&client(), with_header(&key)).await.status,
        401,
        "revoked at once"
    );
}

/// The `Set-Cookie` header starting with `name=`, as `name=value`.
fn set_cookie(r: &Reply, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

fn csrf_field(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

async fn signin_post(gw: &Gateway, cookie: &str, fields: &[(&str, &str)]) -> Reply {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    send(
        &client(),
        req("POST", &gw.url("/auth/signin"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn session_routes_sign_in_through_a_plain_html_form_and_sign_out_at_once() {
    let up = Upstream::start("app").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[auth]
issuer = "https://app.example.com"
audience = ["app"]
[[route]]
name = "app"
match = {{ path_prefix = "/app/" }}
upstream = "{u}"
auth = ["session"]
[[route]]
name = "public"
upstream = "{u}"
auth = ["none"]
"#,
        u = up.url()
    ))
    .await;
    add_user(&gw, "ada", "correct horse battery staple");

    // A browser without a session is sent to the sign-in page and back; an API client gets 401.
    let nav = send(
        &client(),
        req("GET", &gw.url("/app/inbox?x=1"))
            .header("accept", "text/html,application/xhtml+xml")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(nav.status, 303);
    assert_eq!(
        nav.header("location"),
        Some("/auth/signin?return_to=%2Fapp%2Finbox%3Fx%3D1")
    );
    assert_eq!(get(&gw.url("/app/inbox")).await.status, 401);
    assert_eq!(up.count(), 0);

    // The form: plain HTML, strict CSP, escaped, with a CSRF token bound to a cookie.
    let page = get(&gw.url("/auth/signin?return_to=%2Fapp%2F%22%3E%3Cscript%3E")).await;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("<label for=\"password\">"));
    let csrf = csrf_field(&html);
    let csrf_cookie = set_cookie(&page, "__Host-rampart_csrf").unwrap();
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"));
    let csrf_cookie = csrf_cookie.split(';').next().unwrap().to_owned();

    // Without the matching cookie the form is refused (CSRF), whatever the password.
    let r = signin_post(
        &gw,
        "__Host-rampart_csrf=other",
        &[
            ("csrf", &csrf),
            ("username", "ada"),
            ("password", "correct horse battery staple"),
        ],
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(set_cookie(&r, "__Host-rampart_session").is_none());
    // A wrong password re-renders the form with a generic, escaped message.
    let r = signin_post(
        &gw,
        &csrf_cookie,
        &[("csrf", &csrf), ("username", "<ada>"), ("password", "nope")],
    )
    .await;
    assert_eq!(r.status, 401);
    let again = String::from_utf8_lossy(&r.body).into_owned();
    assert!(again.contains("Wrong username or password.") && again.contains("&lt;ada&gt;"));
    assert!(!again.contains("<ada>"));

    // The right password: a session cookie, and back to a local path only.
    let r = signin_post(
        &gw,
        &csrf_cookie,
        &[
            ("csrf", &csrf),
            ("username", "ada"),
            ("password", "correct horse battery staple"),
            ("return_to", "//evil.example/"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{:?}", r.body);
    assert_eq!(r.header("location"), Some("/"));
    let session = set_cookie(&r, "__Host-rampart_session").expect("a session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{attr} missing in {session}");
    }
    let session = session.split(';').next().unwrap().to_owned();
    let with_session = |path: &str| {
        req("GET", &gw.url(path))
            .header("cookie", format!("theme=dark; {session}"))
            .body(Full::default())
            .unwrap()
    };
    let r = send(&client(), with_session("/app/inbox")).await;
    assert_eq!(r.status, 200);
    let seen = up.last();
    assert!(seen.headers["x-rampart-subject"].to_str().unwrap().len() > 4);
    assert!(seen.headers.contains_key("x-rampart-session"));
    // The upstream gets the app's cookies, never the gateway's session cookie.
    assert_eq!(seen.headers["cookie"], "theme=dark");

    // Sign out: the session ends at once.
    let r = send(
        &client(),
        req("POST", &gw.url("/auth/signout"))
            .header("cookie", session.as_str())
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 303);
    assert!(
        set_cookie(&r, "__Host-rampart_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        send(&client(), with_session("/app/inbox")).await.status,
        401
    );
    gw.event("a failed sign-in event", |e| {
        e["event"] == "auth.login.fail"
    })
    .await;
}

#[tokio::test]
async fn repeated_login_failures_are_slowed_then_refused_before_the_password_is_checked() {
    let up = Upstream::start("api").await;
    let gw = Gateway::start(&config(&up)).await;
    add_user(&gw, "ada", "correct horse battery staple");
    for _ in 0..5 {
        assert_eq!(login(&gw, "ada", "guess").await.status, 401);
    }
    // The sixth attempt comes too soon: refused without looking at the password, even the
    // right one, with the time to wait.
    let r = login(&gw, "Ada", "correct horse battery staple").await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert!(
        r.header("retry-after")
            .is_some_and(|v| v.parse::<u64>().unwrap() >= 1)
    );
    assert!(String::from_utf8_lossy(&r.body).contains("too-many-attempts"));
    assert!(r.header("set-cookie").is_none());
    // An unknown user and a wrong password still look alike to the client.
    let unknown = login(&gw, "nobody", "x").await;
    let wrong = login(&gw, "grace", "x").await;
    assert_eq!((unknown.status.as_u16(), wrong.status.as_u16()), (401, 401));
    assert_eq!(unknown.json()["type"], wrong.json()["type"]);
    gw.event("a throttled login event", |e| {
        e["event"] == "auth.login.throttled"
    })
    .await;
}

/// A fresh PostgreSQL database on the test server, dropped when the guard goes.
struct PgDatabase {
    name: String,
}

impl PgDatabase {
    fn create() -> PgDatabase {
        let mut b = [0u8; 6];
        getrandom::fill(&mut b).unwrap();
        let name = format!(
            "rampart_it_{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        );
        let ok = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c"])
            .arg(format!("create database {name}"))
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "cannot create a PostgreSQL database (scripts/services.sh starts the server)"
        );
        PgDatabase { name }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c"])
            .arg(format!(
                "drop database if exists {} with (force)",
                self.name
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Two gateways sharing one PostgreSQL store and one Redis, with the master key they both
/// need, in front of one upstream. The listeners believe `X-Forwarded-For` from loopback, so a
/// test can speak for a client network of its own.
struct TwoNodes {
    _db: PgDatabase,
    _up: Upstream,
    a: Gateway,
    b: Gateway,
    key: String,
}

async fn two_nodes() -> TwoNodes {
    let db = PgDatabase::create();
    let up = Upstream::start("api").await;
    let mut raw_key = [0u8; 32];
    getrandom::fill(&mut raw_key).unwrap();
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode(raw_key);
    let body = format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
trusted_proxies = ["127.0.0.1/32"]
[store]
url = "{}"
[shared]
url = "redis://127.0.0.1:6379"
[auth]
issuer = "https://auth.example.com"
audience = ["api"]
[[route]]
name = "api"
match = {{ path_prefix = "/api/" }}
upstream = "{}"
auth = ["jwt"]
"#,
        db.url(),
        up.url()
    );
    let env = [("RAMPART_KEY", key.as_str())];
    let a = Gateway::start_with_env(&body, "", &env).await;
    let b = Gateway::start_with_env(&body, "", &env).await;
    TwoNodes {
        _db: db,
        _up: up,
        a,
        b,
        key,
    }
}

#[tokio::test]
async fn a_logout_on_one_node_is_enforced_by_another_through_redis() {
    let nodes = two_nodes().await;
    let (a, b, key) = (&nodes.a, &nodes.b, nodes.key.clone());
    add_user_with_key(a, "ada", "correct horse battery staple", &key);

    let r = login(a, "ada", "correct horse battery staple").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    // Node B verifies A's token on its own (keys from the shared store, no lookup per request).
    assert_eq!(
        send(&client(), bearer(b.url("/api/x"), &token))
            .await
            .status,
        200
    );

    // Log out everywhere on A: B refuses the still-unexpired token once the revocation
    // reaches it through Redis.
    let out = send(
        &client(),
        req("POST", &a.url("/auth/logout-all"))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, 204, "{:?}", out.body);
    assert_eq!(
        send(&client(), bearer(a.url("/api/x"), &token))
            .await
            .status,
        401
    );
    let mut refused = false;
    for _ in 0..600 {
        if send(&client(), bearer(b.url("/api/x"), &token))
            .await
            .status
            == 401
        {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(refused, "node B still accepts a token of a revoked session");
}

#[tokio::test]
async fn login_failures_count_on_every_node_sharing_redis() {
    let nodes = two_nodes().await;
    let (a, b, key) = (&nodes.a, &nodes.b, nodes.key.clone());
    // Fresh names and a fresh client network, so counters of earlier runs (Redis keeps them
    // for an hour) cannot meet this one.
    let mut r = [0u8; 6];
    getrandom::fill(&mut r).unwrap();
    let user = format!(
        "u{}",
        r.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
    let client_ip = format!(
        "2001:db8:{:x}:{:x}::7",
        r[0],
        u16::from_le_bytes([r[1], r[2]])
    );
    add_user_with_key(a, &user, "correct horse battery staple", &key);
    let attempt = |gw: &Gateway, password: &str| {
        let body = serde_json::json!({ "username": user, "password": password }).to_string();
        let request = req("POST", &gw.url("/auth/login"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", client_ip.as_str())
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        async move { send(&client(), request).await }
    };
    // Five failures spread over two nodes: each node alone has seen fewer than the five a
    // username may fail freely.
    for gw in [a, b, a, b, a] {
        assert_eq!(attempt(gw, "guess").await.status, 401);
    }
    // Either node now makes the sixth attempt wait, even with the right password.
    for gw in [b, a] {
        let r = attempt(gw, "correct horse battery staple").await;
        assert_eq!(r.status, 429, "{:?}", String::from_utf8_lossy(&r.body));
        assert!(
            r.header("retry-after")
                .is_some_and(|v| v.parse::<u64>().unwrap() >= 1)
        );
    }
    b.event("a throttled login on the node that saw two failures", |e| {
        e["event"] == "auth.login.throttled"
    })
    .await;
}

/// Runs the authlib side of the OAuth tests (tests/it/oauth_client.py) and parses its JSON,
/// off the test's runtime (the test upstream must keep answering meanwhile).
async fn oauth_client(args: &[&str]) -> serde_json::Value {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || oauth_client_blocking(&args))
        .await
        .unwrap()
}

fn oauth_client_blocking(args: &[String]) -> serde_json::Value {
    let tools = std::env::var_os("RAMPART_TOOLS").unwrap_or_else(|| "/opt/rampart-tools".into());
    let python = std::path::PathBuf::from(tools).join("py/bin/python");
    let script = format!("{}/tests/it/oauth_client.py", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(script)
        .args(args)
        // Plain HTTP on loopback only.
        .env("AUTHLIB_INSECURE_TRANSPORT", "1")
        .output()
        .expect("authlib's python (scripts/services.sh installs it)");
    assert!(
        out.status.success(),
        "oauth_client.py {}: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn client_add(gw: &Gateway, args: &[&str]) -> (String, Option<String>) {
    let out = Command::new(bin())
        .args(["client", "add", "--config"])
        .arg(&gw.config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    (
        field("client_id:").expect("a client id"),
        field("client_secret:"),
    )
}

async fn form_post(url: String, cookie: &str, fields: &[(String, String)]) -> Reply {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    send(
        &client(),
        req("POST", &url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await
}

/// The hidden fields of a form page, in order.
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let name = rest.split('"').next().unwrap();
            let value = rest
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let unescape = |s: &str| {
                s.replace("&quot;", "\"")
                    .replace("&#39;", "'")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&")
            };
            (unescape(name), unescape(value))
        })
        .collect()
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    format!("/{}", rest.split_once('/').map_or("", |(_, p)| p))
}

#[tokio::test]
async fn oauth_code_flow_with_pkce_and_client_credentials_for_a_real_client() {
    let up = Upstream::start("api").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
[auth]
issuer = "https://auth.example.com"
audience = ["api"]
[[route]]
name = "api"
match = {{ path_prefix = "/api/" }}
upstream = "{}"
auth = ["jwt"]
scopes = ["items:read"]
"#,
        up.url()
    ))
    .await;
    add_user(&gw, "ada", "correct horse battery staple");
    let redirect = "http://127.0.0.1:9/callback";
    let (app_id, app_secret) = client_add(
        &gw,
        &[
            "Demo <App>",
            "--redirect-uri",
            redirect,
            "--scope",
            "openid",
            "--scope",
            "items:read",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
        ],
    );
    let app_secret = app_secret.expect("a confidential client has a secret");
    let base = gw.url("");
    let base = base.trim_end_matches('/');

    // The client (authlib) builds the authorization URL with PKCE S256 and a nonce.
    let start = oauth_client(&["start", base, &app_id, &app_secret, redirect]).await;
    let authorize = path_of(start["uri"].as_str().unwrap());
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );

    // The browser: not signed in yet, so to the sign-in page and back.
    let r = get(&gw.url(&authorize)).await;
    assert_eq!(r.status, 303);
    let signin = r.header("location").unwrap().to_owned();
    assert!(
        signin.starts_with("/auth/signin?return_to=%2Foauth2%2Fauthorize%3F"),
        "{signin}"
    );
    let page = get(&gw.url(&signin)).await;
    let csrf = csrf_field(&String::from_utf8_lossy(&page.body));
    let csrf_cookie = set_cookie(&page, "__Host-rampart_csrf").unwrap();
    let csrf_cookie = csrf_cookie.split(';').next().unwrap().to_owned();
    let return_to = hidden_fields(&String::from_utf8_lossy(&page.body))
        .into_iter()
        .find(|(k, _)| k == "return_to")
        .unwrap()
        .1;
    let r = signin_post(
        &gw,
        &csrf_cookie,
        &[
            ("csrf", &csrf),
            ("return_to", &return_to),
            ("username", "ada"),
            ("password", "correct horse battery staple"),
        ],
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some(return_to.as_str()));
    let session = set_cookie(&r, "__Host-rampart_session").unwrap();
    let session = session.split(';').next().unwrap().to_owned();

    // The consent page: no script, escaped client name, the scopes, CSP allowing only the
    // client's redirect origin as a form target.
    let consent = send(
        &client(),
        req("GET", &gw.url(&return_to))
            .header("cookie", &session)
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(consent.status, 200);
    let html = String::from_utf8_lossy(&consent.body).into_owned();
    assert!(
        html.contains("Demo &lt;App&gt;") && !html.contains("<script"),
        "{html}"
    );
    assert!(html.contains("<code>items:read</code>") && html.contains("<code>openid</code>"));
    assert_eq!(
        consent.header("content-security-policy"),
        Some(
            "default-src 'none'; form-action 'self' http://127.0.0.1:9; frame-ancestors 'none'; base-uri 'none'"
        )
    );
    let csrf_cookie = set_cookie(&consent, "__Host-rampart_csrf").unwrap();
    let csrf_cookie = csrf_cookie.split(';').next().unwrap().to_owned();
    let mut fields = hidden_fields(&html);
    let cookies = format!("{session}; {csrf_cookie}");
    // A forged post without the CSRF cookie gets no code.
    let mut approve = fields.clone();
    approve.push(("decision".into(), "approve".into()));
    let r = form_post(gw.url("/oauth2/authorize"), &session, &approve).await;
    assert_eq!(r.status, 200, "the consent page again, not a redirect");
    // The real approval: a code for the registered redirect URI, with state and iss.
    fields.push(("decision".into(), "approve".into()));
    let r = form_post(gw.url("/oauth2/authorize"), &cookies, &fields).await;
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.body));
    let callback = r.header("location").unwrap().to_owned();
    assert!(
        callback.starts_with(&format!("{redirect}?code=")),
        "{callback}"
    );
    assert!(callback.contains("iss=https%3A%2F%2Fauth.example.com"));

    // authlib exchanges the code (PKCE), checks the ID token against the JWKS, calls
    // userinfo and the API, and refreshes.
    let done = oauth_client(&[
        "finish",
        base,
        &app_id,
        &app_secret,
        redirect,
        &callback,
        start["verifier"].as_str().unwrap(),
        start["state"].as_str().unwrap(),
        start["nonce"].as_str().unwrap(),
    ])
    .await;
    assert_eq!(done["userinfo"]["preferred_username"], "ada");
    assert_eq!(done["id_claims"]["aud"], app_id.as_str());
    assert_eq!(done["api_status"], 200);
    assert_eq!(done["api_after_refresh"], 200);
    assert_eq!(done["token"]["scope"], "openid items:read");
    let seen = up.last();
    assert_eq!(
        seen.headers["x-rampart-subject"],
        done["userinfo"]["sub"].as_str().unwrap()
    );

    // The code cannot be used twice; the replay also ends what the first exchange granted.
    let code = callback
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let replay = form_post(
        gw.url("/oauth2/token"),
        "",
        &[
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code),
            ("redirect_uri".into(), redirect.into()),
            ("client_id".into(), app_id.clone()),
            ("client_secret".into(), app_secret.clone()),
            (
                "code_verifier".into(),
                start["verifier"].as_str().unwrap().into(),
            ),
        ],
    )
    .await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.json()["error"], "invalid_grant");
    let refreshed = done["refreshed"]["access_token"].as_str().unwrap();
    assert_eq!(
        send(&client(), bearer(gw.url("/api/items"), refreshed))
            .await
            .status,
        401,
        "a replayed code revokes the grant"
    );

    // A redirect URI that is not registered gets an error page, never a redirect.
    let evil = authorize.replace("127.0.0.1%3A9", "evil.example");
    let r = get(&gw.url(&evil)).await;
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_none());
    // Without PKCE the error goes back to the client.
    let no_pkce = format!("/oauth2/authorize?response_type=code&client_id={app_id}&state=s1");
    let r = get(&gw.url(&no_pkce)).await;
    assert_eq!(r.status, 303);
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with(redirect)
            && loc.contains("error=invalid_request")
            && loc.contains("state=s1"),
        "{loc}"
    );

    // A machine client: client credentials, the API, introspection.
    let (svc_id, svc_secret) = client_add(
        &gw,
        &[
            "Billing job",
            "--scope",
            "items:read",
            "--grant",
            "client_credentials",
        ],
    );
    let cc = oauth_client(&["cc", base, &svc_id, &svc_secret.unwrap()]).await;
    assert_eq!(cc["api_status"], 200);
    assert_eq!(cc["introspection"]["active"], true);
    assert_eq!(cc["introspection"]["client_id"], svc_id.as_str());
    assert_eq!(cc["introspection"]["sub"], svc_id.as_str());
    // Wrong secrets are refused the same way as unknown clients.
    let r = form_post(
        gw.url("/oauth2/token"),
        "",
        &[
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), svc_id.clone()),
            ("client_secret".into(), "wrong".into()),
        ],
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_client");
    gw.event("oauth.token event", |e| e["event"] == "oauth.token")
        .await;
    gw.event("oauth.token.fail event", |e| {
        e["event"] == "oauth.token.fail"
    })
    .await;
}
