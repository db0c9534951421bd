//! Row types of the store. Times are Unix seconds; hashes are keyed hashes made by the caller.

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable random id (used as `sub`).
    pub id: String,
    /// Unique login name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// A disabled user cannot log in or refresh.
    pub disabled: bool,
    /// Creation time.
    pub created_at: i64,
}

/// A login session; also the refresh-token family (one family per session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Public id (`sid` claim, session lists, upstream headers); never a secret.
    pub sid: String,
    /// Owner.
    pub user_id: String,
    /// Keyed hash of the session cookie value (server-side session mode), if any.
    pub secret_hash: Option<Vec<u8>>,
    /// Creation time.
    pub created_at: i64,
    /// Last activity (login, refresh, cookie use).
    pub last_seen_at: i64,
    /// End by inactivity (moved forward on activity, never past `expires_at`).
    pub idle_expires_at: i64,
    /// Absolute end.
    pub expires_at: i64,
    /// Client address at login.
    pub client_addr: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
    /// Revocation time, when revoked.
    pub revoked_at: Option<i64>,
    /// OAuth client the session was granted to (None for first-party logins).
    pub client_id: Option<String>,
    /// Scopes granted to the session's tokens (no whitespace inside a scope).
    pub scopes: Vec<String>,
}

impl Session {
    /// True when neither revoked nor expired (idle or absolute) at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.idle_expires_at && now < self.expires_at
    }
}

/// One refresh token of a family (the family is the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Keyed hash of the token value.
    pub hash: Vec<u8>,
    /// Family = session id.
    pub sid: String,
    /// 0 for the token issued at login, +1 per rotation.
    pub generation: i64,
    /// Issue time.
    pub created_at: i64,
    /// End of validity (never past the session's absolute end).
    pub expires_at: i64,
    /// When it was exchanged for its successor.
    pub rotated_at: Option<i64>,
    /// Hash of the successor, kept for the reuse grace window.
    pub successor_hash: Option<Vec<u8>>,
    /// Revoked with its family.
    pub revoked: bool,
}

/// A JWT signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id (`kid` header).
    pub kid: String,
    /// JOSE algorithm name (`EdDSA`, `ES256`, `RS256`).
    pub alg: String,
    /// Private key (PKCS#8), encrypted with AES-256-GCM by the caller.
    pub private_key_enc: Vec<u8>,
    /// Public JWK as JSON.
    pub public_jwk: String,
    /// Creation time (published in JWKS from then on).
    pub created_at: i64,
    /// Signs from this time on (after it had time to be published).
    pub not_before: i64,
    /// Neither published nor accepted after this time; `None` while current.
    pub retire_after: Option<i64>,
}

/// An API key (the secret part is only stored hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Stable id.
    pub id: String,
    /// Public, unique prefix shown in lists and used for lookup.
    pub prefix: String,
    /// Keyed hash of the whole key.
    pub hash: Vec<u8>,
    /// Operator-given label.
    pub name: String,
    /// Owner (user id or free text), if any.
    pub owner: Option<String>,
    /// Granted scopes (no whitespace inside a scope).
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: i64,
    /// Expiry, if any.
    pub expires_at: Option<i64>,
    /// Revoked keys never authenticate.
    pub revoked: bool,
}

/// An OAuth 2.0 client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// Client id.
    pub client_id: String,
    /// Keyed hash of the client secret; `None` for public clients (PKCE only).
    pub secret_hash: Option<Vec<u8>>,
    /// Display name.
    pub name: String,
    /// Exact redirect URIs (no whitespace inside one).
    pub redirect_uris: Vec<String>,
    /// Scopes the client may ask for.
    pub scopes: Vec<String>,
    /// Allowed grant types (`authorization_code`, `client_credentials`, `refresh_token`).
    pub grant_types: Vec<String>,
    /// Creation time.
    pub created_at: i64,
}

/// An OAuth 2.0 authorization code (stored hashed, single use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    /// Keyed hash of the code.
    pub code_hash: Vec<u8>,
    /// Client it was issued to.
    pub client_id: String,
    /// User who approved.
    pub user_id: String,
    /// Session it was issued in, if any.
    pub sid: Option<String>,
    /// Redirect URI given at authorization (must match at the token endpoint).
    pub redirect_uri: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// PKCE code challenge.
    pub code_challenge: String,
    /// PKCE method (`S256`).
    pub challenge_method: String,
    /// OIDC nonce, if any.
    pub nonce: Option<String>,
    /// Issue time.
    pub created_at: i64,
    /// Expiry (short: about a minute).
    pub expires_at: i64,
    /// Already exchanged.
    pub used: bool,
}
