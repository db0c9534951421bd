#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = rampart_waf::WafEngine::from_str(text, "fuzz.conf", &rampart_waf::EngineOptions::default());
    // Route exclusions (`route.waf.exclusions`) are ctl actions in the same syntax.
    let _ = rampart_waf::Exclusions::parse(&text.lines().collect::<Vec<_>>());
});
