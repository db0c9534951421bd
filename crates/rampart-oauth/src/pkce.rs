//! PKCE (RFC 7636) with the `S256` method only: `code_challenge =
//! BASE64URL(SHA-256(code_verifier))`, verifiers of 43-128 unreserved characters.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

/// Whether `v` is a syntactically valid code verifier (RFC 7636 §4.1).
pub fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `c` can be an `S256` challenge: 43 base64url characters (a SHA-256).
pub fn valid_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The `S256` challenge of `verifier`.
pub fn challenge_of(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Whether `verifier` answers `challenge` (constant time in the challenge's bytes).
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    valid_verifier(verifier)
        && valid_challenge(challenge)
        && bool::from(
            challenge_of(verifier)
                .as_bytes()
                .ct_eq(challenge.as_bytes()),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        // The example of RFC 7636, Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(challenge_of(verifier), challenge);
        assert!(verify_s256(verifier, challenge));
        assert!(!verify_s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            challenge
        ));
    }

    #[test]
    fn malformed_verifiers_and_challenges_never_pass() {
        let c = challenge_of(&"a".repeat(43));
        assert!(verify_s256(&"a".repeat(43), &c));
        assert!(!verify_s256(
            &"a".repeat(42),
            &challenge_of(&"a".repeat(42))
        ));
        assert!(!verify_s256(
            &"a".repeat(129),
            &challenge_of(&"a".repeat(129))
        ));
        assert!(!verify_s256(&format!("{}!", "a".repeat(43)), &c));
        assert!(!verify_s256(&"a".repeat(43), "plain"));
        assert!(!verify_s256(&"a".repeat(43), &"a".repeat(43)));
    }
}
