#![no_main]
//! A request through a rule set that reads every body processor's output: the content type
//! picks URLENCODED, MULTIPART, JSON or XML; the bytes are the body, the URI and a header.
//! The rule set holds prefilter groups (anchored patterns and phrases across chains, with
//! `multiMatch` members, two of them sharing steps, chains that change case) and a preamble
//! (setup rules that read only TX, around body-processor rules, and later rules its state
//! settles, two of them alike, with rules past a settled jump left out of the groups): the
//! rules that match must be the same with and without the prefilter and the preamble.
use std::sync::OnceLock;

use rampart_waf::{ConnInfo, EngineOptions, RuleEngineMode, WafEngine};

const RULES: &str = r#"
SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "@rx json" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "@rx xml" "id:2,phase:1,pass,nolog,ctl:requestBodyProcessor=XML"
SecAction "id:20,phase:1,pass,nolog,setvar:tx.limit=3,setvar:tx.hits=0"
SecRule &TX:limit "@eq 0" "id:21,phase:1,deny,status:500,log"
SecRule TX:limit "@ge 3" "id:22,phase:1,pass,nolog,setvar:tx.hits=+1,setvar:tx.seen_%{tx.limit}=1"
SecRule REQUEST_URI "@rx ^/a" "id:23,phase:1,pass,log,setvar:tx.hits=+1"
SecRule TX:hits "@eq 2" "id:24,phase:2,pass,log"
SecRule ARGS|ARGS_NAMES|FILES|FILES_NAMES|XML:/*|REQUEST_COOKIES|REQBODY_ERROR|MULTIPART_STRICT_ERROR "@rx a" "id:3,phase:2,pass,log,t:none,t:urlDecodeUni,t:htmlEntityDecode,t:jsDecode,t:cssDecode,t:cmdLine,t:normalizePath,t:base64Decode,t:utf8toUnicode"
SecRule ARGS "@detectSQLi" "id:4,phase:2,pass,log"
SecRule ARGS "@detectXSS" "id:5,phase:2,pass,log"
SecRule ARGS|REQUEST_COOKIES|REQUEST_HEADERS "@rx ^a[^b]*b$" "id:6,phase:2,pass,log,t:none,t:urlDecodeUni"
SecRule ARGS|REQUEST_COOKIES|REQUEST_HEADERS "@rx \bc\d" "id:7,phase:2,pass,log,t:none,t:lowercase"
SecRule ARGS|REQUEST_COOKIES|REQUEST_HEADERS "@rx (?i)^e$|f\n" "id:8,phase:2,pass,log,t:none,t:htmlEntityDecode,t:compressWhitespace"
SecRule ARGS "@rx \Ag" "id:9,phase:2,pass,log,t:none"
SecRule ARGS "@rx h$" "id:12,phase:2,pass,log,t:none,t:lowercase"
SecRule ARGS|REQUEST_COOKIES|REQUEST_HEADERS "@pm ab cd" "id:10,phase:2,pass,log,t:none,t:urlDecodeUni"
SecRule ARGS|REQUEST_COOKIES|REQUEST_HEADERS "@pm ef" "id:11,phase:2,pass,log,t:none,t:lowercase"
SecRule ARGS|REQUEST_COOKIES|REQUEST_HEADERS "@rx \.\./|^x%2e|Q$" "id:13,phase:2,pass,log,t:none,t:urlDecodeUni,t:lowercase,multiMatch"
SecRule ARGS|REQUEST_COOKIES|REQUEST_HEADERS "@rx %2f|\.\./|Z$" "id:16,phase:2,pass,log,t:none,t:urlDecodeUni,t:removeWhitespace,multiMatch"
SecRule ARGS|REQUEST_HEADERS "@pm %41b XY" "id:14,phase:2,pass,log,t:none,t:urlDecodeUni,t:removeWhitespace,multiMatch"
SecRule ARGS|REQUEST_HEADERS "@pm ij" "id:15,phase:2,pass,log,t:none,t:removeWhitespace"
SecRule TX:limit "@lt 2" "id:25,phase:2,pass,nolog,skipAfter:END-25"
SecRule ARGS "@rx z" "id:26,phase:2,pass,log,t:none"
SecMarker END-25
SecRule TX:limit "@ge 3" "id:27,phase:2,pass,nolog,skipAfter:END-27"
SecRule ARGS "@rx y" "id:28,phase:2,pass,log,t:none"
SecMarker END-27
SecRule MATCHED_VAR_NAME "@streq TX:limit" "id:29,phase:2,pass,log"
SecRule TX:limit "@ge 2" "id:30,phase:2,pass,nolog"
SecRule MATCHED_VAR_NAME "@streq TX:limit" "id:31,phase:2,pass,log"
"#;

/// The engine with the prefilter and the preamble (`[0]`) and without either (`[1]`).
fn engines() -> &'static [WafEngine; 2] {
    static E: OnceLock<[WafEngine; 2]> = OnceLock::new();
    E.get_or_init(|| {
        [false, true].map(|without| {
            // Redaction prefixes as the gateway sets them: the check runs on every logged match.
            let opts = EngineOptions {
                mode_override: Some(RuleEngineMode::DetectionOnly),
                redact: vec!["ARGS:password".into(), "REQUEST_COOKIES".into(), "ARGS_NAMES:passwordx".into()],
                without_prefilter: without,
                without_preamble: without,
                ..EngineOptions::default()
            };
            WafEngine::from_str(RULES, "fuzz", &opts).expect("the fuzz rules compile")
        })
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let content_type: &[u8] = match selector % 4 {
        0 => b"application/x-www-form-urlencoded",
        1 => b"multipart/form-data; boundary=XyZ",
        2 => b"application/json",
        _ => b"text/xml",
    };
    let split = rest.len() / 4;
    let (head, body) = rest.split_at(split);
    let uri = String::from_utf8_lossy(head);
    let headers: Vec<(&[u8], &[u8])> = vec![(b"host", b"fuzz"), (b"content-type", content_type), (b"cookie", head)];
    let matched = engines().each_ref().map(|e| {
        let mut tx = e.transaction(ConnInfo {
            client_ip: "192.0.2.1".into(),
            client_port: 1,
            server_ip: "127.0.0.1".into(),
            server_port: 80,
            request_id: "fuzz".into(),
        });
        let _ = tx.process_request_headers("POST", &format!("/{uri}"), "HTTP/1.1", &headers);
        let _ = tx.append_request_body(body);
        let _ = tx.process_request_body();
        tx.process_logging();
        let _ = tx.audit_record();
        tx.matched_rules().iter().map(|m| m.id).collect::<Vec<u32>>()
    });
    assert_eq!(matched[0], matched[1], "the prefilter or the preamble changed which rules match");
});
