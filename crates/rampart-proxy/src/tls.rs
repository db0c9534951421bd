//! TLS towards `https://` upstreams: the roots the upstream's certificate must chain to (the
//! system's, or the route's `upstream_tls.ca`), an optional client certificate (mTLS towards
//! the service), and the name checked and sent as SNI.

use std::sync::Arc;

use rampart_config::UpstreamTls;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A route's compiled upstream TLS settings.
#[derive(Debug, Clone)]
pub struct UpstreamTlsConfig {
    /// The rustls client config (roots, client certificate; ALPN is set by the connector).
    pub config: Arc<ClientConfig>,
    /// The name to verify instead of the URL's host.
    pub server_name: Option<ServerName<'static>>,
}

fn read_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// Builds the client config of a route's `https://` upstreams. Files are read now.
pub fn upstream_tls(settings: Option<&UpstreamTls>) -> Result<UpstreamTlsConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    match settings.and_then(|s| s.ca.as_deref()) {
        Some(ca) => {
            for c in read_certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| format!("{}: not a usable CA certificate: {e}", ca.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                // A system bundle may hold certificates rustls cannot use; skip those.
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err("no system root certificates found; give upstream_tls.ca".to_owned());
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots);
    let config = match settings.map(|s| (&s.cert, &s.key)) {
        Some((Some(cert), Some(key))) => {
            let chain = read_certs(cert)?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("{}: no usable private key: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| format!("{} and {}: {e}", cert.display(), key.display()))?
        }
        _ => builder.with_no_client_auth(),
    };
    let server_name = match settings.and_then(|s| s.server_name.as_deref()) {
        Some(n) => Some(
            ServerName::try_from(n.to_owned()).map_err(|e| format!("server_name {n:?}: {e}"))?,
        ),
        None => None,
    };
    Ok(UpstreamTlsConfig {
        config: Arc::new(config),
        server_name,
    })
}
