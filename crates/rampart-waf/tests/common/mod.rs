//! Shared helpers of the integration tests: where the shared CRS data lives, loading it.
#![allow(dead_code)]

use std::path::PathBuf;

use rampart_waf::{EngineOptions, RuleEngineMode, WafEngine};

/// `shared/` of the project: `$RAMPART_SHARED_DIR`, else `../../../shared` from this crate.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("RAMPART_SHARED_DIR") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// The CRS CI configuration: engine.conf, crs-setup-test.conf, rules/*.conf.
pub fn crs_paths() -> Vec<PathBuf> {
    let s = shared_dir();
    vec![
        s.join("tools/ftw/crs-test/engine.conf"),
        s.join("tools/ftw/crs-test/crs-setup-test.conf"),
        s.join("crs/rules/*.conf"),
    ]
}

pub fn load_crs(mode: Option<RuleEngineMode>) -> WafEngine {
    load_crs_with(EngineOptions {
        mode_override: mode,
        ..Default::default()
    })
}

pub fn load_crs_with(opts: EngineOptions) -> WafEngine {
    match WafEngine::from_files(&crs_paths(), &opts) {
        Ok(e) => e,
        Err(errs) => {
            for e in &errs {
                eprintln!("{e}");
            }
            panic!("{} load errors", errs.len());
        }
    }
}
