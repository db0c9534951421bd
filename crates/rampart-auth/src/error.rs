//! [`AuthError`]: everything that can go wrong in authentication, with its HTTP status.

use http::StatusCode;
use rampart_store::StoreError;

/// What went wrong, and who caused it (client, us, a backing service).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials were presented (client → 401, `WWW-Authenticate: Bearer`).
    #[error("no credentials")]
    MissingCredentials,
    /// Unknown user, wrong password or disabled user: one error for all (client → 401).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The token is longer than the configured cap (client → 401 invalid_token).
    #[error("token too large")]
    TokenTooLarge,
    /// Not a well-formed JWS compact token (client → 401 invalid_token).
    #[error("malformed token")]
    MalformedToken,
    /// A header we refuse: `jku`, `x5u`, `jwk`, `x5c`, `crit` (client → 401 invalid_token).
    #[error("forbidden token header: {0}")]
    ForbiddenHeader(&'static str),
    /// No `kid`, or a `kid` we do not know (client → 401 invalid_token).
    #[error("unknown signing key")]
    UnknownKey,
    /// The header's `alg` is not the algorithm of the key (client → 401 invalid_token).
    #[error("algorithm not allowed for this key")]
    AlgorithmMismatch,
    /// The signature does not verify (client → 401 invalid_token).
    #[error("token signature invalid")]
    BadSignature,
    /// The `typ` header is not `at+jwt` (client → 401 invalid_token).
    #[error("wrong token type")]
    WrongType,
    /// `exp` passed (client → 401 invalid_token).
    #[error("token expired")]
    TokenExpired,
    /// `nbf` or `iat` in the future (client → 401 invalid_token).
    #[error("token not yet valid")]
    TokenNotYetValid,
    /// `iss` is neither ours nor a trusted issuer's (client → 401 invalid_token).
    #[error("untrusted issuer")]
    WrongIssuer,
    /// `aud` names none of the accepted audiences (client → 401 invalid_token).
    #[error("wrong audience")]
    WrongAudience,
    /// The token's session was revoked (client → 401 invalid_token).
    #[error("session revoked")]
    SessionRevoked,
    /// The token lacks a scope the route requires (client → 403 insufficient_scope).
    #[error("insufficient scope")]
    InsufficientScope {
        /// The scopes the route requires (space-separated in `WWW-Authenticate`).
        required: Vec<String>,
    },
    /// The refresh token (or session cookie, or API key) is unknown, revoked or expired
    /// (client → 401).
    #[error("invalid or expired credential")]
    InvalidRefresh,
    /// An already rotated refresh token was presented outside the grace window: the whole
    /// family was revoked. The caller logs `auth.refresh.reuse` (client or thief → 401).
    #[error("refresh token reused; session revoked")]
    RefreshReuse {
        /// The revoked session.
        sid: String,
        /// Its user.
        user_id: String,
    },
    /// Too many failed logins for this username or network: refused before the password is
    /// checked (client → 429 with `Retry-After`).
    #[error("too many failed attempts")]
    TooManyAttempts {
        /// Seconds until the next attempt is checked.
        retry_after_secs: u64,
    },
    /// The session ended (idle or absolute) (client → 401).
    #[error("session expired")]
    SessionExpired,
    /// Revocation state unknown (shared store not re-synced): fail closed (us → 503).
    #[error("revocation state unknown")]
    RevocationUnknown,
    /// A user with this name exists (operator → 409).
    #[error("user already exists")]
    UserExists,
    /// The named user, session, key or API key does not exist (caller → 404).
    #[error("not found")]
    NotFound,
    /// Invalid input to an operation, e.g. an empty username (caller → 400).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The store failed (us → 503 when unavailable, else 500).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The master key is missing or too short (operator → refuse to start).
    #[error("master key: {0}")]
    MasterKey(String),
    /// A stored private key does not decrypt with the master key (operator → refuse to start).
    #[error("signing key does not decrypt with the master key")]
    KeyDecrypt,
    /// A cryptographic primitive failed (us → 500).
    #[error("crypto: {0}")]
    Crypto(String),
}

impl AuthError {
    /// The HTTP status of this error (one match, no wildcard arm).
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::MissingCredentials
            | AuthError::InvalidCredentials
            | AuthError::TokenTooLarge
            | AuthError::MalformedToken
            | AuthError::ForbiddenHeader(_)
            | AuthError::UnknownKey
            | AuthError::AlgorithmMismatch
            | AuthError::BadSignature
            | AuthError::WrongType
            | AuthError::TokenExpired
            | AuthError::TokenNotYetValid
            | AuthError::WrongIssuer
            | AuthError::WrongAudience
            | AuthError::SessionRevoked
            | AuthError::InvalidRefresh
            | AuthError::RefreshReuse { .. }
            | AuthError::SessionExpired => StatusCode::UNAUTHORIZED,
            AuthError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            AuthError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            AuthError::UserExists => StatusCode::CONFLICT,
            AuthError::NotFound => StatusCode::NOT_FOUND,
            AuthError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            AuthError::RevocationUnknown => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Store(_)
            | AuthError::MasterKey(_)
            | AuthError::KeyDecrypt
            | AuthError::Crypto(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `WWW-Authenticate` value for a bearer-token route (RFC 6750 §3), when the status
    /// calls for one. Only fixed strings and scope names (never token content) go into it.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            AuthError::MissingCredentials => Some("Bearer".into()),
            AuthError::InsufficientScope { required } => Some(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                required.join(" ").replace(['"', '\\'], "")
            )),
            e if e.status() == StatusCode::UNAUTHORIZED => {
                Some("Bearer error=\"invalid_token\"".into())
            }
            _ => None,
        }
    }

    /// Short public reason for the problem body (never internal detail).
    pub fn public_message(&self) -> &'static str {
        match self.status() {
            StatusCode::UNAUTHORIZED => "authentication required",
            StatusCode::FORBIDDEN => "insufficient scope",
            StatusCode::SERVICE_UNAVAILABLE => "authentication temporarily unavailable",
            StatusCode::TOO_MANY_REQUESTS => {
                "too many failed attempts; retry after the time in Retry-After"
            }
            StatusCode::CONFLICT => "already exists",
            StatusCode::NOT_FOUND => "not found",
            StatusCode::BAD_REQUEST => "invalid request",
            _ => "internal error",
        }
    }
}
