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

/// The registry: name → function and the [`feature`]s without which it returns its input
/// unchanged (a chain skips it for values that have none of them; [`CHANGES`] for the ones
/// that change every value), sorted by lowercase name.
pub(crate) const TRANSFORMS: &[(&str, Transform, u32)] = &[
    ("base64Decode", base64_decode::apply, CHANGES),
    ("base64DecodeExt", base64_decode::apply_ext, CHANGES),
    ("base64Encode", base64_encode::apply, CHANGES),
    (
        "cmdLine",
        cmd_line::apply,
        feature::QUOTE
            | feature::BACKSLASH
            | feature::CARET
            | feature::SPACE
            | feature::SEPARATOR
            | feature::UPPER,
    ),
    (
        "compressWhitespace",
        compress_whitespace::apply,
        feature::SPACE,
    ),
    ("cssDecode", css_decode::apply, feature::BACKSLASH),
    (
        "escapeSeqDecode",
        escape_seq_decode::apply,
        feature::BACKSLASH,
    ),
    ("hexDecode", hex_decode::apply, CHANGES),
    ("hexEncode", hex_encode::apply, CHANGES),
    ("htmlEntityDecode", html_entity_decode::apply, feature::AMP),
    ("jsDecode", js_decode::apply, feature::BACKSLASH),
    ("length", length::apply, CHANGES),
    ("lowercase", lowercase::apply, feature::UPPER),
    ("md5", md5::apply, CHANGES),
    (
        "normalisePath",
        normalize_path::apply,
        feature::SLASH | feature::DOT,
    ),
    (
        "normalisePathWin",
        normalize_path_win::apply,
        feature::BACKSLASH | feature::SLASH | feature::DOT,
    ),
    (
        "normalizePath",
        normalize_path::apply,
        feature::SLASH | feature::DOT,
    ),
    (
        "normalizePathWin",
        normalize_path_win::apply,
        feature::BACKSLASH | feature::SLASH | feature::DOT,
    ),
    (
        "removeComments",
        remove_comments::apply,
        feature::SLASH | feature::LESS_THAN | feature::DASH | feature::HASH,
    ),
    (
        "removeCommentsChar",
        remove_comments_char::apply,
        feature::HASH | feature::STAR | feature::DASH,
    ),
    ("removeNulls", remove_nulls::apply, feature::NUL),
    ("removeWhitespace", remove_whitespace::apply, feature::SPACE),
    ("replaceComments", replace_comments::apply, feature::SLASH),
    ("replaceNulls", replace_nulls::apply, feature::NUL),
    ("sha1", sha1::apply, CHANGES),
    ("sqlHexDecode", sql_hex_decode::apply, CHANGES),
    ("trim", trim::apply, feature::SPACE),
    ("trimLeft", trim::left, feature::SPACE),
    ("trimRight", trim::right, feature::SPACE),
    ("uppercase", uppercase::apply, feature::LOWER),
    (
        "urlDecode",
        url_decode::apply,
        feature::PERCENT | feature::PLUS,
    ),
    (
        "urlDecodeUni",
        url_decode_uni::apply,
        feature::PERCENT | feature::PLUS,
    ),
    ("urlEncode", url_encode::apply, CHANGES),
    ("utf8toUnicode", utf8_to_unicode::apply, feature::HIGH),
];

/// What a value holds, as far as transformations care: one bit per class of bytes that some
/// transformation rewrites ([`features`]).
pub(crate) mod feature {
    pub const PERCENT: u32 = 1 << 0;
    pub const PLUS: u32 = 1 << 1;
    pub const AMP: u32 = 1 << 2;
    pub const BACKSLASH: u32 = 1 << 3;
    pub const UPPER: u32 = 1 << 4;
    pub const LOWER: u32 = 1 << 5;
    /// ASCII whitespace (vertical tab included) and NBSP (0xa0).
    pub const SPACE: u32 = 1 << 6;
    pub const NUL: u32 = 1 << 7;
    pub const SLASH: u32 = 1 << 8;
    pub const DOT: u32 = 1 << 9;
    pub const HASH: u32 = 1 << 10;
    pub const STAR: u32 = 1 << 11;
    pub const DASH: u32 = 1 << 12;
    /// `"` and `'`.
    pub const QUOTE: u32 = 1 << 13;
    pub const CARET: u32 = 1 << 14;
    /// `,` and `;`.
    pub const SEPARATOR: u32 = 1 << 15;
    /// Bytes 0x80 and above.
    pub const HIGH: u32 = 1 << 16;
    pub const LESS_THAN: u32 = 1 << 17;
}

const FEATURE_OF: [u32; 256] = {
    use feature::*;
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = match c {
            b'%' => PERCENT,
            b'+' => PLUS,
            b'&' => AMP,
            b'\\' => BACKSLASH,
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => SPACE,
            0 => NUL,
            b'/' => SLASH,
            b'.' => DOT,
            b'#' => HASH,
            b'*' => STAR,
            b'-' => DASH,
            b'"' | b'\'' => QUOTE,
            b'^' => CARET,
            b',' | b';' => SEPARATOR,
            b'<' => LESS_THAN,
            _ => 0,
        };
        if c >= 0x80 {
            t[i] = HIGH;
        }
        if c == 0xa0 {
            t[i] = HIGH | SPACE;
        }
        i += 1;
    }
    t
};

/// The [`feature`] bits of a value.
pub(crate) fn features(v: &[u8]) -> u32 {
    v.iter().fold(0, |acc, &c| acc | FEATURE_OF[usize::from(c)])
}

/// Marks a transformation that changes every value (`length`, the hashes and encodings).
pub(crate) const CHANGES: u32 = 0;

/// For transformation `index` of [`TRANSFORMS`]: the features without which it returns its
/// input unchanged, or [`CHANGES`].
#[inline]
pub(crate) fn identity_unless(index: usize) -> u32 {
    TRANSFORMS.get(index).map_or(CHANGES, |t| t.2)
}

/// Whether transformation `index` leaves the ASCII letters of its output in one case
/// (`lowercase`, `uppercase`, `cmdLine`): a value it changes no further comes out a case
/// variant of itself.
pub(crate) fn folds_case(index: usize) -> bool {
    changes_case_only(index) || matches!(TRANSFORMS.get(index), Some(("cmdLine", ..)))
}

/// Whether transformation `index` only changes the case of ASCII letters (`lowercase`,
/// `uppercase`).
pub(crate) fn changes_case_only(index: usize) -> bool {
    matches!(TRANSFORMS.get(index), Some(("lowercase" | "uppercase", ..)))
}

/// Whether transformation `index` would return a value with features `have` unchanged.
#[inline]
pub(crate) fn skips(index: usize, have: u32) -> bool {
    let unless = identity_unless(index);
    unless != CHANGES && have & unless == 0
}

/// Looks a transformation up by name (case-insensitive); its index is its cache identity.
pub(crate) fn lookup(name: &str) -> Option<(usize, Transform)> {
    TRANSFORMS
        .iter()
        .position(|(n, ..)| n.eq_ignore_ascii_case(name))
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
        for (name, ..) in TRANSFORMS {
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
            for (_, f, _) in TRANSFORMS {
                let _ = f(&v);
            }
        }
    }

    fn identity_holds(v: &[u8]) -> Result<(), proptest::test_runner::TestCaseError> {
        let have = features(v);
        for (i, (name, f, _)) in TRANSFORMS.iter().enumerate() {
            if skips(i, have) {
                proptest::prop_assert_eq!(&*f(v), v, "{} changed {:?}", name, v);
            }
        }
        Ok(())
    }

    proptest::proptest! {
        /// A transformation skipped for a value's features would have returned it unchanged.
        #[test]
        fn skipped_transformations_are_the_identity(
            v in proptest::collection::vec(proptest::sample::select(
                b" \t\x0b\n\r\0%+&\\/.#*-\"'^,;<>!xX0aAfF9u\xa0\xc3\xa9".to_vec()), 0..10)
        ) {
            identity_holds(&v)?;
        }

        #[test]
        fn skipped_transformations_are_the_identity_on_any_bytes(
            v in proptest::collection::vec(proptest::num::u8::ANY, 0..64)
        ) {
            identity_holds(&v)?;
        }
    }

    #[test]
    fn every_transformation_is_classified() {
        let always_change = [
            "base64Decode",
            "base64DecodeExt",
            "base64Encode",
            "hexDecode",
            "hexEncode",
            "length",
            "md5",
            "sha1",
            "sqlHexDecode",
            "urlEncode",
        ];
        for (i, (name, ..)) in TRANSFORMS.iter().enumerate() {
            assert_eq!(
                identity_unless(i) == CHANGES,
                always_change.contains(name),
                "{name}: classify it in identity_unless"
            );
        }
    }

    #[test]
    fn lookup_is_case_insensitive() {
        assert!(lookup("URLDECODEUNI").is_some());
        assert!(lookup("nope").is_none());
    }
}
