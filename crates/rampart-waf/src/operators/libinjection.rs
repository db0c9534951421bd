//! `@detectSQLi` and `@detectXSS`: libinjection. SQLi by our own implementation of its
//! algorithm (`super::sqli`, held to the Rust port `libinjectionrs` by differential tests),
//! XSS by `libinjectionrs`.
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Captures, CompileCtx, Operator, sqli};
use crate::error::CompileError;
use crate::state::TxData;

#[derive(Debug)]
pub(crate) struct DetectSqli;

impl Operator for DetectSqli {
    fn compile(_arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        Ok(DetectSqli)
    }
    fn eval(&self, _st: &TxData, value: &[u8], caps: Option<&mut Captures>) -> bool {
        if sqli_impossible(value) {
            return false;
        }
        // Our detector (`super::sqli`): libinjection's verdict and fingerprint (the one of
        // the reading that reported), without allocating and without panicking.
        let Some(fingerprint) = sqli::detect(value) else {
            return false;
        };
        if let Some(c) = caps {
            c.clear();
            c.push(fingerprint.as_bytes().to_vec());
        }
        true
    }
}

/// Whether libinjection's SQLi check cannot report `value`, decided without tokenizing: a
/// value of letters, digits and `_` only that is all digits or starts with no digit. Such a
/// value is one token (a number, or a word: the string prefixes `b' e' n' q' u&' x'` need a
/// quote or `&` to follow, and the word parser splits only at `.` and `` ` ``), so its
/// fingerprint has at most one character; the only one-character fingerprint libinjection
/// lists is `X`, a type no word lookup and no number gives. No quote means no quoted
/// context is tried, no `#` or `--` no MySQL re-parse. (Most names and values of benign
/// requests are such words and numbers; `sqli_fast_path_agrees_with_the_library` checks the
/// reasoning against the library.)
fn sqli_impossible(value: &[u8]) -> bool {
    let Some(first) = value.first() else {
        return true;
    };
    let mut digits = true;
    for &b in value {
        match b {
            b'0'..=b'9' => {}
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => digits = false,
            _ => return false,
        }
    }
    digits || !first.is_ascii_digit()
}

/// Whether libinjection's XSS check cannot report `value`: it reports only on a tag, a
/// doctype or a comment (each opened by `<`) or on an attribute value after an attribute
/// name (which needs `=`), in each of its five contexts; without a quote of the three kinds
/// the quoted contexts see one attribute value with no name before it.
fn xss_impossible(value: &[u8]) -> bool {
    !value
        .iter()
        .any(|b| matches!(b, b'<' | b'=' | b'\'' | b'"' | b'`'))
}

#[derive(Debug)]
pub(crate) struct DetectXss;

impl Operator for DetectXss {
    fn compile(_arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        Ok(DetectXss)
    }
    fn eval(&self, _st: &TxData, value: &[u8], _caps: Option<&mut Captures>) -> bool {
        if xss_impossible(value) {
            return false;
        }
        catch_unwind(AssertUnwindSafe(|| {
            libinjectionrs::detect_xss(value).is_injection()
        }))
        .unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQL words, numbers and the characters of the SQLi fast path's class, glued together.
    fn sqli_words() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let part = prop_oneof![
            prop::sample::select(vec![
                "union",
                "UNION",
                "select",
                "or",
                "and",
                "OR",
                "1",
                "0",
                "0x",
                "0b",
                "x",
                "b",
                "n",
                "q",
                "e",
                "u",
                "N",
                "sleep",
                "benchmark",
                "not",
                "div",
                "null",
                "like",
                "1e",
                "1f",
                "1d",
                "1u",
                "_",
                "__",
                "char",
                "concat",
                "waitfor",
                "delay",
                "x1",
            ])
            .prop_map(str::to_owned),
            "[A-Za-z0-9_]{1,12}",
            "[ '\"#.$@()=;-]",
        ];
        prop::collection::vec(part, 1..5).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// Whatever the fast path calls harmless, the library does not report either.
        #[test]
        fn sqli_fast_path_agrees_with_the_library(v in sqli_words()) {
            if sqli_impossible(v.as_bytes()) {
                proptest::prop_assert!(!libinjectionrs::detect_sqli(v.as_bytes()).is_injection());
            }
        }

        #[test]
        fn xss_fast_path_agrees_with_the_library(
            v in "([a-zA-Z0-9 /&;:>()!#%.,_+=<'\"`-]|on[a-z]{0,8}|script|javascript:|style|href|src|\\x00|\\t|\\n|&#[0-9]{1,3};?){0,16}"
        ) {
            if xss_impossible(v.as_bytes()) {
                proptest::prop_assert!(!libinjectionrs::detect_xss(v.as_bytes()).is_injection());
            }
        }
    }

    /// The fast paths let through what the library reports, and decide alone only on values
    /// of their classes.
    #[test]
    fn fast_paths_leave_attacks_to_the_library() {
        for v in [
            &b"1union"[..],
            b"1 or 1",
            b"a'--",
            b"id.x",
            b"$1",
            b"@@version",
            b"a#",
        ] {
            assert!(!sqli_impossible(v), "{}", String::from_utf8_lossy(v));
        }
        for v in [&b"id"[..], b"42", b"session_id", b"dark", b"UNION", b"x1"] {
            assert!(sqli_impossible(v), "{}", String::from_utf8_lossy(v));
        }
        for v in [&b"<svg"[..], b"x onerror=alert(1)", b"'", b"\"", b"`"] {
            assert!(!xss_impossible(v), "{}", String::from_utf8_lossy(v));
        }
        assert!(libinjectionrs::detect_xss(b"x onerror=alert(1)").is_injection());
        assert!(xss_impossible(
            b"en-US, gift wrap (please) & thanks: /a/b > c"
        ));
    }

    /// The operator decides as `libinjectionrs::detect_sqli` does and captures the same
    /// fingerprint, on attacks and on ordinary values.
    #[test]
    fn sqli_agrees_with_the_library_entry_point() {
        let st = TxData::default();
        let inputs: &[&[u8]] = &[
            b"1' OR '1'='1",
            b"1 union select password from users--",
            b"\" or 1=1 -- ",
            b"admin'--",
            b"1;DROP TABLE users",
            b"hello world",
            b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
            b"https://app.example.com/items?page=2",
            b"O'Reilly",
            b"",
        ];
        for input in inputs {
            let lib = libinjectionrs::detect_sqli(input);
            let mut caps = Vec::new();
            let ours = DetectSqli.eval(&st, input, Some(&mut caps));
            assert_eq!(
                ours,
                lib.is_injection(),
                "{}",
                String::from_utf8_lossy(input)
            );
            if ours {
                let fp = lib.fingerprint.expect("a detection has a fingerprint");
                assert_eq!(caps, [fp.as_str().as_bytes().to_vec()]);
            }
        }
    }
}
