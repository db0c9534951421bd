//! `t:replaceNulls`: NUL becomes a space.
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if v.contains(&0) {
        Cow::Owned(v.iter().map(|&c| if c == 0 { b' ' } else { c }).collect())
    } else {
        Cow::Borrowed(v)
    }
}
