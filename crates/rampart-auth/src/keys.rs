//! Signing keys: generation (Ed25519, P-256, RSA-2048 with aws-lc-rs), encryption at rest,
//! public JWKs, the JWKS document, and the time rules of rotation: a key is published from
//! `created_at`, signs from `not_before`, and neither signs nor verifies after `retire_after`.

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use rampart_store::SigningKeyRecord;
use serde_json::{Value, json};

use crate::secret::MasterKey;
use crate::{AuthError, KeyAlgorithm};

enum Signer {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// One loaded key: public half always, private half for our own keys.
pub struct KeyEntry {
    /// Key id.
    pub kid: String,
    /// The one algorithm this key may be used with (pinned; never taken from a token).
    pub alg: jsonwebtoken::Algorithm,
    /// Publication time.
    pub created_at: i64,
    /// Signs from this time on.
    pub not_before: i64,
    /// Retired (not published, not accepted) after this time.
    pub retire_after: Option<i64>,
    /// Public JWK (with `kid`, `alg`, `use`).
    pub public_jwk: Value,
    pub(crate) decoding: DecodingKey,
    signer: Option<Signer>,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("not_before", &self.not_before)
            .field("retire_after", &self.retire_after)
            .field("private", &self.signer.is_some())
            .finish()
    }
}

impl KeyEntry {
    /// Published and accepted at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.retire_after.is_none_or(|r| now <= r)
    }

    /// Signs `msg` with this key's pinned algorithm (our own keys only; fails for
    /// verification-only entries).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, AuthError> {
        let rng = SystemRandom::new();
        match &self.signer {
            Some(Signer::Ed(k)) => Ok(k.sign(msg).as_ref().to_vec()),
            Some(Signer::Ec(k)) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| AuthError::Crypto("ecdsa sign".into())),
            Some(Signer::Rsa(k)) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .map_err(|_| AuthError::Crypto("rsa sign".into()))?;
                Ok(sig)
            }
            None => Err(AuthError::Crypto("no private key".into())),
        }
    }

    /// Builds a verification-only entry from a public JWK (a trusted issuer's JWKS). The
    /// algorithm is the JWK's `alg`, else the only one we accept for its key type; symmetric
    /// (`oct`) keys are refused, so no HS* token can ever verify.
    pub fn from_public_jwk(jwk: &Value) -> Result<Self, AuthError> {
        let kid = jwk
            .get("kid")
            .and_then(Value::as_str)
            .ok_or(AuthError::UnknownKey)?
            .to_owned();
        let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or("");
        let crv = jwk.get("crv").and_then(Value::as_str).unwrap_or("");
        let inferred = match (kty, crv) {
            ("OKP", "Ed25519") => jsonwebtoken::Algorithm::EdDSA,
            ("EC", "P-256") => jsonwebtoken::Algorithm::ES256,
            ("EC", "P-384") => jsonwebtoken::Algorithm::ES384,
            ("RSA", _) => jsonwebtoken::Algorithm::RS256,
            _ => {
                return Err(AuthError::InvalidInput(format!(
                    "unsupported key type {kty:?}"
                )));
            }
        };
        let alg = match jwk.get("alg").and_then(Value::as_str) {
            None => inferred,
            Some(a) => {
                let parsed: jsonwebtoken::Algorithm = a
                    .parse()
                    .map_err(|_| AuthError::InvalidInput(format!("alg {a:?}")))?;
                use jsonwebtoken::Algorithm::*;
                let fits = matches!(
                    (kty, parsed),
                    ("OKP", EdDSA)
                        | ("EC", ES256)
                        | ("EC", ES384)
                        | ("RSA", RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
                );
                if !fits {
                    return Err(AuthError::InvalidInput(format!(
                        "alg {a:?} does not fit key type {kty:?}"
                    )));
                }
                parsed
            }
        };
        if jwk
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            return Err(AuthError::InvalidInput("key is not for signatures".into()));
        }
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone())
            .map_err(|e| AuthError::InvalidInput(e.to_string()))?;
        let decoding =
            DecodingKey::from_jwk(&parsed).map_err(|e| AuthError::InvalidInput(e.to_string()))?;
        Ok(Self {
            kid,
            alg,
            created_at: 0,
            not_before: 0,
            retire_after: None,
            public_jwk: jwk.clone(),
            decoding,
            signer: None,
        })
    }
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn public_jwk(kid: &str, alg: KeyAlgorithm, signer: &Signer) -> Result<Value, AuthError> {
    let mut jwk = match signer {
        Signer::Ed(k) => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())}),
        Signer::Ec(k) => {
            let p = k.public_key().as_ref();
            if p.len() != 65 || p[0] != 4 {
                return Err(AuthError::Crypto("unexpected EC point encoding".into()));
            }
            json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..])})
        }
        Signer::Rsa(k) => {
            let pk = k.public_key();
            json!({"kty": "RSA",
                "n": b64(pk.modulus().big_endian_without_leading_zero()),
                "e": b64(pk.exponent().big_endian_without_leading_zero())})
        }
    };
    if let Some(o) = jwk.as_object_mut() {
        o.insert("kid".into(), kid.into());
        o.insert("alg".into(), alg.as_str().into());
        o.insert("use".into(), "sig".into());
    }
    Ok(jwk)
}

fn signer_from_pkcs8(alg: KeyAlgorithm, pkcs8: &[u8]) -> Result<Signer, AuthError> {
    let bad = |_| AuthError::Crypto("stored private key does not parse".into());
    Ok(match alg {
        KeyAlgorithm::EdDSA => Signer::Ed(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(bad)?),
        KeyAlgorithm::ES256 => Signer::Ec(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(bad)?,
        ),
        KeyAlgorithm::RS256 => Signer::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(bad)?),
    })
}

/// Generates a key: the record to store (private key sealed with the master key, the kid as
/// associated data) and its loaded entry.
pub fn generate_key(
    alg: KeyAlgorithm,
    master: &MasterKey,
    now: i64,
    not_before: i64,
) -> Result<(SigningKeyRecord, KeyEntry), AuthError> {
    let err = |_| AuthError::Crypto("key generation failed".into());
    let pkcs8: Vec<u8> = match alg {
        KeyAlgorithm::EdDSA => Ed25519KeyPair::generate()
            .map_err(err)?
            .to_pkcs8()
            .map_err(err)?
            .as_ref()
            .to_vec(),
        KeyAlgorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(err)?
            .to_pkcs8v1()
            .map_err(err)?
            .as_ref()
            .to_vec(),
        KeyAlgorithm::RS256 => {
            let k = RsaKeyPair::generate(KeySize::Rsa2048).map_err(err)?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> = k.as_der().map_err(err)?;
            der.as_ref().to_vec()
        }
    };
    let kid = crate::secret::random_id()?;
    let record = SigningKeyRecord {
        kid: kid.clone(),
        alg: alg.as_str().into(),
        private_key_enc: master.seal(kid.as_bytes(), &pkcs8)?,
        public_jwk: String::new(),
        created_at: now,
        not_before,
        retire_after: None,
    };
    let signer = signer_from_pkcs8(alg, &pkcs8)?;
    let jwk = public_jwk(&kid, alg, &signer)?;
    let record = SigningKeyRecord {
        public_jwk: jwk.to_string(),
        ..record
    };
    let entry = load_key(&record, master)?;
    Ok((record, entry))
}

/// Loads a stored key: decrypts the private half (fails with [`AuthError::KeyDecrypt`] under
/// another master key) and builds its verification key from the public JWK.
pub fn load_key(record: &SigningKeyRecord, master: &MasterKey) -> Result<KeyEntry, AuthError> {
    let alg = KeyAlgorithm::from_name(&record.alg)
        .ok_or_else(|| AuthError::Crypto(format!("stored key alg {:?}", record.alg)))?;
    let pkcs8 = master.open(record.kid.as_bytes(), &record.private_key_enc)?;
    let signer = signer_from_pkcs8(alg, &pkcs8)?;
    let jwk = public_jwk(&record.kid, alg, &signer)?;
    let parsed: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(jwk.clone()).map_err(|e| AuthError::Crypto(e.to_string()))?;
    let decoding = DecodingKey::from_jwk(&parsed).map_err(|e| AuthError::Crypto(e.to_string()))?;
    Ok(KeyEntry {
        kid: record.kid.clone(),
        alg: alg.jwt_alg(),
        created_at: record.created_at,
        not_before: record.not_before,
        retire_after: record.retire_after,
        public_jwk: jwk,
        decoding,
        signer: Some(signer),
    })
}

/// A snapshot of our keys.
#[derive(Debug, Default, Clone)]
pub struct KeySet {
    /// Oldest first.
    pub keys: Vec<Arc<KeyEntry>>,
}

impl KeySet {
    /// The key that signs at `now`: the live key with the latest `not_before <= now`.
    pub fn signer_at(&self, now: i64) -> Option<&Arc<KeyEntry>> {
        self.keys
            .iter()
            .filter(|k| k.signer.is_some() && k.is_live(now) && k.not_before <= now)
            .max_by_key(|k| (k.not_before, k.created_at))
    }

    /// The JWKS document at `now`: every live key, including one not yet signing.
    pub fn jwks(&self, now: i64) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .filter(|k| k.is_live(now))
            .map(|k| k.public_jwk.clone())
            .collect();
        json!({ "keys": keys })
    }
}
