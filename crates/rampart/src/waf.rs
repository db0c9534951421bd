//! The WAF as the gateway runs it: one compiled engine per (mode, paranoia level) the config
//! uses, the built-in rules when no rule file is given, and the audit log.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rampart_config::{AuditLogMode, Mode, ValidatedConfig};
use rampart_waf::{EngineOptions, Exclusions, RuleEngineMode, WafEngine};

use crate::events::EventSink;

/// Rules used when `[waf] rules` is empty: SQL injection and XSS by libinjection, path
/// traversal, on every argument, cookie and the path, with JSON and form bodies parsed.
pub const BUILTIN_RULES: &str = r#"
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 1048576
SecRequestBodyLimitAction Reject
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/(?:[a-z0-9.+-]+\+)?json" \
    "id:100,phase:1,pass,nolog,t:none,t:lowercase,ctl:requestBodyProcessor=JSON"
SecRule REQBODY_ERROR "!@eq 0" \
    "id:101,phase:2,deny,status:400,log,msg:'Request body could not be parsed',tag:'body-error'"
SecRule REQUEST_FILENAME|ARGS_NAMES|ARGS|REQUEST_COOKIES_NAMES|REQUEST_COOKIES "@detectSQLi" \
    "id:110,phase:2,deny,status:403,log,t:none,t:urlDecodeUni,msg:'SQL injection',tag:'attack-sqli'"
SecRule REQUEST_FILENAME|ARGS_NAMES|ARGS|REQUEST_COOKIES|REQUEST_HEADERS:User-Agent|REQUEST_HEADERS:Referer "@detectXSS" \
    "id:120,phase:2,deny,status:403,log,t:none,t:urlDecodeUni,t:htmlEntityDecode,msg:'Cross-site scripting',tag:'attack-xss'"
SecRule REQUEST_URI_RAW|ARGS "@rx (?:^|[\\/])\.\.(?:[\\/]|$)" \
    "id:130,phase:2,deny,status:403,log,t:none,t:urlDecodeUni,msg:'Path traversal',tag:'attack-lfi'"
"#;

/// Engine settings loaded before the configured rule files (which may override them), so a
/// config listing only CRS's `crs-setup.conf` and `rules/*.conf` still inspects bodies: the
/// settings ModSecurity users get from `modsecurity.conf`. Rule ids 190-195.
pub const BASE_SETTINGS: &str = r#"
SecRequestBodyAccess On
SecRequestBodyLimitAction Reject
SecRequestBodyJsonDepthLimit 512
SecArgumentsLimit 1000
SecRule REQUEST_HEADERS:Content-Type "@rx ^(?:application(?:/soap\+|/)|text/)xml" \
    "id:190,phase:1,pass,nolog,t:none,t:lowercase,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/(?:[a-z0-9.+-]+\+)?json" \
    "id:191,phase:1,pass,nolog,t:none,t:lowercase,ctl:requestBodyProcessor=JSON"
SecRule &ARGS "@ge 1000" \
    "id:192,phase:2,deny,status:400,log,t:none,msg:'Too many arguments to inspect'"
SecRule REQBODY_ERROR "!@eq 0" \
    "id:193,phase:2,deny,status:400,log,t:none,msg:'Request body could not be parsed'"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" \
    "id:194,phase:2,deny,status:400,log,t:none,msg:'Multipart body failed strict validation'"
SecRule MULTIPART_UNMATCHED_BOUNDARY "@eq 1" \
    "id:195,phase:2,deny,status:400,log,t:none,msg:'Multipart body with an unmatched boundary'"
"#;

/// Credentials that never appear in a WAF log line.
const REDACT: &[&str] = &[
    "REQUEST_HEADERS:Authorization",
    "REQUEST_HEADERS:authorization",
    "REQUEST_HEADERS:Cookie",
    "REQUEST_HEADERS:cookie",
    "REQUEST_HEADERS:Proxy-Authorization",
    "REQUEST_HEADERS:proxy-authorization",
    "REQUEST_COOKIES",
    "ARGS:password",
    "ARGS_POST:password",
    "ARGS:json.password",
    "ARGS:access_token",
    "ARGS:refresh_token",
    "ARGS:client_secret",
];

/// The WAF engines of one config snapshot.
pub struct WafSet {
    engines: HashMap<(Mode, Option<u8>), Arc<WafEngine>>,
    /// (mode, paranoia level) by route index.
    routes: Vec<(Mode, Option<u8>)>,
    /// Rule exclusions by route index.
    exclusions: Vec<Exclusions>,
    audit: Option<Arc<EventSink>>,
    audit_all: bool,
}

impl std::fmt::Debug for WafSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WafSet")
            .field("engines", &self.engines.len())
            .finish()
    }
}

fn compile(config: &ValidatedConfig, mode: Mode, pl: Option<u8>) -> Result<WafEngine, Vec<String>> {
    let waf = config
        .waf
        .as_ref()
        .ok_or_else(|| vec!["waf: not configured".to_owned()])?;
    let opts = EngineOptions {
        mode_override: Some(if mode == Mode::Enforce {
            RuleEngineMode::On
        } else {
            RuleEngineMode::DetectionOnly
        }),
        paranoia_level: pl,
        redact: REDACT.iter().map(|s| (*s).to_owned()).collect(),
        prelude: Some(("base settings".to_owned(), BASE_SETTINGS.to_owned())),
        ..EngineOptions::default()
    };
    let result = if waf.rules.is_empty() {
        WafEngine::from_str(BUILTIN_RULES, "built-in rules", &opts)
    } else {
        let paths: Vec<PathBuf> = waf.rules.iter().map(PathBuf::from).collect();
        WafEngine::from_files(&paths, &opts)
    };
    result.map_err(|errs| {
        errs.into_iter()
            .map(|e| format!("waf.rules: {e}"))
            .collect()
    })
}

impl WafSet {
    /// Compiles the engines a config needs (none when `[waf]` is absent or off everywhere).
    /// Errors name the rule file, line and rule id.
    pub fn build(config: &ValidatedConfig) -> Result<Option<WafSet>, Vec<String>> {
        let Some(waf) = config.waf.as_ref() else {
            return Ok(None);
        };
        let routes: Vec<(Mode, Option<u8>)> = config
            .route
            .iter()
            .map(|r| {
                let o = r.waf.clone().unwrap_or_default();
                (
                    o.mode.unwrap_or(waf.mode),
                    o.paranoia_level.or(waf.paranoia_level),
                )
            })
            .collect();
        let mut errors = Vec::new();
        let exclusions: Vec<Exclusions> = config
            .route
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let items = r.waf.as_ref().map_or(&[][..], |w| &w.exclusions[..]);
                Exclusions::parse(items).unwrap_or_else(|(j, e)| {
                    errors.push(format!("route[{i}].waf.exclusions[{j}]: {e}"));
                    Exclusions::default()
                })
            })
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut engines = HashMap::new();
        for key in routes.iter().copied().filter(|(m, _)| *m != Mode::Off) {
            if let std::collections::hash_map::Entry::Vacant(slot) = engines.entry(key) {
                slot.insert(Arc::new(compile(config, key.0, key.1)?));
            }
        }
        if engines.is_empty() {
            // Off everywhere: still check the rules, so a broken file is reported now.
            compile(config, Mode::Detect, waf.paranoia_level)?;
        }
        let audit = match &waf.audit_log {
            Some(path) => Some(Arc::new(
                EventSink::open(path).map_err(|e| vec![format!("waf.audit_log: {e}")])?,
            )),
            None => None,
        };
        Ok(Some(WafSet {
            engines,
            routes,
            exclusions,
            audit,
            audit_all: waf.audit_log_mode == AuditLogMode::All,
        }))
    }

    /// The engine, mode and exclusions of route `index`, unless the WAF is off there.
    pub fn for_route(&self, index: usize) -> Option<(&WafEngine, Mode, &Exclusions)> {
        let key = *self.routes.get(index)?;
        let exclusions = self.exclusions.get(index)?;
        self.engines
            .get(&key)
            .map(|e| (e.as_ref(), key.0, exclusions))
    }

    /// Writes a transaction to the audit log when the mode asks for it.
    pub fn audit(&self, matched: bool, record: impl FnOnce() -> serde_json::Value) {
        if let Some(sink) = &self.audit
            && (matched || self.audit_all)
        {
            sink.emit_value(record());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_compile_and_catch_the_classics() {
        let opts = EngineOptions {
            mode_override: Some(RuleEngineMode::On),
            ..EngineOptions::default()
        };
        let engine = WafEngine::from_str(BUILTIN_RULES, "built-in rules", &opts).unwrap();
        let conn = || rampart_waf::ConnInfo {
            client_ip: "192.0.2.1".into(),
            client_port: 1,
            server_ip: "127.0.0.1".into(),
            server_port: 80,
            request_id: "t".into(),
        };
        let headers: Vec<(&[u8], &[u8])> = vec![(b"host", b"x")];
        for (uri, blocked) in [
            ("/items?id=1%27%20OR%20%271%27%3D%271", true),
            ("/search?q=%3Cscript%3Ealert(1)%3C/script%3E", true),
            ("/files?name=..%2F..%2Fetc%2Fpasswd", true),
            ("/items?id=42&q=hello%20world", false),
        ] {
            let mut tx = engine.transaction(conn());
            let mut iv = tx.process_request_headers("GET", uri, "HTTP/1.1", &headers);
            if iv.is_none() {
                iv = tx.process_request_body();
            }
            assert_eq!(iv.is_some(), blocked, "{uri}: {:?}", tx.matched_rules());
        }
    }
}
