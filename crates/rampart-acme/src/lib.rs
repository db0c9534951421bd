//! ACME (RFC 8555) certificate issuance and renewal for Rampart's TLS listeners.
//!
//! An [`Issuer`] keeps one certificate current for a list of names: it creates (or reloads)
//! an ACME account, orders the certificate, answers the CA's challenges through a shared
//! [`Challenges`] table, finalizes with a fresh private key, and writes the PEM chain and key
//! to [`CertFiles`] atomically. [`Issuer::run`] repeats that whenever the stored certificate
//! is due for renewal.
//!
//! The listeners answer the challenges from the same [`Challenges`]:
//! - **http-01**: the plain-HTTP listener answers `GET /.well-known/acme-challenge/{token}`
//!   with [`Challenges::http01`] (see [`HTTP01_PATH_PREFIX`]);
//! - **tls-alpn-01** (RFC 8737): the TLS listener wraps its certificate resolver in an
//!   [`AlpnChallengeResolver`] and lists [`ACME_TLS_ALPN`] among its ALPN protocols.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rampart_acme::AcmeError> {
//! use std::sync::Arc;
//! use rampart_acme::{AcmeSettings, Challenges, Issuer};
//!
//! let challenges = Arc::new(Challenges::new());
//! let settings = AcmeSettings::new(
//!     "https://acme-v02.api.letsencrypt.org/directory",
//!     vec!["app.example.com".into()],
//!     "/var/lib/rampart/acme",
//! );
//! let issuer = Issuer::new(settings, challenges.clone())?;
//! // Hand `challenges` to the listeners, then keep the certificate current until shutdown.
//! issuer
//!     .run(|files| tracing::info!(cert = %files.cert.display(), "reload TLS"), std::future::pending())
//!     .await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cert;
mod challenges;
mod error;
mod fsutil;
mod issuer;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use cert::{CertificateInfo, inspect_certificate, renewal_due};
pub use challenges::{AlpnChallengeResolver, Challenges, tls_alpn01_certificate};
pub use error::AcmeError;
pub use issuer::Issuer;

/// The ALPN protocol name of tls-alpn-01 validation connections (RFC 8737 section 6.2).
///
/// A TLS listener that answers tls-alpn-01 must list it in `ServerConfig::alpn_protocols`
/// next to the protocols it really serves (`h2`, `http/1.1`): with an ALPN list that lacks
/// a client's protocols, rustls refuses the handshake, so never make it the only entry of a
/// listener that serves ordinary clients. A connection that negotiated this protocol carries
/// no application data: close it once the handshake is done.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The path prefix of http-01 requests: the token follows it (RFC 8555 section 8.3).
pub const HTTP01_PATH_PREFIX: &str = "/.well-known/acme-challenge/";

/// Renew when less than this much validity is left, unless configured otherwise: 30 days.
pub const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Which ACME challenge proves control of the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChallengeKind {
    /// http-01: the CA fetches `http://{name}/.well-known/acme-challenge/{token}` on port 80.
    #[default]
    Http01,
    /// tls-alpn-01: the CA opens TLS to `{name}:443` with ALPN `acme-tls/1` and checks the
    /// self-signed certificate it is offered.
    TlsAlpn01,
}

impl ChallengeKind {
    /// The challenge's name in the ACME protocol: `http-01` or `tls-alpn-01`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Http01 => "http-01",
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        }
    }

    pub(crate) fn acme_type(self) -> instant_acme::ChallengeType {
        match self {
            ChallengeKind::Http01 => instant_acme::ChallengeType::Http01,
            ChallengeKind::TlsAlpn01 => instant_acme::ChallengeType::TlsAlpn01,
        }
    }
}

impl fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChallengeKind {
    type Err = AcmeError;

    /// Parses `http-01` or `tls-alpn-01` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "http-01" => Ok(ChallengeKind::Http01),
            "tls-alpn-01" => Ok(ChallengeKind::TlsAlpn01),
            _ => Err(AcmeError::InvalidSettings(format!(
                "unknown ACME challenge {s:?}: expected http-01 or tls-alpn-01"
            ))),
        }
    }
}

/// What to ask the CA for, and where to keep the results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// The ACME directory URL, e.g. `https://acme-v02.api.letsencrypt.org/directory`.
    /// Creating the account agrees to that CA's terms of service.
    pub directory: String,
    /// The DNS names on the certificate; the first one is also the subject common name and
    /// names the folder under [`AcmeSettings::state_dir`]. Wildcards and IP addresses are not
    /// supported (neither http-01 nor tls-alpn-01 can validate a wildcard).
    pub domains: Vec<String>,
    /// Account contacts, as `mailto:` URIs; may be empty.
    pub contact: Vec<String>,
    /// The challenge used to prove control of the names.
    pub challenge: ChallengeKind,
    /// Renew when `notAfter - now` is less than this.
    pub renew_before: Duration,
    /// Where the account and the certificates persist; created with mode 0700.
    pub state_dir: PathBuf,
    /// A PEM root certificate to trust for the ACME server's own HTTPS (a private or test CA).
    /// When set it is the only root trusted for the directory; `None` uses the system's roots.
    pub directory_ca: Option<PathBuf>,
}

impl AcmeSettings {
    /// Settings with the defaults for the rest: no contact, http-01, renewal 30 days before
    /// expiry ([`DEFAULT_RENEW_BEFORE`]), system roots for the directory.
    pub fn new(
        directory: impl Into<String>,
        domains: Vec<String>,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        AcmeSettings {
            directory: directory.into(),
            domains,
            contact: Vec::new(),
            challenge: ChallengeKind::Http01,
            renew_before: DEFAULT_RENEW_BEFORE,
            state_dir: state_dir.into(),
            directory_ca: None,
        }
    }
}

/// Paths of the PEM certificate chain and private key an [`Issuer`] keeps current.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertFiles {
    /// The certificate chain, leaf first (PEM, mode 0644).
    pub cert: PathBuf,
    /// The private key of the leaf (PKCS#8 PEM, mode 0600).
    pub key: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_kind_names_round_trip() {
        for kind in [ChallengeKind::Http01, ChallengeKind::TlsAlpn01] {
            assert_eq!(kind.as_str().parse::<ChallengeKind>().ok(), Some(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(
            "TLS-ALPN-01".parse::<ChallengeKind>().ok(),
            Some(ChallengeKind::TlsAlpn01)
        );
        let err = "dns-01"
            .parse::<ChallengeKind>()
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "invalid ACME settings: unknown ACME challenge \"dns-01\": expected http-01 or tls-alpn-01"
            )
        );
    }

    #[test]
    fn settings_defaults() {
        let s = AcmeSettings::new("https://ca.test/dir", vec!["a.test".into()], "/tmp/x");
        assert_eq!(s.challenge, ChallengeKind::Http01);
        assert_eq!(s.renew_before, DEFAULT_RENEW_BEFORE);
        assert!(s.contact.is_empty());
        assert!(s.directory_ca.is_none());
    }
}
