//! `t:removeComments`: drops `/* … */`, `<!-- … -->`, and `--` / `#` to the end of the input.
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let rest = &v[i..];
        if rest.starts_with(b"/*") {
            i = rest[2..]
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(v.len(), |p| i + 2 + p + 2);
        } else if rest.starts_with(b"<!--") {
            i = rest[4..]
                .windows(3)
                .position(|w| w == b"-->")
                .map_or(v.len(), |p| i + 4 + p + 3);
        } else if rest.starts_with(b"--") || rest[0] == b'#' {
            break;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}
