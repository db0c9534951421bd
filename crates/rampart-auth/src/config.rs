//! Options of this crate. `rampart` maps the validated `[auth]` config into them.

use std::time::Duration;

/// JWT signing algorithm of new keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyAlgorithm {
    /// Ed25519 (the default): small, fast, deterministic.
    #[default]
    EdDSA,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
}

impl KeyAlgorithm {
    /// JOSE name (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EdDSA => "EdDSA",
            KeyAlgorithm::ES256 => "ES256",
            KeyAlgorithm::RS256 => "RS256",
        }
    }

    /// Parses a JOSE name (case-sensitive, as in JOSE).
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "EdDSA" => Some(KeyAlgorithm::EdDSA),
            "ES256" => Some(KeyAlgorithm::ES256),
            "RS256" => Some(KeyAlgorithm::RS256),
            _ => None,
        }
    }

    pub(crate) fn jwt_alg(self) -> jsonwebtoken::Algorithm {
        match self {
            KeyAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            KeyAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            KeyAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

/// Everything the auth service and the verifier need from `[auth]`.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// `iss` of every token we sign, and the only issuer accepted for our own keys.
    pub issuer: String,
    /// `aud` of our tokens; a token is accepted when it names at least one of these.
    pub audience: Vec<String>,
    /// Access-token lifetime (`[auth] access_ttl`, default 15 min).
    pub access_ttl: Duration,
    /// Refresh-token lifetime (`[auth] refresh_ttl`, default 7 d); never past the session's end.
    pub refresh_ttl: Duration,
    /// A session unused this long ends (`[auth] session_idle_timeout`, default 30 min).
    pub session_idle_timeout: Duration,
    /// A session ends this long after login whatever happens (`[auth] session_absolute_timeout`).
    pub session_absolute_timeout: Duration,
    /// How long the immediate predecessor of a refresh token still yields the same successor
    /// (two tabs refreshing at once) instead of counting as reuse (`[auth] refresh_reuse_grace`).
    pub refresh_reuse_grace: Duration,
    /// Algorithm of new signing keys (`[auth] key_algorithm`, default EdDSA).
    pub key_algorithm: KeyAlgorithm,
    /// Name of the environment variable holding the master key (`[auth] key_encryption_env`).
    pub key_encryption_env: String,
    /// After `keys rotate`, the new key is published this long before it signs, so every node
    /// and relying party has it (`[auth] key_publish_delay`, default 1 min).
    pub key_publish_delay: Duration,
    /// Clock skew allowed on `exp`, `nbf` and `iat` (default 30 s).
    pub leeway: Duration,
    /// Scopes put into tokens issued at login (space-free strings).
    pub default_scopes: Vec<String>,
    /// Tokens longer than this are refused before any parsing (default 8 KiB).
    pub max_token_bytes: usize,
    /// Entries in the cache of verified tokens (default 10 000).
    pub verified_cache_capacity: usize,
}

impl AuthOptions {
    /// The defaults of DESIGN.md §6 for an issuer and audience.
    pub fn new(issuer: impl Into<String>, audience: Vec<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience,
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 86400),
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_absolute_timeout: Duration::from_secs(7 * 86400),
            refresh_reuse_grace: Duration::from_secs(10),
            key_algorithm: KeyAlgorithm::EdDSA,
            key_encryption_env: "RAMPART_KEY".into(),
            key_publish_delay: Duration::from_secs(60),
            leeway: Duration::from_secs(30),
            default_scopes: Vec::new(),
            max_token_bytes: 8192,
            verified_cache_capacity: 10_000,
        }
    }
}

/// An outside identity provider whose tokens are accepted too (`[[trusted_issuer]]`).
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// Exact `iss` value.
    pub issuer: String,
    /// Accepted audiences (at least one must match).
    pub audience: Vec<String>,
    /// Required `typ` header (case-insensitive), if any; outside providers often send `JWT`.
    pub required_typ: Option<String>,
}

pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}
