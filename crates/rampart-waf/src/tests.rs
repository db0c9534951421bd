//! Engine-level unit tests: small rule sets through whole transactions.
use crate::*;

fn engine(rules: &str) -> WafEngine {
    WafEngine::from_str(rules, "test.conf", &EngineOptions::default())
        .unwrap_or_else(|e| panic!("{e:?}"))
}

fn ids(tx: &Transaction<'_>) -> Vec<u32> {
    tx.matched_rules().iter().map(|m| m.id).collect()
}

/// A POST to `uri` with `content_type` and `body`, through phase 2.
fn post<'e>(e: &'e WafEngine, uri: &str, content_type: &[u8], body: &[u8]) -> Transaction<'e> {
    let mut tx = e.transaction(ConnInfo::default());
    tx.process_request_headers("POST", uri, "HTTP/1.1", &[(b"Content-Type", content_type)]);
    assert!(tx.wants_request_body());
    tx.append_request_body(body);
    tx.process_request_body();
    tx
}

#[test]
fn get_args_and_block_in_on_mode() {
    let e = engine(
        "SecRuleEngine On\nSecDefaultAction \"phase:2,log,deny,status:403\"\n\
         SecRule ARGS \"@rx attack\" \"id:10,phase:2,block,msg:'found %{MATCHED_VAR_NAME}'\"\n",
    );
    let mut tx = e.transaction(ConnInfo::default());
    assert!(
        tx.process_request_headers("GET", "/a?x=attack", "HTTP/1.1", &[])
            .is_none()
    );
    let iv = tx.process_request_body().expect("blocked");
    assert_eq!((iv.status, iv.rule_id), (403, Some(10)));
    assert_eq!(tx.matched_rules()[0].msg, "found ARGS:x");
}

#[test]
fn chain_capture_setvar_skipafter() {
    let e = engine(
        r#"SecRuleEngine DetectionOnly
SecAction "id:1,phase:1,pass,nolog,setvar:tx.score=0"
SecRule REQUEST_HEADERS:User-Agent "@rx ^(\w+)/" "id:2,phase:1,pass,capture,chain,msg:'ua %{tx.1}'"
    SecRule TX:1 "@streq curl" "setvar:tx.score=+5"
SecRule TX:score "@eq 5" "id:3,phase:1,pass,skipAfter:END"
SecRule REQUEST_URI "@unconditionalMatch" "id:4,phase:1,pass"
SecMarker END
SecRule TX:score "@ge 5" "id:5,phase:1,pass,nolog"
SecRule &TX:score "@eq 1" "id:6,phase:1,pass"
"#,
    );
    let mut tx = e.transaction(ConnInfo::default());
    tx.process_request_headers("GET", "/", "HTTP/1.1", &[(b"User-Agent", b"curl/8.0")]);
    assert_eq!(ids(&tx), vec![2, 3, 6]);
    assert_eq!(tx.matched_rules()[0].msg, "ua curl");
}

#[test]
fn capture_replaces_every_earlier_group() {
    // TX:2 comes from an earlier capture in one case, from setvar in the other: a capture
    // with fewer groups leaves neither behind
    let e = engine(
        r#"SecRuleEngine DetectionOnly
SecRule ARGS:a "@rx ^(\w)(\w)" "id:1,phase:1,pass,capture,nolog"
SecRule ARGS:s "@rx ." "id:2,phase:1,pass,nolog,setvar:tx.2=set"
SecRule &TX:2 "@eq 1" "id:3,phase:1,pass,log"
SecRule ARGS:b "@rx ^(\w)" "id:4,phase:1,pass,capture,nolog"
SecRule &TX:2 "@eq 0" "id:5,phase:1,pass,log"
SecRule TX:1 "@streq z" "id:6,phase:1,pass,log"
"#,
    );
    for uri in ["/?a=xy&b=z", "/?s=1&b=z"] {
        let mut tx = e.transaction(ConnInfo::default());
        tx.process_request_headers("GET", uri, "HTTP/1.1", &[]);
        assert_eq!(ids(&tx), vec![3, 5, 6], "{uri}");
    }
}

#[test]
fn ctl_remove_target_and_json_body() {
    let e = engine(
        r#"SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_URI "@beginsWith /skip" "id:2,phase:1,pass,nolog,ctl:ruleRemoveTargetById=10;ARGS:json.a"
SecRule ARGS "@contains evil" "id:10,phase:2,pass"
SecRule REQBODY_PROCESSOR "@streq JSON" "id:11,phase:2,pass"
"#,
    );
    for (uri, want) in [("/x", vec![10, 11]), ("/skip", vec![11])] {
        let tx = post(&e, uri, b"application/json", br#"{"a":"evil"}"#);
        assert_eq!(ids(&tx), want, "{uri}");
    }
}

#[test]
fn load_errors_name_file_line_and_id() {
    let e = WafEngine::from_str(
        "SecRuleEngine On\n\nSecRule ARGS \"@bogus x\" \"id:77,phase:2\"\nSecFoo bar\n",
        "t.conf",
        &EngineOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.len(), 2);
    assert_eq!(
        (e[0].file.as_str(), e[0].line, e[0].rule_id),
        ("t.conf", 3, Some(77))
    );
    assert_eq!(e[1].line, 4);
}

#[test]
fn body_limit_reject_and_paranoia_pin() {
    let e = WafEngine::from_str(
        "SecRuleEngine On\nSecRequestBodyAccess On\nSecRequestBodyLimit 4\nSecRequestBodyLimitAction Reject\n\
         SecAction \"id:1,phase:1,pass,nolog,setvar:tx.blocking_paranoia_level=1\"\n",
        "t",
        &EngineOptions { paranoia_level: Some(3), ..Default::default() },
    )
    .unwrap();
    let mut tx = e.transaction(ConnInfo::default());
    tx.process_request_headers("POST", "/", "HTTP/1.1", &[]);
    assert_eq!(tx.tx_var("blocking_paranoia_level"), Some(&b"3"[..]));
    assert_eq!(
        tx.append_request_body(b"12345").map(|i| i.status),
        Some(413)
    );
}

#[test]
fn engine_is_shareable_and_transactions_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<WafEngine>();
    send::<Transaction<'static>>();
}

#[test]
fn response_phases_and_audit_record() {
    let e = engine(
        r#"SecRuleEngine On
SecResponseBodyAccess On
SecResponseBodyMimeType text/html
SecRule RESPONSE_STATUS "@streq 500" "id:30,phase:3,pass,msg:'server error'"
SecRule RESPONSE_BODY "@contains secret" "id:31,phase:4,deny,status:502,msg:'leak',logdata:'%{MATCHED_VAR_NAME}'"
"#,
    );
    let mut tx = e.transaction(ConnInfo {
        request_id: "abc".into(),
        ..Default::default()
    });
    tx.process_request_headers("GET", "/", "HTTP/1.1", &[(b"X-CRS-Test", b"marker")]);
    tx.process_request_body();
    assert!(
        tx.process_response_headers(
            500,
            "HTTP/1.1",
            &[(b"Content-Type", b"text/html; charset=utf-8")]
        )
        .is_none()
    );
    assert!(tx.wants_response_body());
    tx.append_response_body(b"the secret is out");
    let iv = tx.process_response_body().expect("blocked");
    assert_eq!(
        (iv.status, iv.rule_id, iv.disruptive.clone()),
        (502, Some(31), Disruptive::Deny)
    );
    tx.process_logging();
    let rec = tx.audit_record();
    assert_eq!(rec["request_id"], "abc");
    assert_eq!(rec["x_crs_test"], "marker");
    assert_eq!(rec["matched_rules"], serde_json::json!([30, 31]));
    assert_eq!(rec["matches"][1]["data"], "RESPONSE_BODY");
    assert!(rec["logs"][1].as_str().unwrap().contains("[id \"31\"]"));
}

#[test]
fn multipart_files_and_strict_flags() {
    let e = engine(
        r#"SecRequestBodyAccess On
SecRule FILES "@endsWith .php" "id:40,phase:2,pass"
SecRule FILES_NAMES "@streq upload" "id:41,phase:2,pass"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:42,phase:2,pass"
SecRule ARGS:note "@streq hi" "id:43,phase:2,pass"
SecRule MULTIPART_PART_HEADERS "@rx ^content-type" "id:44,phase:2,pass,t:lowercase"
"#,
    );
    let body = b"--B\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--B\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"x.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--B--\r\n";
    let tx = post(&e, "/", b"multipart/form-data; boundary=B", body);
    assert_eq!(ids(&tx), vec![40, 41, 43, 44]);
}

#[test]
fn redact_hides_matched_data() {
    let e = WafEngine::from_str(
        "SecRule REQUEST_HEADERS:Authorization \"@contains Bearer\" \"id:50,phase:1,pass,logdata:'%{MATCHED_VAR}'\"\n",
        "t",
        &EngineOptions { redact: vec!["REQUEST_HEADERS:Authorization".into()], ..Default::default() },
    )
    .unwrap();
    let mut tx = e.transaction(ConnInfo::default());
    tx.process_request_headers(
        "GET",
        "/",
        "HTTP/1.1",
        &[(b"Authorization", b"Bearer s3cret")],
    );
    let m = &tx.matched_rules()[0];
    assert_eq!(
        (m.data.as_str(), m.logdata.as_str()),
        ("[redacted]", "[redacted]")
    );
}

#[test]
fn xml_bodies_are_inspected_as_xml_not_as_raw_request_body() {
    let rules = |force: &str| {
        engine(&format!(
            r#"SecRuleEngine DetectionOnly
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "@rx xml" "id:70,phase:1,pass,nolog,ctl:requestBodyProcessor=XML{force}"
SecRule REQUEST_HEADERS:Content-Type "@rx json" "id:71,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_BODY "@contains Magic" "id:72,phase:2,pass"
SecRule XML:/* "@contains Magic" "id:73,phase:2,pass"
"#
        ))
    };
    let run = |e: &WafEngine, ct: &[u8], body: &[u8]| ids(&post(e, "/", ct, body));
    let plain = rules("");
    // A keyword in an element name is not a value: neither rule sees it.
    assert_eq!(
        run(&plain, b"application/xml", b"<a><Magic x='1'>v</Magic></a>"),
        Vec::<u32>::new()
    );
    // In a text node, XML:/* does; REQUEST_BODY stays empty for XML.
    assert_eq!(
        run(&plain, b"application/xml", b"<a><b>Magic</b></a>"),
        vec![73]
    );
    // Other bodies keep REQUEST_BODY.
    assert_eq!(
        run(&plain, b"application/json", br#"{"Magic":1}"#),
        vec![72]
    );
    // ctl:forceRequestBodyVariable=On brings it back for XML.
    let forced = rules(",ctl:forceRequestBodyVariable=On");
    assert_eq!(
        run(&forced, b"application/xml", b"<a><Magic/></a>"),
        vec![72]
    );
}

#[test]
fn redaction_survives_variable_names_that_are_not_utf8() {
    // Percent-decoded argument names may hold any bytes; the redaction check once sliced
    // their lossy text at a byte index and panicked inside a multi-byte replacement char.
    let e = WafEngine::from_str(
        "SecRule ARGS_NAMES \"@rx script\" \"id:51,phase:2,pass,logdata:'%{MATCHED_VAR}'\"\n",
        "t",
        &EngineOptions {
            redact: vec!["ARGS_NAMES:passwordx".into(), "ARGS:password".into()],
            ..Default::default()
        },
    )
    .unwrap();
    let mut tx = e.transaction(ConnInfo::default());
    tx.process_request_headers(
        "GET",
        "/get?%9cscript+%bcalert(1);%bc/script%9e=value",
        "HTTP/1.1",
        &[(b"Host", b"localhost")],
    );
    tx.process_request_body();
    assert_eq!(ids(&tx), vec![51]);
}

#[test]
fn allow_skip_and_redirect() {
    let e = engine(
        r#"SecRuleEngine On
SecRule REQUEST_URI "@beginsWith /health" "id:60,phase:1,allow,nolog"
SecRule REQUEST_URI "@beginsWith /skip" "id:61,phase:1,pass,skip:1"
SecRule REQUEST_URI "@unconditionalMatch" "id:62,phase:1,pass"
SecRule REQUEST_URI "@unconditionalMatch" "id:63,phase:1,pass"
SecRule ARGS:go "@streq away" "id:64,phase:2,redirect:https://example.com/%{ARGS.go}"
SecRule REQUEST_URI "@unconditionalMatch" "id:65,phase:2,deny,status:418"
"#,
    );
    let mut tx = e.transaction(ConnInfo::default());
    assert!(
        tx.process_request_headers("GET", "/health", "HTTP/1.1", &[])
            .is_none()
    );
    assert!(
        tx.process_request_body().is_none(),
        "allow skips the request phases"
    );
    assert!(ids(&tx).is_empty());

    let mut tx = e.transaction(ConnInfo::default());
    tx.process_request_headers("GET", "/skip", "HTTP/1.1", &[]);
    assert_eq!(ids(&tx), vec![61, 63]);

    let mut tx = e.transaction(ConnInfo::default());
    tx.process_request_headers("GET", "/x?go=away", "HTTP/1.1", &[]);
    let iv = tx.process_request_body().expect("redirected");
    assert_eq!(
        (iv.status, iv.disruptive),
        (302, Disruptive::Redirect("https://example.com/away".into()))
    );

    let mut tx = e.transaction(ConnInfo::default());
    tx.process_request_headers("GET", "/x", "HTTP/1.1", &[]);
    assert_eq!(tx.process_request_body().map(|i| i.status), Some(418));
    tx.process_logging();
    assert_eq!(tx.intervention().map(|i| i.rule_id), Some(Some(65)));
}

#[test]
fn include_with_glob_relative_to_including_file() {
    let dir = std::env::temp_dir().join(format!("rampart-waf-inc-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("main.conf"), "Include rules/*.conf\n").unwrap();
    std::fs::write(
        dir.join("rules/a.conf"),
        "SecAction \"id:1,phase:1,pass\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("rules/b.conf"),
        "SecRule ARGS \"@pmFromFile words.data\" \"id:2,phase:2,pass\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("rules/words.data"), "evil\n").unwrap();
    let e = WafEngine::from_files(&[dir.join("main.conf")], &EngineOptions::default()).unwrap();
    assert_eq!(e.rule_count(), 2);
    std::fs::write(
        dir.join("rules/c.conf"),
        "SecRule ARGS \"@rx (\" \"id:3,phase:2,pass\"\n",
    )
    .unwrap();
    let errs = check(&[dir.join("main.conf")]);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].file.ends_with("c.conf") && errs[0].line == 1 && errs[0].rule_id == Some(3),
        "{errs:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rules that read one `TX:name` (or `&TX:name`) set `MATCHED_VAR`, `MATCHED_VAR_NAME` and
/// `MATCHED_VARS` as every other rule does, and a removed target still leaves them out.
#[test]
fn single_tx_targets_report_like_any_other() {
    let e = engine(
        r#"SecRuleEngine DetectionOnly
SecAction "id:1,phase:1,pass,nolog,setvar:tx.score=7,setvar:tx.Mixed=abc"
SecRule TX:score "@gt 5" "id:2,phase:1,pass,log,logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule MATCHED_VARS_NAMES "@streq TX:score" "id:3,phase:1,pass,log"
SecRule &TX:missing "@eq 0" "id:4,phase:1,pass,log,logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule &TX:score "@eq 1" "id:5,phase:1,pass,log,logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule TX:missing "@eq 0" "id:6,phase:1,pass,log"
SecRule !TX:score "@eq 0" "id:7,phase:1,pass,log"
SecRule TX:mixed "!@streq x" "id:8,phase:1,pass,log,logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule TX:score "@gt 5" "id:9,phase:1,pass,log,ctl:ruleRemoveTargetById=10;TX:score"
SecRule TX:score "@gt 5" "id:10,phase:1,pass,log"
"#,
    );
    let mut tx = e.transaction(ConnInfo::default());
    tx.process_request_headers("GET", "/", "HTTP/1.1", &[]);
    assert_eq!(ids(&tx), vec![2, 3, 4, 5, 8, 9]);
    let logdata: Vec<&str> = tx
        .matched_rules()
        .iter()
        .filter(|m| [2, 4, 5, 8].contains(&m.id))
        .map(|m| m.logdata.as_str())
        .collect();
    assert_eq!(logdata, ["TX:score=7", "TX=0", "TX=1", "TX:mixed=abc"]);
}

/// A target removed at run time for other rules, or of another variable (CRS 941010 removes
/// `REQUEST_FILENAME` from the XSS rules on most requests), leaves the rules that read one
/// `TX:name` as they are; a removed `TX:name` still leaves its rule blind to it.
#[test]
fn targets_removed_elsewhere_leave_tx_rules_alone() {
    let e = engine(
        r#"SecRuleEngine DetectionOnly
SecAction "id:1,phase:1,pass,nolog,setvar:tx.score=7"
SecRule REQUEST_URI "@rx ^/" "id:2,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=t1;REQUEST_URI,ctl:ruleRemoveTargetById=5;TX:score"
SecRule TX:score "@gt 5" "id:3,phase:1,pass,log,tag:t1,logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule &TX:score "@eq 1" "id:4,phase:1,pass,log,tag:t1"
SecRule TX:score "@gt 5" "id:5,phase:1,pass,log"
SecRule REQUEST_URI|TX:score "@rx ^/" "id:6,phase:1,pass,log,tag:t1"
SecRule REQUEST_URI|TX:score "@rx ^/" "id:7,phase:1,pass,log"
"#,
    );
    let mut tx = e.transaction(ConnInfo::default());
    tx.process_request_headers("GET", "/", "HTTP/1.1", &[]);
    assert_eq!(ids(&tx), vec![3, 4, 7]);
    assert_eq!(tx.matched_rules()[0].logdata, "TX:score=7");
}

/// What phase 1 transformed of the query and headers is reused in phase 2 after a body
/// was parsed (the body goes to buffers that were empty), and the body's own values are
/// transformed afresh: a rule with the same chain in both phases sees each value as it is.
#[test]
fn transformations_survive_the_body_parse_and_body_values_are_fresh() {
    let e = engine(
        r#"SecRuleEngine DetectionOnly
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/x-www-form-urlencoded" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=URLENCODED"
SecRule ARGS "@rx ^abc$" "id:2,phase:1,pass,log,t:none,t:lowercase,t:urlDecodeUni"
SecRule ARGS "@rx ^abc$" "id:3,phase:2,pass,log,t:none,t:lowercase,t:urlDecodeUni,logdata:'%{MATCHED_VARS_NAMES}'"
SecRule ARGS "@rx ^xyz$" "id:4,phase:2,pass,log,t:none,t:lowercase,t:urlDecodeUni"
"#,
    );
    let tx = post(
        &e,
        "/?q=A%2562C",
        b"application/x-www-form-urlencoded",
        b"b=X%2579Z&c=aBc",
    );
    assert_eq!(ids(&tx), vec![2, 3, 4]);
    assert_eq!(tx.matched_rules()[1].logdata, "ARGS:q");
}
