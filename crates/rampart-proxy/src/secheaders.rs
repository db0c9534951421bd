//! Security headers on every response: defaults added where the upstream set none, route
//! values that replace the upstream's.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use rampart_config::SecurityHeaders;

/// Security headers resolved for one place (global defaults or one route).
#[derive(Debug, Clone, Default)]
pub struct SecurityHeaderSet {
    /// `(name, Some(value))` to set, `(name, None)` to remove.
    entries: Vec<(HeaderName, Option<HeaderValue>)>,
}

fn value(v: &str) -> Option<HeaderValue> {
    if v.is_empty() {
        None
    } else {
        HeaderValue::from_str(v).ok()
    }
}

impl SecurityHeaderSet {
    /// The global set: every header with its default unless the config says otherwise.
    pub fn defaults(h: &SecurityHeaders) -> SecurityHeaderSet {
        let mut entries = Vec::new();
        let nosniff = h
            .content_type_options
            .unwrap_or(true)
            .then(|| HeaderValue::from_static("nosniff"));
        entries.push((header::X_CONTENT_TYPE_OPTIONS, nosniff));
        for (name, configured, default) in [
            (
                header::REFERRER_POLICY,
                &h.referrer_policy,
                Some("strict-origin-when-cross-origin"),
            ),
            (header::X_FRAME_OPTIONS, &h.frame_options, Some("DENY")),
            (
                header::CONTENT_SECURITY_POLICY,
                &h.content_security_policy,
                Some("frame-ancestors 'none'"),
            ),
            (
                header::STRICT_TRANSPORT_SECURITY,
                &h.strict_transport_security,
                Some("max-age=31536000; includeSubDomains"),
            ),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                &h.cross_origin_opener_policy,
                None,
            ),
            (
                HeaderName::from_static("permissions-policy"),
                &h.permissions_policy,
                None,
            ),
        ] {
            let v = match configured {
                Some(c) => value(c),
                None => default.map(HeaderValue::from_static),
            };
            entries.push((name, v));
        }
        SecurityHeaderSet { entries }
    }

    /// A route's overrides: only the headers it names.
    pub fn overrides(h: &SecurityHeaders) -> SecurityHeaderSet {
        let mut entries = Vec::new();
        if let Some(on) = h.content_type_options {
            entries.push((
                header::X_CONTENT_TYPE_OPTIONS,
                on.then(|| HeaderValue::from_static("nosniff")),
            ));
        }
        for (name, configured) in [
            (header::REFERRER_POLICY, &h.referrer_policy),
            (header::X_FRAME_OPTIONS, &h.frame_options),
            (header::CONTENT_SECURITY_POLICY, &h.content_security_policy),
            (
                header::STRICT_TRANSPORT_SECURITY,
                &h.strict_transport_security,
            ),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                &h.cross_origin_opener_policy,
            ),
            (
                HeaderName::from_static("permissions-policy"),
                &h.permissions_policy,
            ),
        ] {
            if let Some(c) = configured {
                entries.push((name, value(c)));
            }
        }
        SecurityHeaderSet { entries }
    }

    /// Applies the route's overrides (replacing the upstream's values), then the defaults
    /// where the response has none. HSTS only goes out over TLS.
    pub fn apply(
        defaults: &SecurityHeaderSet,
        route: Option<&SecurityHeaderSet>,
        tls: bool,
        headers: &mut HeaderMap,
    ) {
        let mut overridden: Vec<&HeaderName> = Vec::new();
        if let Some(route) = route {
            for (name, v) in &route.entries {
                overridden.push(name);
                match v {
                    Some(v) if tls || *name != header::STRICT_TRANSPORT_SECURITY => {
                        headers.insert(name.clone(), v.clone());
                    }
                    _ => {
                        headers.remove(name);
                    }
                }
            }
        }
        for (name, v) in &defaults.entries {
            let Some(v) = v else { continue };
            if overridden.contains(&name) || (!tls && *name == header::STRICT_TRANSPORT_SECURITY) {
                continue;
            }
            if !headers.contains_key(name) {
                headers.insert(name.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_gaps_and_keep_upstream_values() {
        let d = SecurityHeaderSet::defaults(&SecurityHeaders::default());
        let mut h = HeaderMap::new();
        h.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
        SecurityHeaderSet::apply(&d, None, false, &mut h);
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "SAMEORIGIN");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
        let mut tls = HeaderMap::new();
        SecurityHeaderSet::apply(&d, None, true, &mut tls);
        assert_eq!(
            tls["strict-transport-security"],
            "max-age=31536000; includeSubDomains"
        );
    }

    #[test]
    fn route_overrides_replace_and_remove() {
        let d = SecurityHeaderSet::defaults(&SecurityHeaders::default());
        let r = SecurityHeaderSet::overrides(&SecurityHeaders {
            frame_options: Some("".into()),
            content_security_policy: Some("default-src 'self'".into()),
            ..Default::default()
        });
        let mut h = HeaderMap::new();
        h.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("ALLOWALL"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src *"),
        );
        SecurityHeaderSet::apply(&d, Some(&r), false, &mut h);
        assert!(h.get("x-frame-options").is_none());
        assert_eq!(h["content-security-policy"], "default-src 'self'");
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
}
