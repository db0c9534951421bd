//! `@detectSQLi` and `@detectXSS`: libinjection (pure Rust port `libinjectionrs`).
use std::panic::{AssertUnwindSafe, catch_unwind};

use libinjectionrs::{SqliFlags, SqliState};

use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::state::TxData;

#[derive(Debug)]
pub(crate) struct DetectSqli;

impl Operator for DetectSqli {
    fn compile(_arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        Ok(DetectSqli)
    }
    fn eval(&self, _st: &TxData, value: &[u8], caps: Option<&mut Captures>) -> bool {
        // `SqliState::detect` rather than `detect_sqli`: the latter tokenizes the input once
        // more after deciding, for the fingerprint, which only a detection needs (the
        // fingerprint is the one of the last context tried, as there).
        // A young port: should it ever panic, fail closed (report an injection).
        let Ok(fingerprint) = catch_unwind(AssertUnwindSafe(|| {
            let mut state = SqliState::new(value, SqliFlags::FLAG_NONE);
            state.detect().then(|| state.get_fingerprint())
        })) else {
            return true;
        };
        let Some(fingerprint) = fingerprint else {
            return false;
        };
        if let Some(c) = caps {
            c.clear();
            c.push(fingerprint.as_str().as_bytes().to_vec());
        }
        true
    }
}

#[derive(Debug)]
pub(crate) struct DetectXss;

impl Operator for DetectXss {
    fn compile(_arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        Ok(DetectXss)
    }
    fn eval(&self, _st: &TxData, value: &[u8], _caps: Option<&mut Captures>) -> bool {
        catch_unwind(AssertUnwindSafe(|| {
            libinjectionrs::detect_xss(value).is_injection()
        }))
        .unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
