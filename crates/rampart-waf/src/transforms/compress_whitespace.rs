//! `t:compressWhitespace`: runs of whitespace (and NBSP) become one space.
use super::is_space;
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.iter().any(|&c| is_space(c)) {
        return Cow::Borrowed(v);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut prev = false;
    for &c in v {
        if is_space(c) {
            if !prev {
                out.push(b' ');
            }
            prev = true;
        } else {
            out.push(c);
            prev = false;
        }
    }
    Cow::Owned(out)
}
