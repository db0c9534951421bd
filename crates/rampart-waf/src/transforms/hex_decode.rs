//! `t:hexDecode`: pairs of hex digits; stops at the first invalid pair.
use super::hexval;
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(v.len() / 2);
    for p in v.chunks_exact(2) {
        match (hexval(p[0]), hexval(p[1])) {
            (Some(h), Some(l)) => out.push(h << 4 | l),
            _ => break,
        }
    }
    Cow::Owned(out)
}
