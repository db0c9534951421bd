//! Attack tests for the request-path verifier (issue 4 item 9), plus no-panic property tests
//! feeding random input to the token parser.

mod common;

use std::time::Duration;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::*;
use proptest::prelude::*;
use rampart_auth::*;
use serde_json::{Value, json};

const T0: i64 = 1_800_000_000;

struct Fixture {
    svc: AuthService,
    _dir: tempfile::TempDir,
}

async fn fixture(alg: KeyAlgorithm) -> Fixture {
    let (store, dir) = sqlite_store().await;
    let mut o = opts();
    o.key_algorithm = alg;
    let svc = service(store, o, FakeClock::new(T0)).await;
    Fixture { svc, _dir: dir }
}

fn claims() -> Value {
    json!({"iss": "https://auth.test", "sub": "user1", "aud": "api", "exp": T0 + 900, "iat": T0, "nbf": T0,
           "jti": "j1", "sid": "sid1", "scope": "items:read"})
}

fn compact(header: &Value, payload: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(payload.to_string()),
        B64.encode(sig)
    )
}

/// Signs arbitrary header and payload with the service's real signing key.
fn sign_with_real_key(svc: &AuthService, header: &Value, payload: &Value) -> String {
    let key = svc.signing_key().unwrap();
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(payload.to_string())
    );
    let sig = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", B64.encode(sig))
}

fn real_header(svc: &AuthService) -> Value {
    let key = svc.signing_key().unwrap();
    json!({"alg": serde_json::to_value(key.alg).unwrap(), "typ": "at+jwt", "kid": key.kid})
}

fn verify(svc: &AuthService, token: &str) -> Result<(), AuthError> {
    svc.verifier().verify_at(token, T0).map(|_| ())
}

#[tokio::test]
async fn a_valid_token_verifies() {
    let f = fixture(KeyAlgorithm::EdDSA).await;
    let t = sign_with_real_key(&f.svc, &real_header(&f.svc), &claims());
    verify(&f.svc, &t).unwrap();
}

#[tokio::test]
async fn alg_none_is_refused() {
    let f = fixture(KeyAlgorithm::EdDSA).await;
    let kid = f.svc.signing_key().unwrap().kid.clone();
    for alg in ["none", "None", "NONE"] {
        let h = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        let t = format!(
            "{}.{}.",
            B64.encode(h.to_string()),
            B64.encode(claims().to_string())
        );
        assert!(verify(&f.svc, &t).is_err(), "{alg} accepted");
        let t = compact(&h, &claims(), b"x");
        assert!(
            verify(&f.svc, &t).is_err(),
            "{alg} with junk signature accepted"
        );
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    for alg in [
        KeyAlgorithm::EdDSA,
        KeyAlgorithm::ES256,
        KeyAlgorithm::RS256,
    ] {
        let f = fixture(alg).await;
        let key = f.svc.signing_key().unwrap();
        let jwk = key.public_jwk.clone();
        let secrets: Vec<Vec<u8>> = vec![
            jwk.to_string().into_bytes(),
            B64.decode(jwk.get("x").or(jwk.get("n")).unwrap().as_str().unwrap())
                .unwrap(),
        ];
        for hs in ["HS256", "HS384", "HS512"] {
            for secret in &secrets {
                let h = json!({"alg": hs, "typ": "at+jwt", "kid": key.kid});
                let input = format!(
                    "{}.{}",
                    B64.encode(h.to_string()),
                    B64.encode(claims().to_string())
                );
                let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
                let t = format!("{input}.{}", B64.encode(tag.as_ref()));
                assert!(
                    matches!(verify(&f.svc, &t), Err(AuthError::AlgorithmMismatch)),
                    "{alg:?}/{hs}"
                );
            }
        }
    }
}

#[tokio::test]
async fn unknown_or_missing_kid_is_refused() {
    let f = fixture(KeyAlgorithm::EdDSA).await;
    let mut h = real_header(&f.svc);
    h["kid"] = json!("not-a-key");
    assert!(matches!(
        verify(&f.svc, &sign_with_real_key(&f.svc, &h, &claims())),
        Err(AuthError::UnknownKey)
    ));
    h.as_object_mut().unwrap().remove("kid");
    assert!(matches!(
        verify(&f.svc, &sign_with_real_key(&f.svc, &h, &claims())),
        Err(AuthError::UnknownKey)
    ));
}

#[tokio::test]
async fn key_location_headers_are_refused() {
    let f = fixture(KeyAlgorithm::EdDSA).await;
    // An attacker key, offered inline (jwk) or by URL (jku, x5u).
    let attacker = Ed25519KeyPair::generate().unwrap();
    let jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(attacker.public_key().as_ref())});
    let base = real_header(&f.svc);
    for (name, value) in [
        ("jwk", jwk.clone()),
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("x5c", json!(["MIIB"])),
        ("crit", json!(["exp"])),
    ] {
        let mut h = base.clone();
        h[name] = value;
        // Even with our own valid signature the header is refused.
        let t = sign_with_real_key(&f.svc, &h, &claims());
        assert!(
            matches!(verify(&f.svc, &t), Err(AuthError::ForbiddenHeader(_))),
            "{name}"
        );
        // And signed by the attacker's key.
        let input = format!(
            "{}.{}",
            B64.encode(h.to_string()),
            B64.encode(claims().to_string())
        );
        let t = format!(
            "{input}.{}",
            B64.encode(attacker.sign(input.as_bytes()).as_ref())
        );
        assert!(verify(&f.svc, &t).is_err(), "{name} attacker");
    }
    // jwk header whose kid collides with ours, signed by the attacker.
    let mut h = base.clone();
    h["jwk"] = jwk;
    let input = format!(
        "{}.{}",
        B64.encode(h.to_string()),
        B64.encode(claims().to_string())
    );
    let t = format!(
        "{input}.{}",
        B64.encode(attacker.sign(input.as_bytes()).as_ref())
    );
    assert!(verify(&f.svc, &t).is_err());
}

#[tokio::test]
async fn time_issuer_audience_and_type_are_checked() {
    let f = fixture(KeyAlgorithm::EdDSA).await;
    let h = real_header(&f.svc);
    type Check = fn(&AuthError) -> bool;
    let cases: Vec<(&str, Value, Check)> = vec![
        ("expired", json!({"exp": T0 - 31}), |e| {
            matches!(e, AuthError::TokenExpired)
        }),
        ("not yet valid", json!({"nbf": T0 + 31}), |e| {
            matches!(e, AuthError::TokenNotYetValid)
        }),
        ("issued in the future", json!({"iat": T0 + 31}), |e| {
            matches!(e, AuthError::TokenNotYetValid)
        }),
        (
            "wrong issuer",
            json!({"iss": "https://evil.example"}),
            |e| matches!(e, AuthError::WrongIssuer),
        ),
        ("wrong audience", json!({"aud": "other"}), |e| {
            matches!(e, AuthError::WrongAudience)
        }),
        ("wrong audience list", json!({"aud": ["a", "b"]}), |e| {
            matches!(e, AuthError::WrongAudience)
        }),
        ("exp as string", json!({"exp": "never"}), |e| {
            matches!(e, AuthError::MalformedToken)
        }),
    ];
    for (name, patch, check) in cases {
        let mut c = claims();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        let err = verify(&f.svc, &sign_with_real_key(&f.svc, &h, &c)).unwrap_err();
        assert!(check(&err), "{name}: {err:?}");
        assert_eq!(
            err.www_authenticate().as_deref(),
            Some("Bearer error=\"invalid_token\"")
        );
    }
    // Within leeway is fine.
    let mut c = claims();
    c["exp"] = json!(T0 - 29);
    verify(&f.svc, &sign_with_real_key(&f.svc, &h, &c)).unwrap();
    // Missing claims.
    for missing in ["exp", "iss", "aud", "sub"] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(missing);
        assert!(
            verify(&f.svc, &sign_with_real_key(&f.svc, &h, &c)).is_err(),
            "missing {missing}"
        );
    }
    // typ must be at+jwt.
    for typ in [json!("JWT"), json!(null)] {
        let mut h2 = h.clone();
        h2["typ"] = typ;
        assert!(matches!(
            verify(&f.svc, &sign_with_real_key(&f.svc, &h2, &claims())),
            Err(AuthError::WrongType)
        ));
    }
    let mut h2 = h.clone();
    h2["typ"] = json!("application/at+jwt");
    verify(&f.svc, &sign_with_real_key(&f.svc, &h2, &claims())).unwrap();
}

#[tokio::test]
async fn tampered_stripped_and_malformed_tokens_are_refused() {
    let f = fixture(KeyAlgorithm::EdDSA).await;
    let t = sign_with_real_key(&f.svc, &real_header(&f.svc), &claims());
    let parts: Vec<&str> = t.split('.').collect();
    let mut c = claims();
    c["sub"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], B64.encode(c.to_string()), parts[2]);
    assert!(matches!(
        verify(&f.svc, &tampered),
        Err(AuthError::BadSignature)
    ));
    assert!(matches!(
        verify(&f.svc, &format!("{}.{}.", parts[0], parts[1])),
        Err(AuthError::BadSignature)
    ));
    assert!(matches!(
        verify(&f.svc, &format!("{}.{}", parts[0], parts[1])),
        Err(AuthError::MalformedToken)
    ));
    assert!(verify(&f.svc, &format!("{t}.extra")).is_err());
    assert!(verify(&f.svc, "").is_err());
    assert!(verify(&f.svc, "...").is_err());
    // A flipped signature bit.
    let mut sig = B64.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    assert!(matches!(
        verify(
            &f.svc,
            &format!("{}.{}.{}", parts[0], parts[1], B64.encode(sig))
        ),
        Err(AuthError::BadSignature)
    ));
}

#[tokio::test]
async fn ecdsa_all_zero_signature_is_refused() {
    let f = fixture(KeyAlgorithm::ES256).await;
    let h = real_header(&f.svc);
    assert_eq!(h["alg"], "ES256");
    verify(&f.svc, &sign_with_real_key(&f.svc, &h, &claims())).unwrap();
    for len in [64, 0, 1, 63, 65] {
        let t = compact(&h, &claims(), &vec![0u8; len]);
        assert!(
            verify(&f.svc, &t).is_err(),
            "zero signature of {len} bytes accepted"
        );
    }
}

#[tokio::test]
async fn revoked_session_tokens_are_refused_even_when_cached() {
    let f = fixture(KeyAlgorithm::EdDSA).await;
    let t = sign_with_real_key(&f.svc, &real_header(&f.svc), &claims());
    let v = f.svc.verifier();
    v.verify_at(&t, T0).unwrap();
    assert_eq!(v.cache_len(), 1);
    f.svc.revocations().revoke("sid1", T0);
    assert!(matches!(
        v.verify_at(&t, T0),
        Err(AuthError::SessionRevoked)
    ));
    // Revocation state unknown (shared store not re-synced): tokens with a sid fail closed.
    let mut c = claims();
    c["sid"] = json!("sid2");
    let t2 = sign_with_real_key(&f.svc, &real_header(&f.svc), &c);
    f.svc.revocations().set_synced(false);
    let e = v.verify_at(&t2, T0).unwrap_err();
    assert!(matches!(e, AuthError::RevocationUnknown));
    assert_eq!(e.status(), 503);
    f.svc.revocations().set_synced(true);
    v.verify_at(&t2, T0).unwrap();
    // A cached token still expires.
    assert!(matches!(
        v.verify_at(&t2, T0 + 900 + 31),
        Err(AuthError::TokenExpired)
    ));
}

#[tokio::test]
async fn huge_tokens_are_refused_before_parsing() {
    let f = fixture(KeyAlgorithm::EdDSA).await;
    let huge = "A".repeat(1 << 20);
    assert!(matches!(
        verify(&f.svc, &huge),
        Err(AuthError::TokenTooLarge)
    ));
    let mut c = claims();
    c["pad"] = json!("x".repeat(9000));
    assert!(matches!(
        verify(
            &f.svc,
            &sign_with_real_key(&f.svc, &real_header(&f.svc), &c)
        ),
        Err(AuthError::TokenTooLarge)
    ));
}

#[tokio::test]
async fn scopes_and_authorization_header() {
    let f = fixture(KeyAlgorithm::EdDSA).await;
    let v = f.svc.verifier();
    let (now_tok, _) = f
        .svc
        .issue_access_token("u", None, &["items:read".into()], None)
        .unwrap();
    let now_hdr = format!("bearer {now_tok}");
    assert!(matches!(
        v.authenticate_at(Some(&now_hdr), &["items:read".into()], T0),
        AuthOutcome::Authenticated(_)
    ));
    match v.authenticate_at(Some(&now_hdr), &["items:write".into()], T0) {
        AuthOutcome::Denied(e) => {
            assert_eq!(e.status(), 403);
            assert_eq!(
                e.www_authenticate().unwrap(),
                "Bearer error=\"insufficient_scope\", scope=\"items:write\""
            );
        }
        other => panic!("{other:?}"),
    }
    match v.authenticate(None, &[]) {
        AuthOutcome::Denied(e) => assert_eq!(e.www_authenticate().unwrap(), "Bearer"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        v.authenticate(Some("Basic abc"), &[]),
        AuthOutcome::Denied(AuthError::MissingCredentials)
    ));
}

#[tokio::test]
async fn trusted_issuer_jwks_given_as_data() {
    let f = fixture(KeyAlgorithm::EdDSA).await;
    let v = f.svc.verifier();
    let idp = Ed25519KeyPair::generate().unwrap();
    let jwks = json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "kid": "idp1", "x": B64.encode(idp.public_key().as_ref())},
        {"kty": "oct", "kid": "sym", "k": B64.encode(b"secret-secret-secret-secret-1234")},
    ]});
    let ti = TrustedIssuer {
        issuer: "https://login.example/".into(),
        audience: vec!["api".into()],
        required_typ: None,
    };
    assert_eq!(
        v.set_trusted_issuer(&ti, &jwks).unwrap(),
        1,
        "symmetric key skipped"
    );
    let mut c = claims();
    c["iss"] = json!("https://login.example/");
    c.as_object_mut().unwrap().remove("sid");
    let h = json!({"alg": "EdDSA", "typ": "JWT", "kid": "idp1"});
    let input = format!(
        "{}.{}",
        B64.encode(h.to_string()),
        B64.encode(c.to_string())
    );
    let t = format!(
        "{input}.{}",
        B64.encode(idp.sign(input.as_bytes()).as_ref())
    );
    let vt = v.verify_at(&t, T0).unwrap();
    assert!(!vt.own_issuer);
    assert_eq!(vt.issuer, "https://login.example/");
    // The IdP's key cannot sign for our issuer, and HS256 with the oct key is refused.
    let mut c2 = claims();
    c2["iss"] = json!("https://auth.test");
    let input = format!(
        "{}.{}",
        B64.encode(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "idp1"}).to_string()),
        B64.encode(c2.to_string())
    );
    let t = format!(
        "{input}.{}",
        B64.encode(idp.sign(input.as_bytes()).as_ref())
    );
    assert!(matches!(v.verify_at(&t, T0), Err(AuthError::UnknownKey)));
    let h = json!({"alg": "HS256", "typ": "JWT", "kid": "sym"});
    let input = format!(
        "{}.{}",
        B64.encode(h.to_string()),
        B64.encode(c.to_string())
    );
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, b"secret-secret-secret-secret-1234"),
        input.as_bytes(),
    );
    assert!(
        v.verify_at(&format!("{input}.{}", B64.encode(tag.as_ref())), T0)
            .is_err()
    );
}

#[tokio::test]
async fn cache_is_bounded() {
    let (store, _dir) = sqlite_store().await;
    let mut o = opts();
    o.verified_cache_capacity = 4;
    o.access_ttl = Duration::from_secs(900);
    let svc = service(store, o, FakeClock::new(T0)).await;
    let v = svc.verifier();
    for i in 0..20 {
        let mut c = claims();
        c["jti"] = json!(format!("j{i}"));
        v.verify_at(&sign_with_real_key(&svc, &real_header(&svc), &c), T0)
            .unwrap();
        assert!(v.cache_len() <= 4);
    }
}

#[tokio::test]
async fn key_reload_keeps_cache_unless_keys_change() {
    let f = fixture(KeyAlgorithm::EdDSA).await;
    let v = f.svc.verifier();
    v.verify_at(
        &sign_with_real_key(&f.svc, &real_header(&f.svc), &claims()),
        T0,
    )
    .unwrap();
    f.svc.reload_keys().await.unwrap();
    assert_eq!(v.cache_len(), 1);
    f.svc.rotate_keys(None).await.unwrap();
    assert_eq!(v.cache_len(), 0);
}

fn runtime_fixture() -> Fixture {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fixture(KeyAlgorithm::EdDSA))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        thread_local!(static F: Fixture = runtime_fixture());
        let s = String::from_utf8_lossy(&bytes).into_owned();
        F.with(|f| { let _ = f.svc.verifier().verify_at(&s, T0); });
    }

    #[test]
    fn random_three_part_tokens_never_panic(
        h in proptest::collection::vec(any::<u8>(), 0..256),
        p in proptest::collection::vec(any::<u8>(), 0..256),
        s in proptest::collection::vec(any::<u8>(), 0..128),
        json_header in proptest::bool::ANY,
    ) {
        thread_local!(static F: Fixture = runtime_fixture());
        let header = if json_header { br#"{"alg":"EdDSA","typ":"at+jwt","kid":"k"}"#.to_vec() } else { h };
        let t = format!("{}.{}.{}", B64.encode(header), B64.encode(p), B64.encode(s));
        F.with(|f| { let _ = f.svc.verifier().verify_at(&t, T0); });
    }

    #[test]
    fn random_json_claims_never_panic(key in "[a-z]{1,5}", val in any::<i64>(), text in ".{0,40}") {
        thread_local!(static F: Fixture = runtime_fixture());
        F.with(|f| {
            let mut c = claims();
            c[key.as_str()] = json!(val);
            c["sub"] = json!(text);
            let _ = f.svc.verifier().verify_at(&sign_with_real_key(&f.svc, &real_header(&f.svc), &c), T0);
        });
    }
}
