//! TLS termination: a listener's `tls` and `client_auth` settings turned into a rustls server
//! config (TLS 1.2+ only, AEAD forward-secret suites only, certificates by SNI, OCSP stapling,
//! client certificates checked against CAs and CRLs), and the identity a client certificate
//! proves.
//!
//! Files are read when a config is built; rotation is building a new one and swapping it in
//! (see [`crate::Gate::tls`]): handshakes that start afterwards see the new certificate, open
//! connections keep the one they negotiated.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rampart_config::{ClientAuth, ClientAuthMode, ListenerTls};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

/// The ALPN protocol of ACME `tls-alpn-01` validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Wraps a listener's certificate resolver in one that also answers ACME `tls-alpn-01`
/// validation handshakes.
pub type AlpnChallengeWrap =
    Arc<dyn Fn(Arc<dyn ResolvesServerCert>) -> Arc<dyn ResolvesServerCert> + Send + Sync>;

/// What a listener's TLS config is built from beside its config section.
#[derive(Default, Clone)]
pub struct TlsExtras {
    /// The default certificate when the config names none (an ACME certificate, or a
    /// placeholder until the first one is issued).
    pub default_cert: Option<Arc<CertifiedKey>>,
    /// Answers ACME `tls-alpn-01` on this listener (and offers the `acme-tls/1` ALPN).
    pub alpn_challenges: Option<AlpnChallengeWrap>,
}

impl std::fmt::Debug for TlsExtras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsExtras")
            .field("default_cert", &self.default_cert.is_some())
            .field("alpn_challenges", &self.alpn_challenges.is_some())
            .finish()
    }
}

/// The crypto provider every TLS config of the gateway uses: aws-lc-rs, restricted to AEAD
/// suites with forward secrecy (all TLS 1.3 suites; ECDHE with AES-GCM or ChaCha20-Poly1305
/// on TLS 1.2).
pub fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    p.cipher_suites.retain(|s| match s {
        SupportedCipherSuite::Tls13(_) => true,
        SupportedCipherSuite::Tls12(s) => {
            let name = format!("{:?}", s.common.suite);
            name.starts_with("TLS_ECDHE_")
                && (name.contains("_GCM_") || name.contains("CHACHA20_POLY1305"))
        }
    });
    Arc::new(p)
}

/// Reads a PEM certificate chain and its private key into a signing certificate, checking
/// that the key belongs to the leaf.
pub fn load_certified_key(
    cert: &Path,
    key: &Path,
    ocsp: Option<&Path>,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, String> {
    let chain = read_certs(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "{}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
            key.display()
        )
    })?;
    let mut ck = CertifiedKey::from_der(chain, key_der, provider).map_err(|e| {
        format!(
            "{} and {}: {e} (is the key the certificate's?)",
            cert.display(),
            key.display()
        )
    })?;
    if let Some(path) = ocsp {
        let der = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if der.is_empty() {
            return Err(format!("{}: empty OCSP response", path.display()));
        }
        ck.ocsp = Some(der);
    }
    Ok(Arc::new(ck))
}

/// Reads every certificate of a PEM file; none is an error.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.starts_with(b"-----") || bytes.iter().take(64).all(u8::is_ascii) {
        let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if crls.is_empty() {
            return Err(format!("{}: no PEM CRL in it", path.display()));
        }
        Ok(crls)
    } else {
        Ok(vec![CertificateRevocationListDer::from(bytes)])
    }
}

/// Chooses the certificate for a handshake: the exact SNI name, else a wildcard covering
/// it, else the default.
#[derive(Debug)]
struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().map(str::to_ascii_lowercase);
        if let Some(name) = name.as_deref() {
            if let Some(c) = self.exact.get(name) {
                return Some(Arc::clone(c));
            }
            if let Some((_, parent)) = name.split_once('.')
                && let Some(c) = self.wildcard.get(parent)
            {
                return Some(Arc::clone(c));
            }
        }
        self.default.clone()
    }
}

/// Builds a listener's rustls server config from its `tls` and `client_auth` sections.
/// Every file is read now; errors name the file and what is wrong with it.
pub fn server_config(
    tls: &ListenerTls,
    client_auth: Option<&ClientAuth>,
    extras: &TlsExtras,
) -> Result<Arc<ServerConfig>, String> {
    let provider = provider();
    let mut resolver = SniResolver {
        exact: HashMap::new(),
        wildcard: HashMap::new(),
        default: None,
    };
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        resolver.default = Some(load_certified_key(
            cert,
            key,
            tls.ocsp.as_deref(),
            &provider,
        )?);
    } else if let Some(c) = &extras.default_cert {
        resolver.default = Some(Arc::clone(c));
    }
    for c in &tls.certs {
        let ck = load_certified_key(&c.cert, &c.key, c.ocsp.as_deref(), &provider)?;
        for n in &c.names {
            let n = n.to_ascii_lowercase();
            match n.strip_prefix("*.") {
                Some(parent) => resolver.wildcard.insert(parent.to_owned(), Arc::clone(&ck)),
                None => resolver.exact.insert(n, Arc::clone(&ck)),
            };
        }
        if resolver.default.is_none() {
            resolver.default = Some(ck);
        }
    }
    if resolver.default.is_none() {
        return Err("no certificate to serve".to_owned());
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version.as_str() {
        "1.3" => &[&rustls::version::TLS13],
        "1.2" => &[&rustls::version::TLS13, &rustls::version::TLS12],
        other => return Err(format!("TLS {other} is not allowed; use 1.2 or 1.3")),
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = match client_auth {
        None => builder.with_no_client_auth(),
        Some(ca) => builder.with_client_cert_verifier(client_verifier(ca, &provider)?),
    };
    let resolver: Arc<dyn ResolvesServerCert> = Arc::new(resolver);
    let resolver = match &extras.alpn_challenges {
        Some(wrap) => wrap(resolver),
        None => resolver,
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if extras.alpn_challenges.is_some() {
        config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
    }
    config.ignore_client_order = true;
    if let Ok(t) = rustls::crypto::aws_lc_rs::Ticketer::new() {
        config.ticketer = t;
    }
    Ok(Arc::new(config))
}

fn client_verifier(
    ca: &ClientAuth,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for c in read_certs(&ca.ca)? {
        roots
            .add(c)
            .map_err(|e| format!("{}: not a usable CA certificate: {e}", ca.ca.display()))?;
    }
    let mut crls = Vec::new();
    for path in &ca.crl {
        crls.extend(read_crls(path)?);
    }
    let mut b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    if !crls.is_empty() {
        b = b.with_crls(crls).only_check_end_entity_revocation();
    }
    if ca.mode == ClientAuthMode::Optional {
        b = b.allow_unauthenticated();
    }
    b.build()
        .map_err(|e| format!("client_auth ({}): {e}", ca.ca.display()))
}

/// The identity a verified client certificate proves: its first SAN URI (a SPIFFE id),
/// else its first DNS SAN, else its subject's common name.
pub fn certificate_identity(der: &[u8]) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        let names = &san.value.general_names;
        let uri = names.iter().find_map(|n| match n {
            GeneralName::URI(u) => Some(*u),
            _ => None,
        });
        let dns = names.iter().find_map(|n| match n {
            GeneralName::DNSName(d) => Some(*d),
            _ => None,
        });
        if let Some(id) = uri.or(dns).filter(|s| !s.is_empty()) {
            return Some(id.to_owned());
        }
    }
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// What a TLS connection negotiated, for the handler.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: &'static str,
    /// The cipher suite's IANA name.
    pub cipher: String,
    /// The negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// The SNI name the client asked for.
    pub server_name: Option<String>,
    /// The identity of the verified client certificate (see [`certificate_identity`]).
    pub client_identity: Option<String>,
}

impl TlsInfo {
    pub(crate) fn of(conn: &rustls::ServerConnection) -> TlsInfo {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        };
        TlsInfo {
            version,
            cipher: conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name: conn.server_name().map(str::to_owned),
            client_identity: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|leaf| certificate_identity(leaf)),
        }
    }
}

/// Whether `identity` is allowed by a route's `allow_identities` patterns: exact, or a
/// prefix ending in `*`.
pub fn identity_allowed(identity: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => identity.starts_with(prefix),
        None => identity == p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn self_signed(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn tls_section(cert: Option<&Path>, key: Option<&Path>) -> ListenerTls {
        ListenerTls {
            cert: cert.map(Path::to_path_buf),
            key: key.map(Path::to_path_buf),
            ocsp: None,
            min_version: "1.2".into(),
            certs: vec![],
            acme: None,
        }
    }

    #[test]
    fn only_aead_forward_secret_suites_are_offered() {
        let p = provider();
        assert!(!p.cipher_suites.is_empty());
        for s in &p.cipher_suites {
            let name = format!("{:?}", s.suite());
            assert!(
                name.starts_with("TLS13_") || name.starts_with("TLS_ECDHE_"),
                "{name}"
            );
            assert!(
                name.contains("GCM") || name.contains("CHACHA20_POLY1305"),
                "{name}"
            );
        }
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed(&["a.test"]);
        let (_, other_key) = self_signed(&["b.test"]);
        let c = write(dir.path(), "a.pem", &cert);
        let k = write(dir.path(), "b.key", &other_key);
        let err = server_config(
            &tls_section(Some(&c), Some(&k)),
            None,
            &TlsExtras::default(),
        )
        .unwrap_err();
        assert!(err.contains("a.pem") && err.contains("b.key"), "{err}");
    }

    #[test]
    fn garbage_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let c = write(dir.path(), "c.pem", "not a certificate");
        let k = write(dir.path(), "k.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n");
        let err = server_config(
            &tls_section(Some(&c), Some(&k)),
            None,
            &TlsExtras::default(),
        )
        .unwrap_err();
        assert!(err.contains("c.pem"), "{err}");
        let missing = dir.path().join("missing.pem");
        let err = server_config(
            &tls_section(Some(&missing), Some(&k)),
            None,
            &TlsExtras::default(),
        )
        .unwrap_err();
        assert!(err.contains("missing.pem"), "{err}");
    }

    #[test]
    fn versions_below_1_2_cannot_be_configured() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(&["a.test"]);
        let c = write(dir.path(), "a.pem", &cert);
        let k = write(dir.path(), "a.key", &key);
        let mut t = tls_section(Some(&c), Some(&k));
        t.min_version = "1.1".into();
        assert!(server_config(&t, None, &TlsExtras::default()).is_err());
        t.min_version = "1.3".into();
        assert!(server_config(&t, None, &TlsExtras::default()).is_ok());
    }

    #[test]
    fn identity_prefers_uri_then_dns_then_common_name() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["svc.internal".to_owned()]).unwrap();
        p.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://corp/ns/billing/sa/api".try_into().unwrap(),
        ));
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "billing");
        let der = p.self_signed(&key).unwrap().der().to_vec();
        assert_eq!(
            certificate_identity(&der).as_deref(),
            Some("spiffe://corp/ns/billing/sa/api")
        );
        let p = rcgen::CertificateParams::new(vec!["svc.internal".to_owned()]).unwrap();
        let der = p.self_signed(&key).unwrap().der().to_vec();
        assert_eq!(certificate_identity(&der).as_deref(), Some("svc.internal"));
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "cn-only");
        let der = p.self_signed(&key).unwrap().der().to_vec();
        assert_eq!(certificate_identity(&der).as_deref(), Some("cn-only"));
        assert_eq!(certificate_identity(b"junk"), None);
    }

    #[test]
    fn identity_patterns_match_exactly_or_by_prefix() {
        let pats = vec![
            "spiffe://corp/ns/billing/*".to_owned(),
            "web.internal".to_owned(),
        ];
        assert!(identity_allowed("spiffe://corp/ns/billing/sa/api", &pats));
        assert!(identity_allowed("web.internal", &pats));
        assert!(!identity_allowed("web.internal.evil", &pats));
        assert!(!identity_allowed("spiffe://corp/ns/payments/sa/api", &pats));
    }
}
