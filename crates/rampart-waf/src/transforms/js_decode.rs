//! `t:jsDecode`: JavaScript escapes `\xHH`, `\uHHHH`, `\OOO`, `\n` … (`\u` keeps the low byte).
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
        if n == b'u' && i + 6 <= v.len() {
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
        if n == b'x'
            && i + 4 <= v.len()
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
        out.push(match n {
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            c => c,
        });
        i += 2;
    }
    Cow::Owned(out)
}
