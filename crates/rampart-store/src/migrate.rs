//! The one migration set, embedded as SQL text and applied at start-up for both backends.
//!
//! Dialect differences are limited to one type name: `{bytes}` becomes `BLOB` (SQLite) or
//! `BYTEA` (PostgreSQL). Everything else (`BIGINT`, `BOOLEAN`, `TEXT`, `TRUE`/`FALSE`, `$N`
//! parameters, `RETURNING`) is understood by both.

/// One migration: a version (strictly increasing) and its statements, run in one transaction.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) statements: &'static [&'static str],
}

/// The SQL dialect a statement is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// Renders a migration statement for a dialect (type names only; never values).
pub(crate) fn render(statement: &str, dialect: Dialect) -> String {
    let bytes = match dialect {
        Dialect::Sqlite => "BLOB",
        Dialect::Postgres => "BYTEA",
    };
    statement.replace("{bytes}", bytes)
}

pub(crate) const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS rampart_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        statements: &[
            "CREATE TABLE users (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            disabled BOOLEAN NOT NULL DEFAULT FALSE,
            created_at BIGINT NOT NULL
        )",
            "CREATE TABLE sessions (
            sid TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            secret_hash {bytes} UNIQUE,
            created_at BIGINT NOT NULL,
            last_seen_at BIGINT NOT NULL,
            idle_expires_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            client_addr TEXT,
            user_agent TEXT,
            revoked_at BIGINT
        )",
            "CREATE INDEX sessions_user ON sessions (user_id)",
            "CREATE INDEX sessions_revoked ON sessions (revoked_at)",
            "CREATE TABLE refresh_tokens (
            hash {bytes} PRIMARY KEY,
            sid TEXT NOT NULL REFERENCES sessions(sid) ON DELETE CASCADE,
            generation BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            rotated_at BIGINT,
            successor_hash {bytes},
            revoked BOOLEAN NOT NULL DEFAULT FALSE
        )",
            "CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid)",
            "CREATE TABLE signing_keys (
            kid TEXT PRIMARY KEY,
            alg TEXT NOT NULL,
            private_key_enc {bytes} NOT NULL,
            public_jwk TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            not_before BIGINT NOT NULL,
            retire_after BIGINT
        )",
            "CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            prefix TEXT NOT NULL UNIQUE,
            hash {bytes} NOT NULL,
            name TEXT NOT NULL,
            owner TEXT,
            scopes TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            revoked BOOLEAN NOT NULL DEFAULT FALSE
        )",
            "CREATE TABLE oauth_clients (
            client_id TEXT PRIMARY KEY,
            secret_hash {bytes},
            name TEXT NOT NULL,
            redirect_uris TEXT NOT NULL,
            scopes TEXT NOT NULL,
            grant_types TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
            "CREATE TABLE auth_codes (
            code_hash {bytes} PRIMARY KEY,
            client_id TEXT NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
            user_id TEXT NOT NULL,
            sid TEXT,
            redirect_uri TEXT NOT NULL,
            scopes TEXT NOT NULL,
            code_challenge TEXT NOT NULL,
            challenge_method TEXT NOT NULL,
            nonce TEXT,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            used BOOLEAN NOT NULL DEFAULT FALSE
        )",
        ],
    },
    Migration {
        version: 2,
        name: "session_client_and_scopes",
        statements: &[
            "ALTER TABLE sessions ADD COLUMN client_id TEXT",
            "ALTER TABLE sessions ADD COLUMN scopes TEXT NOT NULL DEFAULT ''",
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_placeholders_render() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "{}", m.name);
            last = m.version;
            for s in m.statements {
                assert!(!render(s, Dialect::Postgres).contains('{'));
                assert!(!render(s, Dialect::Sqlite).contains("BYTEA"));
            }
        }
    }
}
