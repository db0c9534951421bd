//! Reading certificates: validity, names, key match, and the renewal decision.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::AcmeError;

/// What the renewal logic needs to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// The DNS names of the subjectAltName extension, lowercased, in certificate order.
    pub names: Vec<String>,
}

impl CertificateInfo {
    /// Whether every one of `domains` is among the certificate's names (case-insensitive,
    /// exact match).
    pub fn covers<S: AsRef<str>>(&self, domains: &[S]) -> bool {
        domains.iter().all(|d| {
            let d = d.as_ref();
            self.names.iter().any(|n| n.eq_ignore_ascii_case(d))
        })
    }

    /// How long the certificate is valid in total (`notAfter - notBefore`).
    pub fn lifetime(&self) -> Duration {
        self.not_after
            .duration_since(self.not_before)
            .unwrap_or_default()
    }
}

/// Reads validity and names of the first certificate of a PEM chain (the leaf).
pub fn inspect_certificate(pem: &[u8]) -> Result<CertificateInfo, AcmeError> {
    let chain = parse_chain(pem)?;
    let leaf = chain
        .first()
        .ok_or_else(|| AcmeError::Certificate("no CERTIFICATE block in the PEM data".into()))?;
    inspect_der(leaf)
}

/// Whether a certificate valid until `not_after` is due for renewal at `now`: less than
/// `renew_before` of validity left (an expired certificate is always due).
pub fn renewal_due(not_after: SystemTime, now: SystemTime, renew_before: Duration) -> bool {
    match not_after.duration_since(now) {
        Ok(left) => left < renew_before,
        Err(_) => true,
    }
}

pub(crate) fn inspect_der(der: &CertificateDer<'_>) -> Result<CertificateInfo, AcmeError> {
    let (_, cert) = X509Certificate::from_der(der.as_ref()).map_err(|e| {
        AcmeError::Certificate(format!("leaf is not a valid X.509 certificate: {e}"))
    })?;
    let validity = cert.validity();
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => {
            return Err(AcmeError::Certificate(format!(
                "leaf has an invalid subjectAltName extension: {e}"
            )));
        }
    };
    Ok(CertificateInfo {
        not_before: unix_time(validity.not_before.timestamp()),
        not_after: unix_time(validity.not_after.timestamp()),
        names,
    })
}

fn unix_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(secs.unsigned_abs()))
            .unwrap_or(UNIX_EPOCH)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .unwrap_or(UNIX_EPOCH)
    }
}

pub(crate) fn parse_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, AcmeError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AcmeError::Certificate(format!("certificate PEM is malformed: {e}")))
}

/// Builds the rustls key pair for a PEM chain and PEM private key, checking that the key
/// belongs to the leaf.
pub(crate) fn certified_key(chain_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, AcmeError> {
    let chain = parse_chain(chain_pem)?;
    if chain.is_empty() {
        return Err(AcmeError::Certificate(
            "no CERTIFICATE block in the PEM data".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| AcmeError::Certificate(format!("private key PEM is malformed: {e}")))?;
    certified_key_der(chain, key)
}

pub(crate) fn certified_key_der(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, AcmeError> {
    let provider = crypto_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| AcmeError::Certificate(format!("private key is unusable: {e}")))?;
    let ck = CertifiedKey::new(chain, signing_key);
    ck.keys_match()
        .map_err(|e| AcmeError::Certificate(format!("private key does not match the leaf: {e}")))?;
    Ok(ck)
}

/// The process-wide rustls provider when one is installed, else aws-lc-rs.
pub(crate) fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// Checks a chain and key before they replace the stored ones: both parse, the key is the
/// leaf's, and the leaf names every domain.
pub(crate) fn check_pair<S: AsRef<str>>(
    chain_pem: &[u8],
    key_pem: &[u8],
    domains: &[S],
) -> Result<CertificateInfo, AcmeError> {
    let ck = certified_key(chain_pem, key_pem)?;
    let info = inspect_der(
        ck.end_entity_cert()
            .map_err(|e| AcmeError::Certificate(e.to_string()))?,
    )?;
    if !info.covers(domains) {
        let missing: Vec<&str> = domains
            .iter()
            .map(|d| d.as_ref())
            .filter(|d| !info.names.iter().any(|n| n.eq_ignore_ascii_case(d)))
            .collect();
        return Err(AcmeError::Certificate(format!(
            "leaf does not name {}",
            missing.join(", ")
        )));
    }
    Ok(info)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    const DAY: Duration = Duration::from_secs(24 * 3600);

    /// A self-signed certificate for `names`, valid from `not_before` to `not_after`, and its
    /// PEM key.
    pub(crate) fn self_signed(
        names: &[&str],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("valid names");
        params.not_before = time::OffsetDateTime::from(not_before);
        params.not_after = time::OffsetDateTime::from(not_after);
        let key = KeyPair::generate().expect("key generation");
        let cert = params.self_signed(&key).expect("self-signed");
        (cert.pem(), key.serialize_pem())
    }

    fn whole_seconds(t: SystemTime) -> SystemTime {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn renewal_due_boundaries() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let window = 30 * DAY;
        assert!(!renewal_due(now + 31 * DAY, now, window));
        assert!(
            !renewal_due(now + window, now, window),
            "exactly the window left is not due"
        );
        assert!(renewal_due(
            now + window - Duration::from_secs(1),
            now,
            window
        ));
        assert!(renewal_due(now, now, window));
        assert!(renewal_due(now - DAY, now, window), "expired is due");
        assert!(!renewal_due(now + DAY, now, Duration::ZERO));
    }

    #[test]
    fn inspect_reads_validity_and_names() {
        let now = whole_seconds(SystemTime::now());
        let (pem, _) = self_signed(
            &["App.Example.test", "www.example.test"],
            now - DAY,
            now + 90 * DAY,
        );
        let info = inspect_certificate(pem.as_bytes()).expect("inspect");
        assert_eq!(info.not_before, now - DAY);
        assert_eq!(info.not_after, now + 90 * DAY);
        assert_eq!(info.names, vec!["app.example.test", "www.example.test"]);
        assert_eq!(info.lifetime(), 91 * DAY);
        assert!(info.covers(&["www.example.test", "APP.example.test"]));
        assert!(!info.covers(&["other.example.test"]));

        // Freshness from the generated certificate: 90 days left.
        assert!(!renewal_due(info.not_after, now, 30 * DAY));
        assert!(renewal_due(info.not_after, now, 91 * DAY));
        assert!(renewal_due(info.not_after, now + 61 * DAY, 30 * DAY));
    }

    #[test]
    fn inspect_rejects_garbage() {
        let err = inspect_certificate(b"not pem").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid certificate: no CERTIFICATE block in the PEM data")
        );
        let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = inspect_certificate(bad.as_bytes())
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("invalid certificate: leaf is not a valid X.509")),
            "{err:?}"
        );
    }

    #[test]
    fn check_pair_requires_matching_key_and_names() {
        let now = SystemTime::now();
        let (cert, key) = self_signed(&["a.test", "b.test"], now - DAY, now + DAY);
        let (_, other_key) = self_signed(&["a.test"], now - DAY, now + DAY);
        assert!(check_pair(cert.as_bytes(), key.as_bytes(), &["a.test", "b.test"]).is_ok());

        let err = check_pair(cert.as_bytes(), other_key.as_bytes(), &["a.test"])
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("private key does not match the leaf")),
            "{err:?}"
        );
        let err = check_pair(
            cert.as_bytes(),
            key.as_bytes(),
            &["a.test", "c.test", "d.test"],
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid certificate: leaf does not name c.test, d.test")
        );
    }
}
