//! `t:base64Decode` (stops at the first byte outside the alphabet) and `t:base64DecodeExt`
//! (skips such bytes).
use std::borrow::Cow;
fn val(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}
fn decode(v: &[u8], skip_invalid: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in v {
        let Some(d) = val(c) else {
            if skip_invalid && c != b'=' {
                continue;
            }
            break;
        };
        acc = (acc << 6) | u32::from(d);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
pub(crate) fn apply(v: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(decode(v, false))
}
pub(crate) fn apply_ext(v: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(decode(v, true))
}
