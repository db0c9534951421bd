#![no_main]
// What OAuth clients send: the Authorization header and form of the token endpoint, redirect
// URIs at registration, PKCE verifiers and challenges.
libfuzzer_sys::fuzz_target!(|data: (Option<&str>, Vec<(String, String)>, &str, &str)| {
    let (authorization, form, uri, verifier) = data;
    let _ = rampart_oauth::ClientCredentials::from_request(authorization, &form);
    let _ = rampart_oauth::valid_redirect_uri(uri);
    let challenge = rampart_oauth::pkce::challenge_of(verifier);
    if rampart_oauth::pkce::valid_verifier(verifier) {
        assert!(rampart_oauth::pkce::verify_s256(verifier, &challenge));
    }
    let _ = rampart_oauth::pkce::verify_s256(verifier, uri);
});
