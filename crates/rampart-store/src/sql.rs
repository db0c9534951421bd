//! [`SqlStore`]: the SQLite and PostgreSQL backends. Both run the very same SQL text (`$N`
//! parameters work in both); the `with_pool!` macro expands each body once per backend.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};

use crate::migrate::{self, Dialect};
use crate::{
    ApiKeyRecord, AuthCode, CodeOutcome, OAuthClient, RefreshToken, RotateOutcome, Session,
    SigningKeyRecord, Store, StoreError, User,
};

/// Options for [`SqlStore::open_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Maximum pool size (PostgreSQL; SQLite uses at most this many readers too).
    pub max_connections: u32,
    /// How long to wait for a connection before reporting [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
    /// PostgreSQL only: the schema to use (created when missing), instead of the default
    /// `search_path`. Letters, digits and `_` only. Used by tests to isolate runs.
    pub pg_schema: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            pg_schema: None,
        }
    }
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The SQL implementation of [`Store`], for `sqlite://PATH` and `postgres://...` URLs.
///
/// SQLite runs in WAL mode with `synchronous = FULL`: every commit fsyncs the WAL before it
/// returns, so a committed row survives a `kill -9` of the process (NORMAL would too) and also
/// an OS crash or power loss (NORMAL would not: it may lose the last commits then). Writes are
/// logins, refreshes and admin commands, so the fsync per commit is affordable.
#[derive(Debug, Clone)]
pub struct SqlStore {
    backend: Backend,
}

/// Runs `$body` with `$p` bound to the backend's pool; the body is compiled once per backend.
macro_rules! with_pool {
    ($self:expr, $p:ident => $body:expr) => {
        match &$self.backend {
            Backend::Sqlite($p) => $body,
            Backend::Postgres($p) => $body,
        }
    };
}

fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_string())
        }
        sqlx::Error::Database(db) => StoreError::Database(db.message().to_string()),
        sqlx::Error::Io(e) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Tls(e) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a connection".into())
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable("pool closed".into()),
        sqlx::Error::WorkerCrashed => StoreError::Unavailable("database worker crashed".into()),
        sqlx::Error::Protocol(m) => StoreError::Unavailable(m),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(e.to_string()),
        other => StoreError::Database(other.to_string()),
    }
}

/// Joins a list for a TEXT column; refuses entries that would not read back the same.
fn join_list(items: &[String]) -> Result<String, StoreError> {
    for item in items {
        if item.is_empty() || item.chars().any(char::is_whitespace) {
            return Err(StoreError::InvalidValue(format!(
                "list entry {item:?} is empty or has whitespace"
            )));
        }
    }
    Ok(items.join(" "))
}

fn split_list(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

macro_rules! user_row {
    ($row:expr) => {{
        let r = &$row;
        User {
            id: r.try_get("id").map_err(map_err)?,
            username: r.try_get("username").map_err(map_err)?,
            password_hash: r.try_get("password_hash").map_err(map_err)?,
            disabled: r.try_get("disabled").map_err(map_err)?,
            created_at: r.try_get("created_at").map_err(map_err)?,
        }
    }};
}

macro_rules! session_row {
    ($row:expr) => {{
        let r = &$row;
        Session {
            sid: r.try_get("sid").map_err(map_err)?,
            user_id: r.try_get("user_id").map_err(map_err)?,
            secret_hash: r.try_get("secret_hash").map_err(map_err)?,
            created_at: r.try_get("created_at").map_err(map_err)?,
            last_seen_at: r.try_get("last_seen_at").map_err(map_err)?,
            idle_expires_at: r.try_get("idle_expires_at").map_err(map_err)?,
            expires_at: r.try_get("expires_at").map_err(map_err)?,
            client_addr: r.try_get("client_addr").map_err(map_err)?,
            user_agent: r.try_get("user_agent").map_err(map_err)?,
            revoked_at: r.try_get("revoked_at").map_err(map_err)?,
            client_id: r.try_get("client_id").map_err(map_err)?,
            scopes: split_list(&r.try_get::<String, _>("scopes").map_err(map_err)?),
        }
    }};
}

macro_rules! refresh_row {
    ($row:expr) => {{
        let r = &$row;
        RefreshToken {
            hash: r.try_get("hash").map_err(map_err)?,
            sid: r.try_get("sid").map_err(map_err)?,
            generation: r.try_get("generation").map_err(map_err)?,
            created_at: r.try_get("created_at").map_err(map_err)?,
            expires_at: r.try_get("expires_at").map_err(map_err)?,
            rotated_at: r.try_get("rotated_at").map_err(map_err)?,
            successor_hash: r.try_get("successor_hash").map_err(map_err)?,
            revoked: r.try_get("revoked").map_err(map_err)?,
        }
    }};
}

macro_rules! key_row {
    ($row:expr) => {{
        let r = &$row;
        SigningKeyRecord {
            kid: r.try_get("kid").map_err(map_err)?,
            alg: r.try_get("alg").map_err(map_err)?,
            private_key_enc: r.try_get("private_key_enc").map_err(map_err)?,
            public_jwk: r.try_get("public_jwk").map_err(map_err)?,
            created_at: r.try_get("created_at").map_err(map_err)?,
            not_before: r.try_get("not_before").map_err(map_err)?,
            retire_after: r.try_get("retire_after").map_err(map_err)?,
        }
    }};
}

macro_rules! api_key_row {
    ($row:expr) => {{
        let r = &$row;
        let scopes: String = r.try_get("scopes").map_err(map_err)?;
        ApiKeyRecord {
            id: r.try_get("id").map_err(map_err)?,
            prefix: r.try_get("prefix").map_err(map_err)?,
            hash: r.try_get("hash").map_err(map_err)?,
            name: r.try_get("name").map_err(map_err)?,
            owner: r.try_get("owner").map_err(map_err)?,
            scopes: split_list(&scopes),
            created_at: r.try_get("created_at").map_err(map_err)?,
            expires_at: r.try_get("expires_at").map_err(map_err)?,
            revoked: r.try_get("revoked").map_err(map_err)?,
        }
    }};
}

macro_rules! client_row {
    ($row:expr) => {{
        let r = &$row;
        let uris: String = r.try_get("redirect_uris").map_err(map_err)?;
        let scopes: String = r.try_get("scopes").map_err(map_err)?;
        let grants: String = r.try_get("grant_types").map_err(map_err)?;
        OAuthClient {
            client_id: r.try_get("client_id").map_err(map_err)?,
            secret_hash: r.try_get("secret_hash").map_err(map_err)?,
            name: r.try_get("name").map_err(map_err)?,
            redirect_uris: split_list(&uris),
            scopes: split_list(&scopes),
            grant_types: split_list(&grants),
            created_at: r.try_get("created_at").map_err(map_err)?,
        }
    }};
}

macro_rules! code_row {
    ($row:expr) => {{
        let r = &$row;
        let scopes: String = r.try_get("scopes").map_err(map_err)?;
        AuthCode {
            code_hash: r.try_get("code_hash").map_err(map_err)?,
            client_id: r.try_get("client_id").map_err(map_err)?,
            user_id: r.try_get("user_id").map_err(map_err)?,
            sid: r.try_get("sid").map_err(map_err)?,
            redirect_uri: r.try_get("redirect_uri").map_err(map_err)?,
            scopes: split_list(&scopes),
            code_challenge: r.try_get("code_challenge").map_err(map_err)?,
            challenge_method: r.try_get("challenge_method").map_err(map_err)?,
            nonce: r.try_get("nonce").map_err(map_err)?,
            created_at: r.try_get("created_at").map_err(map_err)?,
            expires_at: r.try_get("expires_at").map_err(map_err)?,
            used: r.try_get("used").map_err(map_err)?,
        }
    }};
}

fn valid_schema_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl SqlStore {
    /// Opens `sqlite://PATH` (file and folder created when missing) or `postgres://...`, then
    /// applies the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, StoreOptions::default()).await
    }

    /// [`SqlStore::open`] with explicit options.
    pub async fn open_with(url: &str, opts: StoreOptions) -> Result<Self, StoreError> {
        let store = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Self::open_sqlite(Path::new(path), &opts).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url, &opts).await?
        } else {
            return Err(StoreError::InvalidUrl(
                "expected sqlite://PATH or postgres://...".into(),
            ));
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn open_sqlite(path: &Path, opts: &StoreOptions) -> Result<Self, StoreError> {
        if path.as_os_str().is_empty() || path.to_string_lossy().contains('?') {
            return Err(StoreError::InvalidUrl(
                "sqlite:// needs a file path without query".into(),
            ));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                StoreError::Unavailable(format!("creating {}: {e}", parent.display()))
            })?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(map_err)?;
        Ok(Self {
            backend: Backend::Sqlite(pool),
        })
    }

    async fn open_postgres(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        let mut connect =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        if let Some(schema) = &opts.pg_schema {
            if !valid_schema_name(schema) {
                return Err(StoreError::InvalidValue(format!("schema name {schema:?}")));
            }
            // The schema name is an identifier checked above, not a value: it cannot be bound.
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(connect.clone())
                .await
                .map_err(map_err)?;
            sqlx::query(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&pool)
            .await
            .map_err(map_err)?;
            pool.close().await;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(map_err)?;
        Ok(Self {
            backend: Backend::Postgres(pool),
        })
    }

    /// Drops a PostgreSQL schema with everything in it (test clean-up); no-op for SQLite.
    pub async fn drop_pg_schema(&self, schema: &str) -> Result<(), StoreError> {
        if !valid_schema_name(schema) {
            return Err(StoreError::InvalidValue(format!("schema name {schema:?}")));
        }
        if let Backend::Postgres(p) = &self.backend {
            sqlx::query(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
            )))
            .execute(p)
            .await
            .map_err(map_err)?;
        }
        Ok(())
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }

    /// Applies the embedded migrations not applied yet, each in its own transaction
    /// (PostgreSQL: under an advisory lock, so nodes starting together do not race).
    async fn migrate(&self) -> Result<(), StoreError> {
        let dialect = match &self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        };
        let mig = |e: sqlx::Error| StoreError::Migration(e.to_string());
        with_pool!(self, p => {
            sqlx::query(migrate::CREATE_MIGRATIONS_TABLE).execute(p).await.map_err(mig)?;
            for m in migrate::MIGRATIONS {
                let mut tx = p.begin().await.map_err(mig)?;
                if dialect == Dialect::Postgres {
                    sqlx::query("SELECT pg_advisory_xact_lock(7263541092)").execute(&mut *tx).await.map_err(mig)?;
                }
                let done: Option<i64> = sqlx::query_scalar("SELECT version FROM rampart_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(mig)?;
                if done.is_some() {
                    tx.rollback().await.map_err(mig)?;
                    continue;
                }
                for s in m.statements {
                    sqlx::query(AssertSqlSafe(migrate::render(s, dialect))).execute(&mut *tx).await.map_err(mig)?;
                }
                sqlx::query("INSERT INTO rampart_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                    .bind(m.version)
                    .bind(m.name)
                    .bind(now_secs())
                    .execute(&mut *tx)
                    .await
                    .map_err(mig)?;
                tx.commit().await.map_err(mig)?;
                tracing::info!(version = m.version, name = m.name, "store migration applied");
            }
            Ok(())
        })
    }
}

#[async_trait::async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn create_user(&self, u: &User) -> Result<(), StoreError> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO users (id, username, password_hash, disabled, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&u.id).bind(&u.username).bind(&u.password_hash).bind(u.disabled).bind(u.created_at)
            .execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT id, username, password_hash, disabled, created_at FROM users WHERE username = $1")
                .bind(username).fetch_optional(p).await.map_err(map_err)?;
            Ok(match row { Some(r) => Some(user_row!(r)), None => None })
        })
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT id, username, password_hash, disabled, created_at FROM users WHERE id = $1")
                .bind(id).fetch_optional(p).await.map_err(map_err)?;
            Ok(match row { Some(r) => Some(user_row!(r)), None => None })
        })
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT id, username, password_hash, disabled, created_at FROM users ORDER BY username")
                .fetch_all(p).await.map_err(map_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows { out.push(user_row!(r)); }
            Ok(out)
        })
    }

    async fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError> {
        with_pool!(self, p => sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(disabled).bind(id).execute(p).await.map(|r| r.rows_affected() > 0).map_err(map_err))
    }

    async fn set_user_password(&self, id: &str, password_hash: &str) -> Result<bool, StoreError> {
        with_pool!(self, p => sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash).bind(id).execute(p).await.map(|r| r.rows_affected() > 0).map_err(map_err))
    }

    async fn create_session(
        &self,
        s: &Session,
        first: Option<&RefreshToken>,
    ) -> Result<(), StoreError> {
        let scopes = join_list(&s.scopes)?;
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            sqlx::query("INSERT INTO sessions (sid, user_id, secret_hash, created_at, last_seen_at, idle_expires_at, expires_at, client_addr, user_agent, revoked_at, client_id, scopes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                .bind(&s.sid).bind(&s.user_id).bind(&s.secret_hash).bind(s.created_at).bind(s.last_seen_at)
                .bind(s.idle_expires_at).bind(s.expires_at).bind(&s.client_addr).bind(&s.user_agent).bind(s.revoked_at)
                .bind(&s.client_id).bind(&scopes)
                .execute(&mut *tx).await.map_err(map_err)?;
            if let Some(t) = first {
                sqlx::query("INSERT INTO refresh_tokens (hash, sid, generation, created_at, expires_at, rotated_at, successor_hash, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(&t.hash).bind(&t.sid).bind(t.generation).bind(t.created_at).bind(t.expires_at)
                    .bind(t.rotated_at).bind(&t.successor_hash).bind(t.revoked)
                    .execute(&mut *tx).await.map_err(map_err)?;
            }
            tx.commit().await.map_err(map_err)
        })
    }

    async fn session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT sid, user_id, secret_hash, created_at, last_seen_at, idle_expires_at, expires_at, client_addr, user_agent, revoked_at, client_id, scopes FROM sessions WHERE sid = $1")
                .bind(sid).fetch_optional(p).await.map_err(map_err)?;
            Ok(match row { Some(r) => Some(session_row!(r)), None => None })
        })
    }

    async fn session_by_secret(&self, secret_hash: &[u8]) -> Result<Option<Session>, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT sid, user_id, secret_hash, created_at, last_seen_at, idle_expires_at, expires_at, client_addr, user_agent, revoked_at, client_id, scopes FROM sessions WHERE secret_hash = $1")
                .bind(secret_hash).fetch_optional(p).await.map_err(map_err)?;
            Ok(match row { Some(r) => Some(session_row!(r)), None => None })
        })
    }

    async fn list_active_sessions(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<Session>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT sid, user_id, secret_hash, created_at, last_seen_at, idle_expires_at, expires_at, client_addr, user_agent, revoked_at, client_id, scopes FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND idle_expires_at > $2 AND expires_at > $2 ORDER BY created_at DESC, sid")
                .bind(user_id).bind(now).fetch_all(p).await.map_err(map_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows { out.push(session_row!(r)); }
            Ok(out)
        })
    }

    async fn touch_session(
        &self,
        sid: &str,
        now: i64,
        idle_expires_at: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, p => sqlx::query("UPDATE sessions SET last_seen_at = $1, idle_expires_at = $2 WHERE sid = $3 AND revoked_at IS NULL")
            .bind(now).bind(idle_expires_at).bind(sid).execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn revoke_session(&self, sid: &str, now: i64) -> Result<bool, StoreError> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            let n = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE sid = $2 AND revoked_at IS NULL")
                .bind(now).bind(sid).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            sqlx::query("UPDATE refresh_tokens SET revoked = TRUE WHERE sid = $1")
                .bind(sid).execute(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            Ok(n > 0)
        })
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            let rows = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL RETURNING sid")
                .bind(now).bind(user_id).fetch_all(&mut *tx).await.map_err(map_err)?;
            let mut sids = Vec::with_capacity(rows.len());
            for r in &rows { sids.push(r.try_get::<String, _>("sid").map_err(map_err)?); }
            sqlx::query("UPDATE refresh_tokens SET revoked = TRUE WHERE sid IN (SELECT sid FROM sessions WHERE user_id = $1)")
                .bind(user_id).execute(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            Ok(sids)
        })
    }

    async fn revoked_sessions_since(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT sid, revoked_at FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= $1")
                .bind(since).fetch_all(p).await.map_err(map_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push((r.try_get::<String, _>("sid").map_err(map_err)?, r.try_get::<i64, _>("revoked_at").map_err(map_err)?));
            }
            Ok(out)
        })
    }

    async fn refresh_token(&self, hash: &[u8]) -> Result<Option<RefreshToken>, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT hash, sid, generation, created_at, expires_at, rotated_at, successor_hash, revoked FROM refresh_tokens WHERE hash = $1")
                .bind(hash).fetch_optional(p).await.map_err(map_err)?;
            Ok(match row { Some(r) => Some(refresh_row!(r)), None => None })
        })
    }

    async fn rotate_refresh(
        &self,
        old_hash: &[u8],
        t: &RefreshToken,
        now: i64,
        idle_expires_at: i64,
    ) -> Result<RotateOutcome, StoreError> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            // The compare-and-swap: only one caller can see rotated_at IS NULL.
            let n = sqlx::query("UPDATE refresh_tokens SET rotated_at = $1, successor_hash = $2 WHERE hash = $3 AND rotated_at IS NULL AND revoked = FALSE")
                .bind(now).bind(&t.hash).bind(old_hash).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            if n != 1 {
                tx.rollback().await.map_err(map_err)?;
                return Ok(RotateOutcome::Lost);
            }
            sqlx::query("INSERT INTO refresh_tokens (hash, sid, generation, created_at, expires_at, rotated_at, successor_hash, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&t.hash).bind(&t.sid).bind(t.generation).bind(t.created_at).bind(t.expires_at)
                .bind(t.rotated_at).bind(&t.successor_hash).bind(t.revoked)
                .execute(&mut *tx).await.map_err(map_err)?;
            sqlx::query("UPDATE sessions SET last_seen_at = $1, idle_expires_at = $2 WHERE sid = $3")
                .bind(now).bind(idle_expires_at).bind(&t.sid).execute(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            Ok(RotateOutcome::Rotated)
        })
    }

    async fn purge_expired(&self, before: i64) -> Result<u64, StoreError> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            let mut n = sqlx::query("DELETE FROM refresh_tokens WHERE sid IN (SELECT sid FROM sessions WHERE expires_at < $1)")
                .bind(before).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            n += sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
                .bind(before).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            n += sqlx::query("DELETE FROM auth_codes WHERE expires_at < $1")
                .bind(before).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            tx.commit().await.map_err(map_err)?;
            Ok(n)
        })
    }

    async fn insert_signing_key(&self, k: &SigningKeyRecord) -> Result<(), StoreError> {
        with_pool!(self, p => sqlx::query("INSERT INTO signing_keys (kid, alg, private_key_enc, public_jwk, created_at, not_before, retire_after) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&k.kid).bind(&k.alg).bind(&k.private_key_enc).bind(&k.public_jwk).bind(k.created_at).bind(k.not_before).bind(k.retire_after)
            .execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT kid, alg, private_key_enc, public_jwk, created_at, not_before, retire_after FROM signing_keys ORDER BY created_at, kid")
                .fetch_all(p).await.map_err(map_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows { out.push(key_row!(r)); }
            Ok(out)
        })
    }

    async fn set_key_retire_after(
        &self,
        kid: &str,
        retire_after: Option<i64>,
    ) -> Result<bool, StoreError> {
        with_pool!(self, p => sqlx::query("UPDATE signing_keys SET retire_after = $1 WHERE kid = $2")
            .bind(retire_after).bind(kid).execute(p).await.map(|r| r.rows_affected() > 0).map_err(map_err))
    }

    async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError> {
        with_pool!(self, p => sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid).execute(p).await.map(|r| r.rows_affected() > 0).map_err(map_err))
    }

    async fn create_api_key(&self, k: &ApiKeyRecord) -> Result<(), StoreError> {
        let scopes = join_list(&k.scopes)?;
        with_pool!(self, p => sqlx::query("INSERT INTO api_keys (id, prefix, hash, name, owner, scopes, created_at, expires_at, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&k.id).bind(&k.prefix).bind(&k.hash).bind(&k.name).bind(&k.owner).bind(&scopes)
            .bind(k.created_at).bind(k.expires_at).bind(k.revoked)
            .execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT id, prefix, hash, name, owner, scopes, created_at, expires_at, revoked FROM api_keys WHERE prefix = $1")
                .bind(prefix).fetch_optional(p).await.map_err(map_err)?;
            Ok(match row { Some(r) => Some(api_key_row!(r)), None => None })
        })
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT id, prefix, hash, name, owner, scopes, created_at, expires_at, revoked FROM api_keys ORDER BY created_at, id")
                .fetch_all(p).await.map_err(map_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows { out.push(api_key_row!(r)); }
            Ok(out)
        })
    }

    async fn revoke_api_key(&self, id_or_prefix: &str) -> Result<bool, StoreError> {
        with_pool!(self, p => sqlx::query("UPDATE api_keys SET revoked = TRUE WHERE (id = $1 OR prefix = $1) AND revoked = FALSE")
            .bind(id_or_prefix).execute(p).await.map(|r| r.rows_affected() > 0).map_err(map_err))
    }

    async fn create_client(&self, c: &OAuthClient) -> Result<(), StoreError> {
        let uris = join_list(&c.redirect_uris)?;
        let scopes = join_list(&c.scopes)?;
        let grants = join_list(&c.grant_types)?;
        with_pool!(self, p => sqlx::query("INSERT INTO oauth_clients (client_id, secret_hash, name, redirect_uris, scopes, grant_types, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&c.client_id).bind(&c.secret_hash).bind(&c.name).bind(&uris).bind(&scopes).bind(&grants).bind(c.created_at)
            .execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn client(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT client_id, secret_hash, name, redirect_uris, scopes, grant_types, created_at FROM oauth_clients WHERE client_id = $1")
                .bind(client_id).fetch_optional(p).await.map_err(map_err)?;
            Ok(match row { Some(r) => Some(client_row!(r)), None => None })
        })
    }

    async fn list_clients(&self) -> Result<Vec<OAuthClient>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT client_id, secret_hash, name, redirect_uris, scopes, grant_types, created_at FROM oauth_clients ORDER BY client_id")
                .fetch_all(p).await.map_err(map_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows { out.push(client_row!(r)); }
            Ok(out)
        })
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            sqlx::query("DELETE FROM auth_codes WHERE client_id = $1").bind(client_id).execute(&mut *tx).await.map_err(map_err)?;
            let n = sqlx::query("DELETE FROM oauth_clients WHERE client_id = $1").bind(client_id).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            tx.commit().await.map_err(map_err)?;
            Ok(n > 0)
        })
    }

    async fn insert_auth_code(&self, c: &AuthCode) -> Result<(), StoreError> {
        let scopes = join_list(&c.scopes)?;
        with_pool!(self, p => sqlx::query("INSERT INTO auth_codes (code_hash, client_id, user_id, sid, redirect_uri, scopes, code_challenge, challenge_method, nonce, created_at, expires_at, used) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(&c.code_hash).bind(&c.client_id).bind(&c.user_id).bind(&c.sid).bind(&c.redirect_uri).bind(&scopes)
            .bind(&c.code_challenge).bind(&c.challenge_method).bind(&c.nonce).bind(c.created_at).bind(c.expires_at).bind(c.used)
            .execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn consume_auth_code(
        &self,
        code_hash: &[u8],
        now: i64,
    ) -> Result<CodeOutcome, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query("UPDATE auth_codes SET used = TRUE WHERE code_hash = $1 AND used = FALSE AND expires_at > $2 RETURNING code_hash, client_id, user_id, sid, redirect_uri, scopes, code_challenge, challenge_method, nonce, created_at, expires_at, used")
                .bind(code_hash).bind(now).fetch_optional(p).await.map_err(map_err)?;
            if let Some(r) = row {
                return Ok(CodeOutcome::Consumed(code_row!(r)));
            }
            let row = sqlx::query("SELECT code_hash, client_id, user_id, sid, redirect_uri, scopes, code_challenge, challenge_method, nonce, created_at, expires_at, used FROM auth_codes WHERE code_hash = $1 AND used = TRUE")
                .bind(code_hash).fetch_optional(p).await.map_err(map_err)?;
            Ok(match row { Some(r) => CodeOutcome::AlreadyUsed(code_row!(r)), None => CodeOutcome::NotFound })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_runs_wal_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqlStore::open(&format!("sqlite://{}/p.db", dir.path().display()))
            .await
            .unwrap();
        let Backend::Sqlite(p) = &s.backend else {
            panic!("not sqlite")
        };
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(p)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(p)
            .await
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(p)
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn schema_names_are_identifiers_only() {
        assert!(valid_schema_name("rs_test_01ab"));
        assert!(!valid_schema_name("x\"; DROP SCHEMA public; --"));
        assert!(!valid_schema_name("1abc"));
        assert!(!valid_schema_name(""));
    }
}
