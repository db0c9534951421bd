//! OAuth 2.0 error responses (RFC 6749 §5.2): `{"error", "error_description"}`.

use rampart_auth::AuthError;
use rampart_store::StoreError;

/// A refusal of the token, revocation or introspection endpoints, or of an authorization
/// request that can be sent back to the client's redirect URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The RFC 6749 error code (`invalid_request`, `invalid_client`, `invalid_grant`…).
    pub code: &'static str,
    /// Human-readable, never containing a secret or the request's values.
    pub description: String,
    /// HTTP status of the JSON answer.
    pub status: u16,
}

impl OAuthError {
    fn new(code: &'static str, status: u16, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            status,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", 400, d)
    }

    /// 401 `invalid_client`: unknown client, wrong secret, or no authentication.
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", 401, d)
    }

    /// 400 `invalid_grant`: bad, expired or replayed code, PKCE mismatch, bad refresh token.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", 400, d)
    }

    /// 400 `unauthorized_client`: the client may not use this grant type.
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", 400, d)
    }

    /// 400 `unsupported_grant_type`.
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", 400, d)
    }

    /// 400 `invalid_scope`.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", 400, d)
    }

    /// 401 `invalid_token` (userinfo).
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new("invalid_token", 401, d)
    }

    /// 403 `insufficient_scope` (userinfo without `openid`).
    pub fn insufficient_scope(d: impl Into<String>) -> Self {
        Self::new("insufficient_scope", 403, d)
    }

    /// 503 `temporarily_unavailable`: the store is down.
    pub fn unavailable() -> Self {
        Self::new(
            "temporarily_unavailable",
            503,
            "the authorization server cannot reach its store",
        )
    }

    /// 500 `server_error`.
    pub fn server_error() -> Self {
        Self::new("server_error", 500, "the authorization server failed")
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code, "error_description": self.description })
    }
}

impl From<StoreError> for OAuthError {
    fn from(_: StoreError) -> Self {
        OAuthError::unavailable()
    }
}

impl From<AuthError> for OAuthError {
    fn from(e: AuthError) -> Self {
        match e.status().as_u16() {
            503 => OAuthError::unavailable(),
            400 => OAuthError::invalid_request(e.public_message()),
            401 | 403 => OAuthError::invalid_grant(e.public_message()),
            _ => OAuthError::server_error(),
        }
    }
}
