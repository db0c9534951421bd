#![no_main]
//! Every transformation of the registry (`rampart_waf::fuzzing::transformations`, enumerated
//! from the registry, so new entries are covered) on arbitrary bytes, alone or in a chain of
//! two or three: the first byte gives the chain length, the next ones pick the entries.
use std::sync::OnceLock;

use rampart_waf::fuzzing::{Transform, transformation_index, transformations};

fn registry() -> &'static [(&'static str, Transform)] {
    static R: OnceLock<Vec<(&'static str, Transform)>> = OnceLock::new();
    R.get_or_init(|| {
        let r: Vec<_> = transformations().collect();
        assert!(
            !r.is_empty() && r.len() <= 256,
            "one input byte picks an entry"
        );
        for (i, (name, _)) in r.iter().enumerate() {
            // rules name them case-insensitively
            assert_eq!(
                transformation_index(&name.to_ascii_uppercase()),
                Some(i),
                "{name}"
            );
        }
        r
    })
}

fn find(name: &str) -> Transform {
    registry()[transformation_index(name).expect("registered")].1
}

/// Decoders and filters: their output is never longer than their input.
const SHRINKING: &[&str] = &[
    "base64Decode",
    "base64DecodeExt",
    "cmdLine",
    "compressWhitespace",
    "cssDecode",
    "escapeSeqDecode",
    "hexDecode",
    "htmlEntityDecode",
    "jsDecode",
    "removeComments",
    "removeCommentsChar",
    "removeNulls",
    "removeWhitespace",
    "replaceComments",
    "sqlHexDecode",
    "trim",
    "trimLeft",
    "trimRight",
    "urlDecode",
    "urlDecodeUni",
];

fn check(name: &str, input: &[u8], out: &[u8]) {
    match name {
        "length" => assert_eq!(out, input.len().to_string().as_bytes()),
        "md5" => assert_eq!(out.len(), 16),
        "sha1" => assert_eq!(out.len(), 20),
        "lowercase" | "uppercase" | "replaceNulls" => assert_eq!(out.len(), input.len()),
        "hexEncode" => {
            assert_eq!(out.len(), 2 * input.len());
            assert_eq!(&*find("hexDecode")(out), input);
        }
        "base64Encode" => {
            assert_eq!(out.len(), input.len().div_ceil(3) * 4);
            assert_eq!(&*find("base64Decode")(out), input);
        }
        "urlEncode" => assert_eq!(&*find("urlDecode")(out), input),
        n if SHRINKING.contains(&n) => assert!(out.len() <= input.len(), "{n} lengthened"),
        _ => {}
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let reg = registry();
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let chain = 1 + usize::from(selector % 3);
    if rest.len() < chain {
        return;
    }
    let (picks, input) = rest.split_at(chain);
    let mut value = input.to_vec();
    for &pick in picks {
        let (name, f) = reg[usize::from(pick) % reg.len()];
        let out = f(&value).into_owned();
        check(name, &value, &out);
        value = out;
    }
});
