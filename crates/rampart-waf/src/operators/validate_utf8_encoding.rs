//! `@validateUtf8Encoding`: matches invalid UTF-8 (truncated, overlong, surrogates, > U+10FFFF).
use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::state::TxData;

#[derive(Debug)]
pub(crate) struct ValidateUtf8Encoding;

impl Operator for ValidateUtf8Encoding {
    fn compile(_arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        Ok(Self)
    }
    fn eval(&self, _st: &TxData, v: &[u8], _caps: Option<&mut Captures>) -> bool {
        std::str::from_utf8(v).is_err()
    }
}
