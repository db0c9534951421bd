//! Authentication layer of Rampart (request-path phase 5, "authn"): passwords (argon2id),
//! sessions and refresh-token families with atomic rotation and reuse detection, JWT access
//! tokens signed with our keys (EdDSA by default, ES256, RS256) and their rotation, the JWKS
//! document, and the verification of bearer tokens on the request path — without any database
//! lookup, against pinned per-key algorithms, a bounded cache and an in-memory revoked-session
//! set. It must never take the algorithm or a key location from a token, never store a secret
//! other than as a keyed hash (passwords: argon2id; signing keys: AES-256-GCM), never log a
//! secret, and never panic on network input. It builds no HTTP responses: errors carry their
//! status and `WWW-Authenticate` value for `rampart` to render.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod apikey;
mod config;
pub mod cookie;
mod error;
pub mod keys;
mod password;
pub mod redis_sync;
mod revocation;
mod secret;
mod service;
pub mod throttle;
mod token;
mod verify;

pub use apikey::{ApiKeyIdentity, NewApiKey};
pub use config::{AuthOptions, KeyAlgorithm, TrustedIssuer};
pub use error::AuthError;
pub use keys::{KeyEntry, KeySet};
pub use password::{MAX_PASSWORD_BYTES, PasswordHasher};
pub use revocation::{RevocationList, RevocationSink};
pub use secret::{MasterKey, random_id, random_token};
pub use service::{
    AuthService, Clock, KeyInfo, LoginGrant, LoginRequest, RefreshGrant, SessionCookieGrant,
    SessionIdentity, SessionInfo, SystemClock,
};
pub use token::{ACCESS_TOKEN_TYP, AccessClaims, OneOrMany, sign_access_token, sign_jwt};
pub use verify::{AuthOutcome, VerifiedToken, Verifier};

pub use rampart_store;

/// Current Unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
