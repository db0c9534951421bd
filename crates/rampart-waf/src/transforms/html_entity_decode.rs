//! `t:htmlEntityDecode`: `&#DDD;`, `&#xHH;` (semicolon optional) and `&quot; &amp; &lt; &gt; &nbsp;`.
use super::hexval;
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.contains(&b'&') {
        return Cow::Borrowed(v);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] != b'&' {
            out.push(v[i]);
            i += 1;
            continue;
        }
        if v.get(i + 1) == Some(&b'#') {
            let hex = matches!(v.get(i + 2), Some(b'x' | b'X'));
            let start = if hex { i + 3 } else { i + 2 };
            let mut j = start;
            let mut val: u32 = 0;
            while j < v.len() {
                let d = if hex {
                    hexval(v[j])
                } else {
                    v[j].is_ascii_digit().then(|| v[j] - b'0')
                };
                match d {
                    Some(d) => {
                        val = val
                            .saturating_mul(if hex { 16 } else { 10 })
                            .saturating_add(u32::from(d))
                    }
                    None => break,
                }
                j += 1;
            }
            if j > start {
                out.push((val & 0xff) as u8);
                i = if v.get(j) == Some(&b';') { j + 1 } else { j };
                continue;
            }
        } else {
            let rest = &v[i + 1..];
            let named: &[(&[u8], u8)] = &[
                (b"quot", b'"'),
                (b"amp", b'&'),
                (b"lt", b'<'),
                (b"gt", b'>'),
                (b"nbsp", 0xa0),
            ];
            if let Some((n, c)) = named
                .iter()
                .find(|(n, _)| rest.len() >= n.len() && rest[..n.len()].eq_ignore_ascii_case(n))
            {
                out.push(*c);
                i += 1 + n.len();
                if v.get(i) == Some(&b';') {
                    i += 1;
                }
                continue;
            }
        }
        out.push(b'&');
        i += 1;
    }
    Cow::Owned(out)
}
