//! The crate's error type.

use std::path::PathBuf;

/// What went wrong while issuing, storing or reading a certificate.
///
/// Settings errors are the operator's (caught by [`crate::Issuer::new`]); the others happen at
/// run time and [`crate::Issuer::run`] retries them with backoff.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcmeError {
    /// The settings cannot work as given, e.g. no domains or a wildcard name.
    #[error("invalid ACME settings: {0}")]
    InvalidSettings(String),
    /// A file or folder under the state directory could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("write", "read", "create folder", ...).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The stored account file is not what this crate writes.
    #[error("account file {path} is unreadable: {source}")]
    AccountFile {
        /// The account file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The ACME server refused a request or could not be reached.
    #[error("ACME {step} failed: {source}")]
    Acme {
        /// The protocol step, e.g. "account creation", "new order", "finalize".
        step: &'static str,
        /// The client's error (an RFC 7807 problem when the server answered).
        #[source]
        source: instant_acme::Error,
    },
    /// The CA did not offer the configured challenge for a name.
    #[error("the CA offers no {kind} challenge for {domain}")]
    ChallengeUnavailable {
        /// The name being authorized.
        domain: String,
        /// The configured challenge.
        kind: crate::ChallengeKind,
    },
    /// The CA could not validate control of one or more names.
    #[error("the CA did not authorize the order: {0}")]
    NotAuthorized(String),
    /// The private key, CSR or a challenge certificate could not be generated.
    #[error("cannot generate {what}: {source}")]
    KeyGeneration {
        /// What was being generated.
        what: &'static str,
        /// The generator's error.
        #[source]
        source: rcgen::Error,
    },
    /// A certificate (stored or just issued) is unusable: not PEM, not X.509, key mismatch,
    /// or missing one of the names.
    #[error("invalid certificate: {0}")]
    Certificate(String),
}

impl AcmeError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        AcmeError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn acme(step: &'static str) -> impl FnOnce(instant_acme::Error) -> Self {
        move |source| AcmeError::Acme { step, source }
    }
}
