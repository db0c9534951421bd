//! `load`: text → `ValidatedConfig`, or every error found, each with its key path.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri};
use serde::de::DeserializeOwned;

use crate::origin::{OriginPattern, parse_origin_pattern};
use crate::types::{
    Config, CorsPolicy, HeaderEdits, Listener, RateLimitPolicy, Route, SecurityHeaders,
};

/// One problem with a config, at a key path as TOML names it (`route[2].upstream`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path; empty for the file as a whole.
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a config file was refused: every error found, in file order where possible.
#[derive(Debug, Clone, thiserror::Error)]
pub struct LoadError {
    /// The file that was read.
    pub file: PathBuf,
    /// The problems, each with its key path.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} error(s)", self.file.display(), self.errors.len())?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// A config that passed every check. `load` is the only way to get one.
#[derive(Debug, Clone)]
pub struct ValidatedConfig {
    config: Config,
    source: PathBuf,
    text: String,
    warnings: Vec<ConfigError>,
    cors_origins: HashMap<String, Vec<OriginPattern>>,
}

impl std::ops::Deref for ValidatedConfig {
    type Target = Config;
    fn deref(&self) -> &Config {
        &self.config
    }
}

impl ValidatedConfig {
    /// The file this config was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The text this config was read from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Things that are allowed but probably not what was meant.
    pub fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    /// The parsed `allow_origins` of a CORS policy.
    pub fn cors_origins(&self, policy: &str) -> &[OriginPattern] {
        self.cors_origins
            .get(policy)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The CORS policy of that name.
    pub fn cors_policy(&self, name: &str) -> Option<&CorsPolicy> {
        self.config.cors.iter().find(|c| c.name == name)
    }
}

/// Reads, parses and validates a config file. Relative paths inside it are resolved against
/// the file's folder.
pub fn load(path: &Path) -> Result<ValidatedConfig, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: path.to_owned(),
        errors: vec![ConfigError {
            path: String::new(),
            message: format!("cannot read the file: {e}"),
        }],
    })?;
    load_str(&text, path)
}

/// Parses and validates config text as if read from `path` (used for relative paths and
/// messages only; nothing is read).
pub fn load_str(text: &str, path: &Path) -> Result<ValidatedConfig, LoadError> {
    let fail = |errors| LoadError {
        file: path.to_owned(),
        errors,
    };
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        fail(vec![ConfigError {
            path: String::new(),
            message: format!("not valid TOML: {}", e.to_string().trim()),
        }])
    })?;
    let mut errors = Vec::new();
    let (mut config, positions) = parse_sections(doc, &mut errors);
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    resolve_paths(&mut config, &base);
    let mut warnings = Vec::new();
    // Semantic checks run on whatever parsed, so one typo does not hide the next mistake;
    // their paths are mapped back to the positions in the file.
    let mut semantic = Vec::new();
    let cors_origins = validate(&config, &mut semantic, &mut warnings);
    let parse_failed = |prefix: &str| {
        errors
            .iter()
            .any(|e: &ConfigError| e.path.starts_with(prefix))
    };
    let (listeners_failed, cors_failed) = (parse_failed("listener["), parse_failed("cors["));
    let semantic: Vec<ConfigError> = semantic
        .into_iter()
        .filter(|e| !(listeners_failed && e.path == "listener"))
        .filter(|e| !(cors_failed && e.message.contains("no [[cors]] policy")))
        .map(|e| positions.remap(e))
        .collect();
    errors.extend(semantic);
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    Ok(ValidatedConfig {
        config,
        source: path.to_owned(),
        text: text.to_owned(),
        warnings,
        cors_origins,
    })
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "version",
    "data_dir",
    "admin",
    "listener",
    "limits",
    "events",
    "security_headers",
    "shared",
    "cors",
    "rate_limit",
    "bans",
    "waf",
    "store",
    "auth",
    "route",
];

/// Where the parsed elements of each array stood in the file (elements that failed to parse
/// are left out of the config).
#[derive(Debug, Default)]
struct Positions {
    lists: Vec<(&'static str, Vec<usize>)>,
}

impl Positions {
    fn remap(&self, mut e: ConfigError) -> ConfigError {
        for (key, map) in &self.lists {
            let Some(rest) = e.path.strip_prefix(key).and_then(|r| r.strip_prefix('[')) else {
                continue;
            };
            let Some(end) = rest.find(']') else { continue };
            let Ok(k) = rest[..end].parse::<usize>() else {
                continue;
            };
            if let Some(orig) = map.get(k) {
                e.path = format!("{key}[{orig}]{}", &rest[end + 1..]);
            }
            break;
        }
        e
    }
}

/// Deserializes section by section and array element by array element, so one mistake does
/// not hide the next. Sections that fail are replaced by their defaults (and the error kept).
fn parse_sections(mut doc: toml::Table, errors: &mut Vec<ConfigError>) -> (Config, Positions) {
    for key in doc.keys() {
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            errors.push(unknown_key(key, key, TOP_LEVEL_KEYS));
        }
    }
    let version = match doc.remove("version") {
        None => {
            errors.push(err(
                "version",
                "missing; the first line of the file should be `version = 1`",
            ));
            None
        }
        Some(v) => de::<u32>(v, "version", errors),
    };
    let mut one = |key: &str| doc.remove(key);
    let data_dir = one("data_dir").and_then(|v| de(v, "data_dir", errors));
    let admin = one("admin").and_then(|v| de(v, "admin", errors));
    let limits = one("limits").and_then(|v| de(v, "limits", errors));
    let events = one("events").and_then(|v| de(v, "events", errors));
    let security_headers = one("security_headers").and_then(|v| de(v, "security_headers", errors));
    let (listener, listener_pos) = list::<Listener>(one("listener"), "listener", errors);
    let shared = one("shared").and_then(|v| de(v, "shared", errors));
    let bans = one("bans").and_then(|v| de(v, "bans", errors));
    let waf = one("waf").and_then(|v| de(v, "waf", errors));
    let store = one("store").and_then(|v| de(v, "store", errors));
    let auth = one("auth").and_then(|v| de(v, "auth", errors));
    let (cors, cors_pos) = list::<CorsPolicy>(one("cors"), "cors", errors);
    let (rate_limit, rate_limit_pos) =
        list::<RateLimitPolicy>(one("rate_limit"), "rate_limit", errors);
    let (route, route_pos) = list::<Route>(one("route"), "route", errors);
    let config = Config {
        // A missing or unreadable version is already an error; 1 lets the other checks run.
        version: version.unwrap_or(1),
        data_dir: data_dir.unwrap_or_else(|| PathBuf::from("./rampart-data")),
        admin: admin.unwrap_or_default(),
        listener,
        limits: limits.unwrap_or_default(),
        events: events.unwrap_or_default(),
        security_headers: security_headers.unwrap_or_default(),
        shared: shared.unwrap_or_default(),
        cors,
        rate_limit,
        bans,
        waf,
        store: store.unwrap_or_default(),
        auth,
        route,
    };
    let positions = Positions {
        lists: vec![
            ("listener", listener_pos),
            ("cors", cors_pos),
            ("rate_limit", rate_limit_pos),
            ("route", route_pos),
        ],
    };
    (config, positions)
}

fn list<T: DeserializeOwned>(
    value: Option<toml::Value>,
    key: &str,
    errors: &mut Vec<ConfigError>,
) -> (Vec<T>, Vec<usize>) {
    let Some(value) = value else {
        return (Vec::new(), Vec::new());
    };
    let toml::Value::Array(items) = value else {
        errors.push(err(
            key,
            &format!("expected a list of tables (write `[[{key}]]`)"),
        ));
        return (Vec::new(), Vec::new());
    };
    let mut parsed = Vec::new();
    let mut positions = Vec::new();
    for (i, v) in items.into_iter().enumerate() {
        if let Some(t) = de(v, &format!("{key}[{i}]"), errors) {
            parsed.push(t);
            positions.push(i);
        }
    }
    (parsed, positions)
}

fn de<T: DeserializeOwned>(
    value: toml::Value,
    prefix: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let mut path = prefix.to_owned();
            for segment in e.path().iter() {
                match segment {
                    serde_path_to_error::Segment::Seq { index } => {
                        path.push_str(&format!("[{index}]"))
                    }
                    serde_path_to_error::Segment::Map { key } => {
                        path.push('.');
                        path.push_str(key);
                    }
                    serde_path_to_error::Segment::Enum { variant } => {
                        path.push('.');
                        path.push_str(variant);
                    }
                    serde_path_to_error::Segment::Unknown => path.push_str(".?"),
                }
            }
            errors.push(ConfigError {
                path,
                message: tidy_serde_message(&e.inner().to_string()),
            });
            None
        }
    }
}

/// serde's messages are good; toml appends position hints we do not need on a value error.
fn tidy_serde_message(message: &str) -> String {
    let m = message.trim();
    let m = m.strip_suffix('\n').unwrap_or(m);
    m.lines().next().unwrap_or(m).to_owned()
}

fn err(path: &str, message: &str) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        message: message.to_owned(),
    }
}

fn unknown_key(path: &str, key: &str, known: &[&str]) -> ConfigError {
    let hint = known
        .iter()
        .map(|k| (edit_distance(k, key), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    err(path, &format!("unknown key `{key}`{hint}"))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn resolve_paths(config: &mut Config, base: &Path) {
    if config.data_dir.is_relative() {
        config.data_dir = base.join(&config.data_dir);
    }
    let default_store = format!("sqlite://{}", config.data_dir.join("rampart.db").display());
    let url = config.store.url.get_or_insert(default_store);
    if let Some(path) = url.strip_prefix("sqlite://")
        && Path::new(path).is_relative()
    {
        *url = format!("sqlite://{}", base.join(path).display());
    }
    let rebase = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    for l in &mut config.listener {
        if let Some(tls) = l.tls.as_mut() {
            for p in [&mut tls.cert, &mut tls.key, &mut tls.ocsp]
                .into_iter()
                .flatten()
            {
                rebase(p);
            }
            for c in &mut tls.certs {
                rebase(&mut c.cert);
                rebase(&mut c.key);
                if let Some(o) = c.ocsp.as_mut() {
                    rebase(o);
                }
            }
            if let Some(ca) = tls.acme.as_mut().and_then(|a| a.directory_ca.as_mut()) {
                rebase(ca);
            }
        }
        if let Some(ca) = l.client_auth.as_mut() {
            rebase(&mut ca.ca);
            for c in &mut ca.crl {
                rebase(c);
            }
        }
    }
    for route in &mut config.route {
        if let Some(t) = route.upstream_tls.as_mut() {
            for p in [&mut t.ca, &mut t.cert, &mut t.key].into_iter().flatten() {
                rebase(p);
            }
        }
        if let Some(schema) = route.schema.as_mut()
            && Path::new(schema.as_str()).is_relative()
        {
            *schema = base.join(schema.as_str()).to_string_lossy().into_owned();
        }
    }
    if let Some(waf) = config.waf.as_mut() {
        for rule in &mut waf.rules {
            if Path::new(rule.as_str()).is_relative() {
                *rule = base.join(rule.as_str()).to_string_lossy().into_owned();
            }
        }
        if let Some(log) = waf.audit_log.as_mut()
            && Path::new(log.as_str()).is_relative()
        {
            *log = base.join(log.as_str()).to_string_lossy().into_owned();
        }
    }
    let sink = &mut config.events.sink;
    if sink != "stdout" && sink != "stderr" && Path::new(sink.as_str()).is_relative() {
        *sink = base.join(sink.as_str()).to_string_lossy().into_owned();
    }
}

fn validate(
    config: &Config,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> HashMap<String, Vec<OriginPattern>> {
    if config.version != 1 {
        errors.push(err(
            "version",
            &format!(
                "unsupported version {}; this Rampart reads version 1",
                config.version
            ),
        ));
    }
    validate_listeners(config, errors, warnings);
    validate_limits(config, errors, warnings);
    if config.events.sink.trim().is_empty() {
        errors.push(err(
            "events.sink",
            "empty; use \"stdout\", \"stderr\" or a file path",
        ));
    }
    validate_security_headers(&config.security_headers, "security_headers", errors);
    let cors = validate_cors(&config.cors, errors);
    validate_shared_and_limits(config, errors);
    validate_routes(config, errors, warnings);
    cors
}

fn check_name(name: &str, path: &str, errors: &mut Vec<ConfigError>) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        errors.push(err(
            path,
            "names are 1 to 64 characters of letters, digits, '-', '_' and '.'",
        ));
    }
}

fn duplicates<'a>(
    names: impl Iterator<Item = &'a str>,
    key: &str,
    what: &str,
    errors: &mut Vec<ConfigError>,
) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, name) in names.enumerate() {
        if let Some(first) = seen.insert(name, i) {
            errors.push(err(
                &format!("{key}[{i}].name"),
                &format!("duplicate {what} name {name:?} (also {key}[{first}])"),
            ));
            seen.insert(name, first);
        }
    }
}

fn validate_listeners(
    config: &Config,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) {
    if config.listener.is_empty() {
        errors.push(err("listener", "at least one [[listener]] is required"));
    }
    duplicates(
        config.listener.iter().map(|l| l.name.as_str()),
        "listener",
        "listener",
        errors,
    );
    let mut binds = BTreeMap::new();
    for (i, l) in config.listener.iter().enumerate() {
        check_name(&l.name, &format!("listener[{i}].name"), errors);
        if l.bind.port() == 0 {
            // Port 0: the system picks a free port; no clash possible.
        } else if let Some(first) = binds.insert(l.bind, i) {
            errors.push(err(
                &format!("listener[{i}].bind"),
                &if first == usize::MAX {
                    format!("{} is already used by a redirect_http", l.bind)
                } else {
                    format!("{} is already used by listener[{first}]", l.bind)
                },
            ));
        }
        if l.bind == config.admin.bind && l.bind.port() != 0 {
            errors.push(err(
                &format!("listener[{i}].bind"),
                "same address as admin.bind",
            ));
        }
        validate_listener_tls(l, &format!("listener[{i}]"), &mut binds, config, errors);
        if l.firewall.allow.is_empty() {
            warnings.push(err(
                &format!("listener[{i}].firewall.allow"),
                "empty: this listener refuses everyone",
            ));
        }
    }
    if !config.admin.bind.ip().is_loopback() {
        warnings.push(err(
            "admin.bind",
            "not a loopback address: metrics and health endpoints are reachable from the network",
        ));
    }
}

fn validate_listener_tls(
    l: &Listener,
    path: &str,
    binds: &mut BTreeMap<std::net::SocketAddr, usize>,
    config: &Config,
    errors: &mut Vec<ConfigError>,
) {
    let Some(tls) = &l.tls else {
        if l.client_auth.is_some() {
            errors.push(err(
                &format!("{path}.client_auth"),
                "client certificates need `tls` on this listener",
            ));
        }
        if l.redirect_http.is_some() {
            errors.push(err(
                &format!("{path}.redirect_http"),
                "redirects to https need `tls` on this listener",
            ));
        }
        return;
    };
    match tls.min_version.as_str() {
        "1.2" | "1.3" => {}
        "1.0" | "1.1" | "1" => errors.push(err(
            &format!("{path}.tls.min_version"),
            "TLS below 1.2 is refused (known attacks, no AEAD); use \"1.2\" or \"1.3\"",
        )),
        other => errors.push(err(
            &format!("{path}.tls.min_version"),
            &format!("{other:?} is not a TLS version; use \"1.2\" or \"1.3\""),
        )),
    }
    match (&tls.cert, &tls.key) {
        (Some(_), None) => errors.push(err(
            &format!("{path}.tls.key"),
            "missing: `cert` needs its private key",
        )),
        (None, Some(_)) => errors.push(err(
            &format!("{path}.tls.cert"),
            "missing: `key` needs its certificate",
        )),
        _ => {}
    }
    if tls.ocsp.is_some() && tls.cert.is_none() {
        errors.push(err(
            &format!("{path}.tls.ocsp"),
            "an OCSP response needs `cert`",
        ));
    }
    if let Some(acme) = &tls.acme {
        let apath = format!("{path}.tls.acme");
        if tls.cert.is_some() {
            errors.push(err(
                &apath,
                "give either `cert`/`key` or `acme` for the default certificate, not both",
            ));
        }
        if !acme.directory.starts_with("https://") {
            errors.push(err(
                &format!("{apath}.directory"),
                "must be an https:// URL",
            ));
        }
        if acme.domains.is_empty() {
            errors.push(err(
                &format!("{apath}.domains"),
                "empty: name at least one domain",
            ));
        }
        for (j, d) in acme.domains.iter().enumerate() {
            if d.is_empty()
                || d.contains('*')
                || d.contains(['/', ':', ' '])
                || d.parse::<std::net::IpAddr>().is_ok()
            {
                errors.push(err(&format!("{apath}.domains[{j}]"), &format!("{d:?} is not a DNS name this gateway can prove (no wildcards, addresses or ports)")));
            }
        }
        for (j, c) in acme.contact.as_slice().iter().enumerate() {
            if !c.starts_with("mailto:") {
                errors.push(err(
                    &format!("{apath}.contact[{j}]"),
                    "contacts are `mailto:` URIs",
                ));
            }
        }
        match acme.challenge.as_str() {
            "tls-alpn-01" => {}
            "http-01" => {
                if l.redirect_http.is_none() {
                    errors.push(err(&format!("{apath}.challenge"), "http-01 is answered on this listener's `redirect_http` address (port 80 of every domain must reach it): set `redirect_http`, or use \"tls-alpn-01\""));
                }
            }
            other => errors.push(err(
                &format!("{apath}.challenge"),
                &format!("{other:?}: use \"http-01\" or \"tls-alpn-01\""),
            )),
        }
    } else if tls.cert.is_none() && tls.certs.is_empty() {
        errors.push(err(
            &format!("{path}.tls"),
            "no certificate: give `cert` and `key`, `certs`, or `acme`",
        ));
    }
    for (j, c) in tls.certs.iter().enumerate() {
        if c.names.is_empty() {
            errors.push(err(
                &format!("{path}.tls.certs[{j}].names"),
                "empty: name the SNI names this certificate answers",
            ));
        }
        for (k, n) in c.names.iter().enumerate() {
            let bare = n.strip_prefix("*.").unwrap_or(n);
            if bare.is_empty() || bare.contains(['*', '/', ':', ' ']) {
                errors.push(err(
                    &format!("{path}.tls.certs[{j}].names[{k}]"),
                    &format!("{n:?} is not a server name (`api.example.com` or `*.example.com`)"),
                ));
            }
        }
    }
    if let Some(addr) = l.redirect_http {
        if addr == config.admin.bind && addr.port() != 0 {
            errors.push(err(
                &format!("{path}.redirect_http"),
                "same address as admin.bind",
            ));
        } else if addr.port() != 0
            && let Some(first) = binds.insert(addr, usize::MAX)
        {
            let what = if first == usize::MAX {
                "another redirect_http".to_owned()
            } else {
                format!("listener[{first}]")
            };
            errors.push(err(
                &format!("{path}.redirect_http"),
                &format!("{addr} is already used by {what}"),
            ));
        }
    }
}

fn validate_limits(
    config: &Config,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) {
    let l = &config.limits;
    if !(1024..=1024 * 1024).contains(&l.max_header_bytes) {
        errors.push(err(
            "limits.max_header_bytes",
            "must be between 1024 and 1048576",
        ));
    }
    if l.max_body_bytes == 0 {
        errors.push(err("limits.max_body_bytes", "must be at least 1"));
    }
    for (key, d) in [
        ("header_read_timeout", l.header_read_timeout),
        ("idle_timeout", l.idle_timeout),
        ("upstream_connect_timeout", l.upstream_connect_timeout),
        ("upstream_timeout", l.upstream_timeout),
        ("body_timeout", l.body_timeout),
        ("request_timeout", l.request_timeout),
    ] {
        if d.get().is_zero() {
            errors.push(err(&format!("limits.{key}"), "must be longer than 0"));
        }
    }
    if l.max_connections == 0 {
        errors.push(err("limits.max_connections", "must be at least 1"));
    }
    if l.max_requests_in_flight == 0 {
        errors.push(err("limits.max_requests_in_flight", "must be at least 1"));
    }
    if !(1..=10_000).contains(&l.h2_max_concurrent_streams) {
        errors.push(err(
            "limits.h2_max_concurrent_streams",
            "must be between 1 and 10000",
        ));
    }
    if l.h2_max_resets == 0 {
        errors.push(err("limits.h2_max_resets", "must be at least 1"));
    }
    if l.request_timeout.get() < l.header_read_timeout.get() {
        warnings.push(err(
            "limits.request_timeout",
            "shorter than limits.header_read_timeout",
        ));
    }
    if l.max_connections_per_ip == 0 {
        errors.push(err("limits.max_connections_per_ip", "must be at least 1"));
    } else if l.max_connections_per_ip > l.max_connections {
        warnings.push(err(
            "limits.max_connections_per_ip",
            "larger than limits.max_connections",
        ));
    }
}

fn validate_security_headers(h: &SecurityHeaders, prefix: &str, errors: &mut Vec<ConfigError>) {
    for (key, value) in [
        ("referrer_policy", &h.referrer_policy),
        ("frame_options", &h.frame_options),
        ("content_security_policy", &h.content_security_policy),
        ("strict_transport_security", &h.strict_transport_security),
        ("cross_origin_opener_policy", &h.cross_origin_opener_policy),
        ("permissions_policy", &h.permissions_policy),
    ] {
        if let Some(v) = value
            && HeaderValue::from_str(v).is_err()
        {
            errors.push(err(
                &format!("{prefix}.{key}"),
                "not a valid header value (control characters?)",
            ));
        }
    }
}

fn validate_cors(
    policies: &[CorsPolicy],
    errors: &mut Vec<ConfigError>,
) -> HashMap<String, Vec<OriginPattern>> {
    duplicates(
        policies.iter().map(|c| c.name.as_str()),
        "cors",
        "CORS policy",
        errors,
    );
    let mut out = HashMap::new();
    for (i, c) in policies.iter().enumerate() {
        let path = format!("cors[{i}]");
        check_name(&c.name, &format!("{path}.name"), errors);
        if c.allow_origins.is_empty() {
            errors.push(err(
                &format!("{path}.allow_origins"),
                "empty: list the origins allowed",
            ));
        }
        let mut origins = Vec::new();
        for (j, o) in c.allow_origins.iter().enumerate() {
            let opath = format!("{path}.allow_origins[{j}]");
            match parse_origin_pattern(o) {
                Ok(p) => {
                    if c.allow_credentials && !matches!(p, OriginPattern::Exact(_)) {
                        errors.push(err(
                            &opath,
                            &format!("{o:?} together with allow_credentials = true would let any matching site act as the user; list exact origins"),
                        ));
                    }
                    origins.push(p);
                }
                Err(why) => errors.push(err(&opath, &why)),
            }
        }
        for (j, m) in c.allow_methods.iter().enumerate() {
            if Method::from_bytes(m.as_bytes()).is_err() || m.as_str() != m.to_ascii_uppercase() {
                errors.push(err(
                    &format!("{path}.allow_methods[{j}]"),
                    &format!("{m:?} is not an HTTP method (upper case, like \"GET\")"),
                ));
            }
        }
        for (key, list) in [
            ("allow_headers", &c.allow_headers),
            ("expose_headers", &c.expose_headers),
        ] {
            for (j, h) in list.iter().enumerate() {
                if h == "*" {
                    errors.push(err(
                        &format!("{path}.{key}[{j}]"),
                        "\"*\" is refused: list the header names",
                    ));
                } else if HeaderName::from_bytes(h.as_bytes()).is_err() {
                    errors.push(err(
                        &format!("{path}.{key}[{j}]"),
                        &format!("{h:?} is not a header name"),
                    ));
                }
            }
        }
        out.insert(c.name.clone(), origins);
    }
    out
}

/// Rate-limit keys known before authentication.
const ANON_KEYS: &[&str] = &["ip", "route"];
/// Keys that need a verified identity.
const IDENTITY_KEYS: &[&str] = &["user", "client", "api_key"];

fn check_rate(rate: &str) -> Result<(), String> {
    let bad =
        || format!("{rate:?} is not a rate; write it like \"100/s\", \"600/m\" or \"1000/h\"");
    let (n, unit) = rate.split_once('/').ok_or_else(bad)?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || !matches!(unit.trim(), "s" | "m" | "h") {
        return Err(bad());
    }
    Ok(())
}

fn validate_shared_and_limits(config: &Config, errors: &mut Vec<ConfigError>) {
    let url = config.shared.url.as_str();
    let scheme_ok =
        url == "memory://" || url.starts_with("redis://") || url.starts_with("redis+cluster://");
    if !scheme_ok {
        errors.push(err(
            "shared.url",
            "use \"memory://\", \"redis://host:port\" or \"redis+cluster://h1,h2,h3\"",
        ));
    }
    duplicates(
        config.rate_limit.iter().map(|p| p.name.as_str()),
        "rate_limit",
        "rate limit",
        errors,
    );
    for (i, p) in config.rate_limit.iter().enumerate() {
        let path = format!("rate_limit[{i}]");
        check_name(&p.name, &format!("{path}.name"), errors);
        if let Err(why) = check_rate(&p.rate) {
            errors.push(err(&format!("{path}.rate"), &why));
        }
        if p.burst == 0 {
            errors.push(err(&format!("{path}.burst"), "must be at least 1"));
        }
        let key = p.key.as_str();
        if let Some(name) = key.strip_prefix("header:") {
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.push(err(
                    &format!("{path}.key"),
                    &format!("{name:?} is not a header name"),
                ));
            }
        } else if !ANON_KEYS.contains(&key) && !IDENTITY_KEYS.contains(&key) {
            errors.push(err(
                &format!("{path}.key"),
                &format!("unknown key {key:?}; use \"ip\", \"route\" or \"header:NAME\""),
            ));
        }
    }
    if let Some(w) = &config.waf
        && let Some(pl) = w.paranoia_level
        && !(1..=4).contains(&pl)
    {
        errors.push(err("waf.paranoia_level", "must be 1, 2, 3 or 4"));
    }
    if let Some(a) = &config.auth {
        let issuer_ok = (a.issuer.starts_with("https://") || a.issuer.starts_with("http://"))
            && Uri::try_from(a.issuer.as_str()).is_ok_and(|u| u.host().is_some());
        if !issuer_ok {
            errors.push(err(
                "auth.issuer",
                "an http(s) URL, like \"https://auth.example.com\"",
            ));
        }
        if a.audience.is_empty() {
            errors.push(err("auth.audience", "name at least one audience"));
        }
        if !matches!(a.key_algorithm.as_str(), "EdDSA" | "ES256" | "RS256") {
            errors.push(err(
                "auth.key_algorithm",
                "one of \"EdDSA\", \"ES256\", \"RS256\"",
            ));
        }
        if a.access_ttl.get().is_zero() || a.access_ttl.get() > Duration::from_secs(86_400) {
            errors.push(err(
                "auth.access_ttl",
                "between 1s and 24h (short-lived access tokens are the point)",
            ));
        }
        if a.refresh_ttl > a.session_absolute_timeout {
            errors.push(err(
                "auth.refresh_ttl",
                "cannot be longer than auth.session_absolute_timeout",
            ));
        }
        if let Some(c) = &a.cors
            && !config.cors.iter().any(|p| &p.name == c)
        {
            errors.push(err(
                "auth.cors",
                &format!("no [[cors]] policy is named {c:?}"),
            ));
        }
        for (j, name) in a.rate_limit.iter().enumerate() {
            if !config.rate_limit.iter().any(|p| &p.name == name) {
                errors.push(err(
                    &format!("auth.rate_limit[{j}]"),
                    &format!("no [[rate_limit]] policy is named {name:?}"),
                ));
            }
        }
    }
    let url = config.store.url.as_deref().unwrap_or("");
    if !(url.starts_with("sqlite://")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        errors.push(err(
            "store.url",
            "use \"sqlite://path\" or \"postgres://user@host/db\"",
        ));
    }
    if let Some(b) = &config.bans {
        if !(b.threshold.is_finite() && b.threshold > 0.0) {
            errors.push(err("bans.threshold", "must be a number above 0"));
        }
        if b.duration.get().is_zero() {
            errors.push(err("bans.duration", "must be longer than 0"));
        }
        if b.max_duration < b.duration {
            errors.push(err("bans.max_duration", "must be at least bans.duration"));
        }
    }
}

fn validate_routes(
    config: &Config,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) {
    if config.route.is_empty() {
        warnings.push(err("route", "no [[route]]: every request will get 404"));
    }
    duplicates(
        config.route.iter().map(|r| r.name.as_str()),
        "route",
        "route",
        errors,
    );
    let mut seen_matches: Vec<(usize, Option<String>, &str, Option<Vec<String>>)> = Vec::new();
    for (i, r) in config.route.iter().enumerate() {
        let path = format!("route[{i}]");
        check_name(&r.name, &format!("{path}.name"), errors);
        let upstreams = r.upstream.as_slice();
        if upstreams.is_empty() {
            errors.push(err(
                &format!("{path}.upstream"),
                "empty: give at least one upstream URL",
            ));
        }
        for (j, u) in upstreams.iter().enumerate() {
            let upath = if upstreams.len() == 1 && matches!(r.upstream, crate::OneOrMany::One(_)) {
                format!("{path}.upstream")
            } else {
                format!("{path}.upstream[{j}]")
            };
            if let Err(why) = check_upstream_url(u) {
                errors.push(err(&upath, &why));
            }
        }
        let m = &r.match_;
        if !m.path_prefix.starts_with('/') || m.path_prefix.contains(['?', '#']) {
            errors.push(err(
                &format!("{path}.match.path_prefix"),
                "must start with '/' and hold no '?' or '#'",
            ));
        }
        if let Some(host) = &m.host {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            let ok = !bare.is_empty()
                && bare
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
                && !bare.contains('*');
            if !ok {
                errors.push(err(
                    &format!("{path}.match.host"),
                    "a host name without port, optionally starting with \"*.\"",
                ));
            }
        }
        if let Some(methods) = &m.methods {
            if methods.is_empty() {
                errors.push(err(
                    &format!("{path}.match.methods"),
                    "empty: omit the key to take every method",
                ));
            }
            for (j, me) in methods.iter().enumerate() {
                if Method::from_bytes(me.as_bytes()).is_err()
                    || me.as_str() != me.to_ascii_uppercase()
                {
                    errors.push(err(
                        &format!("{path}.match.methods[{j}]"),
                        &format!("{me:?} is not an HTTP method (upper case)"),
                    ));
                }
            }
        }
        let host_key = m.host.as_ref().map(|h| h.to_ascii_lowercase());
        let mut methods_key = m.methods.clone();
        if let Some(v) = methods_key.as_mut() {
            v.sort();
        }
        if let Some((first, ..)) = seen_matches
            .iter()
            .find(|(_, h, p, ms)| *h == host_key && *p == m.path_prefix && *ms == methods_key)
        {
            errors.push(err(
                &format!("{path}.match"),
                &format!("same host, path_prefix and methods as route[{first}]"),
            ));
        }
        seen_matches.push((i, host_key, &m.path_prefix, methods_key));
        if let Some(name) = &r.cors
            && !config.cors.iter().any(|c| &c.name == name)
        {
            errors.push(err(
                &format!("{path}.cors"),
                &format!("no [[cors]] policy is named {name:?}"),
            ));
        }
        if let Some(w) = &r.waf {
            if config.waf.is_none() {
                errors.push(err(&format!("{path}.waf"), "needs a [waf] section"));
            }
            if let Some(pl) = w.paranoia_level
                && !(1..=4).contains(&pl)
            {
                errors.push(err(
                    &format!("{path}.waf.paranoia_level"),
                    "must be 1, 2, 3 or 4",
                ));
            }
        }
        match (&r.auth, &config.auth) {
            (None, Some(_)) => errors.push(err(
                &format!("{path}.auth"),
                "missing: with [auth] every route says what it accepts, `auth = [\"jwt\"]` or `auth = [\"none\"]`",
            )),
            (Some(list), auth) => {
                if list.is_empty() {
                    errors.push(err(&format!("{path}.auth"), "empty: list `jwt`, or `none` for a public route"));
                }
                for (j, a) in list.iter().enumerate() {
                    match a.as_str() {
                        "none" if list.len() > 1 => errors.push(err(&format!("{path}.auth[{j}]"), "`none` cannot be combined with credentials")),
                        "none" => {}
                        "jwt" if auth.is_none() => errors.push(err(&format!("{path}.auth[{j}]"), "`jwt` needs an [auth] section (issuer, audience)")),
                        "jwt" => {}
                        "api_key" if auth.is_none() => errors.push(err(&format!("{path}.auth[{j}]"), "`api_key` needs an [auth] section (keys live in its store)")),
                        "api_key" => {}
                        "mtls" => {
                            if !config.listener.iter().any(|l| l.client_auth.is_some()) {
                                warnings.push(err(&format!("{path}.auth[{j}]"), "no listener asks for client certificates (`client_auth`): this route will answer 401 to everyone"));
                            }
                        }
                        "session" if auth.is_none() => errors.push(err(&format!("{path}.auth[{j}]"), "`session` needs an [auth] section (sessions live in its store)")),
                        "session" => {}
                        other => errors.push(err(&format!("{path}.auth[{j}]"), &format!("unknown scheme {other:?}; use `jwt`, `api_key`, `mtls` or `none`"))),
                    }
                }
                if !r.scopes.is_empty() && !list.iter().any(|a| a == "jwt" || a == "api_key") {
                    errors.push(err(&format!("{path}.scopes"), "scopes need `auth = [\"jwt\"]`"));
                }
            }
            (None, None) => {}
        }
        if r.allow_identities.is_some()
            && !r
                .auth
                .as_ref()
                .is_some_and(|a| a.iter().any(|x| x == "mtls"))
        {
            errors.push(err(
                &format!("{path}.allow_identities"),
                "needs `mtls` in `auth`",
            ));
        }
        for (j, id) in r.allow_identities.iter().flatten().enumerate() {
            if id.is_empty() || id.trim_end_matches('*').contains('*') {
                errors.push(err(
                    &format!("{path}.allow_identities[{j}]"),
                    &format!("{id:?}: an identity, or a prefix ending in one `*`"),
                ));
            }
        }
        if let Some(t) = &r.upstream_tls {
            if !r
                .upstream
                .as_slice()
                .iter()
                .all(|u| u.starts_with("https://"))
            {
                errors.push(err(
                    &format!("{path}.upstream_tls"),
                    "needs https:// upstreams",
                ));
            }
            if t.cert.is_some() != t.key.is_some() {
                errors.push(err(
                    &format!("{path}.upstream_tls"),
                    "`cert` and `key` go together",
                ));
            }
            if let Some(n) = &t.server_name
                && (n.is_empty() || n.contains(['/', ':', ' ', '*']))
            {
                errors.push(err(
                    &format!("{path}.upstream_tls.server_name"),
                    &format!("{n:?} is not a server name"),
                ));
            }
        }
        if r.validation.is_some() && r.schema.is_none() {
            errors.push(err(
                &format!("{path}.validation"),
                "needs `schema`, the OpenAPI document to validate against",
            ));
        }
        if let Some(v) = &r.validation
            && !(1..=127).contains(&v.max_depth)
        {
            errors.push(err(
                &format!("{path}.validation.max_depth"),
                "must be between 1 and 127",
            ));
        }
        let jwt_route = r
            .auth
            .as_ref()
            .is_some_and(|a| a.iter().any(|x| x == "jwt" || x == "api_key"));
        for (j, name) in r.rate_limit.iter().enumerate() {
            if let Some(p) = config.rate_limit.iter().find(|p| &p.name == name)
                && IDENTITY_KEYS.contains(&p.key.as_str())
                && !jwt_route
            {
                errors.push(err(
                    &format!("{path}.rate_limit[{j}]"),
                    &format!("policy {name:?} counts a verified identity; the route needs `auth = [\"jwt\"]`"),
                ));
            }
            if !config.rate_limit.iter().any(|p| &p.name == name) {
                errors.push(err(
                    &format!("{path}.rate_limit[{j}]"),
                    &format!("no [[rate_limit]] policy is named {name:?}"),
                ));
            }
        }
        if let Some(allow) = &r.allow_from
            && allow.is_empty()
        {
            errors.push(err(
                &format!("{path}.allow_from"),
                "empty: it would refuse everyone; omit the key to allow all",
            ));
        }
        if let Some(t) = r.timeout
            && t.get().is_zero()
        {
            errors.push(err(&format!("{path}.timeout"), "must be longer than 0"));
        }
        if let Some(max) = r.max_body_bytes
            && (max == 0 || max > config.limits.max_body_bytes)
        {
            errors.push(err(
                &format!("{path}.max_body_bytes"),
                &format!(
                    "must be between 1 and limits.max_body_bytes ({})",
                    config.limits.max_body_bytes
                ),
            ));
        }
        if r.passive_health.max_fails == 0 {
            errors.push(err(
                &format!("{path}.passive_health.max_fails"),
                "must be at least 1",
            ));
        }
        validate_header_edits(
            &r.request_headers,
            &format!("{path}.request_headers"),
            errors,
        );
        validate_header_edits(
            &r.response_headers,
            &format!("{path}.response_headers"),
            errors,
        );
        if let Some(h) = &r.security_headers {
            validate_security_headers(h, &format!("{path}.security_headers"), errors);
        }
    }
}

fn check_upstream_url(u: &str) -> Result<(), String> {
    let uri: Uri = u
        .parse()
        .map_err(|_| format!("{u:?} is not a URL (write it like \"http://127.0.0.1:3000\")"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("{u:?} must start with http:// or https://")),
    }
    if uri.authority().is_none_or(|a| a.host().is_empty()) {
        return Err(format!("{u:?} has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("{u:?} must not have a query string"));
    }
    Ok(())
}

fn validate_header_edits(edits: &HeaderEdits, path: &str, errors: &mut Vec<ConfigError>) {
    for (name, value) in &edits.set {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(err(&format!("{path}.set.{name}"), "not a header name"));
        } else if HeaderValue::from_str(value).is_err() {
            errors.push(err(
                &format!("{path}.set.{name}"),
                "not a valid header value",
            ));
        }
    }
    for (j, name) in edits.remove.iter().enumerate() {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(err(&format!("{path}.remove[{j}]"), "not a header name"));
        }
    }
}

#[cfg(test)]
mod tls_checks {
    use super::*;

    fn errors(body: &str) -> Vec<String> {
        let text = format!(
            "version = 1\n{body}\n[[route]]\nname = \"app\"\nupstream = \"http://127.0.0.1:9\"\n"
        );
        match load_str(&text, Path::new("/etc/rampart/rampart.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn refused(body: &str, path: &str) {
        let errs = errors(body);
        assert!(
            errs.iter().any(|e| e.starts_with(path)),
            "{path} not in {errs:?}"
        );
    }

    const L: &str = "[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:8443\"\n";

    #[test]
    fn unsafe_or_incomplete_tls_settings_are_refused_with_their_key() {
        refused(
            &format!("{L}tls = {{ cert = \"a.pem\", key = \"a.key\", min_version = \"1.0\" }}"),
            "listener[0].tls.min_version",
        );
        refused(
            &format!("{L}tls = {{ cert = \"a.pem\" }}"),
            "listener[0].tls.key",
        );
        refused(&format!("{L}tls = {{}}"), "listener[0].tls");
        refused(
            &format!("{L}client_auth = {{ ca = \"ca.pem\" }}"),
            "listener[0].client_auth",
        );
        refused(
            &format!("{L}redirect_http = \"127.0.0.1:8080\""),
            "listener[0].redirect_http",
        );
        refused(
            &format!(
                "{L}tls = {{ acme = {{ directory = \"https://acme.test/dir\", domains = [\"a.test\"] }} }}"
            ),
            "listener[0].tls.acme.challenge",
        );
        refused(
            &format!(
                "{L}tls = {{ acme = {{ directory = \"http://acme.test/dir\", domains = [\"*.a.test\"], challenge = \"tls-alpn-01\" }} }}"
            ),
            "listener[0].tls.acme.directory",
        );
        refused(
            &format!(
                "{L}tls = {{ acme = {{ directory = \"https://acme.test/dir\", domains = [\"*.a.test\"], challenge = \"tls-alpn-01\" }} }}"
            ),
            "listener[0].tls.acme.domains[0]",
        );
        refused(
            &format!(
                "{L}tls = {{ cert = \"a.pem\", key = \"a.key\" }}\nredirect_http = \"127.0.0.1:8443\""
            ),
            "listener[0].redirect_http",
        );
        // Relative paths are the config file's folder's.
        let ok = load_str(
            &format!("version = 1\n{L}tls = {{ cert = \"a.pem\", key = \"k/a.key\" }}\n[[route]]\nname = \"app\"\nupstream = \"https://127.0.0.1:9\"\nupstream_tls = {{ ca = \"ca.pem\" }}\n"),
            Path::new("/etc/rampart/rampart.toml"),
        )
        .unwrap();
        let tls = ok.listener[0].tls.as_ref().unwrap();
        assert_eq!(tls.key.as_deref(), Some(Path::new("/etc/rampart/k/a.key")));
    }

    #[test]
    fn ddos_limits_out_of_range_are_refused_with_their_key() {
        for (setting, path) in [
            (
                "max_requests_in_flight = 0",
                "limits.max_requests_in_flight",
            ),
            (
                "h2_max_concurrent_streams = 0",
                "limits.h2_max_concurrent_streams",
            ),
            (
                "h2_max_concurrent_streams = 10001",
                "limits.h2_max_concurrent_streams",
            ),
            ("h2_max_resets = 0", "limits.h2_max_resets"),
            ("body_timeout = \"0s\"", "limits.body_timeout"),
            ("request_timeout = \"0s\"", "limits.request_timeout"),
        ] {
            refused(&format!("{L}[limits]\n{setting}"), path);
        }
        assert!(
            errors(&format!(
                "{L}[limits]\nmin_body_rate = 0\nh2_max_resets = 1"
            ))
            .is_empty()
        );
    }

    #[test]
    fn route_identity_and_upstream_tls_rules() {
        let route = |extra: &str| {
            format!(
                "{L}[[route]]\nname = \"svc\"\nmatch = {{ path_prefix = \"/svc\" }}\nupstream = \"http://127.0.0.1:9\"\n{extra}"
            )
        };
        refused(
            &route("allow_identities = [\"spiffe://corp/*\"]"),
            "route[0].allow_identities",
        );
        refused(
            &route("auth = [\"mtls\"]\nallow_identities = [\"spiffe://*/x\"]"),
            "route[0].allow_identities[0]",
        );
        refused(
            &route("upstream_tls = { ca = \"ca.pem\" }"),
            "route[0].upstream_tls",
        );
        refused(&route("auth = [\"session\"]"), "route[0].auth[0]");
    }
}
