//! A TLS listener's `redirect_http` address: every plain-HTTP request gets `308 Permanent
//! Redirect` to the same host and path on `https://`, except ACME http-01 challenges, which
//! are answered here. Same firewall, bans and connection caps as the TLS listener.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::Authority;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use rampart_listen::{Admission, ConnInfo, Gate, Handler, Refusal};
use rampart_proxy::ProxyBody;

use crate::runtime::Gateway;

/// The path prefix ACME validators fetch http-01 answers from (RFC 8555 §8.3).
pub const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// The gateway's gate without TLS: the redirect address is plain HTTP.
pub struct PlainGate(pub Arc<Gateway>);

impl Gate for PlainGate {
    fn admit(&self, listener: &str, peer: SocketAddr) -> Admission {
        self.0.admit(listener, peer)
    }

    fn refused(&self, listener: &str, peer: SocketAddr, why: Refusal) {
        self.0.refused(listener, peer, why);
    }
}

/// Answers the redirect address.
pub struct Redirector {
    /// The gateway (ACME challenges, metrics).
    pub gateway: Arc<Gateway>,
    /// The port of the TLS listener redirected to.
    pub https_port: u16,
}

fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// The `https://` URL for a request that arrived on plain HTTP, or `None` when its host is
/// missing or not a plain host name / address (no user info, nothing to inject).
pub fn https_location(host: Option<&str>, path_and_query: &str, https_port: u16) -> Option<String> {
    let authority: Authority = host?.parse().ok()?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return None;
    }
    let host = authority.host();
    let pq = if path_and_query.starts_with('/') {
        path_and_query
    } else {
        "/"
    };
    Some(if https_port == 443 {
        format!("https://{host}{pq}")
    } else {
        format!("https://{host}:{https_port}{pq}")
    })
}

impl Handler for Redirector {
    type Body = ProxyBody;

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        _conn: Arc<ConnInfo>,
    ) -> Response<ProxyBody> {
        let path = req.uri().path();
        if let Some(token) = path.strip_prefix(ACME_CHALLENGE_PREFIX) {
            if req.method() != Method::GET && req.method() != Method::HEAD {
                return plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
            }
            return match self.gateway.acme.http01(token) {
                Some(answer) => plain(StatusCode::OK, answer),
                None => plain(StatusCode::NOT_FOUND, "no such challenge\n"),
            };
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
        let pq = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        metrics::counter!("rampart_http_redirects_total").increment(1);
        match https_location(host.as_deref(), &pq, self.https_port)
            .and_then(|l| HeaderValue::from_str(&l).ok())
        {
            Some(location) => {
                let mut r = plain(StatusCode::PERMANENT_REDIRECT, "");
                r.headers_mut().insert(header::LOCATION, location);
                r
            }
            None => plain(StatusCode::BAD_REQUEST, "a Host header is required\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_keep_host_path_and_query_and_use_the_tls_port() {
        assert_eq!(
            https_location(Some("example.com"), "/a/b?c=1", 443).as_deref(),
            Some("https://example.com/a/b?c=1")
        );
        assert_eq!(
            https_location(Some("example.com:8080"), "/", 8443).as_deref(),
            Some("https://example.com:8443/")
        );
        assert_eq!(
            https_location(Some("[::1]:80"), "/x", 8443).as_deref(),
            Some("https://[::1]:8443/x")
        );
    }

    #[test]
    fn hosts_that_could_redirect_elsewhere_are_refused() {
        assert_eq!(https_location(None, "/", 443), None);
        assert_eq!(https_location(Some("user@evil.example"), "/", 443), None);
        assert_eq!(https_location(Some("a b"), "/", 443), None);
        assert_eq!(https_location(Some(""), "/", 443), None);
        // An absolute-form target cannot smuggle another host into the path.
        assert_eq!(
            https_location(Some("example.com"), "http://evil.example/", 443).as_deref(),
            Some("https://example.com/")
        );
    }
}
