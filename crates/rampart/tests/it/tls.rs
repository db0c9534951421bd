//! TLS termination, certificate rotation, redirects, client certificates (mTLS) and TLS to
//! upstreams, with certificates made at test time and real clients (rustls, openssl, curl).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::pki::{Ca, Leaf, client_config};
use crate::support::{Gateway, Upstream, raw};

/// A TLS connection to the gateway, as `name` (SNI).
async fn connect(
    addr: SocketAddr,
    name: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(server_name, tcp)
        .await
}

/// What one HTTPS exchange returned.
struct Answer {
    status: StatusCode,
    version: Version,
    headers: http::HeaderMap,
    body: String,
}

/// One request on an open TLS connection, HTTP/2 when ALPN chose it, else HTTP/1.1.
async fn exchange(
    tls: TlsStream<TcpStream>,
    path: &str,
    extra: &[(&str, &str)],
) -> Result<Answer, String> {
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let mut req = Request::builder().uri(path).header("host", "localhost");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let req = req.body(Empty::<Bytes>::new()).unwrap();
    let resp = if h2 {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let (mut parts, body) = req.into_parts();
        parts.uri = format!("https://localhost{path}").parse().unwrap();
        send.send_request(Request::from_parts(parts, body))
            .await
            .map_err(|e| e.to_string())?
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(|e| e.to_string())?
    };
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Answer {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

async fn https_get(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    path: &str,
    extra: &[(&str, &str)],
) -> Result<Answer, String> {
    let tls = connect(addr, "localhost", cfg)
        .await
        .map_err(|e| e.to_string())?;
    exchange(tls, path, extra).await
}

/// The DER of the certificate the gateway presented on `tls`.
fn presented(tls: &TlsStream<TcpStream>) -> Vec<u8> {
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn der_of_pem(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

fn der_of(leaf: &Leaf) -> Vec<u8> {
    der_of_pem(&leaf.cert_pem)
}

/// `openssl s_client` against `addr` with extra arguments; its whole output.
fn s_client(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a client off the test's runtime thread, so the test's own upstream keeps answering.
async fn output(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the client runs"))
        .await
        .unwrap()
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

async fn server_gateway(ca: &Ca, upstream: &Upstream, extra_listener: &str) -> Gateway {
    let site = ca.server("site", &["localhost"]);
    let api = ca.server("api", &["api.test"]);
    let wild = ca.server("wild", &["*.wild.test"]);
    Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
tls = {{ cert = "{}", key = "{}", certs = [{{ cert = "{}", key = "{}", names = ["api.test"] }}, {{ cert = "{}", key = "{}", names = ["*.wild.test"] }}] }}
{extra_listener}

[[route]]
name = "app"
upstream = "{}"
"#,
        p(&site.cert),
        p(&site.key),
        p(&api.cert),
        p(&api.key),
        p(&wild.cert),
        p(&wild.key),
        upstream.url()
    ))
    .await
}

#[tokio::test]
async fn tls_serves_http1_and_http2_by_alpn_with_hsts_and_forwarded_proto() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let up = Upstream::start("app").await;
    let gw = server_gateway(&ca, &up, "").await;
    let addr = gw.addr("public");

    let h1 = https_get(
        addr,
        client_config(&ca, None, &[b"http/1.1"]),
        "/hello",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(h1.status, 200, "{}", h1.body);
    assert_eq!(h1.version, Version::HTTP_11);
    assert_eq!(
        h1.headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let seen = up.last();
    assert_eq!(seen.headers["x-forwarded-proto"], "https");

    let h2 = https_get(
        addr,
        client_config(&ca, None, &[b"h2", b"http/1.1"]),
        "/two",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(h2.status, 200, "{}", h2.body);
    assert_eq!(h2.version, Version::HTTP_2);
    assert!(h2.headers.contains_key("strict-transport-security"));

    // curl, a real client, agrees: HTTP/2 over TLS with the CA trusted.
    let mut curl = Command::new("curl");
    curl.args([
        "-sS",
        "--http2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
    ])
    .arg("--cacert")
    .arg(ca.cert_path())
    .arg("--resolve")
    .arg(format!("localhost:{}:127.0.0.1", addr.port()))
    .arg(format!("https://localhost:{}/curl", addr.port()));
    let out = output(curl).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2 200",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn certificates_are_chosen_by_sni_with_a_default() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let up = Upstream::start("app").await;
    let gw = server_gateway(&ca, &up, "").await;
    let addr = gw.addr("public");
    let cfg = client_config(&ca, None, &[b"http/1.1"]);
    let api = connect(addr, "api.test", cfg.clone()).await.unwrap();
    let api_pem = std::fs::read_to_string(dir.path().join("api.pem")).unwrap();
    assert_eq!(presented(&api), der_of_pem(&api_pem));
    // A wildcard name is verified by the client itself (it checks the name).
    assert!(connect(addr, "x.wild.test", cfg.clone()).await.is_ok());
    // Names no certificate lists get the default one (and a client checking the name
    // refuses it).
    let out = s_client(addr, &["-servername", "other.test"]);
    assert!(
        out.contains("CN = localhost") || out.contains("CN=localhost"),
        "{out}"
    );
    assert!(connect(addr, "other.test", cfg).await.is_err());
}

#[tokio::test]
async fn protocols_below_tls_1_2_and_weak_suites_are_refused_at_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let up = Upstream::start("app").await;
    let gw = server_gateway(&ca, &up, "").await;
    let addr = gw.addr("public");
    // OpenSSL 3 refuses old protocols itself unless the security level is lowered.
    for old in ["-tls1", "-tls1_1"] {
        let out = s_client(addr, &[old, "-cipher", "DEFAULT:@SECLEVEL=0"]);
        assert!(
            !out.contains("New, TLSv1") || out.contains("New, (NONE)"),
            "{old} was accepted:\n{out}"
        );
        assert!(
            out.contains("Cipher is (NONE)") || out.contains("alert"),
            "{out}"
        );
    }
    let out = s_client(addr, &["-tls1_2"]);
    assert!(out.contains("New, TLSv1.2"), "{out}");
    let out = s_client(addr, &["-tls1_3"]);
    assert!(out.contains("New, TLSv1.3"), "{out}");
    // TLS 1.2 without forward secrecy or without AEAD: refused.
    for weak in ["AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"] {
        let out = s_client(addr, &["-tls1_2", "-cipher", weak]);
        assert!(!out.contains("New, TLSv1.2"), "{weak} was accepted:\n{out}");
    }
    // The failures are counted.
    let metrics = crate::support::get(&gw.admin_url("/metrics")).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("rampart_tls_handshake_failures_total"),
        "{text}"
    );
}

#[tokio::test]
async fn a_config_below_tls_1_2_is_refused_with_its_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        r#"version = 1
[[listener]]
name = "public"
bind = "127.0.0.1:0"
tls = { cert = "a.pem", key = "a.key", min_version = "1.1" }
[[route]]
name = "app"
upstream = "http://127.0.0.1:9"
"#,
    )
    .unwrap();
    let out = Command::new(crate::support::bin())
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("listener[0].tls.min_version"), "{text}");
}

#[tokio::test]
async fn certificates_rotate_without_restart_and_a_broken_file_keeps_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let up = Upstream::start("app").await;
    let first = ca.server("site", &["localhost"]);
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
tls = {{ cert = "{}", key = "{}" }}

[[route]]
name = "app"
upstream = "{}"
"#,
        p(&first.cert),
        p(&first.key),
        up.url()
    ))
    .await;
    let addr = gw.addr("public");
    let cfg = client_config(&ca, None, &[b"http/1.1"]);

    // A connection opened before the rotation.
    let old = connect(addr, "localhost", cfg.clone()).await.unwrap();
    assert_eq!(presented(&old), der_of(&first));
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(old))
        .await
        .unwrap();
    tokio::spawn(conn);
    let get = |path: &str| {
        Request::builder()
            .uri(path)
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    assert_eq!(
        send.send_request(get("/before")).await.unwrap().status(),
        200
    );

    // The certificate is replaced as an ACME client or cert-manager would: new files
    // renamed over the old ones.
    let second = ca.server("next", &["localhost"]);
    std::fs::copy(&second.key, dir.path().join("site.key.tmp")).unwrap();
    std::fs::copy(&second.cert, dir.path().join("site.pem.tmp")).unwrap();
    std::fs::rename(dir.path().join("site.key.tmp"), &first.key).unwrap();
    std::fs::rename(dir.path().join("site.pem.tmp"), &first.cert).unwrap();
    let want = der_of(&second);
    let mut rotated = false;
    for _ in 0..600 {
        let c = connect(addr, "localhost", cfg.clone()).await.unwrap();
        if presented(&c) == want {
            rotated = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(rotated, "new handshakes never got the new certificate");
    gw.event("a tls.reload event", |e| {
        e["event"] == "tls.reload" && e["level"] == "info"
    })
    .await;
    // The connection opened before keeps working.
    assert_eq!(
        send.send_request(get("/after")).await.unwrap().status(),
        200
    );

    // A broken certificate file: refused, logged, the running certificate stays.
    std::fs::write(
        dir.path().join("site.pem.tmp"),
        "-----BEGIN CERTIFICATE-----\nbroken\n",
    )
    .unwrap();
    std::fs::rename(dir.path().join("site.pem.tmp"), &first.cert).unwrap();
    let ev = gw
        .event("a tls.reload error", |e| {
            e["event"] == "tls.reload" && e["level"] == "error"
        })
        .await;
    assert!(ev["errors"].to_string().contains("site.pem"), "{ev}");
    let c = connect(addr, "localhost", cfg.clone()).await.unwrap();
    assert_eq!(presented(&c), want);
    assert_eq!(exchange(c, "/still", &[]).await.unwrap().status, 200);
}

#[tokio::test]
async fn redirect_http_answers_308_to_the_https_listener() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let up = Upstream::start("app").await;
    let gw = server_gateway(&ca, &up, "redirect_http = \"127.0.0.1:0\"").await;
    let https = gw.addr("public");
    let redirect = gw.listeners["public.redirect"];
    let head = raw(
        redirect,
        b"GET /a/b?c=1 HTTP/1.1\r\nHost: example.test:8080\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 308"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains(&format!(
            "location: https://example.test:{}/a/b?c=1\r\n",
            https.port()
        )),
        "{head}"
    );
    assert_eq!(up.count(), 0, "a plain request reached the upstream");
    let head = raw(
        redirect,
        b"GET / HTTP/1.1\r\nHost: u@evil.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

async fn mtls_gateway(ca: &Ca, clients: &Ca, up: &Upstream, mode: &str, crl: &str) -> Gateway {
    let site = ca.server("site", &["localhost"]);
    Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
tls = {{ cert = "{}", key = "{}" }}
client_auth = {{ ca = "{}", mode = "{mode}"{crl} }}

[[route]]
name = "billing"
match = {{ path_prefix = "/svc" }}
upstream = "{}"
auth = ["mtls"]
allow_identities = ["spiffe://corp/ns/billing/*"]

[[route]]
name = "open"
upstream = "{}"
"#,
        p(&site.cert),
        p(&site.key),
        p(&clients.cert_path()),
        up.url(),
        up.url(),
    ))
    .await
}

#[tokio::test]
async fn mtls_required_refuses_missing_foreign_and_revoked_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let clients = Ca::new(dir.path(), "clients");
    let stranger_ca = Ca::new(dir.path(), "stranger");
    let good = clients.client(
        "billing",
        Some("spiffe://corp/ns/billing/sa/api"),
        "billing",
    );
    let revoked = clients.client("revoked", Some("spiffe://corp/ns/billing/sa/old"), "old");
    let stranger = stranger_ca.client("stranger", Some("spiffe://corp/ns/billing/sa/x"), "x");
    let crl = clients.crl("clients.crl", &[revoked.serial]);
    let up = Upstream::start("app").await;
    let gw = mtls_gateway(
        &ca,
        &clients,
        &up,
        "required",
        &format!(", crl = [\"{}\"]", p(&crl)),
    )
    .await;
    let addr = gw.addr("public");

    // curl with a valid client certificate.
    let mut curl = Command::new("curl");
    curl.args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(ca.cert_path())
        .arg("--cert")
        .arg(&good.cert)
        .arg("--key")
        .arg(&good.key)
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", addr.port()))
        .arg(format!("https://localhost:{}/svc/pay", addr.port()));
    let out = output(curl).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with("\n200"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        up.last().headers["x-rampart-client-cert-identity"],
        "spiffe://corp/ns/billing/sa/api"
    );
    assert_eq!(
        up.last().headers["x-rampart-subject"],
        "spiffe://corp/ns/billing/sa/api"
    );

    let before = up.count();
    for (what, leaf) in [
        ("no certificate", None),
        ("a revoked certificate", Some(&revoked)),
        ("a foreign CA's certificate", Some(&stranger)),
    ] {
        let r = https_get(
            addr,
            client_config(&ca, leaf, &[b"http/1.1"]),
            "/svc/pay",
            &[],
        )
        .await;
        assert!(r.is_err(), "{what} was served: {:?}", r.map(|a| a.status));
    }
    assert_eq!(up.count(), before, "a refused client reached the upstream");
    gw.event("a handshake failure event", |e| {
        e["event"] == "tls.handshake.fail"
    })
    .await;
}

#[tokio::test]
async fn mtls_optional_lets_routes_require_and_restrict_identities() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let clients = Ca::new(dir.path(), "clients");
    let billing = clients.client(
        "billing",
        Some("spiffe://corp/ns/billing/sa/api"),
        "billing",
    );
    let payments = clients.client(
        "payments",
        Some("spiffe://corp/ns/payments/sa/api"),
        "payments",
    );
    let cn_only = clients.client("cn", None, "legacy-client");
    let up = Upstream::start("app").await;
    let gw = mtls_gateway(&ca, &clients, &up, "optional", "").await;
    let addr = gw.addr("public");

    // Anonymous: the open route serves, and a forged identity header never passes.
    let anon = client_config(&ca, None, &[b"http/1.1"]);
    let r = https_get(
        addr,
        anon.clone(),
        "/open",
        &[(
            "x-rampart-client-cert-identity",
            "spiffe://corp/ns/billing/sa/api",
        )],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(
        !up.last()
            .headers
            .contains_key("x-rampart-client-cert-identity")
    );
    // The mTLS route wants a certificate.
    let r = https_get(addr, anon, "/svc/pay", &[]).await.unwrap();
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("client-certificate-required"), "{}", r.body);

    let r = https_get(
        addr,
        client_config(&ca, Some(&billing), &[b"http/1.1"]),
        "/svc/pay",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = https_get(
        addr,
        client_config(&ca, Some(&payments), &[b"http/1.1"]),
        "/svc/pay",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("identity-not-allowed"), "{}", r.body);
    // Without a SAN the subject CN is the identity, sent upstream on any route.
    let r = https_get(
        addr,
        client_config(&ca, Some(&cn_only), &[b"h2"]),
        "/open",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        up.last().headers["x-rampart-client-cert-identity"],
        "legacy-client"
    );
    gw.event("an mTLS refusal event", |e| {
        e["event"] == "auth.mtls.deny" && e["status"] == 403
    })
    .await;
}

#[tokio::test]
async fn https_upstreams_are_verified_and_get_the_gateways_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let svc_ca = Ca::new(dir.path(), "svc-ca");
    let other_ca = Ca::new(dir.path(), "other-ca");
    let gw_clients = Ca::new(dir.path(), "gw-clients");
    let svc = svc_ca.server("svc", &["svc.internal"]);
    let gw_cert = gw_clients.client("gateway", Some("spiffe://corp/gateway"), "gateway");
    // The upstream requires a client certificate from gw-clients.
    let upstream_cfg = {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(
                rustls_pki_types::CertificateDer::from_pem_slice(gw_clients.cert_pem.as_bytes())
                    .unwrap(),
            )
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let chain = rustls_pki_types::CertificateDer::pem_file_iter(&svc.cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&svc.key).unwrap();
        let mut c = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(c)
    };
    let up = Upstream::start_tls("svc", upstream_cfg).await;
    let url = format!("https://127.0.0.1:{}", up.addr.port());
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"

[[route]]
name = "svc"
match = {{ path_prefix = "/svc" }}
upstream = "{url}"
upstream_tls = {{ ca = "{}", cert = "{}", key = "{}", server_name = "svc.internal" }}

[[route]]
name = "wrong-ca"
match = {{ path_prefix = "/wrong" }}
upstream = "{url}"
upstream_tls = {{ ca = "{}", cert = "{}", key = "{}", server_name = "svc.internal" }}

[[route]]
name = "no-client-cert"
match = {{ path_prefix = "/anon" }}
upstream = "{url}"
upstream_tls = {{ ca = "{}", server_name = "svc.internal" }}
"#,
        p(&svc_ca.cert_path()),
        p(&gw_cert.cert),
        p(&gw_cert.key),
        p(&other_ca.cert_path()),
        p(&gw_cert.cert),
        p(&gw_cert.key),
        p(&svc_ca.cert_path()),
    ))
    .await;
    let r = crate::support::get(&gw.url("/svc/x")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(up.last().headers.contains_key("x-test-peer-cert"));
    let n = up.count();
    let r = crate::support::get(&gw.url("/wrong/x")).await;
    assert_eq!(r.status, 502, "an upstream with an unknown CA was trusted");
    let r = crate::support::get(&gw.url("/anon/x")).await;
    assert_eq!(
        r.status, 502,
        "the upstream took a client without a certificate"
    );
    assert_eq!(up.count(), n);
}

/// Runs a command in `dir`, failing the test with its output when it fails.
fn run_in(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn an_ocsp_response_file_is_stapled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new(d, "ca");
    let site = ca.server("site", &["localhost"]);
    // A real OCSP response from openssl's responder: "good" for the site's serial.
    std::fs::write(
        d.join("index.txt"),
        format!(
            "V\t991231235959Z\t\t{:02X}\tunknown\t/CN=localhost\n",
            site.serial
        ),
    )
    .unwrap();
    run_in(
        d,
        "openssl",
        &[
            "ocsp",
            "-issuer",
            "ca.pem",
            "-cert",
            "site.pem",
            "-no_nonce",
            "-reqout",
            "req.der",
        ],
    );
    run_in(
        d,
        "openssl",
        &[
            "ocsp",
            "-index",
            "index.txt",
            "-rsigner",
            "ca.pem",
            "-rkey",
            "ca.key",
            "-CA",
            "ca.pem",
            "-reqin",
            "req.der",
            "-respout",
            "resp.der",
            "-ndays",
            "1",
        ],
    );
    let up = Upstream::start("app").await;
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:0"
tls = {{ cert = "{}", key = "{}", ocsp = "{}" }}

[[route]]
name = "app"
upstream = "{}"
"#,
        p(&site.cert),
        p(&site.key),
        p(&d.join("resp.der")),
        up.url()
    ))
    .await;
    let out = s_client(gw.addr("public"), &["-status", "-servername", "localhost"]);
    assert!(out.contains("OCSP Response Status: successful"), "{out}");
    assert!(out.contains("Cert Status: good"), "{out}");
}

#[tokio::test]
async fn a_new_crl_applies_to_new_handshakes_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let clients = Ca::new(dir.path(), "clients");
    let client = clients.client("svc", Some("spiffe://corp/ns/billing/sa/api"), "svc");
    let crl = clients.crl("clients.crl", &[]);
    let up = Upstream::start("app").await;
    let gw = mtls_gateway(
        &ca,
        &clients,
        &up,
        "required",
        &format!(", crl = [\"{}\"]", p(&crl)),
    )
    .await;
    let addr = gw.addr("public");
    let cfg = client_config(&ca, Some(&client), &[b"http/1.1"]);
    let r = https_get(addr, cfg.clone(), "/open", &[]).await.unwrap();
    assert_eq!(r.status, 200);
    // The CA revokes the client: the CRL file is replaced.
    let next = clients.crl("clients.crl.new", &[client.serial]);
    std::fs::rename(&next, &crl).unwrap();
    let mut refused = false;
    for _ in 0..600 {
        if https_get(addr, cfg.clone(), "/open", &[]).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(refused, "the revoked client is still served");
}
