//! The config file's types. They are the schema: every field is documented here, and the
//! reference in `docs/config.md` is checked against these names by a test.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::values::{CidrList, DurationStr, OneOrMany};

/// The whole config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version of the file; must be `1`.
    pub version: u32,
    /// Folder for state (databases, logs); relative to the config file. Default `./rampart-data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The admin listener: metrics and health.
    #[serde(default)]
    pub admin: Admin,
    /// Public listeners (`[[listener]]`); at least one.
    #[serde(default)]
    pub listener: Vec<Listener>,
    /// Size and time limits of HTTP connections and requests.
    #[serde(default)]
    pub limits: Limits,
    /// Where security events and the access log go.
    #[serde(default)]
    pub events: Events,
    /// Security headers added to every response.
    #[serde(default)]
    pub security_headers: SecurityHeaders,
    /// Where state shared between gateway nodes lives (rate-limit counters, bans).
    #[serde(default)]
    pub shared: Shared,
    /// Named CORS policies (`[[cors]]`), used by routes.
    #[serde(default)]
    pub cors: Vec<CorsPolicy>,
    /// Named rate-limit policies (`[[rate_limit]]`), used by routes.
    #[serde(default)]
    pub rate_limit: Vec<RateLimitPolicy>,
    /// Behaviour bans (`[bans]`); absent: off.
    pub bans: Option<Bans>,
    /// The WAF (`[waf]`); absent: off.
    pub waf: Option<Waf>,
    /// Where users, sessions and keys are stored (`[store]`).
    #[serde(default)]
    pub store: Store,
    /// The auth server (`[auth]`); absent: no built-in endpoints, and routes cannot require
    /// credentials.
    pub auth: Option<Auth>,
    /// Routes (`[[route]]`): which requests go to which upstream, under which policies.
    #[serde(default)]
    pub route: Vec<Route>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./rampart-data")
}

/// `[admin]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Address of the admin listener (`/metrics`, `/healthz`, `/readyz`). Default
    /// `127.0.0.1:9901`; keep it on loopback or a private network.
    #[serde(default = "default_admin_bind")]
    pub bind: SocketAddr,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            bind: default_admin_bind(),
        }
    }
}

fn default_admin_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9901))
}

/// `[[listener]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Unique name, used in events and metrics.
    pub name: String,
    /// Address and port to accept connections on (`"0.0.0.0:8080"`, `"[::]:8080"`).
    pub bind: SocketAddr,
    /// Connection firewall, evaluated at accept before any byte is read.
    #[serde(default)]
    pub firewall: Firewall,
    /// Peers allowed to set `X-Forwarded-For`, `Forwarded` and `X-Request-Id`. From anyone
    /// else those headers are replaced.
    #[serde(default)]
    pub trusted_proxies: CidrList,
    /// TLS termination (`tls = { cert, key, min_version }`); absent: plain HTTP.
    pub tls: Option<ListenerTls>,
    /// Client certificates (mTLS): `client_auth = { ca, mode, crl }`. Needs `tls`.
    pub client_auth: Option<ClientAuth>,
    /// A plain-HTTP address answering every request with 308 to `https://` on this listener
    /// (ACME http-01 challenges excepted). Needs `tls`.
    pub redirect_http: Option<SocketAddr>,
}

/// A listener's `tls = { ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM certificate chain of the default certificate (leaf first); relative to the config
    /// file.
    pub cert: Option<PathBuf>,
    /// PEM private key of the default certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// DER OCSP response stapled with the default certificate.
    pub ocsp: Option<PathBuf>,
    /// Lowest protocol version: `"1.2"` (default) or `"1.3"`. Lower versions are refused.
    #[serde(default = "d_tls_min")]
    pub min_version: String,
    /// More certificates, chosen by SNI.
    #[serde(default)]
    pub certs: Vec<SniCert>,
    /// Certificates obtained and renewed by ACME (RFC 8555).
    pub acme: Option<Acme>,
}

fn d_tls_min() -> String {
    "1.2".to_owned()
}

/// One entry of `tls.certs = [{ cert, key, names }]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SniCert {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Server names this certificate answers (`api.example.com`, `*.example.com`).
    pub names: Vec<String>,
    /// DER OCSP response stapled with this certificate.
    pub ocsp: Option<PathBuf>,
}

/// `tls.acme = { directory, domains, contact, challenge }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acme {
    /// The ACME directory URL (Let's Encrypt: `https://acme-v02.api.letsencrypt.org/directory`).
    pub directory: String,
    /// Names on the certificate; the first is its common name.
    pub domains: Vec<String>,
    /// Contact URIs (`mailto:ops@example.com`).
    #[serde(default = "d_contact")]
    pub contact: OneOrMany<String>,
    /// `http-01` (default; needs port 80 reaching `redirect_http` or a plain listener) or
    /// `tls-alpn-01` (answered on this listener).
    #[serde(default = "d_acme_challenge")]
    pub challenge: String,
    /// Renew when the certificate has less than this left. Default `30d`.
    #[serde(default = "d_acme_renew")]
    pub renew_before: DurationStr,
    /// Extra PEM root trusted for the ACME server's own HTTPS (a private or test CA).
    pub directory_ca: Option<PathBuf>,
}

fn d_contact() -> OneOrMany<String> {
    OneOrMany::Many(Vec::new())
}

fn d_acme_challenge() -> String {
    "http-01".to_owned()
}

fn d_acme_renew() -> DurationStr {
    DurationStr(Duration::from_secs(30 * 86_400))
}

/// A listener's `client_auth = { ca, mode, crl }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    /// PEM bundle of the CAs client certificates must chain to.
    pub ca: PathBuf,
    /// `required`: no handshake without a valid client certificate; `optional`: anonymous
    /// connections are served, and routes with `auth = ["mtls"]` answer 401 to them.
    #[serde(default)]
    pub mode: ClientAuthMode,
    /// PEM or DER certificate revocation lists; revoked client certificates are refused.
    #[serde(default)]
    pub crl: Vec<PathBuf>,
}

/// `client_auth.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuthMode {
    /// Anonymous clients are served; routes decide.
    Optional,
    /// Handshakes without a valid client certificate fail.
    #[default]
    Required,
}

/// A route's `upstream_tls = { ca, cert, key, server_name }` for `https://` upstreams.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM roots the upstream's certificate must chain to; absent: the system's roots.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain presented to the upstream (mTLS).
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// Name checked against the upstream's certificate and sent as SNI; default: the
    /// upstream URL's host.
    pub server_name: Option<String>,
}

/// A listener's `firewall = { allow = [...], deny = [...], mode = "enforce" }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    /// Sources allowed to connect. Default: everyone (`0.0.0.0/0`, `::/0`).
    #[serde(default = "allow_all")]
    pub allow: CidrList,
    /// Sources refused; deny wins over allow.
    #[serde(default)]
    pub deny: CidrList,
    /// `enforce` closes refused connections; `detect` logs them and lets them in; `off`.
    #[serde(default)]
    pub mode: Mode,
}

impl Default for Firewall {
    fn default() -> Self {
        Firewall {
            allow: allow_all(),
            deny: CidrList::default(),
            mode: Mode::Enforce,
        }
    }
}

fn allow_all() -> CidrList {
    CidrList(vec![
        "0.0.0.0/0".parse().expect("valid CIDR"),
        "::/0".parse().expect("valid CIDR"),
    ])
}

/// What a filtering control does with a request it would refuse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The control does nothing.
    Off,
    /// The control logs and counts what it would refuse, and lets it through.
    Detect,
    /// The control refuses.
    #[default]
    Enforce,
}

impl Mode {
    /// The name used in events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Detect => "detect",
            Mode::Enforce => "enforce",
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request head (request line and headers) in bytes; 431 beyond. Default 16384.
    #[serde(default = "d_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Largest request body in bytes; 413 beyond, also for chunked bodies. Default 10 MiB.
    /// A route may lower it.
    #[serde(default = "d_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Time a client has to send a complete request head. Default `10s`.
    #[serde(default = "d_header_read_timeout")]
    pub header_read_timeout: DurationStr,
    /// A keep-alive connection with no request in flight is closed after this. Default `60s`.
    #[serde(default = "d_idle_timeout")]
    pub idle_timeout: DurationStr,
    /// Open client connections at most; beyond, new ones are closed at accept. Default 10000.
    #[serde(default = "d_max_connections")]
    pub max_connections: usize,
    /// Open connections per client address (IPv6 grouped by /64). Default 256.
    #[serde(default = "d_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// Time to open a connection to an upstream; 504 beyond. Default `5s`.
    #[serde(default = "d_upstream_connect_timeout")]
    pub upstream_connect_timeout: DurationStr,
    /// Time for an upstream to start its response; 504 beyond. Default `60s`. A route may
    /// set its own `timeout`.
    #[serde(default = "d_upstream_timeout")]
    pub upstream_timeout: DurationStr,
    /// On SIGTERM, how long in-flight requests have to finish. Default `30s`.
    #[serde(default = "d_drain_timeout")]
    pub drain_timeout: DurationStr,
    /// Time a request body may take before `min_body_rate` applies (and on top of it).
    /// Default `20s`.
    #[serde(default = "d_body_timeout")]
    pub body_timeout: DurationStr,
    /// Bytes per second a request body must average once `body_timeout` is used up; slower
    /// bodies are cut with 408. 0 turns the rate off. Default 500.
    #[serde(default = "d_min_body_rate")]
    pub min_body_rate: u64,
    /// Time from a request's head to the end of its body; 408 beyond. Default `5m`.
    #[serde(default = "d_request_timeout")]
    pub request_timeout: DurationStr,
    /// Requests handled at once across all listeners; beyond, new ones are answered 503 with
    /// `Retry-After` at once instead of queueing. Default 10000.
    #[serde(default = "d_max_requests_in_flight")]
    pub max_requests_in_flight: usize,
    /// HTTP/2 streams open at once per connection. Default 128.
    #[serde(default = "d_h2_max_concurrent_streams")]
    pub h2_max_concurrent_streams: u32,
    /// Requests a client may cancel (HTTP/2 `RST_STREAM`, or a dropped connection) per
    /// connection within 10 s; beyond, the connection is closed and the client scored for
    /// stream abuse (HTTP/2 rapid reset). Default 100.
    #[serde(default = "d_h2_max_resets")]
    pub h2_max_resets: u32,
}

fn d_max_header_bytes() -> usize {
    16 * 1024
}
fn d_max_body_bytes() -> u64 {
    10 * 1024 * 1024
}
fn d_header_read_timeout() -> DurationStr {
    Duration::from_secs(10).into()
}
fn d_idle_timeout() -> DurationStr {
    Duration::from_secs(60).into()
}
fn d_max_connections() -> usize {
    10_000
}
fn d_max_connections_per_ip() -> usize {
    256
}
fn d_upstream_connect_timeout() -> DurationStr {
    Duration::from_secs(5).into()
}
fn d_upstream_timeout() -> DurationStr {
    Duration::from_secs(60).into()
}
fn d_drain_timeout() -> DurationStr {
    Duration::from_secs(30).into()
}
fn d_body_timeout() -> DurationStr {
    Duration::from_secs(20).into()
}
fn d_min_body_rate() -> u64 {
    500
}
fn d_request_timeout() -> DurationStr {
    Duration::from_secs(300).into()
}
fn d_max_requests_in_flight() -> usize {
    10_000
}
fn d_h2_max_concurrent_streams() -> u32 {
    128
}
fn d_h2_max_resets() -> u32 {
    100
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: d_max_header_bytes(),
            max_body_bytes: d_max_body_bytes(),
            header_read_timeout: d_header_read_timeout(),
            idle_timeout: d_idle_timeout(),
            max_connections: d_max_connections(),
            max_connections_per_ip: d_max_connections_per_ip(),
            upstream_connect_timeout: d_upstream_connect_timeout(),
            upstream_timeout: d_upstream_timeout(),
            drain_timeout: d_drain_timeout(),
            body_timeout: d_body_timeout(),
            min_body_rate: d_min_body_rate(),
            request_timeout: d_request_timeout(),
            max_requests_in_flight: d_max_requests_in_flight(),
            h2_max_concurrent_streams: d_h2_max_concurrent_streams(),
            h2_max_resets: d_h2_max_resets(),
        }
    }
}

/// `[events]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// `"stdout"`, `"stderr"` or a file path (relative to the config file); JSON lines.
    #[serde(default = "d_sink")]
    pub sink: String,
    /// Write an `http.request` event for every request (the access log). Default on;
    /// security events are written either way.
    #[serde(default = "d_true")]
    pub access_log: bool,
}

fn d_true() -> bool {
    true
}

fn d_sink() -> String {
    "stdout".to_owned()
}

impl Default for Events {
    fn default() -> Self {
        Events {
            sink: d_sink(),
            access_log: true,
        }
    }
}

/// `[security_headers]` (global defaults) or a route's `security_headers = {...}`.
///
/// Globally, each header is added to responses that lack it; the upstream's own value is kept.
/// On a route, the values given replace the upstream's (`override`), and `false`/`""` removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityHeaders {
    /// `X-Content-Type-Options: nosniff`. Default on.
    pub content_type_options: Option<bool>,
    /// `Referrer-Policy` value. Default `strict-origin-when-cross-origin`; `""` sends none.
    pub referrer_policy: Option<String>,
    /// `X-Frame-Options` value (`DENY`, `SAMEORIGIN`). Default `DENY`; `""` sends none.
    pub frame_options: Option<String>,
    /// `Content-Security-Policy` value. Default `frame-ancestors 'none'`; `""` sends none.
    pub content_security_policy: Option<String>,
    /// `Strict-Transport-Security` value, sent on TLS listeners only. Default
    /// `max-age=31536000; includeSubDomains`; `""` sends none.
    pub strict_transport_security: Option<String>,
    /// `Cross-Origin-Opener-Policy` value. Default none.
    pub cross_origin_opener_policy: Option<String>,
    /// `Permissions-Policy` value. Default none.
    pub permissions_policy: Option<String>,
}

/// `[[cors]]`: a named CORS policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsPolicy {
    /// Unique name, referenced by `route.cors` and `auth.cors`.
    pub name: String,
    /// Exact origins (`https://app.example.com`), `"*"`, or a pattern with one leading
    /// wildcard label (`https://*.example.com`). `"null"` is refused.
    pub allow_origins: Vec<String>,
    /// Whether browsers may send cookies; refused together with `"*"` or patterns.
    #[serde(default)]
    pub allow_credentials: bool,
    /// Methods allowed in preflights. Default `GET, HEAD, POST`.
    #[serde(default = "d_cors_methods")]
    pub allow_methods: Vec<String>,
    /// Request headers allowed in preflights (case-insensitive). Default `Content-Type`.
    #[serde(default = "d_cors_headers")]
    pub allow_headers: Vec<String>,
    /// Response headers scripts may read, beside `Retry-After`, `RateLimit`,
    /// `RateLimit-Policy` and `X-Request-Id`, which are always exposed.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// How long browsers may cache a preflight. Default `10m`.
    #[serde(default = "d_cors_max_age")]
    pub max_age: DurationStr,
}

fn d_cors_methods() -> Vec<String> {
    vec!["GET".into(), "HEAD".into(), "POST".into()]
}
fn d_cors_headers() -> Vec<String> {
    vec!["Content-Type".into()]
}
fn d_cors_max_age() -> DurationStr {
    Duration::from_secs(600).into()
}

/// `[shared]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shared {
    /// `"memory://"` (this node only), `"redis://host:6379"` or
    /// `"redis+cluster://h1:6379,h2:6379,h3:6379"`. Read at start; a change needs a restart.
    #[serde(default = "d_shared_url")]
    pub url: String,
}

fn d_shared_url() -> String {
    "memory://".to_owned()
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            url: d_shared_url(),
        }
    }
}

/// `[[rate_limit]]`: a named GCRA policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitPolicy {
    /// Unique name, referenced by `route.rate_limit`; shown in `RateLimit-Policy`.
    pub name: String,
    /// What is counted: `ip` (IPv6 by /64), `route`, or `header:NAME` (counted by IP when the
    /// header is absent).
    pub key: String,
    /// Sustained rate: `"100/s"`, `"600/m"`, `"1000/h"`.
    pub rate: String,
    /// Requests allowed at once on top of the rate; with burst N, N requests in an instant pass
    /// and the next is refused.
    pub burst: u32,
    /// While the shared store is down: `true` lets requests through, `false` answers 503.
    #[serde(default = "d_true")]
    pub fail_open: bool,
    /// `enforce` answers 429; `detect` logs `ratelimit.reject` and lets the request through.
    #[serde(default)]
    pub mode: Mode,
}

/// `[bans]`: clients whose behaviour scores (429s, 404 bursts…) cross a threshold are refused
/// at accept for a while; repeat offenders for longer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bans {
    /// `enforce` closes banned clients' connections; `detect` only logs.
    #[serde(default)]
    pub mode: Mode,
    /// Networks never scored nor banned.
    #[serde(default)]
    pub exempt: CidrList,
    /// Score that bans. Default 20 (a 429 scores 1, a 404 0.5).
    #[serde(default = "d_ban_threshold")]
    pub threshold: f64,
    /// Length of a first ban. Default `5m`; each repeat lasts 4 times the previous.
    #[serde(default = "d_ban_duration")]
    pub duration: DurationStr,
    /// Longest ban. Default `24h`.
    #[serde(default = "d_ban_max")]
    pub max_duration: DurationStr,
}

fn d_ban_threshold() -> f64 {
    20.0
}
fn d_ban_duration() -> DurationStr {
    Duration::from_secs(300).into()
}
fn d_ban_max() -> DurationStr {
    Duration::from_secs(86_400).into()
}

/// `[store]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// `"sqlite://path"` (relative to the config file) or `"postgres://user@host/db"`.
    /// Default: `rampart.db` in `data_dir`. Read at start.
    pub url: Option<String>,
}

/// `[auth]`: the built-in auth server (`/auth/*`, `/.well-known/jwks.json`) and the access
/// tokens routes with `auth = ["jwt"]` verify. Read at start; changes need a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// `iss` of the tokens, and the origin cookie endpoints trust (`https://auth.example.com`).
    pub issuer: String,
    /// `aud` of the tokens.
    pub audience: Vec<String>,
    /// Access-token lifetime. Default `15m`.
    #[serde(default = "d_access_ttl")]
    pub access_ttl: DurationStr,
    /// Refresh-token lifetime. Default `7d`.
    #[serde(default = "d_week")]
    pub refresh_ttl: DurationStr,
    /// A session unused this long ends. Default `30m`.
    #[serde(default = "d_idle")]
    pub session_idle_timeout: DurationStr,
    /// A session ends this long after login. Default `7d`.
    #[serde(default = "d_week")]
    pub session_absolute_timeout: DurationStr,
    /// Two tabs refreshing at once within this window get the same successor. Default `10s`.
    #[serde(default = "d_grace")]
    pub refresh_reuse_grace: DurationStr,
    /// Algorithm of new signing keys: `EdDSA` (default), `ES256` or `RS256`.
    #[serde(default = "d_alg")]
    pub key_algorithm: String,
    /// Environment variable holding the key that encrypts signing keys at rest (32 bytes or
    /// more, raw or base64). When unset, a key file is created in `data_dir` (mode 0600).
    #[serde(default = "d_key_env")]
    pub key_encryption_env: String,
    /// CORS policy of the built-in endpoints.
    pub cors: Option<String>,
    /// Rate-limit policies of the built-in endpoints.
    #[serde(default)]
    pub rate_limit: Vec<String>,
    /// Scopes put into access tokens issued at login.
    #[serde(default)]
    pub default_scopes: Vec<String>,
}

fn d_access_ttl() -> DurationStr {
    Duration::from_secs(900).into()
}
fn d_week() -> DurationStr {
    Duration::from_secs(7 * 86_400).into()
}
fn d_idle() -> DurationStr {
    Duration::from_secs(1800).into()
}
fn d_grace() -> DurationStr {
    Duration::from_secs(10).into()
}
fn d_alg() -> String {
    "EdDSA".to_owned()
}
fn d_key_env() -> String {
    "RAMPART_KEY".to_owned()
}

/// `[waf]`: the SecLang engine, running the OWASP Core Rule Set or any rule files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waf {
    /// `detect` (the default: log what would be blocked, block nothing), `enforce` (follow
    /// the rules' disruptive actions: CRS blocks through its anomaly-score rules) or `off`.
    /// Overrides `SecRuleEngine` in the rule files.
    #[serde(default = "d_detect")]
    pub mode: Mode,
    /// Rule files in load order, globs allowed, relative to the config file. Empty: the
    /// built-in rules (SQL injection, XSS, path traversal).
    #[serde(default)]
    pub rules: Vec<String>,
    /// CRS paranoia level 1-4; when set, overrides the rule files' setting.
    pub paranoia_level: Option<u8>,
    /// JSON-lines audit log of WAF transactions (the format the CRS regression runner reads).
    pub audit_log: Option<String>,
    /// `relevant`: transactions where a rule matched; `all`: every transaction.
    #[serde(default)]
    pub audit_log_mode: AuditLogMode,
}

fn d_detect() -> Mode {
    Mode::Detect
}

/// Which WAF transactions reach the audit log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditLogMode {
    /// Transactions where a rule matched.
    #[default]
    Relevant,
    /// Every transaction.
    All,
}

/// A route's `waf = { mode = "detect", paranoia_level = 2 }`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteWaf {
    /// Mode on this route; default `[waf] mode`.
    pub mode: Option<Mode>,
    /// Paranoia level on this route; default `[waf] paranoia_level`.
    pub paranoia_level: Option<u8>,
    /// Rule exclusions on this route, in SecLang `ctl` syntax: `ruleRemoveById=942100`,
    /// `ruleRemoveTargetById=942100;ARGS:password`, `ruleRemoveByTag=attack-sqli`,
    /// `ruleRemoveTargetByTag=attack-xss;REQUEST_COOKIES:theme`.
    #[serde(default)]
    pub exclusions: Vec<String>,
}

/// A route's `validation = { mode = "enforce", extra_fields = "reject" }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteValidation {
    /// `enforce` refuses invalid requests (400 with every violation); `detect` logs
    /// `validation.reject` and forwards them.
    #[serde(default)]
    pub mode: Mode,
    /// `reject` (default): fields and query parameters the schema does not declare are
    /// refused; `allow`: they pass.
    #[serde(default)]
    pub extra_fields: ExtraFields,
    /// `reject` (default): paths and methods the document does not have get 404/405;
    /// `pass`: they are forwarded unchecked.
    #[serde(default)]
    pub unknown_operations: UnknownOperations,
    /// Deepest nesting of JSON bodies. Default 32, at most 127.
    #[serde(default = "d_max_depth")]
    pub max_depth: usize,
}

fn d_max_depth() -> usize {
    32
}

impl Default for RouteValidation {
    fn default() -> Self {
        RouteValidation {
            mode: Mode::Enforce,
            extra_fields: ExtraFields::Reject,
            unknown_operations: UnknownOperations::Reject,
            max_depth: d_max_depth(),
        }
    }
}

/// Whether undeclared fields are refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtraFields {
    /// Refused.
    #[default]
    Reject,
    /// Allowed.
    Allow,
}

/// What happens to operations the document does not have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownOperations {
    /// 404 or 405.
    #[default]
    Reject,
    /// Forwarded unchecked.
    Pass,
}

/// `[[route]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Unique name, used in events and metrics.
    pub name: String,
    /// Which requests this route takes; the longest matching `path_prefix` wins.
    #[serde(rename = "match", default)]
    pub match_: RouteMatch,
    /// Upstream base URL(s), `http://host:port[/base]`; several are used round-robin.
    pub upstream: OneOrMany<String>,
    /// Name of a `[[cors]]` policy for this route.
    pub cors: Option<String>,
    /// Names of `[[rate_limit]]` policies; all must admit the request.
    #[serde(default)]
    pub rate_limit: Vec<String>,
    /// WAF settings of this route (needs `[waf]`).
    pub waf: Option<RouteWaf>,
    /// Credentials accepted (any one suffices): `none` or `jwt`. Required on every route once
    /// `[auth]` exists, so a route is never public by accident.
    pub auth: Option<Vec<String>>,
    /// Scopes a token must carry on this route (all of them); 403 `insufficient_scope`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// OpenAPI 3.0/3.1 document (YAML or JSON) the requests of this route are checked
    /// against; relative to the config file.
    pub schema: Option<String>,
    /// How `schema` is applied.
    pub validation: Option<RouteValidation>,
    /// Only these sources may use the route (403 otherwise).
    pub allow_from: Option<CidrList>,
    /// Mode of `allow_from`. Default `enforce`.
    #[serde(default)]
    pub allow_from_mode: Mode,
    /// Remove the matched `path_prefix` before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Time for the upstream to start its response; overrides `limits.upstream_timeout`.
    pub timeout: Option<DurationStr>,
    /// Lower body cap for this route; cannot exceed `limits.max_body_bytes`.
    pub max_body_bytes: Option<u64>,
    /// Passive health of the route's upstreams.
    #[serde(default)]
    pub passive_health: PassiveHealth,
    /// Headers set on (or removed from) the request to the upstream.
    #[serde(default)]
    pub request_headers: HeaderEdits,
    /// Headers set on (or removed from) the response to the client.
    #[serde(default)]
    pub response_headers: HeaderEdits,
    /// Security header values that replace the upstream's on this route.
    pub security_headers: Option<SecurityHeaders>,
    /// Client-certificate identities allowed on this route (`spiffe://corp/ns/billing/*`,
    /// `web.internal`); a trailing `*` matches any rest. Needs `mtls` in `auth`.
    pub allow_identities: Option<Vec<String>>,
    /// TLS towards `https://` upstreams: roots, client certificate, server name.
    pub upstream_tls: Option<UpstreamTls>,
}

/// A route's `match = { host = "...", path_prefix = "/api/", methods = ["GET"] }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Host (without port), exact or with one leading wildcard label (`*.example.com`).
    /// Absent: any host.
    pub host: Option<String>,
    /// Path prefix, matched on whole segments when it does not end in `/`. Default `/`.
    #[serde(default = "d_prefix")]
    pub path_prefix: String,
    /// Methods taken by this route; others get 405 with `Allow`. Absent: all.
    pub methods: Option<Vec<String>>,
}

fn d_prefix() -> String {
    "/".to_owned()
}

impl Default for RouteMatch {
    fn default() -> Self {
        RouteMatch {
            host: None,
            path_prefix: d_prefix(),
            methods: None,
        }
    }
}

/// `passive_health = { max_fails = 1, fail_timeout = "10s" }`: after `max_fails` failures in
/// a row (connection refused, reset, timeout), an upstream is skipped for `fail_timeout`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassiveHealth {
    /// Failures in a row that take an upstream out. Default 1.
    #[serde(default = "d_max_fails")]
    pub max_fails: u32,
    /// How long it stays out. Default `10s`.
    #[serde(default = "d_fail_timeout")]
    pub fail_timeout: DurationStr,
}

fn d_max_fails() -> u32 {
    1
}
fn d_fail_timeout() -> DurationStr {
    Duration::from_secs(10).into()
}

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth {
            max_fails: d_max_fails(),
            fail_timeout: d_fail_timeout(),
        }
    }
}

/// `request_headers = { set = { "X-Env" = "prod" }, remove = ["X-Debug"] }`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderEdits {
    /// Headers to set, replacing any value.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Headers to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}
