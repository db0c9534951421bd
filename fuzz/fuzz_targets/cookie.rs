#![no_main]
// Cookie headers and the CSRF inputs of the cookie endpoints come from the network.
libfuzzer_sys::fuzz_target!(|data: (&str, &str, Option<&str>, Option<&str>)| {
    let (header, name, origin, fetch_site) = data;
    let _ = rampart_auth::cookie::find_cookie(header, name);
    let _ = rampart_auth::cookie::cookie_request_allowed(
        origin,
        fetch_site,
        "https://auth.example.com",
        &["https://app.example.com".to_owned()],
    );
});
