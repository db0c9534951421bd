#![no_main]
libfuzzer_sys::fuzz_target!(|path: &str| {
    if let Ok(p) = rampart_proxy::path::normalize(path) {
        // Normalizing is idempotent.
        assert_eq!(rampart_proxy::path::normalize(&p).unwrap(), p);
    }
});
