//! `t:escapeSeqDecode`: ANSI C escapes (`\n`, `\xHH`, `\OOO` …); invalid ones are kept.
use super::hexval;
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.contains(&b'\\') {
        return Cow::Borrowed(v);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] != b'\\' || i + 1 >= v.len() {
            out.push(v[i]);
            i += 1;
            continue;
        }
        let n = v[i + 1];
        let simple = match n {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' | b'?' | b'\'' | b'"' => Some(n),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        if (n == b'x' || n == b'X')
            && i + 3 < v.len()
            && let (Some(h), Some(l)) = (hexval(v[i + 2]), hexval(v[i + 3]))
        {
            out.push(h << 4 | l);
            i += 4;
            continue;
        }
        if (b'0'..=b'7').contains(&n) {
            let mut j = i + 1;
            let mut val: u32 = 0;
            while j < v.len() && j < i + 4 && (b'0'..=b'7').contains(&v[j]) {
                val = val * 8 + u32::from(v[j] - b'0');
                j += 1;
            }
            out.push((val & 0xff) as u8);
            i = j;
            continue;
        }
        out.push(b'\\');
        out.push(n);
        i += 2;
    }
    Cow::Owned(out)
}
