//! Server secrets: the master key (from the environment variable named by
//! `[auth] key_encryption_env`), the keyed hashes of secrets at rest, random tokens and the
//! AES-256-GCM envelope of private signing keys. Every primitive comes from aws-lc-rs.

use aws_lc_rs::{aead, digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::AuthError;

/// Bytes of a random token (256 bits).
pub const TOKEN_BYTES: usize = 32;

/// The server master key. Sub-keys for each use are derived from it with HMAC-SHA-256 and a
/// label, so one secret in the environment covers hashing, successor derivation and key
/// encryption without reusing a key for two purposes.
#[derive(Clone)]
pub struct MasterKey {
    hash_key: hmac::Key,
    successor_key: hmac::Key,
    aead_key_bytes: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Builds the key from secret material: at least 32 bytes, given raw or as base64
    /// (standard or URL-safe, e.g. the output of `openssl rand -base64 32`).
    pub fn from_secret(secret: &[u8]) -> Result<Self, AuthError> {
        let text = std::str::from_utf8(secret).ok().map(str::trim);
        let decoded = text.and_then(|t| {
            STANDARD
                .decode(t)
                .ok()
                .or_else(|| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')).ok())
        });
        let material: Vec<u8> = match decoded {
            Some(d) if d.len() >= 32 => d,
            _ if secret.len() >= 32 => secret.to_vec(),
            _ => {
                return Err(AuthError::MasterKey(
                    "the key must hold at least 32 bytes (e.g. openssl rand -base64 32)".into(),
                ));
            }
        };
        let root = hmac::Key::new(hmac::HMAC_SHA256, &material);
        let derive = |label: &str| -> [u8; 32] {
            let tag = hmac::sign(&root, label.as_bytes());
            let mut out = [0u8; 32];
            out.copy_from_slice(tag.as_ref());
            out
        };
        Ok(Self {
            hash_key: hmac::Key::new(hmac::HMAC_SHA256, &derive("rampart/v1/secret-hash")),
            successor_key: hmac::Key::new(
                hmac::HMAC_SHA256,
                &derive("rampart/v1/refresh-successor"),
            ),
            aead_key_bytes: derive("rampart/v1/signing-key-encryption"),
        })
    }

    /// Reads the key from the environment variable `name` (the one named by
    /// `[auth] key_encryption_env`).
    pub fn from_env(name: &str) -> Result<Self, AuthError> {
        let v = std::env::var_os(name).ok_or_else(|| {
            AuthError::MasterKey(format!("environment variable {name} is not set"))
        })?;
        Self::from_secret(v.as_encoded_bytes())
    }

    /// A fresh random key, for tests and the throw-away `rampart demo`.
    pub fn generate() -> Result<Self, AuthError> {
        Self::from_secret(&random_bytes::<32>()?)
    }

    /// Keyed SHA-256 (HMAC-SHA-256) of a secret, as stored at rest (refresh tokens, session
    /// cookies, API keys, client secrets, authorization codes).
    pub fn hash_secret(&self, secret: &[u8]) -> Vec<u8> {
        hmac::sign(&self.hash_key, secret).as_ref().to_vec()
    }

    /// The successor of a refresh token: HMAC of the predecessor under its own sub-key. Being
    /// derived, it needs no storage, and two racing refreshes get the same value.
    pub(crate) fn successor_token(&self, token: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.successor_key, token.as_bytes()).as_ref())
    }

    /// AES-256-GCM seal: `nonce (12) || ciphertext || tag`; `aad` binds the ciphertext to its
    /// key id.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, AuthError> {
        let key = self.aead_key()?;
        let nonce_bytes = random_bytes::<12>()?;
        let mut buf = plaintext.to_vec();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce_bytes),
            aead::Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| AuthError::Crypto("seal failed".into()))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens [`MasterKey::seal`]'s output; fails when the key or the aad differ.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
        let key = self.aead_key()?;
        if sealed.len() < 12 + 16 {
            return Err(AuthError::KeyDecrypt);
        }
        let (nonce, ct) = sealed.split_at(12);
        let nonce =
            aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| AuthError::KeyDecrypt)?;
        let mut buf = ct.to_vec();
        let plain = key
            .open_in_place(nonce, aead::Aad::from(aad), &mut buf)
            .map_err(|_| AuthError::KeyDecrypt)?;
        Ok(plain.to_vec())
    }

    fn aead_key(&self) -> Result<aead::LessSafeKey, AuthError> {
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, &self.aead_key_bytes)
            .map_err(|_| AuthError::Crypto("aes key".into()))?;
        Ok(aead::LessSafeKey::new(unbound))
    }
}

/// `N` bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| AuthError::Crypto(format!("OS random source: {e}")))?;
    Ok(b)
}

/// A 256-bit random token from the OS CSPRNG, base64url without padding (43 characters).
pub fn random_token() -> Result<String, AuthError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<TOKEN_BYTES>()?))
}

/// A 128-bit random public identifier, base64url (22 characters).
pub fn random_id() -> Result<String, AuthError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<16>()?))
}

/// True when `s` looks like one of our base64url tokens (cheap filter before any lookup).
pub(crate) fn is_token_shaped(s: &str) -> bool {
    (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// SHA-256 of some bytes (cache keys).
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_forms() {
        assert!(MasterKey::from_secret(b"short").is_err());
        let b64 = STANDARD.encode([7u8; 32]);
        let a = MasterKey::from_secret(b64.as_bytes()).unwrap();
        let b = MasterKey::from_secret(&[7u8; 32]).unwrap();
        assert_eq!(a.hash_secret(b"x"), b.hash_secret(b"x"));
        assert_ne!(a.hash_secret(b"x"), a.hash_secret(b"y"));
        // Sub-keys differ: the stored hash of a token is never its successor.
        let t = random_token().unwrap();
        assert_ne!(
            URL_SAFE_NO_PAD.encode(a.hash_secret(t.as_bytes())),
            a.successor_token(&t)
        );
    }

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let k = MasterKey::generate().unwrap();
        let s = k.seal(b"kid1", b"private").unwrap();
        assert_eq!(k.open(b"kid1", &s).unwrap(), b"private");
        assert!(k.open(b"kid2", &s).is_err());
        assert!(MasterKey::generate().unwrap().open(b"kid1", &s).is_err());
        assert!(k.open(b"kid1", &s[..10]).is_err());
    }

    #[test]
    fn tokens_are_256_bit() {
        let t = random_token().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap().len(), 32);
        assert_ne!(t, random_token().unwrap());
        assert!(is_token_shaped(&t));
    }
}
