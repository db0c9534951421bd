#![no_main]
//! The MULTIPART body processor (`rampart_waf::fuzzing::multipart`) on arbitrary bytes, with
//! the `Content-Type` value (and so the boundary parameter) taken from the input too: the
//! first byte picks a prefix and the length of the rest of the header value, the second the
//! upload file limit.
use rampart_waf::fuzzing::multipart;

const PREFIXES: [&[u8]; 4] = [
    b"",
    b"multipart/form-data; boundary=",
    b"multipart/form-data; boundary=\"",
    b"multipart/form-data; charset=utf-8; boundary",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [selector, limit, rest @ ..] = data else {
        return;
    };
    let ct_len = usize::from(selector >> 2).min(rest.len());
    let (ct_tail, body) = rest.split_at(ct_len);
    let mut ct = PREFIXES[usize::from(selector & 3)].to_vec();
    ct.extend_from_slice(ct_tail);
    let file_limit = usize::from(limit % 4);

    let out = multipart(&ct, body, file_limit);
    // the transaction sets MULTIPART_STRICT_ERROR afterwards, never the parser
    assert!(!out.flags[0]);
    match &out.parsed {
        Ok(parts) => {
            let (args, files, part_headers) = (&parts.args, &parts.files, &parts.part_headers);
            assert!(!out.final_boundary_missing);
            assert_eq!(out.file_limit_exceeded, files.len() > file_limit);
            // part contents are disjoint slices of the body
            let data: usize = args.iter().map(|(_, v)| v.len()).sum::<usize>()
                + files.iter().map(|f| f.size).sum::<usize>();
            assert!(data <= body.len());
            for (name, _) in args {
                assert!(!name.is_empty() && name.len() <= body.len());
            }
            for f in files {
                assert!(!f.name.is_empty() && f.name.len() <= body.len());
                assert!(f.filename.len() <= body.len());
            }
            for (name, line) in part_headers {
                assert!(!name.is_empty() && name.len() <= body.len());
                assert!(line.len() <= body.len());
            }
        }
        Err(msg) => assert!(msg.starts_with("Multipart: "), "{msg}"),
    }
});
