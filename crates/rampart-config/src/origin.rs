//! CORS origins as written in `allow_origins`.

/// One entry of `allow_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `"*"`: any origin (never with credentials).
    Any,
    /// An exact serialized origin, lower case, default port removed: `https://app.example.com`.
    Exact(String),
    /// `https://*.example.com`: any subdomain (not the apex), same scheme and port.
    Subdomains {
        /// `http` or `https`.
        scheme: String,
        /// `.example.com`
        suffix: String,
        /// `:8443` or empty.
        port: String,
    },
}

impl OriginPattern {
    /// Whether the `Origin` header value matches.
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Any => origin != "null",
            OriginPattern::Exact(o) => origin.eq_ignore_ascii_case(o),
            OriginPattern::Subdomains {
                scheme,
                suffix,
                port,
            } => {
                let origin = origin.to_ascii_lowercase();
                let Some(rest) = origin
                    .strip_prefix(scheme.as_str())
                    .and_then(|r| r.strip_prefix("://"))
                else {
                    return false;
                };
                let (host, p) = match rest.rfind(':') {
                    Some(i) if !rest.ends_with(']') => (&rest[..i], &rest[i..]),
                    _ => (rest, ""),
                };
                p == port
                    && host.len() > suffix.len()
                    && host.ends_with(suffix.as_str())
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
            }
        }
    }
}

/// Parses an `allow_origins` entry; the error says what is wrong.
pub fn parse_origin_pattern(s: &str) -> Result<OriginPattern, String> {
    if s == "*" {
        return Ok(OriginPattern::Any);
    }
    if s.eq_ignore_ascii_case("null") {
        return Err("\"null\" is refused: sandboxed pages and local files all send it".to_owned());
    }
    let lower = s.to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(|| {
        format!("{s:?} is not an origin (write it like \"https://app.example.com\")")
    })?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("{s:?}: only http and https origins"));
    }
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Err(format!(
            "{s:?}: an origin has no path (remove everything after the host and port)"
        ));
    }
    let (host, port) = match rest.rfind(':') {
        Some(i) if !rest.ends_with(']') => (&rest[..i], &rest[i + 1..]),
        _ => (rest, ""),
    };
    if !port.is_empty() && port.parse::<u16>().is_err() {
        return Err(format!("{s:?}: invalid port"));
    }
    let default_port = (scheme == "http" && port == "80") || (scheme == "https" && port == "443");
    let port = if port.is_empty() || default_port {
        String::new()
    } else {
        format!(":{port}")
    };
    if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains('*') || !suffix.contains('.') {
            return Err(format!(
                "{s:?}: a wildcard covers subdomains of a registered domain, like \"https://*.example.com\""
            ));
        }
        return Ok(OriginPattern::Subdomains {
            scheme: scheme.to_owned(),
            suffix: format!(".{suffix}"),
            port,
        });
    }
    let valid_host = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.')));
    if !valid_host {
        return Err(format!("{s:?}: invalid host"));
    }
    Ok(OriginPattern::Exact(format!("{scheme}://{host}{port}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_origins_normalize() {
        assert_eq!(
            parse_origin_pattern("https://App.example.com:443").unwrap(),
            OriginPattern::Exact("https://app.example.com".into())
        );
        let p = parse_origin_pattern("http://localhost:5173").unwrap();
        assert!(p.matches("http://localhost:5173"));
        assert!(!p.matches("http://localhost:5174"));
        assert!(!p.matches("http://localhost:5173.evil.com"));
    }

    #[test]
    fn refused_forms() {
        for bad in [
            "null",
            "https://a.com/",
            "https://a.com/path",
            "ftp://a.com",
            "a.com",
            "https://*",
            "https://*.com",
            "https://a.*.com",
        ] {
            assert!(parse_origin_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcard_covers_subdomains_only() {
        let p = parse_origin_pattern("https://*.example.com").unwrap();
        assert!(p.matches("https://app.example.com"));
        assert!(p.matches("https://a.b.example.com"));
        assert!(!p.matches("https://example.com"));
        assert!(!p.matches("https://evilexample.com"));
        assert!(!p.matches("http://app.example.com"));
        assert!(!p.matches("https://app.example.com:8443"));
        assert!(!OriginPattern::Any.matches("null"));
    }
}
