//! docs/config.md lists every key the config types accept, and nothing else. The sample below
//! spells out every field (no `..Default::default()`), so a new field does not compile until
//! it is added here, and then this test asks for its documentation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use rampart_config::Bans;
use rampart_config::Store;
use rampart_config::*;

/// Tables whose keys are the user's (header names) or documented as a whole.
const OPAQUE: &[&str] = &[
    "route.request_headers.set",
    "route.response_headers.set",
    "route.security_headers",
];

fn all_security_headers() -> SecurityHeaders {
    SecurityHeaders {
        content_type_options: Some(true),
        referrer_policy: Some("no-referrer".into()),
        frame_options: Some("DENY".into()),
        content_security_policy: Some("default-src 'self'".into()),
        strict_transport_security: Some("max-age=1".into()),
        cross_origin_opener_policy: Some("same-origin".into()),
        permissions_policy: Some("camera=()".into()),
    }
}

fn sample() -> Config {
    let edits = HeaderEdits {
        set: BTreeMap::from([("X-A".to_owned(), "1".to_owned())]),
        remove: vec!["X-B".into()],
    };
    let cidrs = CidrList(vec!["10.0.0.0/8".parse().unwrap()]);
    Config {
        version: 1,
        data_dir: PathBuf::from("./data"),
        admin: Admin {
            bind: "127.0.0.1:9901".parse().unwrap(),
        },
        listener: vec![Listener {
            name: "public".into(),
            bind: "127.0.0.1:8080".parse().unwrap(),
            firewall: Firewall {
                allow: cidrs.clone(),
                deny: cidrs.clone(),
                mode: Mode::Enforce,
            },
            trusted_proxies: cidrs.clone(),
            tls: Some(ListenerTls {
                cert: Some("site.pem".into()),
                key: Some("site.key".into()),
                ocsp: Some("site.ocsp".into()),
                min_version: "1.2".into(),
                certs: vec![SniCert {
                    cert: "api.pem".into(),
                    key: "api.key".into(),
                    names: vec!["api.example.com".into()],
                    ocsp: Some("api.ocsp".into()),
                }],
                acme: Some(Acme {
                    directory: "https://acme.example/dir".into(),
                    domains: vec!["example.com".into()],
                    contact: OneOrMany::One("mailto:ops@example.com".into()),
                    challenge: "http-01".into(),
                    renew_before: DurationStr(Duration::from_secs(1)),
                    directory_ca: Some("acme-ca.pem".into()),
                }),
            }),
            client_auth: Some(ClientAuth {
                ca: "clients.pem".into(),
                mode: ClientAuthMode::Optional,
                crl: vec!["clients.crl".into()],
            }),
            redirect_http: Some("127.0.0.1:8081".parse().unwrap()),
        }],
        limits: Limits {
            max_header_bytes: 1,
            max_body_bytes: 1,
            header_read_timeout: DurationStr(Duration::from_secs(1)),
            idle_timeout: DurationStr(Duration::from_secs(1)),
            max_connections: 1,
            max_connections_per_ip: 1,
            upstream_connect_timeout: DurationStr(Duration::from_secs(1)),
            upstream_timeout: DurationStr(Duration::from_secs(1)),
            drain_timeout: DurationStr(Duration::from_secs(1)),
            body_timeout: DurationStr(Duration::from_secs(1)),
            min_body_rate: 1,
            request_timeout: DurationStr(Duration::from_secs(1)),
            max_requests_in_flight: 1,
            h2_max_concurrent_streams: 1,
            h2_max_resets: 1,
        },
        events: Events {
            sink: "stdout".into(),
            access_log: true,
        },
        security_headers: all_security_headers(),
        shared: Shared {
            url: "memory://".into(),
        },
        rate_limit: vec![RateLimitPolicy {
            name: "per-ip".into(),
            key: "ip".into(),
            rate: "10/s".into(),
            burst: 1,
            fail_open: true,
            mode: Mode::Enforce,
        }],
        bans: Some(Bans {
            mode: Mode::Enforce,
            exempt: CidrList(vec![]),
            threshold: 1.0,
            duration: DurationStr(Duration::from_secs(1)),
            max_duration: DurationStr(Duration::from_secs(1)),
        }),
        store: Store {
            url: Some("sqlite://./data/rampart.db".into()),
        },
        auth: Some(Auth {
            issuer: "https://auth.example.com".into(),
            audience: vec!["api".into()],
            access_ttl: DurationStr(Duration::from_secs(1)),
            refresh_ttl: DurationStr(Duration::from_secs(1)),
            session_idle_timeout: DurationStr(Duration::from_secs(1)),
            session_absolute_timeout: DurationStr(Duration::from_secs(1)),
            refresh_reuse_grace: DurationStr(Duration::from_secs(1)),
            key_algorithm: "EdDSA".into(),
            key_encryption_env: "RAMPART_KEY".into(),
            cors: Some("spa".into()),
            rate_limit: vec!["per-ip".into()],
            default_scopes: vec!["items:read".into()],
        }),
        waf: Some(Waf {
            mode: Mode::Detect,
            rules: vec!["crs/*.conf".into()],
            paranoia_level: Some(1),
            audit_log: Some("waf.jsonl".into()),
            audit_log_mode: AuditLogMode::All,
        }),
        cors: vec![CorsPolicy {
            name: "spa".into(),
            allow_origins: vec!["https://a.example".into()],
            allow_credentials: true,
            allow_methods: vec!["GET".into()],
            allow_headers: vec!["X".into()],
            expose_headers: vec!["Y".into()],
            max_age: DurationStr(Duration::from_secs(1)),
        }],
        route: vec![Route {
            name: "r".into(),
            match_: RouteMatch {
                host: Some("a.example".into()),
                path_prefix: "/".into(),
                methods: Some(vec!["GET".into()]),
            },
            upstream: OneOrMany::One("http://127.0.0.1:1".into()),
            cors: Some("spa".into()),
            rate_limit: vec!["per-ip".into()],
            waf: Some(RouteWaf {
                mode: Some(Mode::Enforce),
                paranoia_level: Some(2),
                exclusions: vec!["ruleRemoveById=942100".into()],
            }),
            auth: Some(vec!["jwt".into()]),
            scopes: vec!["items:read".into()],
            schema: Some("openapi.yaml".into()),
            validation: Some(RouteValidation {
                mode: Mode::Enforce,
                extra_fields: ExtraFields::Reject,
                unknown_operations: UnknownOperations::Reject,
                max_depth: 32,
            }),
            allow_from: Some(cidrs),
            allow_from_mode: Mode::Detect,
            strip_prefix: true,
            timeout: Some(DurationStr(Duration::from_secs(1))),
            max_body_bytes: Some(1),
            passive_health: PassiveHealth {
                max_fails: 1,
                fail_timeout: DurationStr(Duration::from_secs(1)),
            },
            request_headers: edits.clone(),
            response_headers: edits,
            security_headers: Some(all_security_headers()),
            allow_identities: Some(vec!["spiffe://corp/*".into()]),
            upstream_tls: Some(UpstreamTls {
                ca: Some("up-ca.pem".into()),
                cert: Some("up.pem".into()),
                key: Some("up.key".into()),
                server_name: Some("api.internal".into()),
            }),
        }],
    }
}

fn collect(prefix: &str, value: &toml::Value, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if OPAQUE.contains(&path.as_str()) {
                    out.insert(path);
                    continue;
                }
                match v {
                    toml::Value::Table(_) => collect(&path, v, out),
                    toml::Value::Array(items)
                        if items.first().is_some_and(toml::Value::is_table) =>
                    {
                        for item in items {
                            collect(&path, item, out);
                        }
                    }
                    _ => {
                        out.insert(path);
                    }
                }
            }
        }
        _ => unreachable!("the config is a table"),
    }
}

#[test]
fn docs_list_every_key_and_only_real_keys() {
    let value = toml::Value::try_from(sample()).unwrap();
    let mut keys = BTreeSet::new();
    collect("", &value, &mut keys);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md"))
        .unwrap();
    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let missing: Vec<_> = keys.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&keys).collect();
    assert!(
        missing.is_empty(),
        "keys without documentation in docs/config.md: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "documented keys the config does not accept: {stale:?}"
    );
}
