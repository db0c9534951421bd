//! `t:hexEncode`: lowercase hex.
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    const H: &[u8; 16] = b"0123456789abcdef";
    Cow::Owned(
        v.iter()
            .flat_map(|&c| [H[usize::from(c >> 4)], H[usize::from(c & 15)]])
            .collect(),
    )
}
