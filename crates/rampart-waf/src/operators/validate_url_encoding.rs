//! `@validateUrlEncoding`: matches when a `%` is not followed by two hex digits.
use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::state::TxData;

#[derive(Debug)]
pub(crate) struct ValidateUrlEncoding;

impl Operator for ValidateUrlEncoding {
    fn compile(_arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        Ok(Self)
    }
    fn eval(&self, _st: &TxData, v: &[u8], _caps: Option<&mut Captures>) -> bool {
        let mut i = 0;
        while i < v.len() {
            if v[i] == b'%' {
                if i + 2 >= v.len()
                    || !v[i + 1].is_ascii_hexdigit()
                    || !v[i + 2].is_ascii_hexdigit()
                {
                    return true;
                }
                i += 3;
            } else {
                i += 1;
            }
        }
        false
    }
}
