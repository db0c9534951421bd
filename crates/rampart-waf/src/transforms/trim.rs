//! `t:trim`, `t:trimLeft`, `t:trimRight` (ASCII whitespace).
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(v.trim_ascii())
}
pub(crate) fn left(v: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(v.trim_ascii_start())
}
pub(crate) fn right(v: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(v.trim_ascii_end())
}
