//! `t:length`: the byte length, in decimal.
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(v.len().to_string().into_bytes())
}
