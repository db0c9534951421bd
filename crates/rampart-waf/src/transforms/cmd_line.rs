//! `t:cmdLine`: drops `\ " ' ^`, spaces before `/` and `(`; `,;` and blanks become one space; lowercases.
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if unchanged(v) {
        Cow::Borrowed(v)
    } else {
        Cow::Owned(rewrite(v))
    }
}

fn rewrite(v: &[u8]) -> Vec<u8> {
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
    out
}

/// Whether the value comes out as it went in: nothing dropped, folded, lowercased or joined
/// (most values, so the common case allocates nothing).
fn unchanged(v: &[u8]) -> bool {
    let mut prev_space = false;
    for &c in v {
        match c {
            b'"' | b'\'' | b'\\' | b'^' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b',' | b';' => {
                return false;
            }
            b'A'..=b'Z' => return false,
            b' ' | b'/' | b'(' if prev_space => return false,
            _ => {}
        }
        prev_space = c == b' ';
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn unchanged_exactly_when_the_rewrite_is_the_identity(
            v in proptest::collection::vec(
                proptest::sample::select(b" \t\n,;\"'\\^/(aZ0\xa0".to_vec()), 0..12)
        ) {
            proptest::prop_assert_eq!(unchanged(&v), rewrite(&v) == v);
        }
    }
}
