//! `t:sqlHexDecode`: `0xHHHH` literals become their bytes.
use super::hexval;
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'0' && matches!(v.get(i + 1), Some(b'x' | b'X')) {
            let mut j = i + 2;
            while j + 1 < v.len() && hexval(v[j]).is_some() && hexval(v[j + 1]).is_some() {
                out.push(hexval(v[j]).unwrap_or(0) << 4 | hexval(v[j + 1]).unwrap_or(0));
                j += 2;
            }
            if j > i + 2 {
                i = j;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    Cow::Owned(out)
}
