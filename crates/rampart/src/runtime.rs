//! The gateway's state: the current config snapshot (swapped whole on reload) and what lives
//! across snapshots (events, connection counts, readiness).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use rampart_config::{CidrList, Firewall, Mode, ValidatedConfig};
use rampart_limit::{BanPolicy, Bans, Limiter, Offence, Policy, StoreOptions};
use rampart_listen::{Admission, ConnTracker, Gate, HttpLimits, Refusal};
use rampart_proxy::secheaders::SecurityHeaderSet;
use rampart_proxy::{Forwarder, RouteTable};

use crate::events::{Event, EventSink};

/// Per-listener policy of a snapshot.
#[derive(Debug)]
pub struct ListenerPolicy {
    /// Connection firewall.
    pub firewall: Firewall,
    /// Who may set forwarding headers.
    pub trusted_proxies: CidrList,
}

/// A `[[rate_limit]]` policy, compiled.
#[derive(Debug)]
pub struct LimitPolicy {
    /// The GCRA policy.
    pub policy: Policy,
    /// Its mode.
    pub mode: Mode,
}

/// Metric handles of one route, registered once per config so a request pays no label
/// lookups.
#[derive(Debug)]
pub struct RouteMetrics {
    route: String,
    /// `rampart_http_request_duration_seconds{route}`.
    pub duration: metrics::Histogram,
    statuses: Box<[std::sync::OnceLock<metrics::Counter>]>,
}

impl RouteMetrics {
    fn new(route: &str) -> RouteMetrics {
        RouteMetrics {
            route: route.to_owned(),
            duration: metrics::histogram!("rampart_http_request_duration_seconds", "route" => route.to_owned()),
            statuses: (100..600).map(|_| std::sync::OnceLock::new()).collect(),
        }
    }

    /// `rampart_http_requests_total{route, status}`.
    pub fn requests(&self, status: http::StatusCode) -> &metrics::Counter {
        let i = usize::from(status.as_u16())
            .saturating_sub(100)
            .min(self.statuses.len() - 1);
        self.statuses[i].get_or_init(|| {
            metrics::counter!("rampart_http_requests_total", "route" => self.route.clone(), "status" => status.as_str().to_owned())
        })
    }
}

/// Everything a request needs from the config, compiled once per config.
#[derive(Debug)]
pub struct Runtime {
    /// The validated config this snapshot was built from.
    pub config: ValidatedConfig,
    /// Routes, with their upstream pools and policies.
    pub routes: RouteTable,
    /// The upstream clients, one per worker thread (a pooled connection stays with the
    /// thread that opened it).
    forwarders: Vec<Forwarder>,
    /// Global security header defaults.
    pub security_defaults: SecurityHeaderSet,
    /// Listener policies by listener name.
    pub listeners: HashMap<String, ListenerPolicy>,
    /// HTTP limits for new connections.
    pub http_limits: HttpLimits,
    /// Rate-limit policies of each route, by route index (`route[i]`).
    pub route_limits: Vec<Vec<Arc<LimitPolicy>>>,
    /// Mode of behaviour bans; `None` when `[bans]` is absent.
    pub bans_mode: Option<Mode>,
    /// Metric handles by route index; the last one is for requests no route took.
    metrics: Vec<RouteMetrics>,
    /// The WAF engines; `None` when `[waf]` is absent.
    pub waf: Option<crate::waf::WafSet>,
    /// Compiled request schemas by route index.
    pub schemas: Vec<Option<RouteSchema>>,
    /// What each route requires, by route index.
    pub route_auth: Vec<RouteAuth>,
    /// The route of the built-in endpoints (index = number of routes), when `[auth]` exists.
    pub auth_route: Option<Arc<rampart_proxy::RouteEntry>>,
}

/// A route's credential requirements.
#[derive(Debug, Clone, Default)]
pub struct RouteAuth {
    /// A verified bearer access token is accepted.
    pub jwt: bool,
    /// An API key is accepted (`Authorization: ApiKey ...` or `X-Api-Key`).
    pub api_key: bool,
    /// Scopes the token must carry.
    pub scopes: Vec<String>,
    /// A verified client certificate is accepted.
    pub mtls: bool,
    /// A server-side session cookie (`/auth/signin`) is accepted.
    pub session: bool,
    /// Client-certificate identities allowed (`None`: any verified one).
    pub allow_identities: Option<Vec<String>>,
}

/// A route's compiled OpenAPI document and how to apply it.
#[derive(Debug)]
pub struct RouteSchema {
    /// The compiled document.
    pub spec: rampart_validate::CompiledSpec,
    /// Mode, extra fields and unknown operations.
    pub config: rampart_validate::ValidationConfig,
}

fn compile_schema(r: &rampart_config::Route, max_body: u64) -> Result<Option<RouteSchema>, String> {
    let Some(path) = &r.schema else {
        return Ok(None);
    };
    let v = r.validation.clone().unwrap_or_default();
    let config = rampart_validate::ValidationConfig {
        mode: match v.mode {
            Mode::Off => rampart_validate::Mode::Off,
            Mode::Detect => rampart_validate::Mode::Detect,
            Mode::Enforce => rampart_validate::Mode::Enforce,
        },
        extra_fields: match v.extra_fields {
            rampart_config::ExtraFields::Reject => rampart_validate::ExtraFields::Reject,
            rampart_config::ExtraFields::Allow => rampart_validate::ExtraFields::Allow,
        },
        unknown_operations: match v.unknown_operations {
            rampart_config::UnknownOperations::Reject => {
                rampart_validate::UnknownOperations::Reject
            }
            rampart_config::UnknownOperations::Pass => rampart_validate::UnknownOperations::Pass,
        },
        max_depth: v.max_depth,
    };
    if config.mode == rampart_validate::Mode::Off {
        return Ok(None);
    }
    // With strip_prefix the document describes the stripped paths; otherwise its `servers`
    // say where its paths are mounted.
    let base = if r.strip_prefix {
        rampart_validate::BasePath::None
    } else {
        rampart_validate::BasePath::Servers
    };
    let options = rampart_validate::CompileOptions::from_config(&config)
        .with_max_body_bytes(usize::try_from(max_body).unwrap_or(usize::MAX))
        .with_base_path(base);
    let spec = rampart_validate::CompiledSpec::load(std::path::Path::new(path), &options)
        .map_err(|e| e.to_string())?;
    Ok(Some(RouteSchema { spec, config }))
}

impl Runtime {
    /// Compiles a validated config for `workers` worker threads. Fails on what only
    /// compiling shows (WAF rule files), with one message per problem.
    pub fn build(config: ValidatedConfig, workers: usize) -> Result<Runtime, Vec<String>> {
        let waf = crate::waf::WafSet::build(&config)?;
        let mut schema_errors = Vec::new();
        let schemas = config
            .route
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let max_body = r.max_body_bytes.unwrap_or(config.limits.max_body_bytes);
                compile_schema(r, max_body).unwrap_or_else(|e| {
                    schema_errors.push(format!("route[{i}].schema: {e}"));
                    None
                })
            })
            .collect();
        if !schema_errors.is_empty() {
            return Err(schema_errors);
        }
        let l = &config.limits;
        let http_limits = HttpLimits {
            max_header_bytes: l.max_header_bytes,
            header_read_timeout: l.header_read_timeout.get(),
            idle_timeout: l.idle_timeout.get(),
            max_connections: l.max_connections,
            max_connections_per_ip: l.max_connections_per_ip,
            h2_max_concurrent_streams: l.h2_max_concurrent_streams,
            h2_max_resets: l.h2_max_resets,
        };
        let listeners = config
            .listener
            .iter()
            .map(|li| {
                let policy = ListenerPolicy {
                    firewall: li.firewall.clone(),
                    trusted_proxies: li.trusted_proxies.clone(),
                };
                (li.name.clone(), policy)
            })
            .collect();
        let policies: HashMap<&str, Arc<LimitPolicy>> = config
            .rate_limit
            .iter()
            .filter_map(|p| {
                // Validated at load: the key, rate and burst parse.
                let policy = Policy::parse(&p.name, &p.key, &p.rate, p.burst, p.fail_open).ok()?;
                Some((
                    p.name.as_str(),
                    Arc::new(LimitPolicy {
                        policy,
                        mode: p.mode,
                    }),
                ))
            })
            .collect();
        let route_auth: Vec<RouteAuth> = config
            .route
            .iter()
            .map(|r| RouteAuth {
                jwt: r
                    .auth
                    .as_ref()
                    .is_some_and(|a| a.iter().any(|x| x == "jwt")),
                api_key: r
                    .auth
                    .as_ref()
                    .is_some_and(|a| a.iter().any(|x| x == "api_key")),
                scopes: r.scopes.clone(),
                mtls: r
                    .auth
                    .as_ref()
                    .is_some_and(|a| a.iter().any(|x| x == "mtls")),
                session: r
                    .auth
                    .as_ref()
                    .is_some_and(|a| a.iter().any(|x| x == "session")),
                allow_identities: r.allow_identities.clone(),
            })
            .collect();
        let auth_route = config.auth.as_ref().map(|a| {
            let cors = a.cors.as_ref().and_then(|name| {
                let policy = config.cors_policy(name)?;
                Some(Arc::new(rampart_proxy::CorsPolicy::compile(
                    policy,
                    config.cors_origins(name),
                )))
            });
            Arc::new(rampart_proxy::RouteEntry::builtin(
                "rampart-auth",
                config.route.len(),
                "/auth/",
                cors,
                64 * 1024,
            ))
        });
        let mut route_limits: Vec<Vec<Arc<LimitPolicy>>> = config
            .route
            .iter()
            .map(|r| {
                r.rate_limit
                    .iter()
                    .filter_map(|name| policies.get(name.as_str()).cloned())
                    .collect()
            })
            .collect();
        let metrics = config
            .route
            .iter()
            .map(|r| RouteMetrics::new(&r.name))
            .chain([RouteMetrics::new("")])
            .collect();
        if let Some(a) = &config.auth {
            route_limits.push(
                a.rate_limit
                    .iter()
                    .filter_map(|name| policies.get(name.as_str()).cloned())
                    .collect(),
            );
        }
        let mut upstream_tls = Vec::new();
        for (i, r) in config.route.iter().enumerate() {
            if r.upstream
                .as_slice()
                .iter()
                .any(|u| u.starts_with("https://"))
            {
                match rampart_proxy::upstream_tls(r.upstream_tls.as_ref()) {
                    Ok(t) => upstream_tls.push((i, t)),
                    Err(e) => return Err(vec![format!("route[{i}].upstream_tls: {e}")]),
                }
            }
        }
        Ok(Runtime {
            route_auth,
            auth_route,
            waf,
            schemas,
            metrics,
            route_limits,
            bans_mode: config.bans.as_ref().map(|b| b.mode),
            routes: RouteTable::build(&config),
            forwarders: (0..workers.max(1))
                .map(|_| Forwarder::new(l.upstream_connect_timeout.get(), &upstream_tls))
                .collect(),
            security_defaults: SecurityHeaderSet::defaults(&config.security_headers),
            listeners,
            http_limits,
            config,
        })
    }
}

thread_local! {
    /// The index of the worker thread running this code (0 elsewhere).
    pub static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Runtime {
    /// The upstream client of the calling worker thread.
    pub fn forwarder(&self) -> &Forwarder {
        let w = WORKER.with(std::cell::Cell::get);
        &self.forwarders[w % self.forwarders.len()]
    }

    /// Number of worker threads this snapshot was built for.
    pub fn workers(&self) -> usize {
        self.forwarders.len()
    }

    /// Metric handles of route `index` (`None`: no route).
    pub fn route_metrics(&self, index: Option<usize>) -> &RouteMetrics {
        let last = self.metrics.len() - 1;
        &self.metrics[index.unwrap_or(last).min(last)]
    }
}

/// The running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// The current snapshot; requests load it once at their start.
    pub runtime: ArcSwap<Runtime>,
    /// Event sink.
    pub events: EventSink,
    /// `/readyz`: false while starting and while draining.
    pub ready: AtomicBool,
    /// Open connections.
    pub conns: Arc<ConnTracker>,
    /// Rate-limit decisions (memory or Redis, from `[shared] url` at start).
    pub limiter: Arc<Limiter>,
    /// Behaviour bans (policy from `[bans]` at start).
    pub bans: Arc<Bans>,
    /// The auth server (from `[auth]` and `[store]` at start).
    pub auth: Option<Arc<crate::auth::AuthServer>>,
    /// The TLS listeners' configs (rotated apart from the snapshot).
    pub tls: crate::tls::TlsState,
    /// ACME-managed certificates and their pending challenges.
    pub acme: crate::acme::AcmeSet,
    id_prefix: u64,
    id_counter: AtomicU64,
    requests_in_flight: AtomicUsize,
}

/// A request counted in flight (see [`Gateway::start_request`]).
#[derive(Debug)]
pub struct RequestSlot<'a>(&'a AtomicUsize);

impl Drop for RequestSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gateway {
    /// A gateway on its first snapshot. Runs inside Tokio (the Redis clients need it).
    pub fn new(
        runtime: Runtime,
        events: EventSink,
        auth: Option<Arc<crate::auth::AuthServer>>,
        tls: crate::tls::TlsState,
        acme: crate::acme::AcmeSet,
    ) -> Result<Gateway, String> {
        let config = &runtime.config;
        let limiter = Limiter::from_url(&config.shared.url, StoreOptions::default())
            .map_err(|e| format!("shared.url: {e}"))?;
        let ban_policy = match &config.bans {
            Some(b) => BanPolicy {
                threshold: b.threshold,
                ban_duration: b.duration.get(),
                max_ban_duration: b.max_duration.get(),
                exempt: b.exempt.0.iter().map(|c| c.0).collect(),
                ..BanPolicy::default()
            },
            None => BanPolicy::default(),
        };
        let bans = Arc::new(Bans::new(ban_policy).map_err(|e| format!("bans: {e}"))?);
        bans.spawn_sync(
            &config.shared.url,
            StoreOptions::default(),
            std::time::Duration::from_millis(250),
        )
        .map_err(|e| format!("shared.url: {e}"))?;
        let mut seed = [0u8; 8];
        // An id prefix only needs to differ between processes; a clock fallback will do.
        if getrandom::fill(&mut seed).is_err() {
            seed = (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64)
                .to_le_bytes();
        }
        Ok(Gateway {
            runtime: ArcSwap::from_pointee(runtime),
            events,
            ready: AtomicBool::new(false),
            conns: Arc::new(ConnTracker::default()),
            limiter: Arc::new(limiter),
            bans,
            auth,
            tls,
            acme,
            id_prefix: u64::from_le_bytes(seed),
            id_counter: AtomicU64::new(1),
            requests_in_flight: AtomicUsize::new(0),
        })
    }

    /// A new request id: unique per process (random prefix) and per request (counter).
    pub fn next_request_id(&self) -> String {
        let n = self.id_counter.fetch_add(1, Ordering::Relaxed);
        let mut out = String::with_capacity(32);
        for word in [self.id_prefix, n] {
            for shift in (0..16).rev() {
                let nibble = ((word >> (shift * 4)) & 0xf) as u8;
                out.push(char::from(if nibble < 10 {
                    b'0' + nibble
                } else {
                    b'a' + nibble - 10
                }));
            }
        }
        out
    }

    /// Emits one event.
    pub fn emit(&self, event: Event) {
        self.events.emit(event);
    }
}

/// Counts a decision of a filtering layer.
pub fn count_decision(layer: &'static str, action: &'static str, mode: Mode, route: &str) {
    metrics::counter!(
        "rampart_decisions_total",
        "layer" => layer,
        "action" => action,
        "mode" => mode.as_str(),
        "route" => route.to_owned()
    )
    .increment(1);
}

impl Gateway {
    /// Counts a request in flight, unless `max` already are (then it is to be shed).
    pub fn start_request(&self, max: usize) -> Option<RequestSlot<'_>> {
        let n = self.requests_in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = RequestSlot(&self.requests_in_flight);
        (n < max).then_some(slot)
    }

    /// Feeds the behaviour score of `ip` when bans are on; a crossing bans it (`ban.add`).
    pub fn score_client(
        &self,
        rt: &Runtime,
        ip: IpAddr,
        offence: Offence,
        request_id: Option<&str>,
    ) {
        let Some(mode) = rt.bans_mode.filter(|m| *m != Mode::Off) else {
            return;
        };
        let scored = self.bans.record(ip, offence);
        if let Some(ban) = scored.banned {
            count_decision("ban", "add", mode, "");
            let until = humantime::format_rfc3339_seconds(ban.until).to_string();
            let mut event = Event::new("warn", "ban.add");
            if let Some(id) = request_id {
                event = event.with("request_id", id);
            }
            self.emit(
                event
                    .with("client_ip", ip.to_string())
                    .with("mode", mode.as_str())
                    .with("reason", ban.reason.to_string())
                    .with("until", until),
            );
        }
    }
}

impl Gate for Gateway {
    fn unparsable(&self, conn: &rampart_listen::ConnInfo, head: &[u8]) -> Option<Vec<u8>> {
        Gateway::unparsable(self, conn, head)
    }

    fn abused(&self, listener: &str, peer: SocketAddr, what: &str) {
        count_decision("connections", "close", Mode::Enforce, "");
        self.emit(
            Event::new("warn", "conn.abuse")
                .with("client_ip", peer.ip().to_string())
                .with("listener", listener)
                .with("mode", "enforce")
                .with("reason", what.to_owned()),
        );
        let rt = self.runtime.load();
        self.score_client(&rt, peer.ip(), Offence::StreamAbuse, None);
    }

    fn admit(&self, listener: &str, peer: SocketAddr) -> Admission {
        let rt = self.runtime.load();
        if let Some(mode) = rt.bans_mode
            && mode != Mode::Off
            && let Some(ban) = self.bans.is_banned(peer.ip())
        {
            if mode == Mode::Enforce {
                return Admission::Refuse(Refusal::Banned);
            }
            count_decision("ban", "deny", mode, "");
            self.emit(
                Event::new("warn", "ban.refuse")
                    .with("client_ip", peer.ip().to_string())
                    .with("listener", listener)
                    .with("mode", mode.as_str())
                    .with("reason", ban.reason.to_string()),
            );
        }
        let Some(policy) = rt.listeners.get(listener) else {
            return Admission::Admit(rt.http_limits);
        };
        let fw = &policy.firewall;
        if fw.mode != Mode::Off {
            let ip = peer.ip();
            let denied = fw.deny.contains(ip) || !fw.allow.contains(ip);
            if denied {
                if fw.mode == Mode::Enforce {
                    return Admission::Refuse(Refusal::Firewall);
                }
                count_decision("firewall", "deny", fw.mode, "");
                self.emit(
                    Event::new("warn", "firewall.deny")
                        .with("client_ip", ip.to_string())
                        .with("listener", listener)
                        .with("mode", fw.mode.as_str())
                        .with("reason", "source not allowed on this listener"),
                );
            }
        }
        Admission::Admit(rt.http_limits)
    }

    fn tls(&self, listener: &str) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.get(listener)
    }

    fn tls_failed(&self, listener: &str, peer: SocketAddr, why: &str) {
        metrics::counter!("rampart_tls_handshake_failures_total", "listener" => listener.to_owned())
            .increment(1);
        self.emit(
            Event::new("info", "tls.handshake.fail")
                .with("client_ip", peer.ip().to_string())
                .with("listener", listener)
                .with("reason", why.to_owned()),
        );
    }

    fn refused(&self, listener: &str, peer: SocketAddr, why: Refusal) {
        let (event, layer) = match why {
            Refusal::Firewall => ("firewall.deny", "firewall"),
            Refusal::Banned => ("ban.refuse", "ban"),
            Refusal::TooManyConnections | Refusal::TooManyFromClient => {
                ("conn.limit", "connections")
            }
        };
        count_decision(layer, "deny", Mode::Enforce, "");
        metrics::counter!("rampart_connections_refused_total", "reason" => why.as_str())
            .increment(1);
        self.emit(
            Event::new("warn", event)
                .with("client_ip", peer.ip().to_string())
                .with("listener", listener)
                .with("mode", "enforce")
                .with("reason", why.as_str()),
        );
    }
}
