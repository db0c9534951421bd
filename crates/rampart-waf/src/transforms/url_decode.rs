//! `t:urlDecode`: `%HH` and `+`; invalid escapes are kept as they are (ModSecurity semantics).
use super::hexval;
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.iter().any(|&c| c == b'%' || c == b'+') {
        return Cow::Borrowed(v);
    }
    Cow::Owned(decode(v))
}
pub(crate) fn decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'%' if i + 2 < v.len() => {
                if let (Some(h), Some(l)) = (hexval(v[i + 1]), hexval(v[i + 2])) {
                    out.push(h << 4 | l);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}
