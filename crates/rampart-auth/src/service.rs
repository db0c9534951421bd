//! [`AuthService`]: the operations behind `/auth/*`, the CLI and the OAuth server — users,
//! login, refresh rotation with reuse detection, logout, sessions, keys and rotation.

use std::sync::{Arc, RwLock};

use rampart_store::{RefreshToken, RotateOutcome, Session, Store, User};
use serde_json::Value;

use crate::AuthError;
use crate::config::{AuthOptions, KeyAlgorithm, secs};
use crate::keys::{KeySet, generate_key, load_key};
use crate::password::PasswordHasher;
use crate::revocation::{RevocationList, RevocationSink};
use crate::secret::{MasterKey, is_token_shaped, random_id, random_token};
use crate::token::{AccessClaims, OneOrMany, sign_access_token};
use crate::verify::Verifier;

/// Source of the current time (Unix seconds); tests substitute their own.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in Unix seconds.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        crate::now_unix()
    }
}

/// Input of [`AuthService::login`].
#[derive(Debug, Clone, Copy)]
pub struct LoginRequest<'a> {
    /// Username as typed.
    pub username: &'a str,
    /// Password as typed (never logged).
    pub password: &'a str,
    /// Verified client address (shown in session lists).
    pub client_addr: Option<&'a str>,
    /// `User-Agent` (shown in session lists; truncated to 256 bytes).
    pub user_agent: Option<&'a str>,
}

/// What login and refresh hand out. `access_token`, `token_type`, `expires_in` go into the JSON
/// body; `refresh_token` only into the `rampart_refresh` cookie with `Max-Age = refresh_max_age`.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginGrant {
    /// Signed JWT access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access-token lifetime in seconds.
    pub expires_in: i64,
    /// The refresh token (cookie value).
    pub refresh_token: String,
    /// Cookie `Max-Age`: the refresh lifetime, never past the session's absolute end.
    pub refresh_max_age: i64,
    /// Public session id.
    pub sid: String,
    /// User id (`sub`).
    pub user_id: String,
}

impl std::fmt::Debug for LoginGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGrant")
            .field("sid", &self.sid)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl LoginGrant {
    /// The JSON body of `/auth/login` and `/auth/refresh`:
    /// `{"access_token", "token_type": "Bearer", "expires_in"}` (never the refresh token).
    pub fn body_json(&self) -> Value {
        serde_json::json!({ "access_token": self.access_token, "token_type": self.token_type, "expires_in": self.expires_in })
    }

    /// The `Set-Cookie` value carrying the refresh token.
    pub fn set_cookie(&self) -> String {
        crate::cookie::refresh_cookie(&self.refresh_token, self.refresh_max_age)
    }
}

/// What a refresh hands out (same shape as a login).
pub type RefreshGrant = LoginGrant;

/// A server-side session for `auth = ["session"]` routes: `cookie_value` goes into
/// `__Host-rampart_session` (HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age = `max_age`).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCookieGrant {
    /// The secret cookie value (stored only as a keyed hash).
    pub cookie_value: String,
    /// Public session id.
    pub sid: String,
    /// User id.
    pub user_id: String,
    /// Cookie `Max-Age` (the session's absolute end).
    pub max_age: i64,
}

impl std::fmt::Debug for SessionCookieGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCookieGrant")
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

/// Identity proven by a session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIdentity {
    /// Public session id (`X-Rampart-Session`).
    pub sid: String,
    /// User id (`X-Rampart-Subject`).
    pub user_id: String,
    /// Absolute end of the session.
    pub expires_at: i64,
}

/// A session as listed by `GET /auth/sessions` (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionInfo {
    /// Public id (`DELETE /auth/sessions/{sid}`).
    pub sid: String,
    /// Login time.
    pub created_at: i64,
    /// Last activity.
    pub last_seen_at: i64,
    /// Absolute end.
    pub expires_at: i64,
    /// Client address at login.
    pub client_addr: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
    /// True for the session of the token that asked.
    pub current: bool,
}

/// A signing key as listed by `rampart keys list`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: String,
    /// Published since.
    pub created_at: i64,
    /// Signs from.
    pub not_before: i64,
    /// Retires after (None while current).
    pub retire_after: Option<i64>,
    /// True for the key signing now.
    pub signing: bool,
    /// True while in the JWKS document.
    pub published: bool,
}

/// The authentication service of one node.
pub struct AuthService {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) opts: AuthOptions,
    pub(crate) master: MasterKey,
    passwords: PasswordHasher,
    keys: RwLock<KeySet>,
    verifier: Arc<Verifier>,
    revocations: Arc<RevocationList>,
    sink: RwLock<Option<Arc<dyn RevocationSink>>>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("issuer", &self.opts.issuer)
            .finish_non_exhaustive()
    }
}

fn truncate(s: Option<&str>, max: usize) -> Option<String> {
    s.map(|s| {
        let mut end = s.len().min(max);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_owned()
    })
}

impl AuthService {
    /// Builds the service over `store`: loads the signing keys (creating the first one when
    /// there is none) and fails with [`AuthError::KeyDecrypt`] under a wrong master key.
    pub async fn new(
        store: Arc<dyn Store>,
        opts: AuthOptions,
        master: MasterKey,
    ) -> Result<Self, AuthError> {
        Self::with_clock(store, opts, master, Arc::new(SystemClock)).await
    }

    /// [`AuthService::new`] with a custom clock (tests).
    pub async fn with_clock(
        store: Arc<dyn Store>,
        opts: AuthOptions,
        master: MasterKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        Self::with_hasher(store, opts, master, clock, PasswordHasher::new()?).await
    }

    /// Full constructor: custom clock and password hasher.
    pub async fn with_hasher(
        store: Arc<dyn Store>,
        opts: AuthOptions,
        master: MasterKey,
        clock: Arc<dyn Clock>,
        passwords: PasswordHasher,
    ) -> Result<Self, AuthError> {
        if opts.issuer.is_empty() || opts.audience.is_empty() {
            return Err(AuthError::InvalidInput(
                "issuer and audience are required".into(),
            ));
        }
        let revocations = Arc::new(RevocationList::new(
            secs(opts.access_ttl).saturating_add(secs(opts.leeway)),
        ));
        let verifier = Arc::new(Verifier::new(&opts, revocations.clone()));
        let svc = Self {
            store,
            opts,
            master,
            passwords,
            keys: RwLock::new(KeySet::default()),
            verifier,
            revocations,
            sink: RwLock::new(None),
            clock,
        };
        svc.reload_keys().await?;
        let now = svc.now();
        if svc.key_set().signer_at(now).is_none() {
            let (record, _) = generate_key(svc.opts.key_algorithm, &svc.master, now, now)?;
            svc.store.insert_signing_key(&record).await?;
            tracing::info!(kid = %record.kid, alg = %record.alg, "created the first signing key");
            svc.reload_keys().await?;
        }
        Ok(svc)
    }

    /// The service's clock (Unix seconds).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The options in force.
    pub fn options(&self) -> &AuthOptions {
        &self.opts
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The master key (the OAuth server hashes client secrets and codes with
    /// [`MasterKey::hash_secret`]).
    pub fn master_key(&self) -> &MasterKey {
        &self.master
    }

    /// The request-path verifier (share it with the gateway's authn phase).
    pub fn verifier(&self) -> Arc<Verifier> {
        self.verifier.clone()
    }

    /// The revoked-session set (feed it from other nodes with
    /// [`RevocationList::insert_until`]).
    pub fn revocations(&self) -> Arc<RevocationList> {
        self.revocations.clone()
    }

    /// Sets where this node publishes its revocations (e.g. [`crate::redis_sync::RedisRevocations`]).
    pub fn set_revocation_sink(&self, sink: Arc<dyn RevocationSink>) {
        *self.sink.write().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    fn key_set(&self) -> KeySet {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    // ---------------------------------------------------------------- users

    /// Creates a user (`rampart user add`; the password comes from stdin). CPU-heavy (argon2).
    pub async fn add_user(&self, username: &str, password: &str) -> Result<User, AuthError> {
        let username = username.trim();
        if username.is_empty() || username.len() > 256 || username.chars().any(char::is_control) {
            return Err(AuthError::InvalidInput(
                "username must be 1..=256 printable characters".into(),
            ));
        }
        let hash = self.hash_password(password).await?;
        let user = User {
            id: random_id()?,
            username: username.to_owned(),
            password_hash: hash,
            disabled: false,
            created_at: self.now(),
        };
        match self.store.create_user(&user).await {
            Ok(()) => Ok(user),
            Err(rampart_store::StoreError::Conflict(_)) => Err(AuthError::UserExists),
            Err(e) => Err(e.into()),
        }
    }

    async fn hash_password(&self, password: &str) -> Result<String, AuthError> {
        let hasher = self.passwords.clone();
        let pw = password.to_owned();
        tokio::task::spawn_blocking(move || hasher.hash(&pw))
            .await
            .map_err(|e| AuthError::Crypto(e.to_string()))?
    }

    async fn verify_password(&self, password: &str, hash: Option<String>) -> bool {
        let hasher = self.passwords.clone();
        let pw = password.to_owned();
        tokio::task::spawn_blocking(move || hasher.verify(&pw, hash.as_deref()))
            .await
            .unwrap_or(false)
    }

    /// Every user (`rampart user list`).
    pub async fn list_users(&self) -> Result<Vec<User>, AuthError> {
        Ok(self.store.list_users().await?)
    }

    /// Disables a user and revokes all of its sessions (`rampart user disable NAME`); returns the
    /// revoked sids (already in the local revocation set and published to the sink).
    pub async fn disable_user(&self, username: &str) -> Result<Vec<String>, AuthError> {
        let user = self
            .store
            .user_by_name(username)
            .await?
            .ok_or(AuthError::NotFound)?;
        self.store.set_user_disabled(&user.id, true).await?;
        self.logout_all(&user.id).await
    }

    /// Re-enables a disabled user.
    pub async fn enable_user(&self, username: &str) -> Result<(), AuthError> {
        let user = self
            .store
            .user_by_name(username)
            .await?
            .ok_or(AuthError::NotFound)?;
        self.store.set_user_disabled(&user.id, false).await?;
        Ok(())
    }

    /// Replaces a user's password and revokes its sessions.
    pub async fn set_password(&self, username: &str, password: &str) -> Result<(), AuthError> {
        let user = self
            .store
            .user_by_name(username)
            .await?
            .ok_or(AuthError::NotFound)?;
        let hash = self.hash_password(password).await?;
        self.store.set_user_password(&user.id, &hash).await?;
        self.logout_all(&user.id).await?;
        Ok(())
    }

    /// Checks a username and password in constant work: an unknown user is verified against a
    /// dummy hash; unknown, wrong and disabled all give [`AuthError::InvalidCredentials`].
    pub async fn check_password(&self, username: &str, password: &str) -> Result<User, AuthError> {
        let user = if username.len() > 256 {
            None
        } else {
            self.store.user_by_name(username).await?
        };
        let ok = self
            .verify_password(password, user.as_ref().map(|u| u.password_hash.clone()))
            .await;
        match user {
            Some(u) if ok && !u.disabled => Ok(u),
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    // ---------------------------------------------------------------- login / refresh

    fn new_session(
        &self,
        user_id: &str,
        req: &LoginRequest<'_>,
        now: i64,
        secret_hash: Option<Vec<u8>>,
    ) -> Result<Session, AuthError> {
        self.new_session_for(
            user_id,
            None,
            &self.opts.default_scopes,
            req.client_addr,
            req.user_agent,
            now,
            secret_hash,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn new_session_for(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        scopes: &[String],
        client_addr: Option<&str>,
        user_agent: Option<&str>,
        now: i64,
        secret_hash: Option<Vec<u8>>,
    ) -> Result<Session, AuthError> {
        let expires_at = now.saturating_add(secs(self.opts.session_absolute_timeout));
        Ok(Session {
            sid: random_id()?,
            user_id: user_id.to_owned(),
            secret_hash,
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now
                .saturating_add(secs(self.opts.session_idle_timeout))
                .min(expires_at),
            expires_at,
            client_addr: truncate(client_addr, 64),
            user_agent: truncate(user_agent, 256),
            revoked_at: None,
            client_id: client_id.map(str::to_owned),
            scopes: scopes.to_vec(),
        })
    }

    fn refresh_expiry(&self, now: i64, session_end: i64) -> i64 {
        now.saturating_add(secs(self.opts.refresh_ttl))
            .min(session_end)
    }

    /// `POST /auth/login`: checks the password (same time and error for unknown users), creates
    /// a session and its refresh family, and signs an access token.
    pub async fn login(&self, req: LoginRequest<'_>) -> Result<LoginGrant, AuthError> {
        let user = self.check_password(req.username, req.password).await?;
        let now = self.now();
        let session = self.new_session(&user.id, &req, now, None)?;
        self.open_family(session, now).await
    }

    /// Starts a session and refresh family for a user already authenticated by the caller
    /// (the OAuth server's code exchange): tokens carry `scopes` and `client_id`, and
    /// [`AuthService::refresh`] keeps them.
    pub async fn start_session(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        scopes: &[String],
        client_addr: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<LoginGrant, AuthError> {
        if scopes
            .iter()
            .any(|s| s.is_empty() || s.chars().any(char::is_whitespace))
        {
            return Err(AuthError::InvalidInput(
                "scopes must be non-empty and contain no whitespace".into(),
            ));
        }
        let now = self.now();
        let session = self.new_session_for(
            user_id,
            client_id,
            scopes,
            client_addr,
            user_agent,
            now,
            None,
        )?;
        self.open_family(session, now).await
    }

    async fn open_family(&self, session: Session, now: i64) -> Result<LoginGrant, AuthError> {
        let refresh = random_token()?;
        let expires_at = self.refresh_expiry(now, session.expires_at);
        let row = RefreshToken {
            hash: self.master.hash_secret(refresh.as_bytes()),
            sid: session.sid.clone(),
            generation: 0,
            created_at: now,
            expires_at,
            rotated_at: None,
            successor_hash: None,
            revoked: false,
        };
        self.store.create_session(&session, Some(&row)).await?;
        self.grant(&session, refresh, expires_at, now)
    }

    /// `POST /auth/refresh`: rotates the refresh token by compare-and-swap and signs a new
    /// access token. The immediate predecessor, within the grace window, gets the same successor
    /// (derived by HMAC of the predecessor, so nothing secret is stored); any other rotated
    /// token revokes the family and returns [`AuthError::RefreshReuse`].
    pub async fn refresh(&self, refresh_token: &str) -> Result<RefreshGrant, AuthError> {
        if !is_token_shaped(refresh_token) {
            return Err(AuthError::InvalidRefresh);
        }
        let now = self.now();
        let hash = self.master.hash_secret(refresh_token.as_bytes());
        let row = self
            .store
            .refresh_token(&hash)
            .await?
            .ok_or(AuthError::InvalidRefresh)?;
        if row.revoked {
            return Err(AuthError::InvalidRefresh);
        }
        let session = self
            .store
            .session(&row.sid)
            .await?
            .ok_or(AuthError::InvalidRefresh)?;
        if session.revoked_at.is_some() {
            return Err(AuthError::InvalidRefresh);
        }
        if !session.is_active(now) || now >= row.expires_at {
            return Err(AuthError::SessionExpired);
        }
        let user = self.store.user_by_id(&session.user_id).await?;
        if user.as_ref().is_none_or(|u| u.disabled) {
            self.revoke_session(&session.sid).await?;
            return Err(AuthError::InvalidRefresh);
        }
        let successor = self.master.successor_token(refresh_token);
        let successor_hash = self.master.hash_secret(successor.as_bytes());
        let expires_at = self.refresh_expiry(now, session.expires_at);

        let mut rotated_at = row.rotated_at;
        if rotated_at.is_none() {
            let next = RefreshToken {
                hash: successor_hash.clone(),
                sid: session.sid.clone(),
                generation: row.generation.saturating_add(1),
                created_at: now,
                expires_at,
                rotated_at: None,
                successor_hash: None,
                revoked: false,
            };
            let idle = now
                .saturating_add(secs(self.opts.session_idle_timeout))
                .min(session.expires_at);
            match self.store.rotate_refresh(&hash, &next, now, idle).await? {
                RotateOutcome::Rotated => return self.grant(&session, successor, expires_at, now),
                RotateOutcome::Lost => {
                    // Someone else rotated (or revoked) it first: judge as a presented old token.
                    let again = self
                        .store
                        .refresh_token(&hash)
                        .await?
                        .ok_or(AuthError::InvalidRefresh)?;
                    if again.revoked {
                        return Err(AuthError::InvalidRefresh);
                    }
                    rotated_at = again.rotated_at;
                }
            }
        }
        let rotated_at = rotated_at.unwrap_or(now);
        // Grace: only the immediate predecessor of the live token, only within the window.
        let stored = self.store.refresh_token(&hash).await?;
        let successor_live = match self.store.refresh_token(&successor_hash).await? {
            Some(s) => s.rotated_at.is_none() && !s.revoked,
            None => false,
        };
        let within = now.saturating_sub(rotated_at) <= secs(self.opts.refresh_reuse_grace);
        let is_predecessor = stored
            .and_then(|s| s.successor_hash)
            .is_some_and(|h| h == successor_hash);
        if within && is_predecessor && successor_live {
            let succ_row = self
                .store
                .refresh_token(&successor_hash)
                .await?
                .ok_or(AuthError::InvalidRefresh)?;
            return self.grant(&session, successor, succ_row.expires_at, now);
        }
        self.revoke_session(&session.sid).await?;
        tracing::warn!(event = "auth.refresh.reuse", sid = %session.sid, user_id = %session.user_id, "refresh token reuse; family revoked");
        Err(AuthError::RefreshReuse {
            sid: session.sid,
            user_id: session.user_id,
        })
    }

    fn grant(
        &self,
        session: &Session,
        refresh_token: String,
        refresh_expires_at: i64,
        now: i64,
    ) -> Result<RefreshGrant, AuthError> {
        let (access_token, expires_in) = self.issue_access_token(
            &session.user_id,
            Some(&session.sid),
            &session.scopes,
            session.client_id.as_deref(),
        )?;
        Ok(LoginGrant {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token,
            refresh_max_age: (refresh_expires_at - now).max(0),
            sid: session.sid.clone(),
            user_id: session.user_id.clone(),
        })
    }

    /// Signs an access token for `subject` (user id, or client id for client credentials):
    /// `iss aud exp iat nbf jti` + `sid`, `scope`, `client_id` when given. Returns the token and
    /// `expires_in`.
    pub fn issue_access_token(
        &self,
        subject: &str,
        sid: Option<&str>,
        scopes: &[String],
        client_id: Option<&str>,
    ) -> Result<(String, i64), AuthError> {
        let now = self.now();
        let keys = self.key_set();
        let key = keys
            .signer_at(now)
            .ok_or_else(|| AuthError::Crypto("no signing key".into()))?;
        let ttl = secs(self.opts.access_ttl);
        let claims = AccessClaims {
            iss: self.opts.issuer.clone(),
            sub: subject.to_owned(),
            aud: OneOrMany::from_vec(self.opts.audience.clone()),
            exp: now.saturating_add(ttl),
            iat: now,
            nbf: now,
            jti: random_id()?,
            sid: sid.map(str::to_owned),
            scope: scopes.join(" "),
            client_id: client_id.map(str::to_owned),
        };
        Ok((sign_access_token(key, &claims)?, ttl))
    }

    // ---------------------------------------------------------------- logout / sessions

    /// Revokes one session: store, local revocation set, and the sink (other nodes). Returns
    /// false when it was already revoked or does not exist.
    pub async fn revoke_session(&self, sid: &str) -> Result<bool, AuthError> {
        let now = self.now();
        let changed = self.store.revoke_session(sid, now).await?;
        self.publish_revocation(sid, now).await;
        Ok(changed)
    }

    async fn publish_revocation(&self, sid: &str, now: i64) {
        let until = self.revocations.revoke(sid, now);
        let sink = self.sink.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(sink) = sink
            && let Err(e) = sink.publish(sid, until).await
        {
            tracing::error!(sid, error = %e, "publishing a session revocation failed");
        }
    }

    /// `POST /auth/logout` with the refresh cookie: revokes that token's session; returns its
    /// sid (None when the cookie is unknown; answer the same way and clear the cookie).
    pub async fn logout_refresh_token(
        &self,
        refresh_token: &str,
    ) -> Result<Option<String>, AuthError> {
        if !is_token_shaped(refresh_token) {
            return Ok(None);
        }
        let hash = self.master.hash_secret(refresh_token.as_bytes());
        match self.store.refresh_token(&hash).await? {
            Some(row) => {
                self.revoke_session(&row.sid).await?;
                Ok(Some(row.sid))
            }
            None => Ok(None),
        }
    }

    /// `POST /auth/logout-all`: revokes every session of the user; returns their sids.
    pub async fn logout_all(&self, user_id: &str) -> Result<Vec<String>, AuthError> {
        let now = self.now();
        let sids = self.store.revoke_user_sessions(user_id, now).await?;
        for sid in &sids {
            self.publish_revocation(sid, now).await;
        }
        Ok(sids)
    }

    /// `GET /auth/sessions`: the user's active sessions, `current` marking `current_sid`.
    pub async fn list_sessions(
        &self,
        user_id: &str,
        current_sid: Option<&str>,
    ) -> Result<Vec<SessionInfo>, AuthError> {
        let now = self.now();
        Ok(self
            .store
            .list_active_sessions(user_id, now)
            .await?
            .into_iter()
            .map(|s| SessionInfo {
                current: current_sid == Some(s.sid.as_str()),
                sid: s.sid,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                client_addr: s.client_addr,
                user_agent: s.user_agent,
            })
            .collect())
    }

    /// `DELETE /auth/sessions/{sid}`: revokes one of the user's own sessions;
    /// [`AuthError::NotFound`] for a session of someone else (same answer as a missing one).
    pub async fn revoke_own_session(&self, user_id: &str, sid: &str) -> Result<(), AuthError> {
        match self.store.session(sid).await? {
            Some(s) if s.user_id == user_id => {
                self.revoke_session(sid).await?;
                Ok(())
            }
            _ => Err(AuthError::NotFound),
        }
    }

    /// Server-side session mode: checks the password like [`AuthService::login`] and creates a
    /// fresh session (a new id at every login: no fixation) whose secret goes into the
    /// `__Host-rampart_session` cookie.
    pub async fn login_session(
        &self,
        req: LoginRequest<'_>,
    ) -> Result<SessionCookieGrant, AuthError> {
        let user = self.check_password(req.username, req.password).await?;
        let now = self.now();
        let cookie_value = random_token()?;
        let session = self.new_session(
            &user.id,
            &req,
            now,
            Some(self.master.hash_secret(cookie_value.as_bytes())),
        )?;
        self.store.create_session(&session, None).await?;
        Ok(SessionCookieGrant {
            cookie_value,
            sid: session.sid,
            user_id: user.id,
            max_age: (session.expires_at - now).max(0),
        })
    }

    /// Checks a `__Host-rampart_session` cookie value (one store lookup; activity is recorded
    /// at most once a minute).
    pub async fn authenticate_session_cookie(
        &self,
        cookie_value: &str,
    ) -> Result<SessionIdentity, AuthError> {
        if !is_token_shaped(cookie_value) {
            return Err(AuthError::InvalidRefresh);
        }
        let now = self.now();
        let hash = self.master.hash_secret(cookie_value.as_bytes());
        let s = self
            .store
            .session_by_secret(&hash)
            .await?
            .ok_or(AuthError::InvalidRefresh)?;
        if s.revoked_at.is_some() || self.revocations.is_revoked(&s.sid, now) {
            return Err(AuthError::SessionRevoked);
        }
        if !s.is_active(now) {
            return Err(AuthError::SessionExpired);
        }
        if now - s.last_seen_at >= 60 {
            let idle = now
                .saturating_add(secs(self.opts.session_idle_timeout))
                .min(s.expires_at);
            self.store.touch_session(&s.sid, now, idle).await?;
        }
        Ok(SessionIdentity {
            sid: s.sid,
            user_id: s.user_id,
            expires_at: s.expires_at,
        })
    }

    /// Adds to the local revocation set every session revoked in the store since `since`
    /// (start-up, and a fallback poll where no Redis is shared). Returns how many.
    pub async fn resync_revocations_from_store(&self, since: i64) -> Result<usize, AuthError> {
        let list = self.store.revoked_sessions_since(since).await?;
        let hold = self.revocations.hold_secs();
        for (sid, at) in &list {
            self.revocations.insert_until(sid, at.saturating_add(hold));
        }
        Ok(list.len())
    }

    /// Periodic housekeeping: drops expired revocations (call every minute or so).
    pub fn purge(&self) {
        self.revocations.purge(self.now());
    }

    /// Store housekeeping (one node, e.g. hourly): deletes sessions, refresh tokens and codes
    /// that ended more than a day ago. Returns the number of rows deleted.
    pub async fn purge_expired_rows(&self) -> Result<u64, AuthError> {
        Ok(self
            .store
            .purge_expired(self.now().saturating_sub(86400))
            .await?)
    }

    // ---------------------------------------------------------------- keys

    /// Reloads signing keys from the store (call periodically on every node, e.g. every 30 s,
    /// well under `key_publish_delay`, so each node has a new key before it signs).
    pub async fn reload_keys(&self) -> Result<(), AuthError> {
        let now = self.now();
        let mut set = KeySet::default();
        for record in self.store.list_signing_keys().await? {
            if record.retire_after.is_some_and(|r| now > r) {
                continue;
            }
            set.keys.push(Arc::new(load_key(&record, &self.master)?));
        }
        self.verifier.set_own_keys(&set, now);
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = set;
        Ok(())
    }

    /// `rampart keys rotate`: creates a key (published now, signing after
    /// `key_publish_delay`) and schedules the current keys to retire once every token they
    /// could have signed has expired (new key's start + access lifetime + leeway).
    pub async fn rotate_keys(&self, alg: Option<KeyAlgorithm>) -> Result<KeyInfo, AuthError> {
        let now = self.now();
        let not_before = now.saturating_add(secs(self.opts.key_publish_delay));
        let (record, _) = generate_key(
            alg.unwrap_or(self.opts.key_algorithm),
            &self.master,
            now,
            not_before,
        )?;
        let retire = not_before
            .saturating_add(secs(self.opts.access_ttl))
            .saturating_add(secs(self.opts.leeway));
        self.store.insert_signing_key(&record).await?;
        for old in self.store.list_signing_keys().await? {
            if old.kid != record.kid && old.retire_after.is_none() {
                self.store
                    .set_key_retire_after(&old.kid, Some(retire))
                    .await?;
            }
        }
        self.reload_keys().await?;
        self.list_keys()
            .into_iter()
            .find(|k| k.kid == record.kid)
            .ok_or(AuthError::NotFound)
    }

    /// The key signing now (the OAuth server signs ID tokens with it via [`crate::sign_jwt`]).
    pub fn signing_key(&self) -> Option<Arc<crate::KeyEntry>> {
        self.key_set().signer_at(self.now()).cloned()
    }

    /// `rampart keys list`: the live keys.
    pub fn list_keys(&self) -> Vec<KeyInfo> {
        let now = self.now();
        let set = self.key_set();
        let signing = set.signer_at(now).map(|k| k.kid.clone());
        set.keys
            .iter()
            .map(|k| KeyInfo {
                kid: k.kid.clone(),
                alg: serde_json::to_value(k.alg)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                created_at: k.created_at,
                not_before: k.not_before,
                retire_after: k.retire_after,
                signing: signing.as_deref() == Some(k.kid.as_str()),
                published: k.is_live(now),
            })
            .collect()
    }

    /// `GET /.well-known/jwks.json`: every live key, including one published but not yet signing.
    pub fn jwks(&self) -> Value {
        self.key_set().jwks(self.now())
    }
}
