//! Request-path verification of bearer JWTs, without any database lookup.
//!
//! Order of checks: size cap (before any parsing), cache of verified tokens (keyed by SHA-256
//! of the token, entry expires with the token), compact form, header (`jku`/`x5u`/`jwk`/`x5c`/
//! `crit` refused, `kid` required and known, `alg` must equal the key's pinned algorithm, `typ`),
//! signature (jsonwebtoken with aws-lc-rs, allow-list = the key's algorithm only), then `iss`,
//! `aud`, `exp`/`nbf`/`iat` with leeway, and the revoked-`sid` set (on cache hits too).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dashmap::DashMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{AuthOptions, TrustedIssuer, secs};
use crate::keys::{KeyEntry, KeySet};
use crate::revocation::RevocationList;
use crate::token::{ACCESS_TOKEN_TYP, OneOrMany};
use crate::{AuthError, now_unix};

/// The identity a verified token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `iss`.
    pub issuer: String,
    /// `sub` (forward as `X-Rampart-Subject`).
    pub subject: String,
    /// `aud`.
    pub audience: Vec<String>,
    /// `exp`.
    pub expires_at: i64,
    /// `iat`, if present.
    pub issued_at: Option<i64>,
    /// `jti`, if present.
    pub jti: Option<String>,
    /// `sid`, if present (forward as `X-Rampart-Session`).
    pub session_id: Option<String>,
    /// Scopes from `scope` (space-separated) or `scp` (forward as `X-Rampart-Scopes`).
    pub scopes: Vec<String>,
    /// `client_id`, if present.
    pub client_id: Option<String>,
    /// Key that signed it.
    pub kid: String,
    /// True when signed by one of our own keys (not a trusted outside issuer).
    pub own_issuer: bool,
}

impl VerifiedToken {
    /// True when every required scope was granted.
    pub fn has_scopes(&self, required: &[String]) -> bool {
        required.iter().all(|r| self.scopes.iter().any(|s| s == r))
    }
}

/// The request-path decision for one request.
#[derive(Debug)]
pub enum AuthOutcome {
    /// The token verified and carries the required scopes.
    Authenticated(Arc<VerifiedToken>),
    /// Refused: [`AuthError::status`] and [`AuthError::www_authenticate`] say how to answer.
    Denied(AuthError),
}

impl AuthOutcome {
    /// As a `Result`.
    pub fn into_result(self) -> Result<Arc<VerifiedToken>, AuthError> {
        match self {
            AuthOutcome::Authenticated(t) => Ok(t),
            AuthOutcome::Denied(e) => Err(e),
        }
    }
}

#[derive(Deserialize)]
struct RawClaims {
    iss: String,
    sub: String,
    aud: OneOrMany,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<OneOrMany>,
    #[serde(default)]
    client_id: Option<String>,
}

#[derive(Deserialize)]
struct IssOnly {
    iss: String,
}

#[derive(Debug)]
struct IssuerKeys {
    audience: Vec<String>,
    required_typ: Option<String>,
    own: bool,
    keys: HashMap<String, Arc<KeyEntry>>,
}

/// Verifies bearer tokens of our issuer and of trusted outside issuers.
#[derive(Debug)]
pub struct Verifier {
    own_issuer: String,
    leeway: i64,
    max_bytes: usize,
    issuers: RwLock<Arc<HashMap<String, IssuerKeys>>>,
    cache: DashMap<[u8; 32], Arc<VerifiedToken>>,
    cache_capacity: usize,
    revocations: Arc<RevocationList>,
}

fn read<T: Clone>(l: &RwLock<T>) -> T {
    l.read().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Verifier {
    /// A verifier for `opts.issuer` with no keys yet (see [`Verifier::set_own_keys`]).
    pub fn new(opts: &AuthOptions, revocations: Arc<RevocationList>) -> Self {
        let mut map = HashMap::new();
        map.insert(
            opts.issuer.clone(),
            IssuerKeys {
                audience: opts.audience.clone(),
                required_typ: Some(ACCESS_TOKEN_TYP.into()),
                own: true,
                keys: HashMap::new(),
            },
        );
        Self {
            own_issuer: opts.issuer.clone(),
            leeway: secs(opts.leeway),
            max_bytes: opts.max_token_bytes,
            issuers: RwLock::new(Arc::new(map)),
            cache: DashMap::new(),
            cache_capacity: opts.verified_cache_capacity,
            revocations,
        }
    }

    /// The revoked-session set this verifier checks.
    pub fn revocations(&self) -> &Arc<RevocationList> {
        &self.revocations
    }

    fn update(&self, f: impl FnOnce(&mut HashMap<String, IssuerKeys>)) {
        let mut guard = self.issuers.write().unwrap_or_else(|p| p.into_inner());
        let mut map: HashMap<String, IssuerKeys> = guard
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    IssuerKeys {
                        audience: v.audience.clone(),
                        required_typ: v.required_typ.clone(),
                        own: v.own,
                        keys: v.keys.clone(),
                    },
                )
            })
            .collect();
        f(&mut map);
        let kids = |m: &HashMap<String, IssuerKeys>| -> HashSet<(String, String)> {
            m.iter()
                .flat_map(|(iss, v)| v.keys.keys().map(move |k| (iss.clone(), k.clone())))
                .collect()
        };
        let changed = kids(&map) != kids(&guard);
        *guard = Arc::new(map);
        if changed {
            // A key may have been retired: forget what it verified.
            self.cache.clear();
        }
    }

    /// Replaces our own verification keys with the live keys of `keys` at `now`.
    pub fn set_own_keys(&self, keys: &KeySet, now: i64) {
        let own = self.own_issuer.clone();
        let live: HashMap<String, Arc<KeyEntry>> = keys
            .keys
            .iter()
            .filter(|k| k.is_live(now))
            .map(|k| (k.kid.clone(), k.clone()))
            .collect();
        self.update(|m| {
            if let Some(e) = m.get_mut(&own) {
                e.keys = live;
            }
        });
    }

    /// Accepts tokens of an outside issuer, verified with the keys of `jwks` (a JWKS document;
    /// fetching it is the gateway's job). Unusable keys (symmetric, unknown types) are skipped.
    /// Returns how many keys were loaded.
    pub fn set_trusted_issuer(
        &self,
        issuer: &TrustedIssuer,
        jwks: &Value,
    ) -> Result<usize, AuthError> {
        if issuer.issuer == self.own_issuer {
            return Err(AuthError::InvalidInput(
                "a trusted issuer cannot be our own issuer".into(),
            ));
        }
        let list = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| AuthError::InvalidInput("JWKS without keys".into()))?;
        let mut keys = HashMap::new();
        for jwk in list {
            match KeyEntry::from_public_jwk(jwk) {
                Ok(k) => {
                    keys.insert(k.kid.clone(), Arc::new(k));
                }
                Err(e) => tracing::warn!(issuer = %issuer.issuer, error = %e, "skipping JWK"),
            }
        }
        let n = keys.len();
        let entry = IssuerKeys {
            audience: issuer.audience.clone(),
            required_typ: issuer.required_typ.clone(),
            own: false,
            keys,
        };
        self.update(|m| {
            m.insert(issuer.issuer.clone(), entry);
        });
        Ok(n)
    }

    /// Verifies the `Authorization` header value of a request and checks `required_scopes`.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        required_scopes: &[String],
    ) -> AuthOutcome {
        self.authenticate_at(authorization, required_scopes, now_unix())
    }

    /// [`Verifier::authenticate`] as of `now` (Unix seconds).
    pub fn authenticate_at(
        &self,
        authorization: Option<&str>,
        required_scopes: &[String],
        now: i64,
    ) -> AuthOutcome {
        let Some(value) = authorization else {
            return AuthOutcome::Denied(AuthError::MissingCredentials);
        };
        let token = match value.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => return AuthOutcome::Denied(AuthError::MissingCredentials),
        };
        match self.verify_at(token, now) {
            Ok(t) if t.has_scopes(required_scopes) => AuthOutcome::Authenticated(t),
            Ok(_) => AuthOutcome::Denied(AuthError::InsufficientScope {
                required: required_scopes.to_vec(),
            }),
            Err(e) => AuthOutcome::Denied(e),
        }
    }

    /// Verifies a compact JWT at the current time.
    pub fn verify(&self, token: &str) -> Result<Arc<VerifiedToken>, AuthError> {
        self.verify_at(token, now_unix())
    }

    /// Verifies a compact JWT as of `now` (Unix seconds).
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Arc<VerifiedToken>, AuthError> {
        if token.len() > self.max_bytes {
            return Err(AuthError::TokenTooLarge);
        }
        let cache_key = crate::secret::sha256(token.as_bytes());
        let cached = self.cache.get(&cache_key).map(|e| e.value().clone());
        let verified = match cached {
            Some(t) if now <= t.expires_at.saturating_add(self.leeway) => t,
            Some(_) => {
                self.cache.remove(&cache_key);
                return Err(AuthError::TokenExpired);
            }
            None => {
                let t = Arc::new(self.verify_uncached(token, now)?);
                self.cache_insert(cache_key, t.clone(), now);
                t
            }
        };
        if verified.own_issuer
            && let Some(sid) = &verified.session_id
        {
            if !self.revocations.is_synced() {
                return Err(AuthError::RevocationUnknown);
            }
            if self.revocations.is_revoked(sid, now) {
                return Err(AuthError::SessionRevoked);
            }
        }
        Ok(verified)
    }

    fn cache_insert(&self, key: [u8; 32], t: Arc<VerifiedToken>, now: i64) {
        if self.cache_capacity == 0 {
            return;
        }
        if self.cache.len() >= self.cache_capacity {
            let leeway = self.leeway;
            self.cache
                .retain(|_, v| now <= v.expires_at.saturating_add(leeway));
            if self.cache.len() >= self.cache_capacity {
                self.cache.clear();
            }
        }
        self.cache.insert(key, t);
    }

    /// Number of cached verified tokens.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    fn verify_uncached(&self, token: &str, now: i64) -> Result<VerifiedToken, AuthError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::MalformedToken);
        };
        if h.is_empty() || p.is_empty() {
            return Err(AuthError::MalformedToken);
        }
        if s.is_empty() {
            return Err(AuthError::BadSignature);
        }
        // Header: refuse key-location and critical headers before anything else looks at it.
        let raw_header: Value = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::MalformedToken)?;
        let obj = raw_header.as_object().ok_or(AuthError::MalformedToken)?;
        for forbidden in ["jku", "x5u", "jwk", "x5c", "crit"] {
            if obj.contains_key(forbidden) {
                return Err(AuthError::ForbiddenHeader(forbidden));
            }
        }
        let header = decode_header(token).map_err(|_| AuthError::MalformedToken)?;
        let kid = header.kid.as_deref().ok_or(AuthError::UnknownKey)?;

        // Issuer, unverified, only to choose the key set; it is checked again once verified.
        let payload_issuer: IssOnly = URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::MalformedToken)?;
        let issuers = read(&self.issuers);
        let iss_keys = issuers
            .get(&payload_issuer.iss)
            .ok_or(AuthError::WrongIssuer)?;
        let key = iss_keys.keys.get(kid).ok_or(AuthError::UnknownKey)?;
        if header.alg != key.alg {
            return Err(AuthError::AlgorithmMismatch);
        }
        if let Some(required) = &iss_keys.required_typ {
            let typ = header.typ.as_deref().unwrap_or("");
            let typ = typ.strip_prefix("application/").unwrap_or(typ);
            if !typ.eq_ignore_ascii_case(required) {
                return Err(AuthError::WrongType);
            }
        }

        let mut validation = Validation::new(key.alg);
        validation.leeway = 0;
        validation.validate_exp = false; // checked below against `now`, with our leeway
        validation.validate_nbf = false;
        validation.required_spec_claims = ["exp", "iss", "aud", "sub"]
            .iter()
            .map(|s| s.to_string())
            .collect::<HashSet<_>>();
        validation.set_issuer(&[payload_issuer.iss.as_str()]);
        validation.set_audience(&iss_keys.audience);
        let data =
            decode::<RawClaims>(token, &key.decoding, &validation).map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
                    AuthError::AlgorithmMismatch
                }
                ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                ErrorKind::InvalidAudience => AuthError::WrongAudience,
                ErrorKind::ExpiredSignature => AuthError::TokenExpired,
                ErrorKind::ImmatureSignature => AuthError::TokenNotYetValid,
                _ => AuthError::MalformedToken,
            })?;
        let c = data.claims;
        if c.iss != payload_issuer.iss {
            return Err(AuthError::WrongIssuer);
        }
        let audience = c.aud.to_vec();
        if !audience.iter().any(|a| iss_keys.audience.contains(a)) {
            return Err(AuthError::WrongAudience);
        }
        if now > c.exp.saturating_add(self.leeway) {
            return Err(AuthError::TokenExpired);
        }
        if c.nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway))
            || c.iat
                .is_some_and(|iat| iat > now.saturating_add(self.leeway))
        {
            return Err(AuthError::TokenNotYetValid);
        }
        let scopes = match (c.scope, c.scp) {
            (Some(s), _) => s.split_whitespace().map(str::to_owned).collect(),
            (None, Some(scp)) => scp.to_vec(),
            (None, None) => Vec::new(),
        };
        Ok(VerifiedToken {
            issuer: c.iss,
            subject: c.sub,
            audience,
            expires_at: c.exp,
            issued_at: c.iat,
            jti: c.jti,
            session_id: c.sid,
            scopes,
            client_id: c.client_id,
            kid: key.kid.clone(),
            own_issuer: iss_keys.own,
        })
    }
}
