//! Issuance against a real ACME server: Debian's `pebble` with `pebble-challtestsrv` as its DNS
//! (every name resolves to 127.0.0.1), and small challenge servers that answer from
//! [`Challenges`] the way the gateway's listeners do.
//!
//! The tests skip (with a message) when the two binaries are not installed, except under CI
//! (`CI` set), where that is a failure.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener as StdTcpListener, TcpStream as StdTcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rampart_acme::{
    ACME_TLS_ALPN, AcmeError, AcmeSettings, AlpnChallengeResolver, ChallengeKind, Challenges,
    Issuer, inspect_certificate,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type TestResult<T = ()> = Result<T, Box<dyn Error + Send + Sync>>;

const PEBBLE: &str = "/usr/bin/pebble";
const CHALLTESTSRV: &str = "/usr/bin/pebble-challtestsrv";
/// Cap on waiting for a child process to listen; readiness is polled, not assumed.
const START_CAP: Duration = Duration::from_secs(60);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A TCP port that is free now (and, for DNS, free on UDP too).
fn free_port(udp_too: bool) -> TestResult<u16> {
    for _ in 0..50 {
        let tcp = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = tcp.local_addr()?.port();
        if !udp_too || UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port".into())
}

/// Child processes, killed when dropped; their output is printed when a test failed.
struct Children {
    procs: Vec<(&'static str, Child, PathBuf)>,
}

impl Drop for Children {
    fn drop(&mut self) {
        for (name, child, log) in &mut self.procs {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                let out = std::fs::read_to_string(&*log).unwrap_or_default();
                eprintln!("----- {name} output -----\n{out}");
            }
        }
    }
}

impl Children {
    fn spawn(&mut self, name: &'static str, cmd: &mut Command, log: PathBuf) -> TestResult {
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn()?;
        self.procs.push((name, child, log));
        Ok(())
    }

    /// Fails early when a child has already exited (a bad flag, a port taken).
    fn check_alive(&mut self) -> TestResult {
        for (name, child, log) in &mut self.procs {
            if let Some(status) = child.try_wait()? {
                let out = std::fs::read_to_string(&*log).unwrap_or_default();
                return Err(format!("{name} exited with {status}:\n{out}").into());
            }
        }
        Ok(())
    }
}

/// A running pebble + challtestsrv pair with its own ports and state.
struct Pebble {
    dir: tempfile::TempDir,
    directory: String,
    ca: PathBuf,
    mgmt_port: u16,
    http_port: u16,
    tls_port: u16,
    children: Children,
}

impl Pebble {
    /// Starts both servers, or returns `None` when they are not installed.
    async fn start() -> TestResult<Option<Pebble>> {
        if !Path::new(PEBBLE).exists() || !Path::new(CHALLTESTSRV).exists() {
            let missing =
                format!("{PEBBLE} or {CHALLTESTSRV} is not installed (apt-get install pebble)");
            // CI must run these tests, not skip them.
            if std::env::var_os("CI").is_some() {
                return Err(missing.into());
            }
            eprintln!("skipping: {missing}");
            return Ok(None);
        }
        let dir = tempfile::tempdir()?;
        let (ca, cert, key) = write_pebble_tls(dir.path())?;

        let dns_port = free_port(true)?;
        let challtest_mgmt = free_port(false)?;
        let listen_port = free_port(false)?;
        let mgmt_port = free_port(false)?;
        let http_port = free_port(false)?;
        let tls_port = free_port(false)?;

        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{listen_port}"),
                "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
                "certificate": cert,
                "privateKey": key,
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        let config_path = dir.path().join("pebble-config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;

        let mut children = Children { procs: Vec::new() };
        children.spawn(
            "pebble-challtestsrv",
            Command::new(CHALLTESTSRV)
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-management", &format!("127.0.0.1:{challtest_mgmt}")]),
            dir.path().join("challtestsrv.log"),
        )?;
        children.spawn(
            "pebble",
            Command::new(PEBBLE)
                .arg("-config")
                .arg(&config_path)
                .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                // Every order validates its challenges: no authorization reuse.
                .env("PEBBLE_AUTHZREUSE", "0"),
            dir.path().join("pebble.log"),
        )?;

        let mut pebble = Pebble {
            directory: format!("https://127.0.0.1:{listen_port}/dir"),
            ca,
            dir,
            mgmt_port,
            http_port,
            tls_port,
            children,
        };
        for port in [challtest_mgmt, listen_port, mgmt_port] {
            pebble.wait_listening(port).await?;
        }
        Ok(Some(pebble))
    }

    async fn wait_listening(&mut self, port: u16) -> TestResult {
        let deadline = Instant::now() + START_CAP;
        loop {
            if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            self.children.check_alive()?;
            if Instant::now() > deadline {
                return Err(format!("nothing listens on port {port} after {START_CAP:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn settings(&self, state: &str, domains: &[&str], challenge: ChallengeKind) -> AcmeSettings {
        let mut s = AcmeSettings::new(
            self.directory.clone(),
            domains.iter().map(|d| d.to_string()).collect(),
            self.dir.path().join(state),
        );
        s.contact = vec!["mailto:ops@rampart.test".into()];
        s.challenge = challenge;
        s.directory_ca = Some(self.ca.clone());
        s
    }

    /// Pebble's root (it changes every run), fetched from the management interface.
    async fn root(&self) -> TestResult<CertificateDer<'static>> {
        let ca = self.ca.clone();
        let port = self.mgmt_port;
        tokio::task::spawn_blocking(move || -> TestResult<CertificateDer<'static>> {
            let mut roots = RootCertStore::empty();
            roots.add(CertificateDer::from_pem_file(&ca)?)?;
            let config = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let conn = ClientConnection::new(
                Arc::new(config),
                ServerName::try_from("127.0.0.1")?.to_owned(),
            )?;
            let sock = StdTcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
            sock.set_read_timeout(Some(Duration::from_secs(30)))?;
            let mut tls = rustls::StreamOwned::new(conn, sock);
            tls.write_all(
                b"GET /roots/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            )?;
            let mut response = Vec::new();
            // The body is complete once the server closes; an unclean close is fine here.
            let _ = tls.read_to_end(&mut response);
            let root = CertificateDer::pem_slice_iter(&response)
                .next()
                .ok_or("no certificate in the /roots/0 answer")??;
            Ok(root)
        })
        .await?
    }
}

/// A CA and a certificate for 127.0.0.1 / localhost signed by it, for pebble's own HTTPS.
fn write_pebble_tls(dir: &Path) -> TestResult<(PathBuf, PathBuf, PathBuf)> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Rampart test directory CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_issuer = rcgen::Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca_issuer)?;

    let paths = (
        dir.join("directory-ca.pem"),
        dir.join("pebble-cert.pem"),
        dir.join("pebble-key.pem"),
    );
    std::fs::write(&paths.0, ca_cert.pem())?;
    std::fs::write(&paths.1, cert.pem())?;
    std::fs::write(&paths.2, key.serialize_pem())?;
    Ok(paths)
}

/// The http-01 side of a listener: answers `/.well-known/acme-challenge/{token}`.
async fn serve_http01(
    port: u16,
    challenges: Arc<Challenges>,
) -> TestResult<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    Ok(tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let challenges = challenges.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head
                    .lines()
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .unwrap_or("");
                let response = match challenges.http01_for_path(path) {
                    Some(body) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_string()
                    }
                };
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    }))
}

/// A listener's ordinary certificate resolver; this one has no site certificate.
#[derive(Debug)]
struct NoSiteCertificate;
impl ResolvesServerCert for NoSiteCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        None
    }
}

/// The tls-alpn-01 side of a TLS listener: [`AlpnChallengeResolver`] with acme-tls/1 among
/// the ALPN protocols; connections that negotiated it are closed after the handshake.
async fn serve_tls_alpn01(
    port: u16,
    challenges: Arc<Challenges>,
) -> TestResult<tokio::task::JoinHandle<()>> {
    let resolver = AlpnChallengeResolver::new(Arc::new(NoSiteCertificate), challenges);
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    let config = Arc::new(config);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    Ok(tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let config = config.clone();
            let Ok(sock) = sock.into_std() else { continue };
            tokio::task::spawn_blocking(move || {
                let _ = sock.set_nonblocking(false);
                let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = sock.set_write_timeout(Some(Duration::from_secs(10)));
                let Ok(mut conn) = ServerConnection::new(config) else {
                    return;
                };
                let mut sock = sock;
                while conn.is_handshaking() {
                    if conn.complete_io(&mut sock).is_err() {
                        return;
                    }
                }
                if conn.alpn_protocol() == Some(ACME_TLS_ALPN) {
                    conn.send_close_notify();
                    let _ = conn.complete_io(&mut sock);
                }
            });
        }
    }))
}

/// A TLS handshake in memory between a server using the issued chain and key and a client
/// that trusts only pebble's root: proves the chain verifies for `name` and that the key is
/// the leaf's (the client checks the server's signature).
fn handshake_with_issued(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    root: CertificateDer<'static>,
    name: &str,
) -> TestResult {
    let server_config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    let mut roots = RootCertStore::empty();
    roots.add(root)?;
    let client_config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut client = ClientConnection::new(
        Arc::new(client_config),
        ServerName::try_from(name.to_owned())?,
    )?;
    let mut server = ServerConnection::new(Arc::new(server_config))?;
    for _ in 0..10 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf)?;
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd)?;
            server.process_new_packets()?;
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf)?;
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd)?;
            client.process_new_packets()?;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    Err("handshake did not finish".into())
}

/// Checks the stored chain and key: parse, names, verification to pebble's root, key match,
/// modes. Returns the chain PEM.
async fn check_issued(pebble: &Pebble, issuer: &Issuer, names: &[&str]) -> TestResult<String> {
    let files = issuer.files();
    let chain_pem = std::fs::read_to_string(&files.cert)?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(chain_pem.as_bytes()).collect::<Result<_, _>>()?;
    assert!(
        chain.len() >= 2,
        "leaf and intermediate expected, got {} certificates",
        chain.len()
    );
    let info = inspect_certificate(chain_pem.as_bytes())?;
    for name in names {
        assert!(
            info.names.iter().any(|n| n == name),
            "{name} not in {:?}",
            info.names
        );
    }
    assert!(info.not_after > SystemTime::now());

    let key = PrivateKeyDer::from_pem_file(&files.key)?;
    // rustls builds the pair and confirms the key is the leaf's.
    let ck = CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider())?;
    ck.keys_match()?;
    let signer = ck
        .key
        .choose_scheme(&[
            rustls::SignatureScheme::ECDSA_NISTP256_SHA256,
            rustls::SignatureScheme::ED25519,
        ])
        .ok_or("the key cannot sign")?;
    assert!(!signer.sign(b"rampart")?.is_empty());

    let root = pebble.root().await?;
    for name in names {
        handshake_with_issued(chain.clone(), key.clone_key(), root.clone(), name)?;
    }

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode(&files.key)?, 0o600, "key.pem mode");
        assert_eq!(mode(issuer.account_file())?, 0o600, "account.json mode");
        assert_eq!(
            mode(&issuer.settings().state_dir)?,
            0o700,
            "state folder mode"
        );
        assert_eq!(
            mode(files.cert.parent().ok_or("no folder")?)?,
            0o700,
            "certificate folder mode"
        );
    }
    Ok(chain_pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_issue_reuses_account_and_renews() -> TestResult {
    let Some(pebble) = Pebble::start().await? else {
        return Ok(());
    };
    let challenges = Arc::new(Challenges::new());
    let server = serve_http01(pebble.http_port, challenges.clone()).await?;
    let names = ["app.rampart.test", "www.app.rampart.test"];

    let issuer = Issuer::new(
        pebble.settings("state", &names, ChallengeKind::Http01),
        challenges.clone(),
    )?;
    assert!(
        !issuer.current_is_fresh(SystemTime::now()),
        "nothing issued yet"
    );
    let files = issuer.issue().await?;
    assert_eq!(files, issuer.files());
    assert_eq!(
        files.cert,
        pebble.dir.path().join("state/app.rampart.test/cert.pem")
    );
    assert_eq!(
        files.key,
        pebble.dir.path().join("state/app.rampart.test/key.pem")
    );
    let first_chain = check_issued(&pebble, &issuer, &names).await?;
    assert!(issuer.current_is_fresh(SystemTime::now()));
    assert!(
        challenges.is_empty(),
        "answers are withdrawn once the order is settled"
    );

    // A second issuer over the same state reuses the stored account: account.json is
    // neither rewritten nor replaced.
    let account_path = issuer.account_file().to_path_buf();
    let account_before = std::fs::read(&account_path)?;
    let account_mtime = std::fs::metadata(&account_path)?.modified()?;
    drop(issuer);
    let second = Issuer::new(
        pebble.settings("state", &names, ChallengeKind::Http01),
        challenges.clone(),
    )?;
    assert!(
        second.current_is_fresh(SystemTime::now()),
        "the stored certificate is picked up"
    );
    second.issue().await?;
    assert_eq!(
        std::fs::read(&account_path)?,
        account_before,
        "account.json changed"
    );
    assert_eq!(
        std::fs::metadata(&account_path)?.modified()?,
        account_mtime,
        "account.json rewritten"
    );
    let second_chain = check_issued(&pebble, &second, &names).await?;
    assert_ne!(
        second_chain, first_chain,
        "a new certificate replaced the old one"
    );

    // Renewal: with renew_before longer than the certificate's whole lifetime it is due now.
    let lifetime = inspect_certificate(second_chain.as_bytes())?.lifetime();
    let mut due = pebble.settings("state", &names, ChallengeKind::Http01);
    due.renew_before = lifetime + Duration::from_secs(86_400);
    let due = Issuer::new(due, challenges.clone())?;
    assert!(!due.current_is_fresh(SystemTime::now()));
    // And a certificate that lacks a newly configured name is not fresh either.
    let more = Issuer::new(
        pebble.settings(
            "state",
            &["app.rampart.test", "new.rampart.test"],
            ChallengeKind::Http01,
        ),
        challenges.clone(),
    )?;
    assert!(!more.current_is_fresh(SystemTime::now()));

    server.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_issue() -> TestResult {
    let Some(pebble) = Pebble::start().await? else {
        return Ok(());
    };
    let challenges = Arc::new(Challenges::new());
    let server = serve_tls_alpn01(pebble.tls_port, challenges.clone()).await?;
    let names = ["alpn.rampart.test"];

    let issuer = Issuer::new(
        pebble.settings("state", &names, ChallengeKind::TlsAlpn01),
        challenges.clone(),
    )?;
    issuer.issue().await?;
    check_issued(&pebble, &issuer, &names).await?;
    assert!(issuer.current_is_fresh(SystemTime::now()));
    assert!(
        challenges.is_empty(),
        "answers are withdrawn once the order is settled"
    );
    server.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_validation_names_the_domain_and_keeps_old_files() -> TestResult {
    let Some(pebble) = Pebble::start().await? else {
        return Ok(());
    };
    let challenges = Arc::new(Challenges::new());
    // No http-01 server runs: pebble's validation connection is refused.
    let issuer = Issuer::new(
        pebble.settings("state", &["down.rampart.test"], ChallengeKind::Http01),
        challenges.clone(),
    )?;
    let files = issuer.files();
    std::fs::create_dir_all(files.cert.parent().ok_or("no folder")?)?;
    std::fs::write(&files.cert, "old chain")?;
    std::fs::write(&files.key, "old key")?;

    let err = match issuer.issue().await {
        Ok(_) => return Err("issuance without a challenge server succeeded".into()),
        Err(e) => e,
    };
    assert!(matches!(err, AcmeError::NotAuthorized(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("the CA did not authorize the order: down.rampart.test: http-01 "),
        "{text}"
    );
    assert!(
        challenges.is_empty(),
        "answers are withdrawn after a failure"
    );
    assert_eq!(std::fs::read_to_string(&files.cert)?, "old chain");
    assert_eq!(std::fs::read_to_string(&files.key)?, "old key");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_issues_then_stops_on_shutdown() -> TestResult {
    let Some(pebble) = Pebble::start().await? else {
        return Ok(());
    };
    let challenges = Arc::new(Challenges::new());
    let server = serve_http01(pebble.http_port, challenges.clone()).await?;
    let names = ["run.rampart.test"];
    let issuer = Issuer::new(
        pebble.settings("state", &names, ChallengeKind::Http01),
        challenges.clone(),
    )?;
    let expected = issuer.files();

    let (issued_tx, mut issued_rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(issuer.run(
        move |files| {
            let _ = issued_tx.send(files.clone());
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let files = tokio::time::timeout(Duration::from_secs(300), issued_rx.recv())
        .await?
        .ok_or("run ended without issuing")?;
    assert_eq!(files, expected);
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(60), task).await??;
    // Fresh after the first issuance: the loop issued exactly once.
    assert!(issued_rx.try_recv().is_err());

    let check = Issuer::new(
        pebble.settings("state", &names, ChallengeKind::Http01),
        challenges,
    )?;
    assert!(check.current_is_fresh(SystemTime::now()));
    check_issued(&pebble, &check, &names).await?;
    server.abort();
    Ok(())
}
