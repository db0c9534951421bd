//! `@strmatch text`: the value contains the (literal, case-sensitive) text.
use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::state::TxData;

#[derive(Debug)]
pub(crate) struct StrMatch {
    finder: aho_corasick::AhoCorasick,
}

impl Operator for StrMatch {
    fn compile(arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        if arg.is_empty() {
            return Err(CompileError::new("empty pattern"));
        }
        let finder =
            aho_corasick::AhoCorasick::new([arg]).map_err(|e| CompileError::new(e.to_string()))?;
        Ok(Self { finder })
    }
    fn eval(&self, _st: &TxData, v: &[u8], _caps: Option<&mut Captures>) -> bool {
        self.finder.is_match(v)
    }
}
