#![no_main]
libfuzzer_sys::fuzz_target!(|data: (&str, &str)| {
    let (pattern, origin) = data;
    if let Ok(p) = rampart_config::parse_origin_pattern(pattern) {
        let _ = p.matches(origin);
    }
});
