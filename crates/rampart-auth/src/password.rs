//! Password hashing: argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1), and a dummy
//! hash so an unknown user costs the same time as a wrong password.

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};

use crate::AuthError;

/// Longest password accepted (bytes); longer ones are verified against the dummy and fail.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Argon2id hasher and verifier.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    dummy_hash: String,
}

impl PasswordHasher {
    /// OWASP's recommended minimum: m = 19456 KiB, t = 2, p = 1.
    pub fn new() -> Result<Self, AuthError> {
        Self::with_params(19 * 1024, 2, 1)
    }

    /// Custom parameters (memory in KiB, iterations, lanes); never weaker than OWASP's.
    pub fn with_params(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, AuthError> {
        if m_cost_kib < 19 * 1024 || t_cost < 2 || p_cost < 1 {
            return Err(AuthError::InvalidInput(
                "argon2 parameters below OWASP's minimum".into(),
            ));
        }
        let params = Params::new(m_cost_kib, t_cost, p_cost, None)
            .map_err(|e| AuthError::Crypto(e.to_string()))?;
        let mut h = Self {
            params,
            dummy_hash: String::new(),
        };
        let random = crate::secret::random_token()?;
        h.dummy_hash = h.hash(&random)?;
        Ok(h)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) with a fresh random salt.
    /// CPU-heavy: call from `spawn_blocking` on a server.
    pub fn hash(&self, password: &str) -> Result<String, AuthError> {
        if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
            return Err(AuthError::InvalidInput(format!(
                "password must be 1..={MAX_PASSWORD_BYTES} bytes"
            )));
        }
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Crypto(e.to_string()))
    }

    /// True when `password` matches `hash`. With `hash = None` (unknown user) it verifies
    /// against the dummy hash and returns false, taking the same time. CPU-heavy.
    pub fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let (target, real) = match hash {
            Some(h) => (h, true),
            None => (self.dummy_hash.as_str(), false),
        };
        let pw = if password.len() > MAX_PASSWORD_BYTES {
            &password[..0]
        } else {
            password
        };
        let ok = self.argon2().verify_password(pw.as_bytes(), target).is_ok();
        ok && real && !pw.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = PasswordHasher::new().unwrap();
        let phc = h.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(h.verify("correct horse", Some(&phc)));
        assert!(!h.verify("wrong", Some(&phc)));
        assert!(!h.verify("correct horse", None));
        assert!(!h.verify("x", Some("not a phc string")));
        assert!(PasswordHasher::with_params(1024, 1, 1).is_err());
        assert!(h.hash("").is_err());
    }

    #[test]
    fn unknown_user_costs_a_full_argon2_run() {
        // A lower bound only (never flaky on a slow machine): an argon2id run with 19 MiB takes
        // milliseconds; a skipped verification would take microseconds.
        let h = PasswordHasher::new().unwrap();
        let phc = h.hash("pw").unwrap();
        for hash in [None, Some(phc.as_str())] {
            let t = std::time::Instant::now();
            assert!(!h.verify("wrong", hash));
            assert!(
                t.elapsed() >= std::time::Duration::from_millis(3),
                "{hash:?}"
            );
        }
        let too_long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        let t = std::time::Instant::now();
        assert!(!h.verify(&too_long, Some(&phc)));
        assert!(t.elapsed() >= std::time::Duration::from_millis(3));
    }
}
