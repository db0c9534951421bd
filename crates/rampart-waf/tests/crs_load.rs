//! The CRS CI configuration loads without error, and `check` agrees.
mod common;

#[test]
fn crs_v4_loads_unchanged() {
    let e = common::load_crs(None);
    assert!(e.rule_count() > 600, "only {} rules", e.rule_count());
    assert_eq!(e.mode(), rampart_waf::RuleEngineMode::DetectionOnly);
    assert!(rampart_waf::check(&common::crs_paths()).is_empty());
}

#[test]
fn check_reports_missing_files() {
    let errs = rampart_waf::check(&[std::path::PathBuf::from("/nonexistent/rules.conf")]);
    assert_eq!(errs.len(), 1);
}
