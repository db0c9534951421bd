//! The TLS configs of the listeners, kept apart from the request snapshot so a certificate
//! can rotate without rebuilding the rest: a changed certificate, key, OCSP response, CA
//! bundle or CRL file builds new configs for every TLS listener and swaps them in at once.
//! New handshakes use them; open connections keep what they negotiated. A file that does not
//! load leaves the running configs in place.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rampart_config::Config;
use rampart_listen::tls::{TlsExtras, server_config};
use rustls::ServerConfig;

use crate::acme::AcmeSet;

/// The TLS config of each TLS listener, by listener name.
pub type TlsConfigs = HashMap<String, Arc<ServerConfig>>;

/// The listeners' current TLS configs.
#[derive(Debug)]
pub struct TlsState {
    configs: ArcSwap<TlsConfigs>,
}

impl TlsState {
    /// State holding `configs`.
    pub fn new(configs: TlsConfigs) -> TlsState {
        TlsState {
            configs: ArcSwap::from_pointee(configs),
        }
    }

    /// The config new handshakes on `listener` use; `None` for plain listeners.
    pub fn get(&self, listener: &str) -> Option<Arc<ServerConfig>> {
        self.configs.load().get(listener).cloned()
    }

    /// Replaces every listener's config.
    pub fn swap(&self, configs: TlsConfigs) {
        self.configs.store(Arc::new(configs));
    }
}

/// Builds the TLS config of every TLS listener of `config`, reading its files now. Errors
/// name the listener and the file.
pub fn build_all(config: &Config, acme: &AcmeSet) -> Result<TlsConfigs, Vec<String>> {
    let mut out = HashMap::new();
    let mut errors = Vec::new();
    for (i, l) in config.listener.iter().enumerate() {
        let Some(tls) = &l.tls else { continue };
        let extras = match acme.get(&l.name) {
            Some(a) => TlsExtras {
                default_cert: Some(a.current_certificate()),
                alpn_challenges: acme.alpn_challenges(&l.name),
            },
            None => TlsExtras::default(),
        };
        match server_config(tls, l.client_auth.as_ref(), &extras) {
            Ok(c) => {
                out.insert(l.name.clone(), c);
            }
            Err(e) => errors.push(format!("listener[{i}].tls ({}): {e}", l.name)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Every file the TLS configs are read from (certificates, keys, OCSP responses, CA bundles,
/// CRLs), to watch for rotation.
pub fn watched_files(config: &Config) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    for l in &config.listener {
        if let Some(t) = &l.tls {
            files.extend([&t.cert, &t.key, &t.ocsp].into_iter().flatten().cloned());
            for c in &t.certs {
                files.insert(c.cert.clone());
                files.insert(c.key.clone());
                files.extend(c.ocsp.clone());
            }
        }
        if let Some(ca) = &l.client_auth {
            files.insert(ca.ca.clone());
            files.extend(ca.crl.iter().cloned());
        }
    }
    files
}
