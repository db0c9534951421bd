//! `t:removeNulls`
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if v.contains(&0) {
        Cow::Owned(v.iter().copied().filter(|&c| c != 0).collect())
    } else {
        Cow::Borrowed(v)
    }
}
