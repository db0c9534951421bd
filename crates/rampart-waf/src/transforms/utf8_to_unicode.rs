//! `t:utf8toUnicode`: multi-byte UTF-8 sequences become `%uHHHH`.
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if v.is_ascii() {
        return Cow::Borrowed(v);
    }
    let mut out = Vec::with_capacity(v.len() * 2);
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        let (len, init) = match c {
            0xc2..=0xdf => (2, u32::from(c & 0x1f)),
            0xe0..=0xef => (3, u32::from(c & 0x0f)),
            0xf0..=0xf4 => (4, u32::from(c & 0x07)),
            _ => (1, 0),
        };
        if len > 1 && i + len <= v.len() && v[i + 1..i + len].iter().all(|&b| b & 0xc0 == 0x80) {
            let cp = v[i + 1..i + len]
                .iter()
                .fold(init, |a, &b| (a << 6) | u32::from(b & 0x3f));
            out.extend_from_slice(format!("%u{cp:04x}").as_bytes());
            i += len;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Cow::Owned(out)
}
