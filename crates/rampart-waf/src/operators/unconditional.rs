//! `@unconditionalMatch` (always) and `@noMatch` (never).
use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::state::TxData;

#[derive(Debug)]
pub(crate) struct UnconditionalMatch;
impl Operator for UnconditionalMatch {
    fn compile(_arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        Ok(Self)
    }
    fn eval(&self, _st: &TxData, _v: &[u8], _caps: Option<&mut Captures>) -> bool {
        true
    }
}

#[derive(Debug)]
pub(crate) struct NoMatch;
impl Operator for NoMatch {
    fn compile(_arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        Ok(Self)
    }
    fn eval(&self, _st: &TxData, _v: &[u8], _caps: Option<&mut Captures>) -> bool {
        false
    }
}
