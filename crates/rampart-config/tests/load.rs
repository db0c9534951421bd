use std::path::Path;

use rampart_config::{ConfigError, load_str};

fn errors(text: &str) -> Vec<String> {
    match load_str(text, Path::new("/etc/rampart/rampart.toml")) {
        Ok(_) => panic!("config should have been refused:\n{text}"),
        Err(e) => e.errors.iter().map(ConfigError::to_string).collect(),
    }
}

fn has(errors: &[String], needle: &str) -> bool {
    errors.iter().any(|e| e.contains(needle))
}

const MINIMAL: &str = r#"
version = 1
[[listener]]
name = "public"
bind = "127.0.0.1:8080"
[[route]]
name = "app"
upstream = "http://127.0.0.1:3000"
"#;

#[test]
fn minimal_config_loads_with_safe_defaults() {
    let c = load_str(MINIMAL, Path::new("/etc/rampart/rampart.toml")).unwrap();
    assert_eq!(c.limits.max_header_bytes, 16384);
    assert_eq!(c.limits.max_body_bytes, 10 * 1024 * 1024);
    assert_eq!(c.admin.bind.to_string(), "127.0.0.1:9901");
    assert_eq!(c.data_dir, Path::new("/etc/rampart/./rampart-data"));
    assert_eq!(c.route[0].match_.path_prefix, "/");
    assert!(
        c.listener[0]
            .firewall
            .allow
            .contains("203.0.113.9".parse().unwrap())
    );
}

#[test]
fn every_error_is_reported_with_its_key_path() {
    let e = errors(
        r#"
version = 1
colour = "blue"
[[listener]]
name = "public"
bind = "127.0.0.1:8080"
firewall = { allow = ["10.0.0.0/8"], deny = ["nonsense"] }
[limits]
header_read_timeout = "10"
[[route]]
name = "a"
upstream = "http://127.0.0.1:3000"
[[route]]
name = "b"
upstream = "http://127.0.0.1:3000"
bogus = 1
[[route]]
name = "c"
upstream = []
"#,
    );
    assert!(has(&e, "colour: unknown key `colour`"), "{e:#?}");
    assert!(has(&e, "listener[0].firewall.deny"), "{e:#?}");
    assert!(has(&e, "limits.header_read_timeout"), "{e:#?}");
    assert!(has(&e, "route[1]") && has(&e, "bogus"), "{e:#?}");
}

#[test]
fn semantic_errors_name_the_key() {
    let e = errors(
        r#"
version = 1
[[listener]]
name = "public"
bind = "127.0.0.1:8080"
[[listener]]
name = "public"
bind = "127.0.0.1:8080"
[[cors]]
name = "spa"
allow_origins = ["*"]
allow_credentials = true
[[cors]]
name = "wild"
allow_origins = ["https://*.example.com", "null"]
allow_credentials = true
[[route]]
name = "api"
upstream = []
cors = "nope"
[[route]]
name = "api"
match = { path_prefix = "api" }
upstream = ["ftp://x"]
"#,
    );
    assert!(
        has(&e, "listener[1].name: duplicate listener name"),
        "{e:#?}"
    );
    assert!(has(&e, "listener[1].bind"), "{e:#?}");
    assert!(
        has(&e, "cors[0].allow_origins[0]") && has(&e, "allow_credentials"),
        "{e:#?}"
    );
    assert!(has(&e, "cors[1].allow_origins[0]"), "{e:#?}");
    assert!(
        has(&e, "cors[1].allow_origins[1]: \"null\" is refused"),
        "{e:#?}"
    );
    assert!(has(&e, "route[0].upstream: empty"), "{e:#?}");
    assert!(
        has(&e, "route[0].cors: no [[cors]] policy is named \"nope\""),
        "{e:#?}"
    );
    assert!(has(&e, "route[1].name: duplicate route name"), "{e:#?}");
    assert!(has(&e, "route[1].match.path_prefix"), "{e:#?}");
    assert!(has(&e, "route[1].upstream[0]"), "{e:#?}");
}

#[test]
fn version_is_required_and_checked() {
    let no_version = MINIMAL.replace("version = 1", "");
    assert!(has(&errors(&no_version), "version: missing"));
    let v2 = MINIMAL.replace("version = 1", "version = 2");
    assert!(has(&errors(&v2), "version: unsupported version 2"));
}

#[test]
fn syntax_errors_are_reported() {
    let e = errors("version = 1\n[[listener]\n");
    assert!(has(&e, "not valid TOML"), "{e:#?}");
}

#[test]
fn typos_get_a_suggestion() {
    let e = errors(&MINIMAL.replace("[[route]]", "[[routes]]"));
    assert!(has(&e, "did you mean `route`?"), "{e:#?}");
}

#[test]
fn route_body_cap_cannot_exceed_global() {
    let text = format!("{MINIMAL}max_body_bytes = 99999999999\n");
    assert!(has(&errors(&text), "route[0].max_body_bytes"));
}

#[test]
fn a_parse_error_in_one_element_does_not_hide_semantic_errors_in_others() {
    let e = errors(
        r#"
version = 1
[[listener]]
name = "public"
bind = "127.0.0.1:8080"
[[route]]
name = "broken"
upstream = "http://127.0.0.1:3000"
tiemout = "5s"
[[route]]
name = "empty"
upstream = []
"#,
    );
    assert!(
        has(&e, "route[0].tiemout: unknown field `tiemout`"),
        "{e:#?}"
    );
    assert!(has(&e, "route[1].upstream: empty"), "{e:#?}");
}

#[test]
fn rate_limit_policies_are_checked() {
    let text = format!(
        "{MINIMAL}rate_limit = [\"per-ip\", \"nope\"]\n[[rate_limit]]\nname = \"per-ip\"\nkey = \"ip\"\nrate = \"10/x\"\nburst = 0\n[[rate_limit]]\nname = \"who\"\nkey = \"nonsense\"\nrate = \"1/s\"\nburst = 1\n[shared]\nurl = \"mysql://x\"\n"
    );
    let e = errors(&text);
    assert!(has(&e, "rate_limit[0].rate"), "{e:#?}");
    assert!(has(&e, "rate_limit[0].burst"), "{e:#?}");
    assert!(has(&e, "rate_limit[1].key"), "{e:#?}");
    assert!(
        has(
            &e,
            "route[0].rate_limit[1]: no [[rate_limit]] policy is named \"nope\""
        ),
        "{e:#?}"
    );
    assert!(has(&e, "shared.url"), "{e:#?}");
}
