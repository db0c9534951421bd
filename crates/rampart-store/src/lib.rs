//! Storage layer of Rampart: the [`Store`] trait over users, sessions, refresh-token families,
//! signing keys, API keys and OAuth clients/codes, with two real backends (SQLite, the embedded
//! default, and PostgreSQL) sharing one embedded migration set. This crate only stores what it is
//! given: it never sees a plaintext secret (callers hash refresh tokens, cookie values, API keys
//! and client secrets with a keyed hash first), never builds SQL from values (every value is a
//! bound parameter) and never panics on stored data (bad rows become [`StoreError::Corrupt`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod migrate;
mod sql;
mod types;

pub use sql::{SqlStore, StoreOptions};
pub use types::*;

use std::sync::Arc;

/// What went wrong in the store, and who caused it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be reached or timed out (us / operations → 503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A unique key already exists (caller → 409 or a clear CLI message).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The store URL is not `sqlite://PATH` or `postgres://...` (operator → config error).
    #[error("invalid store url: {0}")]
    InvalidUrl(String),
    /// A value given to the store cannot be stored as is (caller bug).
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// A stored row could not be read back (data corruption or a newer schema).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A migration failed at start-up (operator → stop).
    #[error("migration failed: {0}")]
    Migration(String),
    /// Any other database error (us → 500/503).
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    /// True when the failure is the backend being down rather than the request being wrong:
    /// callers answer 503 and fail closed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Database(_))
    }
}

/// Result of [`Store::rotate_refresh`]: the compare-and-swap either won or found the token
/// already rotated (or revoked, or gone) by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// This call rotated the token; the successor row exists now.
    Rotated,
    /// Another call rotated (or revoked) the token first; nothing was changed.
    Lost,
}

/// Result of [`Store::consume_auth_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// The code was unused and unexpired; it is now marked used.
    Consumed(AuthCode),
    /// The code had already been used (a replay: the OAuth server should revoke what it issued).
    AlreadyUsed(AuthCode),
    /// No such code, or it expired.
    NotFound,
}

/// Everything Rampart persists. Implemented by [`SqlStore`] for SQLite and PostgreSQL; all times
/// are Unix seconds; all `*_hash` values are keyed hashes computed by the caller.
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Cheap round trip to the database, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    // ---- users ----
    /// Inserts a user; [`StoreError::Conflict`] when the username exists.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    /// The user with this username, if any.
    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError>;
    /// The user with this id, if any.
    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// Every user, ordered by username.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Sets the disabled flag; false when no such user.
    async fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError>;
    /// Replaces the password hash; false when no such user.
    async fn set_user_password(&self, id: &str, password_hash: &str) -> Result<bool, StoreError>;

    // ---- sessions and refresh-token families ----
    /// Creates a session and, when given, the first refresh token of its family, atomically.
    async fn create_session(
        &self,
        session: &Session,
        first_refresh: Option<&RefreshToken>,
    ) -> Result<(), StoreError>;
    /// The session with this public id, revoked or not.
    async fn session(&self, sid: &str) -> Result<Option<Session>, StoreError>;
    /// The session whose cookie secret hashes to `secret_hash`.
    async fn session_by_secret(&self, secret_hash: &[u8]) -> Result<Option<Session>, StoreError>;
    /// The user's sessions that are neither revoked nor expired at `now`, newest first.
    async fn list_active_sessions(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<Session>, StoreError>;
    /// Records activity: `last_seen_at = now`, `idle_expires_at` (capped by the caller).
    async fn touch_session(
        &self,
        sid: &str,
        now: i64,
        idle_expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Revokes a session and its whole refresh family; true when it was not revoked before.
    async fn revoke_session(&self, sid: &str, now: i64) -> Result<bool, StoreError>;
    /// Revokes every unrevoked session of a user (and their families); returns their sids.
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError>;
    /// Sessions revoked at or after `since` with their absolute end, for re-syncing revocation
    /// lists: `(sid, revoked_at)`.
    async fn revoked_sessions_since(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError>;
    /// The refresh token with this hash.
    async fn refresh_token(&self, hash: &[u8]) -> Result<Option<RefreshToken>, StoreError>;
    /// Atomic compare-and-swap: marks `old_hash` rotated (only if it is neither rotated nor
    /// revoked), inserts `successor` and touches the session, in one transaction.
    async fn rotate_refresh(
        &self,
        old_hash: &[u8],
        successor: &RefreshToken,
        now: i64,
        idle_expires_at: i64,
    ) -> Result<RotateOutcome, StoreError>;
    /// Deletes sessions, tokens and codes whose absolute end passed before `before`.
    async fn purge_expired(&self, before: i64) -> Result<u64, StoreError>;

    // ---- signing keys ----
    /// Inserts a signing key; [`StoreError::Conflict`] when the kid exists.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// Every signing key, oldest first.
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Sets when a key stops being published and verifying; false when no such kid.
    async fn set_key_retire_after(
        &self,
        kid: &str,
        retire_after: Option<i64>,
    ) -> Result<bool, StoreError>;
    /// Deletes a key (after it retired); false when no such kid.
    async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError>;

    // ---- API keys ----
    /// Inserts an API key record; [`StoreError::Conflict`] when the prefix exists.
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    /// The API key with this public prefix.
    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// Every API key, ordered by creation.
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Revokes the API key with this id or prefix; true when it was active.
    async fn revoke_api_key(&self, id_or_prefix: &str) -> Result<bool, StoreError>;

    // ---- OAuth clients and authorization codes ----
    /// Inserts an OAuth client; [`StoreError::Conflict`] when the id exists.
    async fn create_client(&self, client: &OAuthClient) -> Result<(), StoreError>;
    /// The client with this id.
    async fn client(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError>;
    /// Every client, ordered by id.
    async fn list_clients(&self) -> Result<Vec<OAuthClient>, StoreError>;
    /// Deletes a client and its codes; false when no such client.
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;
    /// Stores a new authorization code (hashed).
    async fn insert_auth_code(&self, code: &AuthCode) -> Result<(), StoreError>;
    /// Atomically marks the code used when it is unused and unexpired at `now`.
    async fn consume_auth_code(
        &self,
        code_hash: &[u8],
        now: i64,
    ) -> Result<CodeOutcome, StoreError>;
}

/// Opens the store named by `url` (`sqlite://PATH` or `postgres://...`), creating the SQLite
/// file and its folder when missing, and applies the migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqlStore::open(url).await?))
}
