//! Access tokens: the claims we sign (RFC 9068 profile, `typ: at+jwt`) and compact JWS
//! serialization with one of our keys.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::AuthError;
use crate::keys::KeyEntry;

/// `aud` as JWT allows it: one string or an array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }

    /// One string for one value, an array otherwise.
    pub fn from_vec(mut v: Vec<String>) -> Self {
        if v.len() == 1 {
            OneOrMany::One(v.remove(0))
        } else {
            OneOrMany::Many(v)
        }
    }
}

/// Claims of an access token we issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer (`[auth] issuer`).
    pub iss: String,
    /// Subject: user id, or client id for client-credentials tokens.
    pub sub: String,
    /// Audience(s).
    pub aud: OneOrMany,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before (= `iat`).
    pub nbf: i64,
    /// Unique token id.
    pub jti: String,
    /// Public session id, when issued in a session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// OAuth client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// The media type in the `typ` header of our access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Serializes and signs `claims` with `key`: header `{"alg", "typ": "at+jwt", "kid"}`.
pub fn sign_access_token(key: &KeyEntry, claims: &AccessClaims) -> Result<String, AuthError> {
    sign_jwt(key, ACCESS_TOKEN_TYP, claims)
}

/// Signs any claims with `key` as a compact JWS with header `{"alg", "typ", "kid"}` (the OAuth
/// server uses `typ = "JWT"` for ID tokens).
pub fn sign_jwt<T: Serialize>(key: &KeyEntry, typ: &str, claims: &T) -> Result<String, AuthError> {
    let alg = serde_json::to_value(key.alg).map_err(|e| AuthError::Crypto(e.to_string()))?;
    let header = serde_json::json!({ "alg": alg, "typ": typ, "kid": key.kid });
    let header = serde_json::to_vec(&header).map_err(|e| AuthError::Crypto(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| AuthError::Crypto(e.to_string()))?;
    let mut out = URL_SAFE_NO_PAD.encode(header);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let sig = key.sign(out.as_bytes())?;
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    Ok(out)
}
