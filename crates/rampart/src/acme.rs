//! Listeners whose certificate comes from ACME (`tls.acme`): one issuer per listener keeps
//! `data_dir/acme/<first domain>/cert.pem` current; until the first certificate exists a
//! self-signed placeholder is served. Challenges are answered from one shared table: http-01
//! on the listener's `redirect_http` address, tls-alpn-01 on the TLS listener itself.
//! A newly issued certificate triggers the same reload as a changed certificate file, so the
//! old one is served until the new one is complete.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rampart_acme::{AcmeSettings, AlpnChallengeResolver, ChallengeKind, Challenges, Issuer};
use rampart_config::Config;
use rampart_listen::tls::{AlpnChallengeWrap, load_certified_key, provider};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

/// One ACME-managed listener.
#[derive(Debug)]
pub struct AcmeListener {
    settings: AcmeSettings,
    cert: PathBuf,
    key: PathBuf,
    placeholder: Arc<CertifiedKey>,
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
}

/// Every ACME-managed listener, by name, and the challenges they answer.
#[derive(Debug)]
pub struct AcmeSet {
    listeners: HashMap<String, Arc<AcmeListener>>,
    challenges: Arc<Challenges>,
    stop: CancellationToken,
}

impl AcmeSet {
    /// The ACME listeners of `config`, each with a fresh self-signed placeholder for its
    /// domains. Nothing is fetched until [`AcmeSet::start`].
    pub fn new(config: &Config) -> Result<AcmeSet, String> {
        let mut listeners = HashMap::new();
        for (i, l) in config.listener.iter().enumerate() {
            let Some(acme) = l.tls.as_ref().and_then(|t| t.acme.as_ref()) else {
                continue;
            };
            let path = format!("listener[{i}].tls.acme");
            let challenge: ChallengeKind = acme
                .challenge
                .parse()
                .map_err(|e| format!("{path}.challenge: {e}"))?;
            let settings = AcmeSettings {
                directory: acme.directory.clone(),
                domains: acme.domains.clone(),
                contact: acme.contact.as_slice().to_vec(),
                challenge,
                renew_before: acme.renew_before.get(),
                state_dir: config.data_dir.join("acme"),
                directory_ca: acme.directory_ca.clone(),
            };
            // The issuer validates the settings and names the files it keeps current.
            let files = Issuer::new(settings.clone(), Arc::new(Challenges::new()))
                .map_err(|e| format!("{path}: {e}"))?
                .files();
            listeners.insert(
                l.name.clone(),
                Arc::new(AcmeListener {
                    settings,
                    cert: files.cert,
                    key: files.key,
                    placeholder: placeholder(&acme.domains).map_err(|e| format!("{path}: {e}"))?,
                }),
            );
        }
        Ok(AcmeSet {
            listeners,
            challenges: Arc::new(Challenges::new()),
            stop: CancellationToken::new(),
        })
    }

    /// The ACME state of `listener`.
    pub fn get(&self, listener: &str) -> Option<&Arc<AcmeListener>> {
        self.listeners.get(listener)
    }

    /// The resolver wrapper answering tls-alpn-01 for `listener`, when it proves its names
    /// that way.
    pub fn alpn_challenges(&self, listener: &str) -> Option<AlpnChallengeWrap> {
        let l = self.listeners.get(listener)?;
        if l.settings.challenge != ChallengeKind::TlsAlpn01 {
            return None;
        }
        let challenges = Arc::clone(&self.challenges);
        Some(Arc::new(move |inner| {
            Arc::new(AlpnChallengeResolver::new(inner, Arc::clone(&challenges)))
        }))
    }

    /// The key authorization answering an http-01 challenge `token`, when one is pending.
    pub fn http01(&self, token: &str) -> Option<String> {
        if self.listeners.is_empty() {
            return None;
        }
        self.challenges.http01(token)
    }

    /// Starts one issuer per ACME listener on the current runtime; `issued` is called after
    /// every new certificate (to reload the TLS configs).
    pub fn start(&self, issued: Arc<dyn Fn() + Send + Sync>) {
        for (name, l) in &self.listeners {
            let issuer = match Issuer::new(l.settings.clone(), Arc::clone(&self.challenges)) {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(listener = %name, error = %e, "ACME issuer not started");
                    continue;
                }
            };
            let issued = Arc::clone(&issued);
            let stop = self.stop.clone();
            let name = name.clone();
            tokio::spawn(async move {
                tracing::info!(listener = %name, "ACME certificate management started");
                issuer
                    .run(move |_| issued(), async move { stop.cancelled().await })
                    .await;
            });
        }
    }

    /// Stops the issuers (at shutdown).
    pub fn stop(&self) {
        self.stop.cancel();
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
