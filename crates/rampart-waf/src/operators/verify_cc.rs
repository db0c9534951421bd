//! `@verifyCC regex`: a regex finds candidate card numbers; matches when one passes Luhn.
use regex::bytes::Regex;

use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::state::TxData;

#[derive(Debug)]
pub(crate) struct VerifyCc {
    re: Regex,
}

fn luhn(digits: &[u8]) -> bool {
    let d: Vec<u32> = digits
        .iter()
        .filter(|c| c.is_ascii_digit())
        .map(|c| u32::from(c - b'0'))
        .collect();
    if d.len() < 12 {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                if x * 2 > 9 { x * 2 - 9 } else { x * 2 }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl Operator for VerifyCc {
    fn compile(arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        Ok(Self {
            re: super::rx::build(arg)?,
        })
    }
    fn eval(&self, _st: &TxData, v: &[u8], caps: Option<&mut Captures>) -> bool {
        for m in self.re.find_iter(v) {
            if luhn(m.as_bytes()) {
                if let Some(c) = caps {
                    c.clear();
                    c.push(m.as_bytes().to_vec());
                }
                return true;
            }
        }
        false
    }
}
