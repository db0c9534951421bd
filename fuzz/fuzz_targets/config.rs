#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = rampart_config::load_str(text, std::path::Path::new("/fuzz/rampart.toml"));
});
