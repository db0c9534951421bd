//! `@validateByteRange 1-255` / `9,10,13,32-126`: matches when a byte is outside the ranges.
use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::state::TxData;

#[derive(Debug)]
pub(crate) struct ValidateByteRange {
    allowed: [bool; 256],
    /// The bytes outside the ranges, when there are at most three of them (`1-255`, CRS
    /// 920270 on every request's URI, headers and arguments): a `memchr` search finds them.
    refused: Option<Vec<u8>>,
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
        let refused: Vec<u8> = (0..=255u8).filter(|&b| !allowed[usize::from(b)]).collect();
        Ok(Self {
            allowed,
            refused: (refused.len() <= 3).then_some(refused),
        })
    }
    fn eval(&self, _st: &TxData, v: &[u8], _caps: Option<&mut Captures>) -> bool {
        match self.refused.as_deref() {
            Some([]) => false,
            Some(&[a]) => memchr::memchr(a, v).is_some(),
            Some(&[a, b]) => memchr::memchr2(a, b, v).is_some(),
            Some(&[a, b, c]) => memchr::memchr3(a, b, c, v).is_some(),
            _ => v.iter().any(|&c| !self.allowed[usize::from(c)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whichever way a value is searched, a byte outside the ranges is what matches.
        #[test]
        fn matches_exactly_the_values_with_a_byte_outside_the_ranges(
            ranges in proptest::sample::select(vec!["1-255", "0-9,11-255", "1-9,11-12,14-255",
                "0-31,33-126,128-255", "9,10,13,32-126,128-255", "0-255", "65"]),
            v in proptest::collection::vec(proptest::sample::select(
                vec![0u8, 1, 9, 10, 13, 32, 65, 127, 128, 255]), 0..40),
        ) {
            let ctx = CompileCtx { dir: std::path::Path::new(".") };
            let op = ValidateByteRange::compile(ranges, &ctx).unwrap();
            let outside = v.iter().any(|&c| !op.allowed[usize::from(c)]);
            proptest::prop_assert_eq!(op.eval(&TxData::default(), &v, None), outside);
        }
    }
}
