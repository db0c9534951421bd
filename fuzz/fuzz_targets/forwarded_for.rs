#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(value) = http::HeaderValue::from_bytes(data) else { return };
    let mut headers = http::HeaderMap::new();
    headers.insert("x-forwarded-for", value);
    let trusted = rampart_config::CidrList(vec!["127.0.0.0/8".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]);
    let _ = rampart_listen::ForwardedChain::resolve("127.0.0.1".parse().unwrap(), &headers, &trusted);
});
