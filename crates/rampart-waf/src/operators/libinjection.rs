//! `@detectSQLi` and `@detectXSS`: libinjection (pure Rust port `libinjectionrs`).
use std::panic::{AssertUnwindSafe, catch_unwind};

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
        // a young port: should it ever panic, fail closed (report an injection)
        let Ok(r) = catch_unwind(AssertUnwindSafe(|| libinjectionrs::detect_sqli(value))) else {
            return true;
        };
        if !r.is_injection() {
            return false;
        }
        if let Some(c) = caps {
            c.clear();
            c.push(
                r.fingerprint
                    .map(|f| f.as_str().as_bytes().to_vec())
                    .unwrap_or_default(),
            );
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
