//! API keys: `rk_<prefix>_<secret>`; the public prefix (16 hex digits) finds the record, the
//! keyed hash of the whole key is compared in constant time.

use rampart_store::ApiKeyRecord;
use subtle::ConstantTimeEq as _;

use crate::secret::{random_bytes, random_id, random_token};
use crate::{AuthError, AuthService};

/// A freshly created API key: `key` is shown once and never stored.
#[derive(Clone)]
pub struct NewApiKey {
    /// The full key, `rk_<prefix>_<secret>`.
    pub key: String,
    /// What was stored.
    pub record: ApiKeyRecord,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("prefix", &self.record.prefix)
            .finish_non_exhaustive()
    }
}

/// Identity proven by an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyIdentity {
    /// Record id.
    pub id: String,
    /// Public prefix (rate-limit key `api_key`).
    pub prefix: String,
    /// Label.
    pub name: String,
    /// Owner, if any.
    pub owner: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

fn parse(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("rk_")?;
    let prefix = rest.get(..16)?;
    let secret = rest.get(16..)?.strip_prefix('_')?;
    if !prefix.bytes().all(|b| b.is_ascii_hexdigit()) || secret.len() != 43 {
        return None;
    }
    Some((prefix, secret))
}

impl AuthService {
    /// `rampart apikey create`: a new key with these scopes and optional expiry.
    pub async fn create_api_key(
        &self,
        name: &str,
        owner: Option<&str>,
        scopes: &[String],
        expires_at: Option<i64>,
    ) -> Result<NewApiKey, AuthError> {
        if scopes
            .iter()
            .any(|s| s.is_empty() || s.chars().any(char::is_whitespace))
        {
            return Err(AuthError::InvalidInput(
                "scopes must be non-empty and contain no whitespace".into(),
            ));
        }
        let prefix: String = random_bytes::<8>()?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let key = format!("rk_{prefix}_{}", random_token()?);
        let record = ApiKeyRecord {
            id: random_id()?,
            prefix,
            hash: self.master.hash_secret(key.as_bytes()),
            name: name.to_owned(),
            owner: owner.map(str::to_owned),
            scopes: scopes.to_vec(),
            created_at: self.now(),
            expires_at,
            revoked: false,
        };
        self.store.create_api_key(&record).await?;
        Ok(NewApiKey { key, record })
    }

    /// `rampart apikey list`.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, AuthError> {
        Ok(self.store.list_api_keys().await?)
    }

    /// `rampart apikey revoke ID|PREFIX`; [`AuthError::NotFound`] when no active key matches.
    pub async fn revoke_api_key(&self, id_or_prefix: &str) -> Result<(), AuthError> {
        if self.store.revoke_api_key(id_or_prefix).await? {
            Ok(())
        } else {
            Err(AuthError::NotFound)
        }
    }

    /// Checks an API key presented by a client (one store lookup by prefix; cache for at most
    /// 1 s if at all, so revocations apply within 1 s).
    pub async fn verify_api_key(&self, key: &str) -> Result<ApiKeyIdentity, AuthError> {
        let (prefix, _) = parse(key).ok_or(AuthError::InvalidRefresh)?;
        let record = self
            .store
            .api_key_by_prefix(prefix)
            .await?
            .ok_or(AuthError::InvalidRefresh)?;
        let hash = self.master.hash_secret(key.as_bytes());
        let matches: bool = hash.ct_eq(&record.hash).into();
        if !matches || record.revoked || record.expires_at.is_some_and(|e| self.now() >= e) {
            return Err(AuthError::InvalidRefresh);
        }
        Ok(ApiKeyIdentity {
            id: record.id,
            prefix: record.prefix,
            name: record.name,
            owner: record.owner,
            scopes: record.scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_shapes() {
        let secret = "a".repeat(43);
        assert!(super::parse(&format!("rk_0123456789abcdef_{secret}")).is_some());
        assert!(super::parse("rk_short").is_none());
        assert!(super::parse(&format!("rk_0123456789abcdeX_{secret}")).is_none());
        assert!(super::parse("rk_0123456789abcdé").is_none());
    }
}
