#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = rampart_waf::WafEngine::from_str(text, "fuzz.conf", &rampart_waf::EngineOptions::default());
});
