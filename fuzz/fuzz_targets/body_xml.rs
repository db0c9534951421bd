#![no_main]
//! The XML body processor (`rampart_waf::fuzzing::xml`: well-formedness, the root element's
//! text for `XML:/*`, the attribute values for `XML://@*`) on arbitrary bytes.
use rampart_waf::fuzzing::xml;

libfuzzer_sys::fuzz_target!(|body: &[u8]| {
    match xml(body) {
        Ok((text, attrs)) => {
            // text and attribute values come from disjoint parts of the input, and entity
            // and character references never decode to more bytes than they take
            let total = text.len() + attrs.iter().map(Vec::len).sum::<usize>();
            assert!(total <= body.len());
            assert!(std::str::from_utf8(&text).is_ok());
        }
        Err(msg) => assert!(msg.starts_with("XML parsing error"), "{msg}"),
    }
});
