//! `t:normalizePathWin`: `\` becomes `/`, then `normalizePath`.
use std::borrow::Cow;
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.contains(&b'\\') {
        return super::normalize_path::apply(v);
    }
    let s: Vec<u8> = v
        .iter()
        .map(|&c| if c == b'\\' { b'/' } else { c })
        .collect();
    Cow::Owned(super::normalize_path::normalize(&s))
}
