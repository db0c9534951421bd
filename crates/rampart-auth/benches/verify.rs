//! Verifications per second for EdDSA and ES256, with and without the verified-token cache.

use std::sync::Arc;

use aws_lc_rs::signature::{self, VerificationAlgorithm};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use rampart_auth::rampart_store::SqlStore;
use rampart_auth::{AuthOptions, AuthService, KeyAlgorithm, MasterKey};

fn setup(
    alg: KeyAlgorithm,
    cache: usize,
    dir: &std::path::Path,
    name: &str,
) -> (AuthService, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqlStore::open(&format!(
            "sqlite://{}/{alg:?}-{cache}-{name}.db",
            dir.display()
        ))
        .await
        .unwrap();
        let mut o = AuthOptions::new("https://auth.bench", vec!["api".into()]);
        o.key_algorithm = alg;
        o.verified_cache_capacity = cache;
        let svc = AuthService::new(Arc::new(store), o, MasterKey::generate().unwrap())
            .await
            .unwrap();
        let (tok, _) = svc
            .issue_access_token("user-1", Some("sid-1"), &["items:read".into()], None)
            .unwrap();
        (svc, tok)
    })
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    for alg in [KeyAlgorithm::EdDSA, KeyAlgorithm::ES256] {
        for (cache, label) in [(0, "uncached"), (10_000, "cached")] {
            let (svc, tok) = setup(alg, cache, dir.path(), label);
            let v = svc.verifier();
            v.verify(&tok).unwrap();
            c.bench_function(&format!("verify/{}/{label}", alg.as_str()), |b| {
                b.iter(|| v.verify(std::hint::black_box(&tok)).unwrap())
            });
        }
        // The signature primitive alone, for comparison with the uncached path.
        let (svc, tok) = setup(alg, 0, dir.path(), "primitive");
        let key = svc.signing_key().unwrap();
        let (input, sig) = tok.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let jwk = &key.public_jwk;
        let (algo, public): (&'static dyn VerificationAlgorithm, Vec<u8>) = match alg {
            KeyAlgorithm::EdDSA => (
                &signature::ED25519,
                URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap(),
            ),
            _ => {
                let mut p = vec![4u8];
                p.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
                p.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
                (&signature::ECDSA_P256_SHA256_FIXED, p)
            }
        };
        let pk = signature::UnparsedPublicKey::new(algo, public);
        pk.verify(input.as_bytes(), &sig).unwrap();
        c.bench_function(&format!("primitive/{}", alg.as_str()), |b| {
            b.iter(|| {
                pk.verify(std::hint::black_box(input.as_bytes()), &sig)
                    .unwrap()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
