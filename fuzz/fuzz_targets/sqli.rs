#![no_main]
//! The `@detectSQLi` detector on arbitrary bytes: it must not panic, and it must decide as
//! `libinjectionrs` 0.1.1 does (`SqliState::new(_, FLAG_NONE)`, `detect()`), with the same
//! fingerprint (`get_fingerprint()`) when it reports.
use libinjectionrs::{SqliFlags, SqliState};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let ours = rampart_waf::fuzzing::sqli_fingerprint(data);
    let mut state = SqliState::new(data, SqliFlags::FLAG_NONE);
    let reference = state
        .detect()
        .then(|| state.get_fingerprint().as_str().as_bytes().to_vec());
    assert_eq!(ours, reference, "input {:?}", String::from_utf8_lossy(data));
});
