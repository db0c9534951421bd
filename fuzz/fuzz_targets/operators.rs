#![no_main]
//! The operators that look at raw values without a pattern, on arbitrary bytes:
//! `@detectSQLi` and `@detectXSS` (libinjection), `@validateUrlEncoding`,
//! `@validateUtf8Encoding` and `@validateByteRange` (its range list from the input too).
use std::sync::OnceLock;

use rampart_waf::fuzzing::Operator;

fn fixed(i: usize) -> &'static Operator {
    static OPS: OnceLock<Vec<Operator>> = OnceLock::new();
    &OPS.get_or_init(|| {
        [
            "@detectSQLi",
            "@detectXSS",
            "@validateUrlEncoding",
            "@validateUtf8Encoding",
        ]
        .iter()
        .map(|spec| Operator::compile(spec).expect("compiles"))
        .collect()
    })[i]
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 | 1 => {
            let _ = fixed(usize::from(selector % 6)).matches(rest);
        }
        2 => {
            let m = fixed(2).matches(rest);
            if !rest.contains(&b'%') {
                assert!(!m);
            }
        }
        3 => assert_eq!(fixed(3).matches(rest), std::str::from_utf8(rest).is_err()),
        4 => {
            // one range from two bytes
            let [lo, hi, value @ ..] = rest else { return };
            match Operator::compile(&format!("@validateByteRange {lo}-{hi}")) {
                Ok(op) => {
                    assert!(lo <= hi);
                    assert_eq!(op.matches(value), value.iter().any(|c| c < lo || c > hi));
                }
                Err(e) => assert!(lo > hi, "{e}"),
            }
        }
        _ => {
            // an arbitrary range list (up to the first newline), then the value
            let (list, value) = match rest.iter().position(|&c| c == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &b""[..]),
            };
            let spec = format!("@validateByteRange {}", String::from_utf8_lossy(list));
            if let Ok(op) = Operator::compile(&spec) {
                let _ = op.matches(value);
            }
        }
    }
});
