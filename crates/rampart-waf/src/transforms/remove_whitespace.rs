//! `t:removeWhitespace` (also removes NBSP 0xa0).
use super::is_space;
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if v.iter().any(|&c| is_space(c)) {
        Cow::Owned(v.iter().copied().filter(|&c| !is_space(c)).collect())
    } else {
        Cow::Borrowed(v)
    }
}
