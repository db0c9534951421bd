//! Random input never panics: rule text into the loader, requests into CRS transactions.
mod common;

use std::sync::OnceLock;

use proptest::prelude::*;
use rampart_waf::{ConnInfo, EngineOptions, RuleEngineMode, WafEngine};

fn crs() -> &'static WafEngine {
    static E: OnceLock<WafEngine> = OnceLock::new();
    E.get_or_init(|| common::load_crs(Some(RuleEngineMode::On)))
}

fn rule_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(SecRule|SecAction|SecMarker|Include|SecRuleEngine|SecDefaultAction|SecRuleUpdateTargetById|\\\\\n| |\"|'|ARGS|&TX:x|!ARGS:/a/|@rx|@pm|@eq|id:1|,|phase:2|chain|t:none|setvar:tx.a=+1|ctl:ruleRemoveById=1-2|%\\{tx.a\\}|\n)*",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn loader_never_panics(text in rule_text()) {
        let _ = WafEngine::from_str(&text, "fuzz.conf", &EngineOptions::default());
    }

    #[test]
    fn transactions_never_panic(
        method in "[A-Z]{0,8}",
        uri in prop_oneof![
            "(/|\\?|&|=|%|%u|\\.\\./|[a-z]|\\x00|'|<|>|#|;|http://|\\\\)*",
            any::<String>(),
        ],
        proto in prop_oneof![Just("HTTP/1.1".to_string()), any::<String>()],
        rhdrs in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..16), proptest::collection::vec(any::<u8>(), 0..64)), 0..4),
        hdrs in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..16), proptest::collection::vec(any::<u8>(), 0..64)), 0..6),
        ct in prop_oneof![Just("application/x-www-form-urlencoded"), Just("multipart/form-data; boundary=XX"), Just("application/json"), Just("text/xml"), Just("text/plain")],
        body in proptest::collection::vec(any::<u8>(), 0..1024),
        status in 100u16..600,
    ) {
        let e = crs();
        let mut tx = e.transaction(ConnInfo::default());
        let mut h: Vec<(&[u8], &[u8])> = hdrs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        h.push((b"Content-Type", ct.as_bytes()));
        h.push((b"Host", b"localhost"));
        let _ = tx.process_request_headers(&method, &uri, &proto, &h);
        if tx.wants_request_body() {
            let _ = tx.append_request_body(&body);
        }
        let _ = tx.process_request_body();
        let mut rh: Vec<(&[u8], &[u8])> = rhdrs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        rh.push((b"Content-Type", b"text/html"));
        let _ = tx.process_response_headers(status, &proto, &rh);
        if tx.wants_response_body() {
            let _ = tx.append_response_body(&body);
        }
        let _ = tx.process_response_body();
        tx.process_logging();
        let _ = tx.audit_record().to_string();
    }
}

#[test]
fn crs_blocks_sqli_in_on_mode() {
    let e = WafEngine::from_files(
        &common::crs_paths(),
        &EngineOptions {
            mode_override: Some(RuleEngineMode::On),
            paranoia_level: Some(1),
            ..Default::default()
        },
    )
    .expect("crs loads");
    let mut tx = e.transaction(ConnInfo {
        request_id: "r1".into(),
        ..Default::default()
    });
    let h: &[(&[u8], &[u8])] = &[
        (b"Host", b"localhost"),
        (b"User-Agent", b"Mozilla/5.0"),
        (b"Accept", b"*/*"),
    ];
    assert!(
        tx.process_request_headers("GET", "/?id=1%27%20or%20%271%27%3D%271", "HTTP/1.1", h)
            .is_none()
    );
    let iv = tx.process_request_body().expect("blocked in phase 2");
    assert_eq!((iv.status, iv.rule_id), (403, Some(949110)));
    assert!(tx.inbound_anomaly_score() >= 5);
    tx.process_logging();
    let rec = tx.audit_record();
    assert_eq!(rec["request_id"], "r1");
    assert_eq!(rec["status"], 403);

    let mut ok = e.transaction(ConnInfo::default());
    assert!(
        ok.process_request_headers("GET", "/index.html?q=hello", "HTTP/1.1", h)
            .is_none()
    );
    assert!(ok.process_request_body().is_none());
    assert!(
        ok.process_response_headers(200, "HTTP/1.1", &[(b"Content-Type", b"text/html")])
            .is_none()
    );
    ok.append_response_body(b"<html>hello</html>");
    assert!(ok.process_response_body().is_none());
    ok.process_logging();
    assert_eq!(ok.inbound_anomaly_score(), 0, "{:?}", ok.matched_rules());
}
