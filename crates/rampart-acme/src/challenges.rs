//! Pending challenge answers, shared between the issuer and the listeners.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::{ACME_TLS_ALPN, AcmeError, HTTP01_PATH_PREFIX};

/// Pending challenge answers: written by the [`crate::Issuer`] while an order is open, read
/// by the listeners on every challenge request. Lookups take a read lock and clone one entry.
#[derive(Default)]
pub struct Challenges {
    http01: RwLock<HashMap<String, String>>,
    tls_alpn01: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// http-01: the key authorization to answer `GET /.well-known/acme-challenge/{token}` with
    /// (as `text/plain`, status 200), or `None` for an unknown token (answer 404).
    pub fn http01(&self, token: &str) -> Option<String> {
        self.http01
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()
    }

    /// http-01 by request path: the key authorization when `path` is
    /// `/.well-known/acme-challenge/{token}` for a pending token.
    pub fn http01_for_path(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(HTTP01_PATH_PREFIX)?;
        if token.is_empty() || token.contains('/') {
            return None;
        }
        self.http01(token)
    }

    /// tls-alpn-01: the self-signed acmeIdentifier certificate for this SNI name, to offer
    /// when the client's ALPN list is exactly `acme-tls/1` (see [`AlpnChallengeResolver`]).
    /// Names compare case-insensitively; a trailing dot is ignored.
    pub fn tls_alpn01(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        let name = normalize_name(server_name);
        self.tls_alpn01
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&name)
            .cloned()
    }

    /// Whether no answer is pending.
    pub fn is_empty(&self) -> bool {
        self.http01
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
            && self
                .tls_alpn01
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
    }

    /// Publishes an http-01 answer.
    pub fn insert_http01(&self, token: impl Into<String>, key_authorization: impl Into<String>) {
        self.http01
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.into(), key_authorization.into());
    }

    /// Withdraws an http-01 answer.
    pub fn remove_http01(&self, token: &str) {
        self.http01
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }

    /// Publishes a tls-alpn-01 certificate for `server_name` (see [`tls_alpn01_certificate`]).
    pub fn insert_tls_alpn01(&self, server_name: &str, cert: Arc<CertifiedKey>) {
        self.tls_alpn01
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(normalize_name(server_name), cert);
    }

    /// Withdraws the tls-alpn-01 certificate for `server_name` if it is still `cert` (another
    /// order may have replaced it since).
    pub fn remove_tls_alpn01(&self, server_name: &str, cert: &Arc<CertifiedKey>) {
        let name = normalize_name(server_name);
        let mut map = self
            .tls_alpn01
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if map.get(&name).is_some_and(|c| Arc::ptr_eq(c, cert)) {
            map.remove(&name);
        }
    }
}

impl fmt::Debug for Challenges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: the answers are not secrets, but they are noise in logs.
        f.debug_struct("Challenges")
            .field(
                "http01",
                &self
                    .http01
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len(),
            )
            .field(
                "tls_alpn01",
                &self
                    .tls_alpn01
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len(),
            )
            .finish()
    }
}

fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Builds the tls-alpn-01 answer for `domain` (RFC 8737 section 3): a self-signed certificate
/// whose only subjectAltName is `domain`, with the critical acmeIdentifier extension holding
/// `key_authorization_digest`, the SHA-256 of the key authorization (32 bytes).
pub fn tls_alpn01_certificate(
    domain: &str,
    key_authorization_digest: &[u8],
) -> Result<Arc<CertifiedKey>, AcmeError> {
    if key_authorization_digest.len() != 32 {
        return Err(AcmeError::Certificate(format!(
            "tls-alpn-01 digest must be 32 bytes (SHA-256), got {}",
            key_authorization_digest.len()
        )));
    }
    let key = KeyPair::generate().map_err(|source| AcmeError::KeyGeneration {
        what: "tls-alpn-01 key",
        source,
    })?;
    let mut params = CertificateParams::new(vec![domain.to_owned()]).map_err(|source| {
        AcmeError::KeyGeneration {
            what: "tls-alpn-01 certificate",
            source,
        }
    })?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, domain);
    params.distinguished_name = dn;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(
        key_authorization_digest,
    )];
    let cert = params
        .self_signed(&key)
        .map_err(|source| AcmeError::KeyGeneration {
            what: "tls-alpn-01 certificate",
            source,
        })?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // The pair was generated together, and rustls' own key check parses the certificate with
    // webpki, which refuses the critical acmeIdentifier extension: build it directly.
    let signing_key = crate::cert::crypto_provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| AcmeError::Certificate(format!("tls-alpn-01 key is unusable: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing_key,
    )))
}

/// A certificate resolver for a TLS listener that also answers tls-alpn-01: a handshake whose
/// ALPN list is exactly `acme-tls/1` gets the pending challenge certificate for its SNI name
/// (or fails when there is none); every other handshake goes to the wrapped resolver.
///
/// The listener's `ServerConfig::alpn_protocols` must also contain [`ACME_TLS_ALPN`] (next to
/// its real protocols) so the validation handshake negotiates it, and the listener must close
/// connections that negotiated it without reading from them.
pub struct AlpnChallengeResolver {
    inner: Arc<dyn ResolvesServerCert>,
    challenges: Arc<Challenges>,
}

impl AlpnChallengeResolver {
    /// Wraps `inner`, answering acme-tls/1 handshakes from `challenges`.
    pub fn new(inner: Arc<dyn ResolvesServerCert>, challenges: Arc<Challenges>) -> Self {
        AlpnChallengeResolver { inner, challenges }
    }

    /// Whether a ClientHello's ALPN list is exactly `acme-tls/1`.
    fn is_validation<'a>(alpn: Option<impl Iterator<Item = &'a [u8]>>) -> bool {
        let Some(mut protocols) = alpn else {
            return false;
        };
        protocols.next() == Some(ACME_TLS_ALPN) && protocols.next().is_none()
    }
}

impl fmt::Debug for AlpnChallengeResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlpnChallengeResolver")
            .field("inner", &self.inner)
            .field("challenges", &self.challenges)
            .finish()
    }
}

impl ResolvesServerCert for AlpnChallengeResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if !Self::is_validation(client_hello.alpn()) {
            return self.inner.resolve(client_hello);
        }
        let Some(name) = client_hello.server_name() else {
            tracing::debug!("acme-tls/1 handshake without SNI refused");
            return None;
        };
        let found = self.challenges.tls_alpn01(name);
        if found.is_none() {
            tracing::debug!(
                server_name = name,
                "acme-tls/1 handshake for a name with no pending challenge refused"
            );
        }
        found
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{
        ClientConfig, ClientConnection, DigitallySignedStruct, ServerConfig, ServerConnection,
        SignatureScheme,
    };
    use std::time::{Duration, SystemTime};
    use x509_parser::prelude::{FromDer, X509Certificate};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[derive(Debug)]
    struct Fixed(Arc<CertifiedKey>);
    impl ResolvesServerCert for Fixed {
        fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    /// Accepts any server certificate: the tests look at which one was presented.
    #[derive(Debug)]
    struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        // webpki refuses to parse the critical acmeIdentifier extension, so signatures are
        // not checked either (validation clients such as the CA's do not need webpki).
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    fn server_config(
        challenges: &Arc<Challenges>,
        normal: &Arc<CertifiedKey>,
    ) -> Arc<ServerConfig> {
        let resolver =
            AlpnChallengeResolver::new(Arc::new(Fixed(normal.clone())), challenges.clone());
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
        Arc::new(config)
    }

    /// The server certificate a client saw, and the negotiated ALPN protocol.
    type Presented = (CertificateDer<'static>, Option<Vec<u8>>);

    /// Runs a handshake in memory; returns the certificate the server presented and the
    /// negotiated ALPN protocol.
    fn handshake(
        server: &Arc<ServerConfig>,
        sni: &str,
        alpn: &[&[u8]],
    ) -> Result<Presented, Box<dyn std::error::Error>> {
        let provider = crate::cert::crypto_provider();
        let mut cc = ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth();
        cc.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let mut client =
            ClientConnection::new(Arc::new(cc), ServerName::try_from(sni.to_owned())?)?;
        let mut srv = ServerConnection::new(server.clone())?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut buf)?;
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                srv.read_tls(&mut rd)?;
                srv.process_new_packets()?;
            }
            let mut buf = Vec::new();
            while srv.wants_write() {
                srv.write_tls(&mut buf)?;
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd)?;
                client.process_new_packets()?;
            }
            if !client.is_handshaking() && !srv.is_handshaking() {
                let cert = client
                    .peer_certificates()
                    .and_then(|c| c.first().cloned())
                    .ok_or("no server certificate")?;
                return Ok((cert, client.alpn_protocol().map(|p| p.to_vec())));
            }
        }
        Err("handshake did not finish".into())
    }

    fn normal_cert() -> Arc<CertifiedKey> {
        let now = SystemTime::now();
        let (cert, key) = crate::cert::tests::self_signed(
            &["app.rampart.test"],
            now,
            now + Duration::from_secs(3600),
        );
        Arc::new(
            crate::cert::certified_key(cert.as_bytes(), key.as_bytes()).expect("certified key"),
        )
    }

    #[test]
    fn challenge_certificate_has_critical_acme_identifier() -> TestResult {
        let digest = [7u8; 32];
        let ck = tls_alpn01_certificate("app.rampart.test", &digest)?;
        let der = ck.end_entity_cert()?;
        let (_, cert) = X509Certificate::from_der(der.as_ref())?;
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .ok_or("no acmeIdentifier extension")?;
        assert!(ext.critical);
        // DER OCTET STRING of the 32-byte digest.
        let mut expected = vec![0x04, 0x20];
        expected.extend_from_slice(&digest);
        assert_eq!(ext.value, &expected[..]);
        let info = crate::cert::inspect_der(der)?;
        assert_eq!(info.names, vec!["app.rampart.test"]);

        let err = tls_alpn01_certificate("app.rampart.test", &[1, 2, 3])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid certificate: tls-alpn-01 digest must be 32 bytes (SHA-256), got 3")
        );
        Ok(())
    }

    #[test]
    fn resolver_answers_acme_tls_only_for_exact_alpn() -> TestResult {
        let challenges = Arc::new(Challenges::new());
        let normal = normal_cert();
        let challenge = tls_alpn01_certificate("app.rampart.test", &[9u8; 32])?;
        challenges.insert_tls_alpn01("app.rampart.test", challenge.clone());
        let server = server_config(&challenges, &normal);
        let challenge_der = challenge.end_entity_cert()?.clone();
        let normal_der = normal.end_entity_cert()?.clone();

        let (cert, alpn) = handshake(&server, "app.rampart.test", &[ACME_TLS_ALPN])?;
        assert_eq!(cert, challenge_der);
        assert_eq!(alpn.as_deref(), Some(ACME_TLS_ALPN));

        // SNI compares case-insensitively.
        let (cert, _) = handshake(&server, "APP.rampart.test", &[ACME_TLS_ALPN])?;
        assert_eq!(cert, challenge_der);

        // Ordinary clients get the listener's certificate and their protocol.
        let (cert, alpn) = handshake(&server, "app.rampart.test", &[b"h2"])?;
        assert_eq!(cert, normal_der);
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
        let (cert, _) = handshake(&server, "app.rampart.test", &[])?;
        assert_eq!(cert, normal_der);
        // acme-tls/1 among other protocols is not a validation handshake.
        let (cert, alpn) = handshake(&server, "app.rampart.test", &[b"h2", ACME_TLS_ALPN])?;
        assert_eq!(cert, normal_der);
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));

        // No pending challenge for the name: the validation handshake fails.
        assert!(handshake(&server, "other.rampart.test", &[ACME_TLS_ALPN]).is_err());

        // Withdrawn: fails too; withdrawing someone else's certificate does nothing.
        let other = tls_alpn01_certificate("app.rampart.test", &[1u8; 32])?;
        challenges.remove_tls_alpn01("app.rampart.test", &other);
        assert!(challenges.tls_alpn01("app.rampart.test.").is_some());
        challenges.remove_tls_alpn01("APP.rampart.test", &challenge);
        assert!(handshake(&server, "app.rampart.test", &[ACME_TLS_ALPN]).is_err());
        assert!(challenges.is_empty());
        Ok(())
    }

    #[test]
    fn http01_lookup() {
        let c = Challenges::new();
        assert!(c.is_empty());
        c.insert_http01("tok-1", "tok-1.thumb");
        assert_eq!(c.http01("tok-1").as_deref(), Some("tok-1.thumb"));
        assert_eq!(
            c.http01_for_path("/.well-known/acme-challenge/tok-1")
                .as_deref(),
            Some("tok-1.thumb")
        );
        assert_eq!(c.http01_for_path("/.well-known/acme-challenge/"), None);
        assert_eq!(
            c.http01_for_path("/.well-known/acme-challenge/tok-1/x"),
            None
        );
        assert_eq!(c.http01_for_path("/tok-1"), None);
        assert_eq!(c.http01("tok-2"), None);
        assert_eq!(format!("{c:?}"), "Challenges { http01: 1, tls_alpn01: 0 }");
        c.remove_http01("tok-1");
        assert!(c.is_empty());
    }
}
