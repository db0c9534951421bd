//! CORS per route: preflights answered by the gateway, CORS headers only for allowed origins,
//! the upstream's own `Access-Control-*` headers dropped so one policy speaks.

use http::Method;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use rampart_config::OriginPattern;

/// Response headers that scripts may always read.
const ALWAYS_EXPOSED: &[&str] = &[
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "X-Request-Id",
];

/// A compiled `[[cors]]` policy.
#[derive(Debug)]
pub struct CorsPolicy {
    /// The policy's name.
    pub name: String,
    origins: Vec<OriginPattern>,
    credentials: bool,
    methods: Vec<Method>,
    methods_value: HeaderValue,
    headers_lower: Vec<String>,
    headers_value: HeaderValue,
    expose_value: HeaderValue,
    max_age_value: HeaderValue,
}

/// Why a preflight was refused (answered 403 without CORS headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreflightRefusal {
    /// The origin is not in `allow_origins`.
    Origin,
    /// The requested method is not in `allow_methods`.
    Method,
    /// A requested header is not in `allow_headers`.
    Header,
}

impl PreflightRefusal {
    /// The reason used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            PreflightRefusal::Origin => "origin not allowed",
            PreflightRefusal::Method => "method not allowed",
            PreflightRefusal::Header => "header not allowed",
        }
    }
}

/// What CORS says about a request.
#[derive(Debug)]
pub enum CorsDecision {
    /// No `Origin` header: not a CORS request.
    NotCors,
    /// A preflight to answer now with these headers (status 204).
    PreflightAllowed(HeaderMap),
    /// A preflight to refuse.
    PreflightRefused(PreflightRefusal),
    /// An actual request; CORS headers go on the response when `allowed`.
    Actual {
        /// Whether the origin may read the response.
        allowed: bool,
    },
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> HeaderValue {
    let s = items.collect::<Vec<_>>().join(", ");
    // Validated at load: names and methods are tokens.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl CorsPolicy {
    /// Compiles a validated policy.
    pub fn compile(p: &rampart_config::CorsPolicy, origins: &[OriginPattern]) -> CorsPolicy {
        let methods: Vec<Method> = p
            .allow_methods
            .iter()
            .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
            .collect();
        let expose = ALWAYS_EXPOSED
            .iter()
            .copied()
            .chain(p.expose_headers.iter().map(String::as_str));
        CorsPolicy {
            name: p.name.clone(),
            origins: origins.to_vec(),
            credentials: p.allow_credentials,
            methods_value: join(methods.iter().map(Method::as_str)),
            methods,
            headers_lower: p
                .allow_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            headers_value: join(p.allow_headers.iter().map(String::as_str)),
            expose_value: join(expose),
            max_age_value: HeaderValue::from(p.max_age.get().as_secs()),
        }
    }

    /// Whether `origin` (an `Origin` header value) is allowed.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.origins.iter().any(|p| p.matches(origin))
    }

    /// Judges a request by its method and headers.
    pub fn decide(&self, method: &Method, headers: &HeaderMap) -> CorsDecision {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
            return CorsDecision::NotCors;
        };
        let allowed = self.origin_allowed(origin);
        let requested_method = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD);
        if method != Method::OPTIONS || requested_method.is_none() {
            return CorsDecision::Actual { allowed };
        }
        if !allowed {
            return CorsDecision::PreflightRefused(PreflightRefusal::Origin);
        }
        let method_ok = requested_method
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .is_some_and(|m| self.methods.contains(&m));
        if !method_ok {
            return CorsDecision::PreflightRefused(PreflightRefusal::Method);
        }
        let headers_ok = headers
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .all(|h| self.headers_lower.iter().any(|a| a.eq_ignore_ascii_case(h)));
        if !headers_ok {
            return CorsDecision::PreflightRefused(PreflightRefusal::Header);
        }
        let mut out = HeaderMap::new();
        self.put_origin(&mut out, origin);
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            self.methods_value.clone(),
        );
        if !self.headers_lower.is_empty() {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                self.headers_value.clone(),
            );
        }
        out.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age_value.clone());
        out.insert(
            header::VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        CorsDecision::PreflightAllowed(out)
    }

    fn put_origin(&self, out: &mut HeaderMap, origin: &str) {
        // The matched origin is echoed, never "*": responses vary by Origin either way.
        if let Ok(v) = HeaderValue::from_str(origin) {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        if self.credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// Sets the CORS headers of a response on this route (the gateway's own error responses
    /// included): drops the upstream's `Access-Control-*`, adds `Vary: Origin`, and for an
    /// allowed origin the allow, credentials and expose headers.
    pub fn apply_to_response(
        &self,
        request_origin: Option<&HeaderValue>,
        response: &mut HeaderMap,
    ) {
        let upstream_cors: Vec<HeaderName> = response
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for k in upstream_cors {
            response.remove(k);
        }
        add_vary_origin(response);
        let Some(origin) = request_origin.and_then(|o| o.to_str().ok()) else {
            return;
        };
        if self.origin_allowed(origin) {
            self.put_origin(response, origin);
            response.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                self.expose_value.clone(),
            );
        }
    }
}

fn add_vary_origin(headers: &mut HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("origin") || v.trim() == "*");
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_config::{DurationStr, parse_origin_pattern};
    use std::time::Duration;

    fn policy(credentials: bool) -> CorsPolicy {
        let p = rampart_config::CorsPolicy {
            name: "spa".into(),
            allow_origins: vec!["https://app.example.com".into()],
            allow_credentials: credentials,
            allow_methods: vec!["GET".into(), "PUT".into()],
            allow_headers: vec!["Content-Type".into(), "X-Custom".into()],
            expose_headers: vec![],
            max_age: DurationStr(Duration::from_secs(600)),
        };
        let origins: Vec<_> = p
            .allow_origins
            .iter()
            .map(|o| parse_origin_pattern(o).unwrap())
            .collect();
        CorsPolicy::compile(&p, &origins)
    }

    fn req(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn preflight_for_allowed_origin_method_and_headers() {
        let p = policy(true);
        let h = req(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-custom, content-type"),
        ]);
        let CorsDecision::PreflightAllowed(out) = p.decide(&Method::OPTIONS, &h) else {
            panic!("refused")
        };
        assert_eq!(
            out["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(out["access-control-allow-credentials"], "true");
        assert_eq!(out["access-control-allow-methods"], "GET, PUT");
        assert_eq!(out["access-control-max-age"], "600");
    }

    #[test]
    fn preflight_refusals() {
        let p = policy(false);
        let bad_origin = req(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
        ]);
        assert!(matches!(
            p.decide(&Method::OPTIONS, &bad_origin),
            CorsDecision::PreflightRefused(PreflightRefusal::Origin)
        ));
        let bad_method = req(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "DELETE"),
        ]);
        assert!(matches!(
            p.decide(&Method::OPTIONS, &bad_method),
            CorsDecision::PreflightRefused(PreflightRefusal::Method)
        ));
        let bad_header = req(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-evil"),
        ]);
        assert!(matches!(
            p.decide(&Method::OPTIONS, &bad_header),
            CorsDecision::PreflightRefused(PreflightRefusal::Header)
        ));
    }

    #[test]
    fn responses_get_headers_only_for_allowed_origins_and_upstream_cors_is_dropped() {
        let p = policy(true);
        let mut resp = req(&[
            ("access-control-allow-origin", "*"),
            ("vary", "Accept-Encoding"),
        ]);
        p.apply_to_response(
            Some(&HeaderValue::from_static("https://evil.example")),
            &mut resp,
        );
        assert!(resp.get("access-control-allow-origin").is_none());
        assert_eq!(
            resp.get_all("vary").iter().collect::<Vec<_>>(),
            vec!["Accept-Encoding", "Origin"]
        );

        let mut resp = HeaderMap::new();
        p.apply_to_response(
            Some(&HeaderValue::from_static("https://app.example.com")),
            &mut resp,
        );
        assert_eq!(
            resp["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(resp["access-control-allow-credentials"], "true");
        assert!(
            resp["access-control-expose-headers"]
                .to_str()
                .unwrap()
                .contains("Retry-After")
        );
    }
}
