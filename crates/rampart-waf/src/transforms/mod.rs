//! Transformations (`t:name`): bytes in, `Cow<[u8]>` out; they cannot fail.
//!
//! One file per transformation; this table is the registry (sorted, case-insensitive lookup).
//! `t:none` is not an entry: it clears the list compiled so far (and the default action's).

use std::borrow::Cow;

mod base64_decode;
mod base64_encode;
mod cmd_line;
mod compress_whitespace;
mod css_decode;
mod escape_seq_decode;
mod hex_decode;
mod hex_encode;
mod html_entity_decode;
mod js_decode;
mod length;
mod lowercase;
mod md5;
mod normalize_path;
mod normalize_path_win;
mod remove_comments;
mod remove_comments_char;
mod remove_nulls;
mod remove_whitespace;
mod replace_comments;
mod replace_nulls;
mod sha1;
mod sql_hex_decode;
mod trim;
mod uppercase;
pub(crate) mod url_decode;
mod url_decode_uni;
mod url_encode;
mod utf8_to_unicode;

/// A transformation function.
pub(crate) type Transform = fn(&[u8]) -> Cow<'_, [u8]>;

/// The registry: name → function, sorted by lowercase name.
pub(crate) const TRANSFORMS: &[(&str, Transform)] = &[
    ("base64Decode", base64_decode::apply),
    ("base64DecodeExt", base64_decode::apply_ext),
    ("base64Encode", base64_encode::apply),
    ("cmdLine", cmd_line::apply),
    ("compressWhitespace", compress_whitespace::apply),
    ("cssDecode", css_decode::apply),
    ("escapeSeqDecode", escape_seq_decode::apply),
    ("hexDecode", hex_decode::apply),
    ("hexEncode", hex_encode::apply),
    ("htmlEntityDecode", html_entity_decode::apply),
    ("jsDecode", js_decode::apply),
    ("length", length::apply),
    ("lowercase", lowercase::apply),
    ("md5", md5::apply),
    ("normalisePath", normalize_path::apply),
    ("normalisePathWin", normalize_path_win::apply),
    ("normalizePath", normalize_path::apply),
    ("normalizePathWin", normalize_path_win::apply),
    ("removeComments", remove_comments::apply),
    ("removeCommentsChar", remove_comments_char::apply),
    ("removeNulls", remove_nulls::apply),
    ("removeWhitespace", remove_whitespace::apply),
    ("replaceComments", replace_comments::apply),
    ("replaceNulls", replace_nulls::apply),
    ("sha1", sha1::apply),
    ("sqlHexDecode", sql_hex_decode::apply),
    ("trim", trim::apply),
    ("trimLeft", trim::left),
    ("trimRight", trim::right),
    ("uppercase", uppercase::apply),
    ("urlDecode", url_decode::apply),
    ("urlDecodeUni", url_decode_uni::apply),
    ("urlEncode", url_encode::apply),
    ("utf8toUnicode", utf8_to_unicode::apply),
];

/// Looks a transformation up by name (case-insensitive); its index is its cache identity.
pub(crate) fn lookup(name: &str) -> Option<(usize, Transform)> {
    TRANSFORMS
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|i| (i, TRANSFORMS[i].1))
}

pub(crate) fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (transformation, input, expected output)
    const VECTORS: &[(&str, &[u8], &[u8])] = &[
        ("base64Decode", b"VGVzdA==", b"Test"),
        ("base64Decode", b"VGVzdA$$", b"Test"),
        ("base64DecodeExt", b"VG.VzdA", b"Test"),
        ("base64Encode", b"Test", b"VGVzdA=="),
        ("cmdLine", b"C:\\WIN\"DOWS ,; x /c (Y)", b"c:windows x/c(y)"),
        ("compressWhitespace", b"a \t\r\n b", b"a b"),
        ("cssDecode", b"\\6a\\61 vascript\\:", b"javascript:"),
        ("cssDecode", b"\\ff3c", b"\\"),
        ("escapeSeqDecode", b"a\\n\\x41\\101\\q", b"a\nAA\\q"),
        ("hexDecode", b"414243", b"ABC"),
        ("hexEncode", b"AB\xff", b"4142ff"),
        (
            "htmlEntityDecode",
            b"&lt;&#x41;&#66&quot;&amp;x&bogus;",
            b"<AB\"&x&bogus;",
        ),
        ("jsDecode", b"\\x41\\u0042\\uff0e\\n\\101", b"AB.\nA"),
        ("length", b"hello", b"5"),
        ("lowercase", b"HeLLo", b"hello"),
        (
            "md5",
            b"abc",
            b"\x90\x01\x50\x98\x3c\xd2\x4f\xb0\xd6\x96\x3f\x7d\x28\xe1\x7f\x72",
        ),
        (
            "md5",
            b"",
            b"\xd4\x1d\x8c\xd9\x8f\x00\xb2\x04\xe9\x80\x09\x98\xec\xf8\x42\x7e",
        ),
        ("normalisePath", b"/a/./b/../c//d", b"/a/c/d"),
        ("normalisePathWin", b"\\a\\..\\b", b"/b"),
        ("normalizePath", b"/../../etc/passwd", b"/etc/passwd"),
        ("normalizePath", b"a/b/", b"a/b/"),
        ("normalizePathWin", b"c:\\x\\.\\y", b"c:/x/y"),
        ("removeComments", b"a/*x*/b--c", b"ab"),
        ("removeCommentsChar", b"a/*b*/c--d#e", b"abcde"),
        ("removeNulls", b"a\0b", b"ab"),
        ("removeWhitespace", b" a b\t\xa0c", b"abc"),
        ("replaceComments", b"a/*x*/b/*c", b"a b "),
        ("replaceNulls", b"a\0b", b"a b"),
        (
            "sha1",
            b"abc",
            b"\xa9\x99\x3e\x36\x47\x06\x81\x6a\xba\x3e\x25\x71\x78\x50\xc2\x6c\x9c\xd0\xd8\x9d",
        ),
        ("sqlHexDecode", b"0x414243 x", b"ABC x"),
        ("trim", b"  a b  ", b"a b"),
        ("trimLeft", b"  a ", b"a "),
        ("trimRight", b"  a ", b"  a"),
        ("uppercase", b"abC", b"ABC"),
        ("urlDecode", b"a%20b+c%zz%4", b"a b c%zz%4"),
        ("urlDecodeUni", b"%u0041%uff0e%41+", b"A.A "),
        ("urlEncode", b"a b&", b"a+b%26"),
        ("utf8toUnicode", "é a".as_bytes(), b"%u00e9 a"),
    ];

    #[test]
    fn registry_sorted_and_every_entry_has_vectors() {
        for w in TRANSFORMS.windows(2) {
            assert!(
                w[0].0.to_lowercase() < w[1].0.to_lowercase(),
                "{} not sorted",
                w[1].0
            );
        }
        for (name, _) in TRANSFORMS {
            assert!(
                VECTORS.iter().any(|(n, _, _)| n == name),
                "no vectors for {name}"
            );
        }
    }

    #[test]
    fn vectors() {
        for (name, input, want) in VECTORS {
            let (_, f) = lookup(name).unwrap();
            assert_eq!(
                &*f(input),
                *want,
                "{name} {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panic(v in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            for (_, f) in TRANSFORMS {
                let _ = f(&v);
            }
        }
    }

    #[test]
    fn lookup_is_case_insensitive() {
        assert!(lookup("URLDECODEUNI").is_some());
        assert!(lookup("nope").is_none());
    }
}
