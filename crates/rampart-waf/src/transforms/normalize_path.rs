//! `t:normalizePath`: removes `./` and `//`, resolves `../` (never above the root).
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.windows(2).any(|w| w == b"//" || w == b"./" || w == b"/.") && !v.starts_with(b".") {
        return Cow::Borrowed(v);
    }
    Cow::Owned(normalize(v))
}
pub(crate) fn normalize(v: &[u8]) -> Vec<u8> {
    let absolute = v.first() == Some(&b'/');
    let trailing = v.last() == Some(&b'/')
        || v.ends_with(b"/.")
        || v.ends_with(b"/..")
        || v == b"."
        || v == b"..";
    let mut segs: Vec<&[u8]> = Vec::new();
    for seg in v.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if segs.last().is_some_and(|s| *s != b"..") {
                    segs.pop();
                } else if !absolute {
                    segs.push(seg);
                }
            }
            s => segs.push(s),
        }
    }
    let mut out = Vec::with_capacity(v.len());
    if absolute {
        out.push(b'/');
    }
    out.extend_from_slice(&segs.join(&b'/'));
    if trailing && !segs.is_empty() {
        out.push(b'/');
    }
    out
}
