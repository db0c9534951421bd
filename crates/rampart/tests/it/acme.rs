//! ACME end to end: the gateway obtains its certificate from Debian's `pebble` (a real RFC 8555
//! server) on loopback, answering http-01 on its `redirect_http` address and tls-alpn-01 on the
//! TLS listener, and then serves the issued certificate to new handshakes without a restart.
//! `pebble-challtestsrv` is the DNS server that points every name at 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::pki::Ca;
use crate::support::{Gateway, PATIENCE, Upstream, eventually};

const PEBBLE: &str = "/usr/bin/pebble";
const CHALLTESTSRV: &str = "/usr/bin/pebble-challtestsrv";

fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        // The DNS server needs the UDP port too.
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// pebble and its DNS server, killed when dropped.
struct Pebble {
    _dir: tempfile::TempDir,
    children: Vec<Child>,
    directory: String,
    /// The CA of pebble's own HTTPS listener (not of the certificates it issues).
    listener_ca: PathBuf,
    mgmt: SocketAddr,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Pebble {
    /// Starts pebble, validating challenges on `http_port` (http-01) and `tls_port`
    /// (tls-alpn-01) of 127.0.0.1.
    async fn start(http_port: u16, tls_port: u16) -> Pebble {
        assert!(
            Path::new(PEBBLE).exists() && Path::new(CHALLTESTSRV).exists(),
            "pebble is not installed (scripts/services.sh installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new(dir.path(), "pebble-listener-ca");
        let own = ca.server("pebble", &["127.0.0.1", "localhost"]);
        let (dns, listen, mgmt, challtest_mgmt) =
            (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{listen}"),
                "managementListenAddress": format!("127.0.0.1:{mgmt}"),
                "certificate": own.cert,
                "privateKey": own.key,
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let dns_server = Command::new(CHALLTESTSRV)
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{challtest_mgmt}")])
            .stdout(log("challtestsrv.log"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pebble = Command::new(PEBBLE)
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log("pebble.log"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let p = Pebble {
            children: vec![dns_server, pebble],
            directory: format!("https://127.0.0.1:{listen}/dir"),
            listener_ca: ca.cert_path(),
            mgmt: SocketAddr::from(([127, 0, 0, 1], mgmt)),
            _dir: dir,
        };
        for port in [listen, mgmt, challtest_mgmt] {
            eventually("pebble to listen", || {
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .ok()
                    .map(|_| ())
            })
            .await;
        }
        p
    }

    /// The root the issued certificates chain to (new on every pebble start).
    async fn issuing_root(&self) -> CertificateDer<'static> {
        let url = format!("https://{}/roots/0", self.mgmt);
        let ca = self.listener_ca.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("curl")
                .args(["-sS", "--cacert"])
                .arg(ca)
                .arg(url)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        CertificateDer::from_pem_slice(&out.stdout).expect("pebble's root")
    }
}

/// Connects as `name` trusting only `root`; the leaf presented, when the handshake verified.
async fn verified_leaf(
    addr: SocketAddr,
    name: &str,
    root: &CertificateDer<'static>,
) -> Option<Vec<u8>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await
        .ok()?;
    Some(tls.get_ref().1.peer_certificates()?[0].to_vec())
}

async fn issues_and_serves(challenge: &str) {
    let (http_port, tls_port) = (free_port(), free_port());
    let pebble = Pebble::start(http_port, tls_port).await;
    let up = Upstream::start("app").await;
    let domain = format!("{}.rampart.test", challenge.replace('-', ""));
    let gw = Gateway::start(&format!(
        r#"
[[listener]]
name = "public"
bind = "127.0.0.1:{tls_port}"
redirect_http = "127.0.0.1:{http_port}"
tls = {{ acme = {{ directory = "{}", domains = ["{domain}"], contact = "mailto:ops@rampart.test", challenge = "{challenge}", directory_ca = "{}" }} }}

[[route]]
name = "app"
upstream = "{}"
"#,
        pebble.directory,
        pebble.listener_ca.display(),
        up.url()
    ))
    .await;
    let addr = gw.addr("public");
    let root = pebble.issuing_root().await;
    // Until the certificate is issued a placeholder is served, which pebble's root does not
    // verify; afterwards new handshakes get the issued one, without a restart.
    let deadline = std::time::Instant::now() + PATIENCE * 4;
    let leaf = loop {
        if let Some(leaf) = verified_leaf(addr, &domain, &root).await {
            break leaf;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no certificate from pebble; gateway log:\n{}",
            std::fs::read_to_string(gw.dir.path().join("stderr.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // It is the one kept in data_dir, with its key readable by the gateway only.
    let stored = gw.dir.path().join("data/acme").join(&domain);
    let pem = std::fs::read(stored.join("cert.pem")).unwrap();
    assert_eq!(CertificateDer::from_pem_slice(&pem).unwrap().to_vec(), leaf);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(stored.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the key is readable by others: {mode:o}");
    gw.event("a tls.reload after issuance", |e| {
        e["event"] == "tls.reload" && e["level"] == "info"
    })
    .await;
}

#[tokio::test]
async fn acme_http01_certificate_is_obtained_from_pebble_and_served() {
    issues_and_serves("http-01").await;
}

#[tokio::test]
async fn acme_tls_alpn01_certificate_is_obtained_from_pebble_and_served() {
    issues_and_serves("tls-alpn-01").await;
}
