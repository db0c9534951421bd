//! `t:urlEncode`
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(v.len());
    for &c in v {
        if c.is_ascii_alphanumeric() || matches!(c, b'*' | b'-' | b'.' | b'_') {
            out.push(c)
        } else if c == b' ' {
            out.push(b'+')
        } else {
            out.extend_from_slice(&[b'%', H[usize::from(c >> 4)], H[usize::from(c & 15)]]);
        }
    }
    Cow::Owned(out)
}
