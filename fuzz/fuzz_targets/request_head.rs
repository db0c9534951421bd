//! Request heads from the network: the lenient reading of a head hyper refused, the HTTP
//! version rewrite, and the `Host` checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_proxy::head::{LenientHead, host_without_port, other_http_version, valid_host};

fuzz_target!(|data: &[u8]| {
    if let Some((fixed, version)) = other_http_version(data) {
        assert_eq!(fixed.len(), data.len());
        assert!(version.starts_with("HTTP/"));
    }
    if let Some(head) = LenientHead::parse(data) {
        let _ = head.host();
        let _ = head.path();
    }
    let valid = valid_host(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let host = host_without_port(text);
        if valid {
            assert!(!host.contains(':') || text.starts_with('['));
        }
    }
});
