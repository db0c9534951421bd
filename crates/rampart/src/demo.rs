//! `rampart demo`: the gateway on embedded defaults in front of a small built-in app, with a
//! config written to a temporary folder that can be edited while it runs.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Options of `rampart demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Public address of the gateway.
    pub bind: SocketAddr,
    /// Admin address.
    pub admin: SocketAddr,
    /// Access-token lifetime (a duration string).
    pub access_ttl: String,
    /// Extra origins the demo API's CORS policy allows.
    pub allow_origins: Vec<String>,
}

/// The single-page app (`clients/demo`) and the browser client library it imports
/// (`clients/js`), served by the demo app.
const SPA: [(&str, &str, &str); 4] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../../clients/demo/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../clients/demo/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../../../clients/demo/style.css"),
    ),
    (
        "/rampart-client.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../clients/js/rampart-client.js"),
    ),
];

/// The strict CSP of the single-page app: its own scripts and styles only, nothing inline.
pub const SPA_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rampart demo</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#1b2430}
code{background:#eef1f5;padding:.1rem .3rem;border-radius:4px}li{margin:.4rem 0}</style></head>
<body><h1>Rampart demo: a tour</h1>
<p>The <a href="/">sign-in demo</a> shows browser sessions: the access token kept in page memory,
the refresh token in an HttpOnly cookie, silent refresh, sessions and logout.</p>
<p>This page comes from the demo app, through Rampart. Every response carries security headers
(<code>X-Content-Type-Options</code>, <code>Referrer-Policy</code>, <code>X-Frame-Options</code>,
<code>Content-Security-Policy</code>) and an <code>X-Request-Id</code>.</p>
<ul>
<li><a href="/api/hello">/api/hello</a>: a JSON API behind the gateway that needs a bearer
access token: 401 here, answered after signing in.</li>
<li><a href="/echo">/echo</a>: what the app receives: forwarding headers set by the gateway,
hop-by-hop headers removed, the request id.</li>
<li><a href="/admin/">/admin/</a>: refused with 403, since the route only allows 10.0.0.0/8.</li>
<li><a href="/nowhere/../admin/">/nowhere/../admin/</a>: normalized before routing, so refused too.</li>
<li><a href="/echo?id=1%27%20OR%20%271%27%3D%271">/echo?id=1' OR '1'='1</a>: a SQL
injection, blocked by the WAF with 403.</li>
<li><a href="/missing">/missing</a> on a host without a route would be 404; errors are
<code>application/problem+json</code>.</li>
</ul>
<p>Metrics and health are on the admin listener. The config file named in the terminal can be
edited while the demo runs: changes apply at once, and a broken file is refused and reported.</p>
</body></html>
"#;

fn json(status: StatusCode, v: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path = req.uri().path().to_owned();
    if let Some((_, content_type, body)) = SPA.iter().find(|(p, _, _)| *p == path) {
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-cache"),
        );
        return Ok(r);
    }
    let resp = match path.as_str() {
        "/tour" => {
            let mut r = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        "/api/hello" => json(
            StatusCode::OK,
            serde_json::json!({
                "message": "hello from the demo API",
                "user": header("x-rampart-subject"),
                "session": header("x-rampart-session"),
                "client_ip": header("x-real-ip"),
                "request_id": header("x-request-id"),
            }),
        ),
        "/echo" => {
            let method = req.method().to_string();
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        serde_json::Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                    )
                })
                .collect();
            let body = Limited::new(req.into_body(), 64 * 1024)
                .collect()
                .await
                .map(|b| b.to_bytes().len())
                .unwrap_or(0);
            json(
                StatusCode::OK,
                serde_json::json!({ "method": method, "path": path, "headers": headers, "body_bytes": body }),
            )
        }
        p if p.starts_with("/admin") => json(
            StatusCode::OK,
            serde_json::json!({ "message": "the admin area" }),
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "error": "not found in the demo app" }),
        ),
    };
    Ok(resp)
}

/// A random password for the demo user: 20 characters of a 64-symbol alphabet (120 bits).
pub fn generate_password() -> Result<String, String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| format!("random password: {e}"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b & 63)]))
        .collect())
}

/// Starts the demo app on a free loopback port.
pub async fn start_app() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("demo app: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(app))
                    .await;
            });
        }
    });
    Ok(addr)
}

/// `s` as a TOML basic string (quotes and backslashes escaped, control characters dropped).
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The demo's config text. `port` is the public port (known before binding, so the issuer
/// and the browser's origin agree).
pub fn config_text(opts: &DemoOptions, port: u16, app: SocketAddr) -> String {
    format!(
        r#"# Rampart demo config: edit and save, changes apply while the demo runs.
version = 1
data_dir = "./data"

[admin]
bind = "{admin}"

[[listener]]
name = "public"
bind = "{ip}:{port}"

[events]
sink = "stdout"

# The built-in WAF rules (SQL injection, XSS, path traversal), blocking.
[waf]
mode = "enforce"

# The auth server: POST /auth/login, /auth/refresh, /auth/logout, /auth/logout-all,
# GET /auth/sessions. Access tokens live 15 minutes in page memory; the refresh token
# rotates in an HttpOnly, Secure, SameSite=Strict cookie.
[auth]
issuer = "http://localhost:{port}"
audience = ["rampart-demo"]
access_ttl = {access_ttl}
cors = "demo-spa"

[[cors]]
name = "demo-spa"
allow_origins = ["http://localhost:{port}", "http://127.0.0.1:{port}"{extra_origins}]
allow_credentials = true
allow_methods = ["GET", "POST", "PUT", "DELETE"]
allow_headers = ["Content-Type", "Authorization", "X-Demo"]

[[route]]
name = "admin"
match = {{ path_prefix = "/admin" }}
upstream = "http://{app}"
allow_from = ["10.0.0.0/8"]
auth = ["none"]

[[route]]
name = "api"
match = {{ path_prefix = "/api/" }}
upstream = "http://{app}"
cors = "demo-spa"
max_body_bytes = 65536
auth = ["jwt"]

[[route]]
name = "app"
upstream = "http://{app}"
auth = ["none"]
security_headers = {{ content_security_policy = "{csp}" }}
"#,
        admin = opts.admin,
        ip = opts.bind.ip(),
        access_ttl = toml_string(&opts.access_ttl),
        extra_origins = opts
            .allow_origins
            .iter()
            .map(|o| format!(", {}", toml_string(o)))
            .collect::<String>(),
        csp = SPA_CSP,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_is_valid() {
        let opts = DemoOptions {
            bind: "127.0.0.1:8080".parse().unwrap(),
            admin: "127.0.0.1:9901".parse().unwrap(),
            access_ttl: "15m".into(),
            allow_origins: vec!["http://localhost:5173".into()],
        };
        let text = config_text(&opts, 8080, "127.0.0.1:4000".parse().unwrap());
        let c = rampart_config::load_str(&text, std::path::Path::new("/tmp/demo/rampart.toml"))
            .unwrap();
        assert_eq!(c.route.len(), 3);
        assert!(c.waf.is_some(), "the demo blocks the classic attacks");
        assert!(c.auth.is_some(), "the demo signs users in");
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    }
}

#[cfg(test)]
mod spa_tests {
    use super::*;

    #[test]
    fn the_spa_has_no_inline_script_or_style_so_the_strict_csp_holds() {
        let (_, _, html) = SPA[0];
        assert!(html.contains(r#"<script type="module" src="app.js">"#));
        for forbidden in [
            "<script>",
            " onclick=",
            " onload=",
            " style=",
            "javascript:",
        ] {
            assert!(!html.contains(forbidden), "{forbidden}");
        }
        assert!(!SPA_CSP.contains("unsafe-inline") && !SPA_CSP.contains("unsafe-eval"));
    }
}
