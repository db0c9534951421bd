//! The route table: host + path prefix + methods, longest prefix wins.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use rampart_config::{CidrList, HeaderEdits, Mode, Route, ValidatedConfig};

use crate::cors::CorsPolicy;
use crate::secheaders::SecurityHeaderSet;
use crate::upstream::UpstreamPool;

/// One route, compiled.
#[derive(Debug)]
pub struct RouteEntry {
    /// The route's name.
    pub name: Arc<str>,
    /// Its position in the file (`route[i]`).
    pub index: usize,
    host: HostMatch,
    /// The path prefix matched.
    pub path_prefix: String,
    methods: Option<Vec<Method>>,
    /// The upstreams and their health.
    pub upstreams: UpstreamPool,
    /// Strip `path_prefix` before forwarding.
    pub strip_prefix: bool,
    /// Time for the upstream to start answering.
    pub timeout: Duration,
    /// Body cap for this route.
    pub max_body_bytes: u64,
    /// The route's CORS policy.
    pub cors: Option<Arc<CorsPolicy>>,
    /// Route-level source allowlist and its mode.
    pub allow_from: Option<(CidrList, Mode)>,
    /// Edits of the request to the upstream.
    pub request_headers: CompiledEdits,
    /// Edits of the response to the client.
    pub response_headers: CompiledEdits,
    /// Security header values that replace the upstream's.
    pub security_headers: Option<SecurityHeaderSet>,
}

/// A route's `request_headers` / `response_headers`, parsed once per config.
#[derive(Debug, Clone, Default)]
pub struct CompiledEdits {
    set: Vec<(http::HeaderName, http::HeaderValue)>,
    remove: Vec<http::HeaderName>,
}

impl CompiledEdits {
    /// Parses validated edits (names and values were checked at load).
    pub fn compile(edits: &HeaderEdits) -> CompiledEdits {
        CompiledEdits {
            set: edits
                .set
                .iter()
                .filter_map(|(n, v)| {
                    Some((
                        http::HeaderName::from_bytes(n.as_bytes()).ok()?,
                        http::HeaderValue::from_str(v).ok()?,
                    ))
                })
                .collect(),
            remove: edits
                .remove
                .iter()
                .filter_map(|n| http::HeaderName::from_bytes(n.as_bytes()).ok())
                .collect(),
        }
    }

    /// Removes, then sets.
    pub fn apply(&self, headers: &mut http::HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `.example.com`
    Subdomains(String),
}

impl HostMatch {
    fn matches(&self, host: Option<&str>) -> bool {
        match (self, host) {
            (HostMatch::Any, _) => true,
            (_, None) => false,
            (HostMatch::Exact(h), Some(host)) => h.eq_ignore_ascii_case(host),
            (HostMatch::Subdomains(suffix), Some(host)) => {
                host.len() > suffix.len()
                    && host.is_char_boundary(host.len() - suffix.len())
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }

    fn rank(&self) -> u8 {
        match self {
            HostMatch::Exact(_) => 2,
            HostMatch::Subdomains(_) => 1,
            HostMatch::Any => 0,
        }
    }
}

impl RouteEntry {
    /// A route for an endpoint the gateway answers itself (`/auth/*`): no upstream, the
    /// given CORS policy and body cap.
    pub fn builtin(
        name: &str,
        index: usize,
        path_prefix: &str,
        cors: Option<Arc<CorsPolicy>>,
        max_body_bytes: u64,
    ) -> RouteEntry {
        RouteEntry {
            name: Arc::from(name),
            index,
            host: HostMatch::Any,
            path_prefix: path_prefix.to_owned(),
            methods: None,
            upstreams: UpstreamPool::new(&[], &rampart_config::PassiveHealth::default()),
            strip_prefix: false,
            timeout: std::time::Duration::from_secs(30),
            max_body_bytes,
            cors,
            allow_from: None,
            request_headers: CompiledEdits::default(),
            response_headers: CompiledEdits::default(),
            security_headers: None,
        }
    }

    fn path_matches(&self, path: &str) -> bool {
        let p = self.path_prefix.as_str();
        if p.ends_with('/') {
            path.starts_with(p) || path.len() + 1 == p.len() && p.starts_with(path)
        } else {
            path.starts_with(p) && (path.len() == p.len() || path.as_bytes()[p.len()] == b'/')
        }
    }

    /// The path the upstream receives for a (normalized) request path: without the matched
    /// prefix when `strip_prefix` is set.
    pub fn upstream_path<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        if !self.strip_prefix {
            return std::borrow::Cow::Borrowed(path);
        }
        let rest = path
            .strip_prefix(self.path_prefix.trim_end_matches('/'))
            .unwrap_or(path);
        if rest.starts_with('/') {
            std::borrow::Cow::Borrowed(rest)
        } else {
            std::borrow::Cow::Owned(format!("/{rest}"))
        }
    }

    /// The methods this route takes, when it restricts them.
    pub fn methods(&self) -> Option<&[Method]> {
        self.methods.as_deref()
    }
}

/// The outcome of a route lookup.
#[derive(Debug)]
pub enum RouteMatch<'a> {
    /// This route takes the request.
    Found(&'a Arc<RouteEntry>),
    /// Routes take this host and path, but not this method.
    MethodNotAllowed(Vec<Method>),
    /// No route takes this host and path.
    NotFound,
}

/// Every route of a config, ordered for lookup.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<RouteEntry>>,
}

impl RouteTable {
    /// Compiles the routes of a validated config.
    pub fn build(config: &ValidatedConfig) -> RouteTable {
        let mut routes: Vec<Arc<RouteEntry>> = config
            .route
            .iter()
            .enumerate()
            .map(|(i, r)| Arc::new(compile(config, i, r)))
            .collect();
        routes.sort_by(|a, b| {
            b.path_prefix
                .len()
                .cmp(&a.path_prefix.len())
                .then(b.host.rank().cmp(&a.host.rank()))
                .then(b.methods.is_some().cmp(&a.methods.is_some()))
                .then(a.index.cmp(&b.index))
        });
        RouteTable { routes }
    }

    /// Finds the route for a request. `host` is the request's host without port.
    pub fn find(&self, host: Option<&str>, path: &str, method: &Method) -> RouteMatch<'_> {
        let mut allowed: Vec<Method> = Vec::new();
        for r in &self.routes {
            if !r.host.matches(host) || !r.path_matches(path) {
                continue;
            }
            match &r.methods {
                None => return RouteMatch::Found(r),
                Some(ms) if ms.contains(method) => return RouteMatch::Found(r),
                Some(ms) => allowed.extend(
                    ms.iter()
                        .filter(|m| !allowed.contains(m))
                        .cloned()
                        .collect::<Vec<_>>(),
                ),
            }
        }
        if allowed.is_empty() {
            RouteMatch::NotFound
        } else {
            RouteMatch::MethodNotAllowed(allowed)
        }
    }

    /// The routes, in lookup order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<RouteEntry>> {
        self.routes.iter()
    }
}

fn compile(config: &ValidatedConfig, index: usize, r: &Route) -> RouteEntry {
    let host = match &r.match_.host {
        None => HostMatch::Any,
        Some(h) => match h.strip_prefix('*') {
            Some(suffix) => HostMatch::Subdomains(suffix.to_ascii_lowercase()),
            None => HostMatch::Exact(h.to_ascii_lowercase()),
        },
    };
    let methods = r.match_.methods.as_ref().map(|ms| {
        // Validated at load: every entry is a method.
        ms.iter()
            .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
            .collect()
    });
    let cors = r.cors.as_ref().and_then(|name| {
        let policy = config.cors_policy(name)?;
        Some(Arc::new(CorsPolicy::compile(
            policy,
            config.cors_origins(name),
        )))
    });
    RouteEntry {
        name: Arc::from(r.name.as_str()),
        index,
        host,
        path_prefix: r.match_.path_prefix.clone(),
        methods,
        upstreams: UpstreamPool::new(r.upstream.as_slice(), &r.passive_health),
        strip_prefix: r.strip_prefix,
        timeout: r.timeout.unwrap_or(config.limits.upstream_timeout).get(),
        max_body_bytes: r.max_body_bytes.unwrap_or(config.limits.max_body_bytes),
        cors,
        allow_from: r.allow_from.clone().map(|list| (list, r.allow_from_mode)),
        request_headers: CompiledEdits::compile(&r.request_headers),
        response_headers: CompiledEdits::compile(&r.response_headers),
        security_headers: r
            .security_headers
            .as_ref()
            .map(SecurityHeaderSet::overrides),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn table(routes: &str) -> RouteTable {
        let text =
            format!("version = 1\n[[listener]]\nname = \"p\"\nbind = \"127.0.0.1:1\"\n{routes}");
        RouteTable::build(&rampart_config::load_str(&text, Path::new("/x/r.toml")).unwrap())
    }

    fn name(m: RouteMatch<'_>) -> String {
        match m {
            RouteMatch::Found(r) => r.name.to_string(),
            RouteMatch::MethodNotAllowed(ms) => format!("405 {ms:?}"),
            RouteMatch::NotFound => "404".into(),
        }
    }

    #[test]
    fn longest_prefix_wins_then_host_then_methods() {
        let t = table(
            r#"
[[route]]
name = "root"
upstream = "http://127.0.0.1:1"
[[route]]
name = "api"
match = { path_prefix = "/api/" }
upstream = "http://127.0.0.1:1"
[[route]]
name = "api-host"
match = { host = "api.example.com", path_prefix = "/api/" }
upstream = "http://127.0.0.1:1"
[[route]]
name = "wild"
match = { host = "*.example.com", path_prefix = "/api/" }
upstream = "http://127.0.0.1:1"
[[route]]
name = "admin"
match = { path_prefix = "/admin", methods = ["GET"] }
upstream = "http://127.0.0.1:1"
"#,
        );
        let get = Method::GET;
        assert_eq!(name(t.find(None, "/api/x", &get)), "api");
        assert_eq!(
            name(t.find(Some("api.example.com"), "/api/x", &get)),
            "api-host"
        );
        assert_eq!(
            name(t.find(Some("API.example.com"), "/api/x", &get)),
            "api-host"
        );
        assert_eq!(name(t.find(Some("v2.example.com"), "/api/x", &get)), "wild");
        assert_eq!(name(t.find(Some("example.com"), "/api/x", &get)), "api");
        assert_eq!(name(t.find(None, "/api", &get)), "api");
        assert_eq!(name(t.find(None, "/apix", &get)), "root");
        assert_eq!(name(t.find(None, "/admin", &get)), "admin");
        assert_eq!(name(t.find(None, "/admin/users", &get)), "admin");
        assert_eq!(name(t.find(None, "/administrator", &get)), "root");
        assert_eq!(name(t.find(None, "/admin", &Method::POST)), "root");
    }

    #[test]
    fn method_mismatch_without_fallback_is_405() {
        let t = table(
            r#"
[[route]]
name = "ro"
match = { path_prefix = "/items", methods = ["GET", "HEAD"] }
upstream = "http://127.0.0.1:1"
"#,
        );
        assert_eq!(
            name(t.find(None, "/items/1", &Method::DELETE)),
            "405 [GET, HEAD]"
        );
        assert_eq!(name(t.find(None, "/other", &Method::GET)), "404");
    }
}
