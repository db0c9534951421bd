//! `t:cmdLine`: drops `\ " ' ^`, spaces before `/` and `(`; `,;` and blanks become one space; lowercases.
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Vec<u8> = Vec::with_capacity(v.len());
    let mut space = false;
    for &c in v {
        match c {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b',' | b';' => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                space = false;
                out.push(c);
            }
            c => {
                space = false;
                out.push(c.to_ascii_lowercase());
            }
        }
    }
    Cow::Owned(out)
}
