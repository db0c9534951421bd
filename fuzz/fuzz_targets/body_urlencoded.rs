#![no_main]
//! The URLENCODED body processor (`rampart_waf::fuzzing::urlencoded`, also used for the query
//! string) and the `Cookie` header parser on arbitrary bytes; the first byte picks the
//! argument separator (`&` or `;`).
use rampart_waf::fuzzing::{cookies, urlencoded};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let sep = if selector < 128 { b'&' } else { b';' };
    let (pairs, invalid) = urlencoded(body, sep);
    let pieces: Vec<&[u8]> = body
        .split(|&c| c == sep)
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(pairs.len(), pieces.len());
    // URL decoding never lengthens, and `=` and the separators are dropped
    let total: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(total <= body.len());
    if !body.contains(&b'%') {
        assert!(!invalid, "URLENCODED_ERROR without a %");
    }
    if !body.iter().any(|&c| c == b'%' || c == b'+') {
        for ((k, v), piece) in pairs.iter().zip(&pieces) {
            let (rk, rv) = match piece.iter().position(|&c| c == b'=') {
                Some(i) => (&piece[..i], &piece[i + 1..]),
                None => (*piece, &b""[..]),
            };
            assert_eq!((k.as_slice(), v.as_slice()), (rk, rv));
        }
    }

    let jar = cookies(body);
    assert!(jar.len() <= body.split(|&c| c == b';').count());
    let total: usize = jar.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(total <= body.len());
});
