#![no_main]
// Bearer tokens come straight from the network: the verifier must refuse anything malformed
// (header, base64, JSON, algorithm, key id) without panicking.
use std::sync::{Arc, OnceLock};

use rampart_auth::{AuthOptions, RevocationList, Verifier};

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let opts = AuthOptions::new("https://auth.example.com", vec!["api".into()]);
        Verifier::new(&opts, Arc::new(RevocationList::new(900)))
    })
}

libfuzzer_sys::fuzz_target!(|data: &str| {
    let _ = verifier().verify_at(data, 1_800_000_000);
    let _ = verifier().authenticate(Some(&format!("Bearer {data}")), &[]);
});
