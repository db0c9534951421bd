//! The request to the upstream: hop-by-hop headers removed, forwarding headers set (believed
//! only from trusted proxies), sent on a pooled keep-alive connection with timeouts, retried
//! on another upstream only when nothing was sent.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, Uri, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::ProxyBody;
use crate::pool::{ConnectError, Pool, UpstreamBody};
use crate::route::RouteEntry;

/// Why forwarding failed. Statuses: see [`ProxyError::status`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// No upstream could be connected to (refused, unreachable). Upstream → 502.
    #[error("upstream connection failed: {0}")]
    Connect(String),
    /// Connecting took longer than `limits.upstream_connect_timeout`. Upstream → 504.
    #[error("upstream connection timed out")]
    ConnectTimeout,
    /// The upstream did not start its response in time. Upstream → 504.
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// The upstream broke the exchange (reset, malformed response). Upstream → 502.
    #[error("upstream exchange failed: {0}")]
    Exchange(String),
}

impl ProxyError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            ProxyError::Connect(_) | ProxyError::Exchange(_) => http::StatusCode::BAD_GATEWAY,
            ProxyError::ConnectTimeout | ProxyError::Timeout(_) => {
                http::StatusCode::GATEWAY_TIMEOUT
            }
        }
    }
}

/// What the gateway knows of the request that the upstream should be told.
#[derive(Debug, Clone)]
pub struct ForwardContext<'a> {
    /// The TCP peer.
    pub peer: IpAddr,
    /// Whether the peer is a trusted proxy.
    pub peer_trusted: bool,
    /// The client address (the peer, or the first untrusted hop behind trusted proxies).
    pub client: IpAddr,
    /// `http` or `https`, as the client spoke to the gateway.
    pub proto: &'static str,
    /// The normalized request path (what the route matched).
    pub path: &'a str,
    /// The request id, sent as `X-Request-Id`.
    pub request_id: &'a str,
    /// The W3C `traceparent` to send (the client's when valid, else a new one).
    pub traceparent: &'a str,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, ProxyBody>;

/// Sends requests to upstreams over pooled keep-alive connections.
#[derive(Debug, Clone)]
pub struct Forwarder {
    /// Connections to `http://` upstreams.
    pool: std::sync::Arc<Pool>,
    /// Clients for `https://` upstreams, by route index (each route its own roots and
    /// client certificate).
    tls: std::collections::HashMap<usize, HttpsClient>,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Hop-by-hop headers (RFC 9110 §7.6.1) and their old spellings.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

/// Forwarding headers replaced unless the peer is a trusted proxy.
const FORWARDING: [HeaderName; 6] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_FORWARDED_PORT,
    FORWARDED,
    X_REAL_IP,
];

/// How long an upstream connection may idle in the pool.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per upstream (per worker).
const MAX_IDLE_PER_HOST: usize = 512;

/// How one attempt failed: before anything was sent (another upstream may be tried), or during
/// the exchange.
enum Failure {
    Connect(ProxyError),
    Exchange(String),
}

impl Forwarder {
    /// A forwarder whose connections time out after `connect_timeout`; `tls` holds the
    /// TLS settings of each route (by index) that has `https://` upstreams.
    pub fn new(
        connect_timeout: Duration,
        tls: &[(usize, crate::tls::UpstreamTlsConfig)],
    ) -> Forwarder {
        let connector = || {
            let mut http = HttpConnector::new();
            http.set_connect_timeout(Some(connect_timeout));
            http.set_nodelay(true);
            http.enforce_http(false);
            http
        };
        let builder = || {
            let mut b = Client::builder(TokioExecutor::new());
            b.pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .pool_idle_timeout(IDLE_TIMEOUT)
                .pool_max_idle_per_host(MAX_IDLE_PER_HOST);
            b
        };
        let pool = std::sync::Arc::new(Pool::new(connect_timeout, IDLE_TIMEOUT, MAX_IDLE_PER_HOST));
        let tls = tls
            .iter()
            .map(|(index, t)| {
                let b = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config((*t.config).clone())
                    .https_only();
                let b = match &t.server_name {
                    Some(name) => b.with_server_name_resolver(
                        hyper_rustls::FixedServerNameResolver::new(name.clone()),
                    ),
                    None => b,
                };
                let https = b.enable_http1().wrap_connector(connector());
                (*index, builder().build(https))
            })
            .collect();
        Forwarder { pool, tls }
    }

    /// Forwards a request to one of the route's upstreams. When the body is known to be empty,
    /// a connection failure is retried on the next upstream, since nothing reached the first.
    pub async fn forward(
        &self,
        route: &RouteEntry,
        parts: http::request::Parts,
        body: ProxyBody,
        ctx: &ForwardContext<'_>,
    ) -> Result<Response<UpstreamBody>, ProxyError> {
        let replayable = body.is_end_stream();
        let mut headers = parts.headers;
        let host = headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        rewrite_request_headers(&mut headers, host.as_ref(), ctx);
        route.request_headers.apply(&mut headers);
        let forwarded_path = route.upstream_path(ctx.path);
        let query = parts.uri.query();
        let mut body = Some(body);
        let mut tried: Vec<usize> = Vec::new();
        loop {
            let Some(i) = route.upstreams.pick(&tried) else {
                return Err(ProxyError::Connect("no upstream left to try".into()));
            };
            tried.push(i);
            let up = route.upstreams.get(i);
            let mut pq = String::with_capacity(
                up.base_path.len() + forwarded_path.len() + 1 + query.map_or(0, str::len),
            );
            pq.push_str(&up.base_path);
            pq.push_str(&forwarded_path);
            if let Some(q) = query {
                pq.push('?');
                pq.push_str(q);
            }
            let this_body = match body.take() {
                Some(b) => b,
                None => Empty::<Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            };
            let mut req = Request::new(this_body);
            *req.method_mut() = parts.method.clone();
            *req.version_mut() = Version::HTTP_11;
            let may_retry = replayable && tried.len() < route.upstreams.len();
            *req.headers_mut() = if may_retry {
                headers.clone()
            } else {
                std::mem::take(&mut headers)
            };
            let tls_client = if up.scheme == http::uri::Scheme::HTTPS {
                match self.tls.get(&route.index) {
                    Some(c) => Some(c),
                    // a configuration fault, not the upstream's: nothing to report or retry
                    None => {
                        return Err(ProxyError::Connect(
                            "no TLS settings for this https upstream".into(),
                        ));
                    }
                }
            } else {
                None
            };
            let exchange = async {
                if let Some(client) = tls_client {
                    *req.uri_mut() = Uri::builder()
                        .scheme(up.scheme.clone())
                        .authority(up.authority.clone())
                        .path_and_query(pq)
                        .build()
                        .map_err(|e| {
                            Failure::Exchange(format!("cannot build upstream URI: {e}"))
                        })?;
                    legacy_exchange(client, req).await
                } else {
                    *req.uri_mut() = Uri::try_from(pq).map_err(|e| {
                        Failure::Exchange(format!("cannot build upstream URI: {e}"))
                    })?;
                    if !req.headers().contains_key(header::HOST)
                        && let Ok(h) = HeaderValue::from_str(up.authority.as_str())
                    {
                        req.headers_mut().insert(header::HOST, h);
                    }
                    self.plain_exchange(&up.authority, req).await
                }
            };
            let outcome = tokio::time::timeout(route.timeout, exchange).await;
            match outcome {
                Ok(Ok(mut resp)) => {
                    route.upstreams.report(i, true);
                    let switching = resp.status() == http::StatusCode::SWITCHING_PROTOCOLS;
                    let protocol = resp.headers().get(header::UPGRADE).cloned();
                    strip_hop_by_hop(resp.headers_mut());
                    if let (true, Some(p)) = (switching, protocol) {
                        // A 101 keeps the headers that say what the connection becomes.
                        resp.headers_mut().insert(header::UPGRADE, p);
                        resp.headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                    }
                    return Ok(resp);
                }
                Ok(Err(Failure::Connect(err))) => {
                    route.upstreams.report(i, false);
                    tracing::warn!(route = %route.name, upstream = %up.authority, error = %err, "upstream connect failed");
                    if replayable && tried.len() < route.upstreams.len() {
                        continue;
                    }
                    return Err(err);
                }
                Ok(Err(Failure::Exchange(e))) => {
                    route.upstreams.report(i, false);
                    return Err(ProxyError::Exchange(e));
                }
                Err(_) => {
                    route.upstreams.report(i, false);
                    return Err(ProxyError::Timeout(route.timeout));
                }
            }
        }
    }

    /// One exchange with an `http://` upstream on a pooled connection. A request that a reused
    /// connection did not take (the upstream closed it as it idled) goes once more on a new one.
    async fn plain_exchange(
        &self,
        authority: &http::uri::Authority,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<UpstreamBody>, Failure> {
        loop {
            let mut lease = self.pool.lease(authority).await.map_err(|e| {
                Failure::Connect(match e {
                    ConnectError::TimedOut => ProxyError::ConnectTimeout,
                    ConnectError::Failed(why) => ProxyError::Connect(why),
                })
            })?;
            match lease.sender.try_send_request(req).await {
                Ok(resp) => {
                    if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                        // the connection becomes the upgraded one
                        return Ok(resp.map(UpstreamBody::detached));
                    }
                    let pool = std::sync::Arc::clone(&self.pool);
                    let sender = lease.sender;
                    let authority = authority.clone();
                    return Ok(resp.map(|b| UpstreamBody::pooled(b, pool, authority, sender)));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if lease.reused => req = unsent,
                    _ => return Err(Failure::Exchange(chain_text(&e.into_error()))),
                },
            }
        }
    }
}

async fn legacy_exchange(
    client: &HttpsClient,
    req: Request<ProxyBody>,
) -> Result<Response<UpstreamBody>, Failure> {
    match client.request(req).await {
        Ok(resp) => Ok(resp.map(UpstreamBody::detached)),
        Err(e) if e.is_connect() => Err(Failure::Connect(if chain_has_timeout(&e) {
            ProxyError::ConnectTimeout
        } else {
            ProxyError::Connect(chain_text(&e))
        })),
        Err(e) => Err(Failure::Exchange(chain_text(&e))),
    }
}

fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn chain_has_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// The protocol an HTTP/1.1 request asks to switch to (`Connection: upgrade` and `Upgrade`),
/// such as `websocket`.
pub fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    }
}

/// Removes hop-by-hop headers, and those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        if headers.contains_key(name) {
            headers.remove(name);
        }
    }
}

fn rewrite_request_headers(
    headers: &mut HeaderMap,
    host: Option<&HeaderValue>,
    ctx: &ForwardContext<'_>,
) {
    let upgrade = upgrade_protocol(headers);
    strip_hop_by_hop(headers);
    if let Some(p) = upgrade {
        headers.insert(header::UPGRADE, p);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let peer = ctx.peer.to_string();
    let host_str = host.and_then(|h| h.to_str().ok()).unwrap_or("");
    let for_value = match ctx.peer {
        IpAddr::V4(_) => peer.clone(),
        IpAddr::V6(_) => format!("\"[{peer}]\""),
    };
    let forwarded_elem = format!(
        "for={for_value};proto={};host=\"{}\"",
        ctx.proto,
        host_str.replace(['"', '\\'], "")
    );
    if ctx.peer_trusted {
        let prior_xff = joined(headers, &X_FORWARDED_FOR);
        let xff = if prior_xff.is_empty() {
            peer.clone()
        } else {
            format!("{prior_xff}, {peer}")
        };
        set(headers, X_FORWARDED_FOR, &xff);
        let prior_fwd = joined(headers, &FORWARDED);
        let fwd = if prior_fwd.is_empty() {
            forwarded_elem
        } else {
            format!("{prior_fwd}, {forwarded_elem}")
        };
        set(headers, FORWARDED, &fwd);
        if !headers.contains_key(&X_FORWARDED_PROTO) {
            set(headers, X_FORWARDED_PROTO, ctx.proto);
        }
        if !headers.contains_key(&X_FORWARDED_HOST) && !host_str.is_empty() {
            set(headers, X_FORWARDED_HOST, host_str);
        }
    } else {
        for name in &FORWARDING {
            if headers.contains_key(name) {
                headers.remove(name);
            }
        }
        set(headers, X_FORWARDED_FOR, &peer);
        set(headers, FORWARDED, &forwarded_elem);
        set(headers, X_FORWARDED_PROTO, ctx.proto);
        if !host_str.is_empty() {
            set(headers, X_FORWARDED_HOST, host_str);
        }
    }
    set(headers, X_REAL_IP, &ctx.client.to_string());
    set(headers, X_REQUEST_ID, ctx.request_id);
    set(headers, TRACEPARENT, ctx.traceparent);
    if let Some(h) = host {
        headers.insert(header::HOST, h.clone());
    }
}

fn joined(headers: &HeaderMap, name: &HeaderName) -> String {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ")
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(trusted: bool) -> ForwardContext<'static> {
        ForwardContext {
            peer: "10.0.0.2".parse().unwrap(),
            peer_trusted: trusted,
            client: "203.0.113.5".parse().unwrap(),
            proto: "http",
            path: "/",
            request_id: "rid-1",
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        }
    }

    fn base() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        h.insert("forwarded", "for=6.6.6.6".parse().unwrap());
        h.insert("connection", "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h
    }

    /// An upstream speaking raw HTTP/1.1 that counts its connections. `/cl`, `/chunked` and
    /// `/empty` answer on a kept-alive connection; `/close` answers and then closes it without
    /// saying so; `/big` sends a megabyte.
    async fn raw_upstream() -> (
        http::uri::Authority,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let conns = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&conns);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            let mut chunk = [0u8; 4096];
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end);
                        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                        let reply: Vec<u8> = match path.as_str() {
                            "/cl" => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello".to_vec(),
                            "/chunked" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
                            "/empty" => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
                            "/close" => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
                            "/big" => {
                                let mut r = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n".to_vec();
                                r.resize(r.len() + 1_000_000, b'x');
                                r
                            }
                            _ => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
                        };
                        if sock.write_all(&reply).await.is_err() || path == "/close" {
                            return;
                        }
                    }
                });
            }
        });
        (authority, conns)
    }

    /// A forwarder and a fresh [`raw_upstream`].
    async fn forwarder_and_upstream() -> (
        Forwarder,
        http::uri::Authority,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) {
        let (authority, conns) = raw_upstream().await;
        (
            Forwarder::new(Duration::from_secs(5), &[]),
            authority,
            conns,
        )
    }

    fn get(path: &str) -> Request<ProxyBody> {
        let mut req = Request::new(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *req.uri_mut() = path.parse().unwrap();
        req.headers_mut()
            .insert(header::HOST, HeaderValue::from_static("upstream"));
        req
    }

    async fn body_of(fwd: &Forwarder, authority: &http::uri::Authority, path: &str) -> Bytes {
        let resp = match fwd.plain_exchange(authority, get(path)).await {
            Ok(r) => r,
            Err(Failure::Connect(e)) => panic!("{path}: connect failed: {e}"),
            Err(Failure::Exchange(e)) => panic!("{path}: exchange failed: {e}"),
        };
        resp.into_body().collect().await.unwrap().to_bytes()
    }

    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn connections_are_reused_once_a_response_is_read_to_its_end() {
        let (fwd, authority, conns) = forwarder_and_upstream().await;
        for _ in 0..5 {
            assert_eq!(body_of(&fwd, &authority, "/cl").await, "hello");
            assert_eq!(body_of(&fwd, &authority, "/chunked").await, "hello");
            assert_eq!(body_of(&fwd, &authority, "/empty").await, "");
        }
        assert_eq!(
            conns.load(Ordering::SeqCst),
            1,
            "15 exchanges, one connection"
        );
    }

    #[tokio::test]
    async fn a_half_read_response_never_goes_back_to_the_pool() {
        let (fwd, authority, conns) = forwarder_and_upstream().await;
        let Ok(resp) = fwd.plain_exchange(&authority, get("/big")).await else {
            panic!("/big failed");
        };
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.data_ref().is_some_and(|d| !d.is_empty()));
        drop(body);
        // the next exchange must not land on the connection with the rest of /big in it
        assert_eq!(body_of(&fwd, &authority, "/cl").await, "hello");
        assert_eq!(conns.load(Ordering::SeqCst), 2);
        assert_eq!(body_of(&fwd, &authority, "/cl").await, "hello");
        assert_eq!(conns.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_upstream_closing_idle_connections_causes_no_failures() {
        let (fwd, authority, conns) = forwarder_and_upstream().await;
        for _ in 0..20 {
            assert_eq!(body_of(&fwd, &authority, "/close").await, "ok");
        }
        assert_eq!(conns.load(Ordering::SeqCst), 20);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority: http::uri::Authority =
            listener.local_addr().unwrap().to_string().parse().unwrap();
        drop(listener);
        let fwd = Forwarder::new(Duration::from_secs(5), &[]);
        match fwd.plain_exchange(&authority, get("/cl")).await {
            Err(Failure::Connect(ProxyError::Connect(why))) => {
                assert!(why.contains(authority.as_str()), "{why}");
            }
            Err(Failure::Connect(e)) => panic!("unexpected connect error {e}"),
            Err(Failure::Exchange(e)) => panic!("unexpected exchange error {e}"),
            Ok(_) => panic!("a closed port answered"),
        }
    }

    #[test]
    fn untrusted_peers_cannot_spoof_forwarding_headers() {
        let mut h = base();
        rewrite_request_headers(
            &mut h,
            Some(&HeaderValue::from_static("app.example.com")),
            &ctx(false),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.2");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "app.example.com");
        assert_eq!(
            h["forwarded"],
            "for=10.0.0.2;proto=http;host=\"app.example.com\""
        );
        assert!(
            h.get("x-secret").is_none() && h.get("connection").is_none() && h.get("te").is_none()
        );
        assert_eq!(h["x-request-id"], "rid-1");
    }

    #[test]
    fn trusted_peers_are_appended_to() {
        let mut h = base();
        rewrite_request_headers(
            &mut h,
            Some(&HeaderValue::from_static("app.example.com")),
            &ctx(true),
        );
        assert_eq!(h["x-forwarded-for"], "6.6.6.6, 10.0.0.2");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(
            h["forwarded"],
            "for=6.6.6.6, for=10.0.0.2;proto=http;host=\"app.example.com\""
        );
        assert_eq!(h["x-real-ip"], "203.0.113.5");
    }
}
