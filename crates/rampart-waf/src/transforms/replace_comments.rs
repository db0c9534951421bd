//! `t:replaceComments`: each `/* … */` (also unterminated) becomes one space.
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.windows(2).any(|w| w == b"/*") {
        return Cow::Borrowed(v);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'/' && v.get(i + 1) == Some(&b'*') {
            match v[i + 2..].windows(2).position(|w| w == b"*/") {
                Some(p) => i = i + 2 + p + 2,
                None => i = v.len(),
            }
            out.push(b' ');
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}
