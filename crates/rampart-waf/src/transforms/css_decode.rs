//! `t:cssDecode`: CSS 2 escapes `\HHHHHH` (low byte, full-width folded), `\c`, line continuation.
use super::hexval;
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.contains(&b'\\') {
        return Cow::Borrowed(v);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] != b'\\' {
            out.push(v[i]);
            i += 1;
            continue;
        }
        if i + 1 >= v.len() {
            i += 1; // a lone trailing backslash is dropped
            continue;
        }
        let mut j = i + 1;
        while j < v.len() && j < i + 7 && hexval(v[j]).is_some() {
            j += 1;
        }
        let n = j - (i + 1);
        if n > 0 {
            let digits = &v[i + 1..j];
            let mut b = if n >= 2 {
                hexval(digits[n - 2]).unwrap_or(0) << 4 | hexval(digits[n - 1]).unwrap_or(0)
            } else {
                hexval(digits[0]).unwrap_or(0)
            };
            let fullwidth = n >= 4
                && digits[n - 4].eq_ignore_ascii_case(&b'f')
                && digits[n - 3].eq_ignore_ascii_case(&b'f');
            if fullwidth && b > 0 && b < 0x5f {
                b += 0x20;
            }
            out.push(b);
            i = j;
            if i < v.len() && v[i].is_ascii_whitespace() {
                i += 1;
            }
        } else if v[i + 1] == b'\n' {
            i += 2;
        } else {
            out.push(v[i + 1]);
            i += 2;
        }
    }
    Cow::Owned(out)
}
