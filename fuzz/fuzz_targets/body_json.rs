#![no_main]
//! The JSON body processor (`rampart_waf::fuzzing::json`) on arbitrary bytes; the first byte
//! picks the nesting limit (`SecRequestBodyJsonDepthLimit`: 0 to 7, or the default 512).
use rampart_waf::fuzzing::json;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let depth = if selector < 64 {
        usize::from(selector % 8)
    } else {
        512
    };
    match json(body, depth) {
        Ok(args) => {
            // one argument per scalar, and every scalar takes at least one byte
            assert!(args.len() <= body.len());
            assert!(args.iter().all(|(name, _)| name.starts_with(b"json")));
            // a higher limit accepts the same document with the same arguments
            if depth < 512 {
                assert_eq!(json(body, 512).as_ref(), Ok(&args));
            }
        }
        Err(msg) => assert!(msg.starts_with("JSON parsing error"), "{msg}"),
    }
});
