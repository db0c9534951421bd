//! `t:base64Encode`
use base64::Engine;
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(
        base64::engine::general_purpose::STANDARD
            .encode(v)
            .into_bytes(),
    )
}
