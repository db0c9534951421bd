//! `t:uppercase`
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if v.iter().any(u8::is_ascii_lowercase) {
        Cow::Owned(v.to_ascii_uppercase())
    } else {
        Cow::Borrowed(v)
    }
}
