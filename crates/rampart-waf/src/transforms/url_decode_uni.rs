//! `t:urlDecodeUni`: `urlDecode` plus IIS `%uHHHH` (low byte; full-width ASCII folded).
use super::hexval;
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr2(b'%', b'+', v).is_none() {
        return Cow::Borrowed(v);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        if c == b'%' {
            if (v.get(i + 1) == Some(&b'u') || v.get(i + 1) == Some(&b'U')) && i + 6 <= v.len() {
                let hs: Option<Vec<u8>> = v[i + 2..i + 6].iter().map(|&x| hexval(x)).collect();
                if let Some(h) = hs {
                    let mut b = h[2] << 4 | h[3];
                    if b > 0 && b < 0x5f && h[0] == 0xf && h[1] == 0xf {
                        b += 0x20;
                    }
                    out.push(b);
                    i += 6;
                    continue;
                }
            }
            if i + 2 < v.len()
                && let (Some(h), Some(l)) = (hexval(v[i + 1]), hexval(v[i + 2]))
            {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            out.push(b'%');
        } else if c == b'+' {
            out.push(b' ');
        } else {
            out.push(c);
        }
        i += 1;
    }
    Cow::Owned(out)
}
