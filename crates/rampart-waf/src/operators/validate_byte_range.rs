//! `@validateByteRange 1-255` / `9,10,13,32-126`: matches when a byte is outside the ranges.
use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::state::TxData;

#[derive(Debug)]
pub(crate) struct ValidateByteRange {
    allowed: [bool; 256],
}

impl Operator for ValidateByteRange {
    fn compile(arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        let mut allowed = [false; 256];
        for part in arg.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let a: u8 = a
                .parse()
                .map_err(|_| CompileError::new(format!("bad byte range {part:?}")))?;
            let b: u8 = b
                .parse()
                .map_err(|_| CompileError::new(format!("bad byte range {part:?}")))?;
            if a > b {
                return Err(CompileError::new(format!("bad byte range {part:?}")));
            }
            for x in a..=b {
                allowed[usize::from(x)] = true;
            }
        }
        Ok(Self { allowed })
    }
    fn eval(&self, _st: &TxData, v: &[u8], _caps: Option<&mut Captures>) -> bool {
        v.iter().any(|&c| !self.allowed[usize::from(c)])
    }
}
