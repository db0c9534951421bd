//! Request heads: the checks of a head hyper has parsed that hyper itself does not make (the
//! `Host` field), and the lenient reading of a head hyper refused, so that the gateway can
//! still say what it was (to the WAF and in the access log) before answering 400.
//!
//! Everything here reads bytes straight from the network: no input panics (fuzz target
//! `request_head`).

use std::borrow::Cow;

use http::{Request, Version, header};

/// Whether the request has at most one `Host` field and its value names a host: a DNS name
/// (letters, digits, `-`, `.`, `_`, `~`), an IPv4 address or a bracketed IPv6 literal,
/// optionally with a port. RFC 9112 §3.2: any other gets 400. Percent-encoding and the other
/// characters RFC 3986 allows in a registered name never occur in real host names and only
/// serve host-header attacks (`localhost%1F`, `a.com@b.com`). An empty `Host` is refused
/// too, except in HTTP/1.0.
pub fn host_header_valid<B>(req: &Request<B>) -> bool {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let Some(value) = hosts.next() else {
        return true;
    };
    if hosts.next().is_some() {
        return false;
    }
    // HTTP/1.0 needs no Host: an empty one is taken as none
    (value.is_empty() && req.version() == Version::HTTP_10) || valid_host(value.as_bytes())
}

/// Whether `v` is a `Host` value [`host_header_valid`] accepts.
pub fn valid_host(v: &[u8]) -> bool {
    let (host, port) = match v.strip_prefix(b"[") {
        Some(rest) => {
            let Some(end) = rest.iter().position(|&b| b == b']') else {
                return false;
            };
            let literal = &rest[..end];
            if literal.is_empty()
                || !literal
                    .iter()
                    .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
            {
                return false;
            }
            (literal, &rest[end + 1..])
        }
        None => {
            let split = v.iter().position(|&b| b == b':').unwrap_or(v.len());
            let name = &v[..split];
            if name.is_empty()
                || !name
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
            {
                return false;
            }
            (name, &v[split..])
        }
    };
    !host.is_empty()
        && match port.strip_prefix(b":") {
            None => port.is_empty(),
            Some(digits) => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        }
}

/// The request's host (from `Host`, else from an absolute-form target) without port, lower
/// case; an IPv6 literal without its brackets.
pub fn request_host<B>(req: &Request<B>) -> Option<String> {
    match req.headers().get(header::HOST) {
        Some(h) => h.to_str().ok().map(host_without_port),
        None => req.uri().authority().map(|a| host_without_port(a.as_str())),
    }
}

/// `host[:port]` or `[v6][:port]` as a lower-case host without port or brackets.
pub fn host_without_port(raw: &str) -> String {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h)
    };
    host.to_ascii_lowercase()
}

/// A head whose request line ends in a version of the form `HTTP/d.d` other than 1.0 and 1.1:
/// the head with `HTTP/1.1` in its place, and the version as sent.
pub fn other_http_version(head: &[u8]) -> Option<(Vec<u8>, String)> {
    let line_end = head.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let line = &head[..line_end];
    let start = line.iter().rposition(|&b| b == b' ')? + 1;
    let version = &line[start..];
    let well_formed = version.len() == 8
        && version.starts_with(b"HTTP/")
        && version[5].is_ascii_digit()
        && version[6] == b'.'
        && version[7].is_ascii_digit();
    if !well_formed || version == b"HTTP/1.0" || version == b"HTTP/1.1" {
        return None;
    }
    let mut fixed = head.to_vec();
    fixed[start..line_end].copy_from_slice(b"HTTP/1.1");
    Some((fixed, String::from_utf8_lossy(version).into_owned()))
}

/// An HTTP/0.9 simple request (`GET /path` and the end of the line): its method and target.
/// Only a complete line counts.
pub fn simple_request(head: &[u8]) -> Option<(String, String)> {
    let line_end = head.iter().position(|&b| b == b'\n')?;
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
    // a space before the end of the line is tolerated (`GET / \r\n`)
    let line = line.trim_ascii_end();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next()?, parts.next()?);
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    let visible = |b: &u8| b.is_ascii_graphic() || *b >= 0x80;
    if parts.next().is_some()
        || method.is_empty()
        || !method.iter().all(token)
        || target.is_empty()
        || !target.iter().all(visible)
    {
        return None;
    }
    Some((
        String::from_utf8_lossy(method).into_owned(),
        String::from_utf8_lossy(target).into_owned(),
    ))
}

/// Most header fields a lenient head may have.
const MAX_HEADERS: usize = 128;

/// A request head read leniently: the request target may hold characters RFC 3986 forbids
/// unencoded, and an HTTP version other than 1.0 and 1.1 is read as 1.1 (and kept as sent in
/// `protocol`). A request line without a version is an HTTP/0.9 simple request: it has no
/// header fields. Header values are kept as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LenientHead {
    pub method: String,
    /// The request target as sent.
    pub target: String,
    /// `HTTP/1.0`, `HTTP/1.1`, or the other version as sent.
    pub protocol: String,
    pub headers: Vec<(String, Vec<u8>)>,
    /// An HTTP/0.9 simple request (a request line without a version), to be answered in
    /// kind: the body alone. A line that names `HTTP/0.9` is not one.
    pub simple: bool,
}

impl LenientHead {
    /// Reads a complete head (request line and header fields up to the empty line); `None`
    /// when even the lenient parser cannot.
    pub fn parse(head: &[u8]) -> Option<Self> {
        if let Some((method, target)) = simple_request(head) {
            return Some(Self {
                method,
                target,
                protocol: "HTTP/0.9".to_owned(),
                headers: Vec::new(),
                simple: true,
            });
        }
        let (head, version) = match other_http_version(head) {
            Some((fixed, version)) => (Cow::Owned(fixed), Some(version)),
            None => (Cow::Borrowed(head), None),
        };
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut slots);
        if !matches!(parsed.parse(&head), Ok(httparse::Status::Complete(_))) {
            return None;
        }
        let (method, target, minor) = (parsed.method?, parsed.path?, parsed.version?);
        let protocol =
            version.unwrap_or_else(|| if minor == 0 { "HTTP/1.0" } else { "HTTP/1.1" }.to_owned());
        Some(Self {
            method: method.to_owned(),
            target: target.to_owned(),
            protocol,
            headers: parsed
                .headers
                .iter()
                .map(|h| (h.name.to_owned(), h.value.to_vec()))
                .collect(),
            simple: false,
        })
    }

    /// The first `Host` value as a host without port (see [`host_without_port`]).
    pub fn host(&self) -> Option<String> {
        self.headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("host"))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .map(host_without_port)
    }

    /// The target's path, before any query or fragment.
    pub fn path(&self) -> &str {
        self.target.split(['?', '#']).next().unwrap_or("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_http_versions_are_read_as_1_1() {
        let (fixed, v) = other_http_version(b"GET /x HTTP/4.0\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(fixed, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(v, "HTTP/4.0");
        assert!(other_http_version(b"GET /x HTTP/1.1\r\n\r\n").is_none());
        assert!(other_http_version(b"GET /x HTTP/1.0\r\n\r\n").is_none());
        assert!(other_http_version(b"GET /x\r\n\r\n").is_none());
        assert!(other_http_version(b"GET /x HTTP/10.0\r\n\r\n").is_none());
        assert!(other_http_version(b"").is_none());
        assert!(other_http_version(b" \r\n").is_none());
    }

    #[test]
    fn host_values() {
        for ok in [
            "example.com",
            "Example.COM:8443",
            "deadbeef.de:8080",
            "1.2.3.4",
            "my_host-1.internal",
            "[::1]",
            "[fe80::f1:01:fe01:1]:80",
            "localhost:",
        ] {
            assert!(valid_host(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "localhost%1F",
            "%00",
            "a.com@b.com",
            "a.com/x",
            "a b",
            "a.com:80:80",
            "a.com:123456",
            "a.com:8x",
            "[]",
            "[::1",
            "[::1]x",
            "[g::1]",
            "a.com\t",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad:?}");
        }
        let two = Request::builder()
            .header("host", "a.com")
            .header("host", "b.com")
            .body(())
            .unwrap();
        assert!(!host_header_valid(&two));
        let none = Request::builder().body(()).unwrap();
        assert!(host_header_valid(&none), "absence is checked elsewhere");
        let empty = |v| {
            Request::builder()
                .version(v)
                .header("host", "")
                .body(())
                .unwrap()
        };
        assert!(!host_header_valid(&empty(Version::HTTP_11)));
        assert!(host_header_valid(&empty(Version::HTTP_10)));
    }

    #[test]
    fn hosts_lose_port_and_case() {
        assert_eq!(host_without_port("Example.COM:8443"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "::1");
        assert_eq!(host_without_port("[FE80::1]"), "fe80::1");
        assert_eq!(host_without_port(" a.b "), "a.b");
        let req = Request::builder()
            .uri("http://Up.Example:81/x")
            .body(())
            .unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("up.example"));
    }

    #[test]
    fn heads_hyper_refuses_are_read_leniently() {
        let head = LenientHead::parse(
            b"GET /a?<script>alert(1)</script> HTTP/1.1\r\nHost: Shop.Example:8080\r\nX: \xff\r\n\r\n",
        )
        .unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/a?<script>alert(1)</script>");
        assert_eq!(head.path(), "/a");
        assert_eq!(head.protocol, "HTTP/1.1");
        assert_eq!(head.host().as_deref(), Some("shop.example"));
        assert_eq!(head.headers[1], ("X".to_owned(), vec![0xff]));

        let old = LenientHead::parse(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(old.protocol, "HTTP/1.0");
        assert_eq!(old.host(), None);
        let future = LenientHead::parse(b"GET / HTTP/4.0\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(future.protocol, "HTTP/4.0");

        // HTTP/0.9: a request line without a version, and no header fields
        let simple = LenientHead::parse(b"GET /a?b=<c>\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(simple.protocol, "HTTP/0.9");
        assert_eq!(simple.target, "/a?b=<c>");
        assert!(simple.headers.is_empty() && simple.simple);
        assert!(LenientHead::parse(b"GET / \r\nHost: localhost\r\n\r\n").is_some_and(|h| h.simple));
        let named = LenientHead::parse(b"GET / HTTP/0.9\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(named.protocol, "HTTP/0.9");
        assert!(
            !named.simple,
            "a line naming HTTP/0.9 is answered in HTTP/1.1"
        );
        assert_eq!(
            simple_request(b"GET /\n").map(|(m, _)| m).as_deref(),
            Some("GET")
        );
        assert!(simple_request(b"GET /").is_none(), "an incomplete line");
        assert_eq!(
            simple_request(b"GET / \r\nHost: a\r\n\r\n")
                .map(|(_, t)| t)
                .as_deref(),
            Some("/")
        );
        assert!(simple_request(b"GET / HTTP/1.1\r\n").is_none());
        assert!(simple_request(b"G(T /\r\n").is_none());
        assert!(simple_request(b"GET \r\n").is_none());

        // incomplete or not HTTP at all
        assert!(LenientHead::parse(b"GET / HTTP/1.1\r\nHost: a\r\n").is_none());
        assert!(LenientHead::parse(b"\x16\x03\x01\x00").is_none());
        assert!(LenientHead::parse(b"").is_none());
    }
}
