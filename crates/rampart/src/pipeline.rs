//! The request path: the only place that decides what runs, in which order. Each phase gets
//! the request context and either lets the request continue or answers it. The response then
//! gets its headers (route edits, CORS, security headers, request id), and logging runs last,
//! when the response body has been sent.
//!
//! Target order (DESIGN §1); phases that later layers add slot in where marked:
//! edge → cors → limit (anonymous) → waf → authenticate → authorize → limit (identity) →
//! validate → proxy.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use rampart_config::Mode;
use rampart_limit::{KeyKind, LimitKey, Offence, Policy, RateLimitHeaders, RateVerdict};
use rampart_listen::{ClientAddr, ConnInfo, ForwardedChain, Handler};
use rampart_proxy::body::BoxError;
use rampart_proxy::head::{LenientHead, host_header_valid, request_host};
use rampart_proxy::secheaders::SecurityHeaderSet;
use rampart_proxy::{
    BodyPace, CorsDecision, ForwardContext, LimitedBody, PacedBody, ProxyBody, RouteEntry,
    RouteMatch,
};

use crate::events::Event;
use crate::problem::GatewayError;
use crate::runtime::{Gateway, Runtime, count_decision};

/// The phases of a request, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Request id, client address, head size, path normalization, route match, `allow_from`,
    /// declared body size: per-route policy needs the route, and these checks cost nothing.
    Edge,
    /// Answer preflights before anything costly; refuse disallowed ones.
    Cors,
    /// Rate limits keyed before authentication (ip, route, header): the cheapest refusal
    /// of a flood.
    LimitAnon,
    /// The WAF: phase 1 on the headers, phase 2 on the body (buffered, bounded by the route's
    /// cap, only when a rule reads it).
    Waf,
    /// Built-in endpoints answer here; otherwise the route's credentials are verified and
    /// scopes checked (authorization), and the verified identity is forwarded.
    Authenticate,
    /// Rate limits keyed on the verified identity (user, client).
    LimitIdentity,
    /// The route's OpenAPI schema: operation, parameters, body.
    Validate,
    /// Forward to the upstream, streaming the body under the route's cap.
    Proxy,
}

/// The request phases, in order.
pub const REQUEST_PHASES: &[Phase] = &[
    Phase::Edge, // cheapest checks, and the route every later phase reads its policy from
    Phase::Cors, // preflights answered before limits and the WAF spend anything on them
    Phase::LimitAnon, // floods refused before the WAF and the upstream spend anything
    Phase::Waf,  // headers, then the body when a rule needs it
    Phase::Authenticate, // who is asking, verified; scopes checked
    Phase::LimitIdentity, // per-user budgets, now that the user is known
    Phase::Validate, // the route's schema, on what the upstream would receive
    Phase::Proxy, // last: everything before it may refuse
];

/// What a phase decided.
pub enum Verdict {
    /// Go on to the next phase.
    Continue,
    /// We answered; stop here.
    Respond(Response<ProxyBody>),
}

/// Who a request comes from, once verified.
#[derive(Debug, Clone)]
struct Principal {
    subject: String,
    scopes: Vec<String>,
    session: Option<String>,
    client: Option<String>,
    api_key: Option<String>,
}

/// Per-request state shared by the phases.
pub struct RequestCtx {
    started: Instant,
    request_id: String,
    conn: Arc<ConnInfo>,
    rt: Arc<Runtime>,
    chain: ForwardedChain,
    method: Method,
    version: Version,
    log_uri: String,
    path: String,
    origin: Option<HeaderValue>,
    route: Option<Arc<RouteEntry>>,
    preflight_answered: bool,
    builtin: bool,
    principal: Option<Principal>,
    rate_headers: Option<RateLimitHeaders>,
    req: Option<Request<ProxyBody>>,
    /// Set when the request body missed its pace (see `limits.min_body_rate`).
    body_slow: Arc<AtomicBool>,
    reason: Option<String>,
}

impl Handler for Gateway {
    type Body = LoggedBody;

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<ConnInfo>,
    ) -> Response<LoggedBody> {
        let rt = self.runtime.load_full();
        let trusted = rt
            .listeners
            .get(&*conn.listener)
            .map(|l| &l.trusted_proxies);
        let chain = match trusted {
            Some(t) => ForwardedChain::resolve(conn.peer.ip(), req.headers(), t),
            None => ForwardedChain::resolve(conn.peer.ip(), req.headers(), &Default::default()),
        };
        let request_id =
            client_request_id(&req, chain.peer_trusted).unwrap_or_else(|| self.next_request_id());
        let limits = &rt.config.limits;
        let slot = self.start_request(limits.max_requests_in_flight);
        let body_slow = Arc::new(AtomicBool::new(false));
        let req = strip_identity_headers(req);
        // gRPC streams (HTTP/2, application/grpc) stay open and quiet by design: they are
        // bounded by the stream and connection limits, not by a body pace.
        let grpc_stream = req.version() == Version::HTTP_2
            && req
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        let req = if req.body().is_end_stream() || grpc_stream {
            req.map(|b| b.map_err(BoxError::from).boxed_unsync())
        } else {
            // Slow-body defense: the body must keep a minimum pace and end by the deadline.
            let pace = BodyPace {
                grace: limits.body_timeout.get(),
                min_rate: limits.min_body_rate,
                deadline: tokio::time::Instant::now() + limits.request_timeout.get(),
            };
            let slow = Arc::clone(&body_slow);
            req.map(|b| PacedBody::new(b, pace, slow).boxed_unsync())
        };
        let mut ctx = RequestCtx {
            started: Instant::now(),
            request_id,
            method: req.method().clone(),
            version: req.version(),
            log_uri: req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            path: String::new(),
            origin: req.headers().get(header::ORIGIN).cloned(),
            conn,
            rt,
            chain,
            route: None,
            preflight_answered: false,
            builtin: false,
            principal: None,
            rate_headers: None,
            req: Some(req),
            body_slow,
            reason: None,
        };
        let answer = if slot.is_some() {
            self.run_phases(&mut ctx, REQUEST_PHASES).await
        } else {
            // Shed before any work: queues never grow past the cap.
            self.security_event(
                &ctx,
                "load.shed",
                Mode::Enforce,
                503,
                "limits.max_requests_in_flight reached",
            );
            respond(self.refuse(&mut ctx, GatewayError::Overloaded))
        };
        // Proxy always answers; an empty 500 here would mean a phase forgot to.
        let resp = answer.unwrap_or_else(|| {
            let mut r = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        });
        let resp = self.finish_response(&ctx, resp);
        drop(slot);
        self.log(ctx, resp)
    }
}

/// A client-supplied `X-Request-Id`, kept only from trusted proxies and only when it is a
/// plain token.
fn client_request_id<B>(req: &Request<B>, peer_trusted: bool) -> Option<String> {
    if !peer_trusted {
        return None;
    }
    let v = req.headers().get("x-request-id")?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| v.to_owned())
}

/// `X-Rampart-*` headers carry identities the gateway verified; a client never sets them.
fn strip_identity_headers<B>(mut req: Request<B>) -> Request<B> {
    let forged: Vec<HeaderName> = req
        .headers()
        .keys()
        .filter(|k| k.as_str().starts_with("x-rampart-"))
        .cloned()
        .collect();
    for name in forged {
        req.headers_mut().remove(name);
    }
    req
}

/// Removes the cookie `name` from the `Cookie` headers (dropping a header left empty).
fn strip_cookie(headers: &mut http::HeaderMap, name: &str) {
    let values: Vec<String> = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .map(str::trim)
                .filter(|c| c.split_once('=').map_or(*c, |(k, _)| k).trim() != name)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|v| !v.is_empty())
        .collect();
    headers.remove(http::header::COOKIE);
    for v in values {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.append(http::header::COOKIE, v);
        }
    }
}

/// A WAF transaction for a request from `client` on `conn`, with the route's exclusions.
fn waf_transaction<'e>(
    engine: &'e rampart_waf::WafEngine,
    exclusions: &rampart_waf::Exclusions,
    client: std::net::IpAddr,
    conn: &ConnInfo,
    request_id: &str,
) -> rampart_waf::Transaction<'e> {
    let mut tx = engine.transaction(rampart_waf::ConnInfo {
        client_ip: client.to_string(),
        client_port: conn.peer.port(),
        server_ip: conn.local.ip().to_string(),
        server_port: conn.local.port(),
        request_id: request_id.to_owned(),
    });
    if !exclusions.is_empty() {
        tx.exclude(exclusions);
    }
    tx
}

/// What a WAF report says of the request.
struct WafSeen<'a> {
    mode: Mode,
    route: &'a str,
    request_id: &'a str,
    client: std::net::IpAddr,
    method: &'a str,
    uri: &'a str,
    /// The status the client got when the WAF refused the request.
    status: Option<u16>,
}

fn respond(v: Verdict) -> Option<Response<ProxyBody>> {
    match v {
        Verdict::Respond(r) => Some(r),
        Verdict::Continue => None,
    }
}

/// Response bodies the WAF reads at most; beyond, it sees this much and the rest streams on.
const WAF_RESPONSE_BODY_CAP: u64 = 512 * 1024;

/// WAF phases 3 and 4 on a response. Returns the intervention, if any, and the body to send
/// when the WAF had to read it.
async fn inspect_response(
    tx: &mut rampart_waf::Transaction<'_>,
    resp: &mut Response<ProxyBody>,
) -> (Option<rampart_waf::Intervention>, Option<ProxyBody>) {
    let protocol = match resp.version() {
        Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    };
    let headers: Vec<(&[u8], &[u8])> = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes()))
        .collect();
    if let Some(i) = tx.process_response_headers(resp.status().as_u16(), protocol, &headers) {
        return (Some(i), None);
    }
    drop(headers);
    if !tx.wants_response_body() {
        return (tx.process_response_body(), None);
    }
    let mut body = std::mem::replace(
        resp.body_mut(),
        Empty::new().map_err(|never| match never {}).boxed_unsync(),
    );
    let mut seen = bytes::BytesMut::new();
    let mut failed = false;
    while (seen.len() as u64) < WAF_RESPONSE_BODY_CAP {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(d) = frame.data_ref() {
                    seen.extend_from_slice(d);
                }
            }
            Some(Err(_)) => {
                failed = true;
                break;
            }
            None => break,
        }
    }
    let seen = seen.freeze();
    let mut iv = tx.append_response_body(&seen);
    if iv.is_none() {
        iv = tx.process_response_body();
    }
    let head = http_body_util::Full::new(seen)
        .map_err(|never| match never {})
        .boxed_unsync();
    let rebuilt = if failed || body.is_end_stream() {
        head
    } else {
        // What the WAF read, then the rest of the upstream's body as it comes.
        let frames =
            futures_util::stream::unfold((Some(head), body), |(head, mut rest)| async move {
                if let Some(mut h) = head {
                    return h.frame().await.map(|f| (f, (None, rest)));
                }
                rest.frame().await.map(|f| (f, (None, rest)))
            });
        http_body_util::StreamBody::new(frames).boxed_unsync()
    };
    (iv, Some(rebuilt))
}

/// `user-agent` → `User-Agent`: each dash-separated part capitalized.
/// Header names in their usual spelling (`User-Agent`), all in one buffer, in the order of
/// `HeaderMap::iter` (a repeated header once per value).
fn title_case<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for name in names {
        let mut up = true;
        for c in name.chars() {
            out.push(if up { c.to_ascii_uppercase() } else { c });
            up = c == '-';
        }
    }
    out
}

/// Every header line as the WAF reads it: its name from `titled` (from [`title_case`] over
/// the same map, or empty to keep the names as they are) and its value.
fn waf_headers<'a>(headers: &'a http::HeaderMap, titled: &'a str) -> Vec<(&'a [u8], &'a [u8])> {
    let mut at = 0;
    headers
        .iter()
        .map(|(k, v)| {
            let n = k.as_str().len();
            let name = match titled.get(at..at + n) {
                Some(t) if !titled.is_empty() => t.as_bytes(),
                _ => k.as_str().as_bytes(),
            };
            at += n;
            (name, v.as_bytes())
        })
        .collect()
}

enum BodyRead {
    TooLarge,
    Failed,
}

/// Reads a whole body, refusing it as soon as it passes `cap` bytes.
async fn read_capped(mut body: ProxyBody, cap: u64) -> Result<Bytes, BodyRead> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyRead::Failed)?;
        if let Some(data) = frame.data_ref() {
            if (buf.len() + data.len()) as u64 > cap {
                return Err(BodyRead::TooLarge);
            }
            buf.extend_from_slice(data);
        }
    }
    Ok(buf.freeze())
}

/// Sets the `RateLimit`, `RateLimit-Policy` and `Retry-After` headers of a decision.
fn put_rate_headers(h: &mut http::HeaderMap, r: &RateLimitHeaders) {
    for (name, value) in [
        ("ratelimit", &r.rate_limit),
        ("ratelimit-policy", &r.rate_limit_policy),
    ] {
        if !value.is_empty()
            && let Ok(v) = HeaderValue::from_str(value)
        {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    if let Some(secs) = r.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
}

/// Copies bytes both ways between an upgraded client connection and its upstream.
async fn join_upgraded(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    match tokio::join!(client, upstream) {
        (Ok(c), Ok(u)) => {
            let mut c = hyper_util::rt::TokioIo::new(c);
            let mut u = hyper_util::rt::TokioIo::new(u);
            let _ = tokio::io::copy_bidirectional(&mut c, &mut u).await;
        }
        (c, u) => tracing::debug!(client = c.is_ok(), upstream = u.is_ok(), "upgrade failed"),
    }
}

/// W3C `traceparent`: version 00, 32 hex trace id, 16 hex parent id, 2 hex flags, ids not
/// all zero.
fn valid_traceparent(t: &str) -> bool {
    let parts: Vec<&str> = t.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1].bytes().any(|b| b != b'0')
        && parts[2].bytes().any(|b| b != b'0')
}

/// Request line and header block size, as a client sent it (near enough for a cap).
fn head_size<B>(req: &Request<B>) -> usize {
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + 12;
    line + req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
}

impl Gateway {
    /// Runs `phases` in order until one answers. The WAF phase runs the phases after it
    /// itself, so that its transaction also sees the response (phases 3 and 4).
    async fn run_phases(
        &self,
        ctx: &mut RequestCtx,
        phases: &[Phase],
    ) -> Option<Response<ProxyBody>> {
        for (i, phase) in phases.iter().enumerate() {
            let verdict = match phase {
                Phase::Edge => self.edge(ctx),
                Phase::Cors => self.cors(ctx),
                Phase::LimitAnon => self.limit_anon(ctx).await,
                Phase::Waf => return self.waf(ctx, &phases[i + 1..]).await,
                Phase::Authenticate => self.authenticate(ctx).await,
                Phase::LimitIdentity => self.limit_identity(ctx).await,
                Phase::Validate => self.validate(ctx).await,
                Phase::Proxy => self.proxy(ctx).await,
            };
            if let Verdict::Respond(resp) = verdict {
                return Some(resp);
            }
        }
        None
    }

    fn refuse(&self, ctx: &mut RequestCtx, err: GatewayError) -> Verdict {
        ctx.reason = Some(err.to_string());
        let mut resp = err.to_response(&ctx.request_id);
        if ctx.version != Version::HTTP_11 {
            // Connection-specific headers are HTTP/1.1 only.
            resp.headers_mut().remove(header::CONNECTION);
        }
        if matches!(err, GatewayError::BodyTooLarge) && ctx.version == Version::HTTP_11 {
            // The rest of the body is unread: this connection cannot carry another request.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Verdict::Respond(resp)
    }

    /// A request body that could not be read: too slow (408, scored), or broken (400).
    fn body_failed(&self, ctx: &mut RequestCtx) -> Verdict {
        if !ctx.body_slow.load(Ordering::Acquire) {
            return self.refuse(
                ctx,
                GatewayError::BadRequest("The request body could not be read."),
            );
        }
        self.security_event(
            ctx,
            "limits.slow_body",
            Mode::Enforce,
            408,
            "request body below limits.min_body_rate or past limits.request_timeout",
        );
        self.offence(ctx, Offence::SlowClient);
        self.refuse(ctx, GatewayError::BodyTooSlow)
    }

    fn security_event(
        &self,
        ctx: &RequestCtx,
        event: &'static str,
        mode: Mode,
        status: u16,
        reason: &str,
    ) {
        let route = ctx.route.as_ref().map(|r| r.name.to_string());
        let status = (mode == Mode::Enforce).then_some(status);
        count_decision(
            event.split('.').next().unwrap_or(event),
            "deny",
            mode,
            route.as_deref().unwrap_or(""),
        );
        self.emit(
            Event::new("warn", event)
                .with("request_id", ctx.request_id.as_str())
                .with("client_ip", ctx.chain.client.to_string())
                .with("route", route)
                .with("method", ctx.method.as_str())
                .with_uri(&ctx.log_uri)
                .with("mode", mode.as_str())
                .with("status", status)
                .with("reason", reason),
        );
    }

    fn edge(&self, ctx: &mut RequestCtx) -> Verdict {
        let Some(req) = ctx.req.as_ref() else {
            return Verdict::Continue;
        };
        // A ban cuts connections opened before it, too (the accept-time check missed them).
        if ctx.rt.bans_mode == Some(Mode::Enforce)
            && let Some(ban) = self.bans.is_banned(ctx.chain.client.0)
        {
            let left = ban
                .until
                .duration_since(std::time::SystemTime::now())
                .map_or(1, |d| d.as_secs().max(1));
            self.security_event(
                ctx,
                "ban.refuse",
                Mode::Enforce,
                403,
                &ban.reason.to_string(),
            );
            return self.refuse(ctx, GatewayError::Banned(left));
        }
        if head_size(req) > ctx.rt.config.limits.max_header_bytes {
            self.security_event(
                ctx,
                "limits.header",
                Mode::Enforce,
                431,
                "request head larger than limits.max_header_bytes",
            );
            return self.refuse(ctx, GatewayError::HeadersTooLarge);
        }
        if req.method() == Method::CONNECT {
            return self.refuse(ctx, GatewayError::BadRequest("CONNECT is not supported."));
        }
        if req.method() == Method::TRACE {
            // TRACE reflects the request, credentials included, back to the page.
            return self.refuse(ctx, GatewayError::MethodNotAllowed(Vec::new()));
        }
        let host = request_host(req);
        if host.is_none() && req.version() == Version::HTTP_11 {
            return self.refuse(
                ctx,
                GatewayError::BadRequest("HTTP/1.1 requests need a Host header."),
            );
        }
        if !host_header_valid(req) {
            return self.refuse(
                ctx,
                GatewayError::BadRequest("The request needs one Host header naming a valid host."),
            );
        }
        let path = match rampart_proxy::path::normalize(req.uri().path()) {
            Ok(p) => p.into_owned(),
            Err(_) => {
                return self.refuse(
                    ctx,
                    GatewayError::BadRequest("The request target must be an absolute path."),
                );
            }
        };
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(route), true) = (
            ctx.rt.auth_route.as_ref(),
            crate::auth::is_builtin_path(&path),
        ) {
            ctx.path = path;
            ctx.route = Some(Arc::clone(route));
            ctx.builtin = true;
            return Verdict::Continue;
        }
        let found = match ctx.rt.routes.find(host.as_deref(), &path, req.method()) {
            RouteMatch::Found(r) => Arc::clone(r),
            RouteMatch::MethodNotAllowed(allow) => {
                return self.refuse(ctx, GatewayError::MethodNotAllowed(allow));
            }
            RouteMatch::NotFound => return self.refuse(ctx, GatewayError::NoRoute),
        };
        ctx.path = path;
        ctx.route = Some(Arc::clone(&found));
        if let Some((allow, mode)) = &found.allow_from
            && *mode != Mode::Off
            && !allow.contains(ctx.chain.client.0)
        {
            self.security_event(
                ctx,
                "route.deny",
                *mode,
                403,
                "source address not in allow_from",
            );
            if *mode == Mode::Enforce {
                return self.refuse(ctx, GatewayError::SourceNotAllowed);
            }
        }
        if declared_len.is_some_and(|n| n > found.max_body_bytes) {
            self.security_event(
                ctx,
                "limits.body",
                Mode::Enforce,
                413,
                "declared body larger than the route's max_body_bytes",
            );
            return self.refuse(ctx, GatewayError::BodyTooLarge);
        }
        Verdict::Continue
    }

    fn cors(&self, ctx: &mut RequestCtx) -> Verdict {
        let (Some(route), Some(req)) = (ctx.route.as_ref(), ctx.req.as_ref()) else {
            return Verdict::Continue;
        };
        let Some(policy) = route.cors.as_ref() else {
            return Verdict::Continue;
        };
        match policy.decide(req.method(), req.headers()) {
            CorsDecision::NotCors | CorsDecision::Actual { .. } => Verdict::Continue,
            CorsDecision::PreflightAllowed(headers) => {
                ctx.preflight_answered = true;
                let mut resp =
                    Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
                *resp.status_mut() = StatusCode::NO_CONTENT;
                *resp.headers_mut() = headers;
                Verdict::Respond(resp)
            }
            CorsDecision::PreflightRefused(why) => {
                // A refused preflight gets no CORS headers at all.
                ctx.preflight_answered = true;
                self.security_event(ctx, "cors.reject", Mode::Enforce, 403, why.as_str());
                self.refuse(ctx, GatewayError::CorsRefused(why))
            }
        }
    }

    async fn limit_anon(&self, ctx: &mut RequestCtx) -> Verdict {
        self.limit(ctx, false).await
    }

    async fn limit_identity(&self, ctx: &mut RequestCtx) -> Verdict {
        self.limit(ctx, true).await
    }

    /// Rate limits of the route whose keys are (`identity`) or are not verified identities.
    async fn limit(&self, ctx: &mut RequestCtx, identity: bool) -> Verdict {
        let Some(route) = ctx.route.clone() else {
            return Verdict::Continue;
        };
        let rt = Arc::clone(&ctx.rt);
        let Some(route_limits) = rt.route_limits.get(route.index) else {
            return Verdict::Continue;
        };
        let who = ctx.principal.clone();
        let all: Vec<&Arc<crate::runtime::LimitPolicy>> = route_limits
            .iter()
            .filter(|l| l.policy.key().is_identity() == identity)
            .filter(|_| !identity || who.is_some())
            .collect();
        if all.is_empty() {
            return Verdict::Continue;
        }
        let client = ctx.chain.client.0;
        // Keys are worked out once, before any await: the request is not Sync.
        let keys_all: Vec<LimitKey> = {
            let key_for = |p: &Policy| -> LimitKey {
                match p.key() {
                    KeyKind::Route => LimitKey::new(p, &route.name),
                    KeyKind::Header(name) => {
                        match ctx
                            .req
                            .as_ref()
                            .and_then(|r| r.headers().get(name.as_str()))
                            .and_then(|v| v.to_str().ok())
                        {
                            Some(v) => LimitKey::new(p, v),
                            None => LimitKey::with_kind(p, &KeyKind::Ip, &client.to_string()),
                        }
                    }
                    KeyKind::User => {
                        LimitKey::new(p, who.as_ref().map_or("", |w| w.subject.as_str()))
                    }
                    KeyKind::Client => LimitKey::new(
                        p,
                        who.as_ref()
                            .map_or("", |w| w.client.as_deref().unwrap_or(w.subject.as_str())),
                    ),
                    KeyKind::ApiKey => LimitKey::new(
                        p,
                        who.as_ref()
                            .and_then(|w| w.api_key.as_deref())
                            .unwrap_or(""),
                    ),
                    _ => LimitKey::ip(p, client),
                }
            };
            all.iter().map(|l| key_for(&l.policy)).collect()
        };
        let mut active: Vec<(&crate::runtime::LimitPolicy, &LimitKey)> = all
            .iter()
            .map(|l| l.as_ref())
            .zip(keys_all.iter())
            .collect();
        loop {
            let checks: Vec<(&Policy, &LimitKey)> =
                active.iter().map(|(l, k)| (&l.policy, *k)).collect();
            let verdict = self.limiter.check_all(&checks).await;
            let policies: Vec<&Policy> = active.iter().map(|(l, _)| &l.policy).collect();
            let headers = verdict.headers(&policies);
            match verdict {
                RateVerdict::Allowed(_) => {
                    if !active.is_empty() {
                        ctx.rate_headers = Some(match ctx.rate_headers.take() {
                            // Structured-field lists: the two phases' policies side by side.
                            Some(before) => RateLimitHeaders {
                                rate_limit: [before.rate_limit, headers.rate_limit].join(", "),
                                rate_limit_policy: [
                                    before.rate_limit_policy,
                                    headers.rate_limit_policy,
                                ]
                                .join(", "),
                                retry_after: None,
                            },
                            None => headers,
                        });
                    }
                    return Verdict::Continue;
                }
                RateVerdict::Limited { index, .. } => {
                    let limit = active[index].0;
                    let name = limit.policy.name().to_owned();
                    self.security_event(
                        ctx,
                        "ratelimit.reject",
                        limit.mode,
                        429,
                        &format!("policy {name}"),
                    );
                    self.offence(ctx, Offence::RateLimited);
                    if limit.mode == Mode::Enforce {
                        ctx.reason = Some(format!("rate limited by policy {name}"));
                        let mut resp = GatewayError::RateLimited(name).to_response(&ctx.request_id);
                        put_rate_headers(resp.headers_mut(), &headers);
                        return Verdict::Respond(resp);
                    }
                    active.remove(index);
                }
                RateVerdict::Unavailable { index } => {
                    let limit = active[index].0;
                    self.security_event(
                        ctx,
                        "ratelimit.unavailable",
                        limit.mode,
                        503,
                        "shared store down and the policy fails closed",
                    );
                    if limit.mode == Mode::Enforce {
                        return self.refuse(ctx, GatewayError::Unavailable("rate-limit store"));
                    }
                    active.remove(index);
                }
            }
        }
    }

    async fn waf(&self, ctx: &mut RequestCtx, rest: &[Phase]) -> Option<Response<ProxyBody>> {
        let rt = Arc::clone(&ctx.rt);
        let engine_and_mode = match (ctx.route.as_ref(), rt.waf.as_ref()) {
            (Some(route), Some(set)) => set.for_route(route.index),
            _ => None,
        };
        let (Some(route), Some(set), Some((engine, mode, exclusions))) =
            (ctx.route.clone(), rt.waf.as_ref(), engine_and_mode)
        else {
            return Box::pin(self.run_phases(ctx, rest)).await;
        };
        let Some(req) = ctx.req.as_mut() else {
            return None;
        };
        let mut tx = waf_transaction(
            engine,
            exclusions,
            ctx.chain.client.0,
            &ctx.conn,
            &ctx.request_id,
        );
        let protocol = match req.version() {
            Version::HTTP_2 => "HTTP/2.0",
            Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        let target = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        // HTTP/1 header names reach us lowercased; rules and logs see them in their usual
        // spelling (`User-Agent`), as a server that keeps the case would show them.
        let titled = match req.version() {
            Version::HTTP_2 => String::new(),
            _ => title_case(req.headers().iter().map(|(k, _)| k.as_str())),
        };
        let headers = waf_headers(req.headers(), &titled);
        let mut intervention =
            tx.process_request_headers(req.method().as_str(), &target, protocol, &headers);
        drop(headers);
        drop(titled);
        let mut too_large = false;
        if intervention.is_none() {
            if tx.wants_request_body() {
                let body = std::mem::replace(
                    req.body_mut(),
                    Empty::new().map_err(|never| match never {}).boxed_unsync(),
                );
                match read_capped(body, route.max_body_bytes).await {
                    Ok(bytes) => {
                        intervention = tx.append_request_body(&bytes);
                        *req.body_mut() = http_body_util::Full::new(bytes)
                            .map_err(|never| match never {})
                            .boxed_unsync();
                    }
                    Err(BodyRead::TooLarge) => too_large = true,
                    Err(BodyRead::Failed) => return respond(self.body_failed(ctx)),
                }
            }
            if intervention.is_none() && !too_large {
                intervention = tx.process_request_body();
            }
        }
        let answer;
        if too_large {
            self.security_event(
                ctx,
                "limits.body",
                Mode::Enforce,
                413,
                "buffered body larger than the route's max_body_bytes",
            );
            answer = respond(self.refuse(ctx, GatewayError::BodyTooLarge));
        } else if let Some(i) = intervention.take() {
            answer = respond(self.waf_refusal(ctx, i.status));
            intervention = Some(i);
        } else {
            let mut resp = Box::pin(self.run_phases(ctx, rest)).await;
            if let Some(r) = resp.as_mut() {
                let (iv, body) = inspect_response(&mut tx, r).await;
                if let Some(b) = body {
                    *r.body_mut() = b;
                }
                if let Some(i) = iv {
                    resp = respond(self.waf_refusal(ctx, i.status));
                    intervention = Some(i);
                }
            }
            answer = resp;
        }
        tx.process_logging();
        let matched = self.waf_report(
            set,
            &tx,
            WafSeen {
                mode,
                route: &route.name,
                request_id: &ctx.request_id,
                client: ctx.chain.client.0,
                method: ctx.method.as_str(),
                uri: &ctx.log_uri,
                status: intervention.as_ref().map(|i| i.status),
            },
        );
        if matched {
            self.offence(ctx, Offence::WafMatch);
        }
        answer
    }

    /// The audit record and the `waf.match` / `waf.block` event of a finished transaction.
    /// Returns whether any rule matched.
    fn waf_report(
        &self,
        set: &crate::waf::WafSet,
        tx: &rampart_waf::Transaction<'_>,
        seen: WafSeen<'_>,
    ) -> bool {
        let matched = tx.matched_rules();
        set.audit(!matched.is_empty(), || tx.audit_record());
        if matched.is_empty() {
            return false;
        }
        let rule_ids: Vec<u32> = matched.iter().map(|m| m.id).collect();
        let blocked = seen.status.is_some();
        let reason = matched
            .iter()
            .find(|m| m.disruptive)
            .or_else(|| matched.iter().find(|m| !m.msg.is_empty()))
            .map(|m| format!("rule {}: {}", m.id, m.msg))
            .unwrap_or_default();
        count_decision(
            "waf",
            if blocked { "block" } else { "match" },
            seen.mode,
            seen.route,
        );
        self.emit(
            Event::new("warn", if blocked { "waf.block" } else { "waf.match" })
                .with("request_id", seen.request_id)
                .with("client_ip", seen.client.to_string())
                .with("route", seen.route.to_owned())
                .with("method", seen.method)
                .with_uri(seen.uri)
                .with("mode", seen.mode.as_str())
                .with("rule_ids", rule_ids)
                .with(
                    "anomaly_score",
                    tx.inbound_anomaly_score().max(tx.outbound_anomaly_score()),
                )
                .with("status", seen.status)
                .with("reason", reason),
        );
        true
    }

    /// A first request head hyper's HTTP/1 parser refused. When it still parses leniently (a
    /// request target with characters RFC 3986 forbids unencoded, say), the gateway answers
    /// the 400 itself (problem+json with a request id), and the WAF of the route the request
    /// names inspects it first, so what the attack was is logged and scored, in `detect` mode
    /// too. Otherwise hyper's own 400 goes out.
    pub(crate) fn unparsable(&self, conn: &ConnInfo, head: &[u8]) -> Option<Vec<u8>> {
        let head = LenientHead::parse(head)?;
        let started = Instant::now();
        let request_id = self.next_request_id();
        let route = self.waf_unparsable(conn, &head, &request_id);
        let refusal = GatewayError::BadRequest(match head.protocol.as_str() {
            "HTTP/1.0" | "HTTP/1.1" => "The request head is not valid HTTP/1.1.",
            _ => "The HTTP version is not supported.",
        });
        let answer = if head.simple {
            refusal.to_http09_bytes(&request_id)
        } else {
            refusal.to_http1_bytes(&request_id)
        };
        let rt = self.runtime.load();
        self.served(
            &rt,
            Served {
                elapsed: started.elapsed(),
                request_id: &request_id,
                client: conn.peer.ip(),
                route: route.as_deref(),
                method: &head.method,
                uri: &head.target,
                status: StatusCode::BAD_REQUEST,
                reason: Some("request head refused by the HTTP parser".to_owned()),
                bytes_out: answer.len() as u64,
                completed: true,
            },
        );
        Some(answer)
    }

    /// The WAF's inspection of a request head only the lenient parser read. Returns the route
    /// the request names, if any.
    fn waf_unparsable(
        &self,
        conn: &ConnInfo,
        head: &LenientHead,
        request_id: &str,
    ) -> Option<Arc<RouteEntry>> {
        let rt = self.runtime.load();
        let m = Method::from_bytes(head.method.as_bytes()).ok()?;
        let host = head.host();
        let raw_path = head.path();
        let path = rampart_proxy::path::normalize(raw_path)
            .map(|p| p.into_owned())
            .unwrap_or_else(|_| raw_path.to_owned());
        let RouteMatch::Found(route) = rt.routes.find(host.as_deref(), &path, &m) else {
            return None;
        };
        let route = Arc::clone(route);
        let Some((set, (engine, mode, exclusions))) = rt
            .waf
            .as_ref()
            .and_then(|set| Some((set, set.for_route(route.index)?)))
        else {
            return Some(route);
        };
        let client = conn.peer.ip();
        let mut tx = waf_transaction(engine, exclusions, client, conn, request_id);
        let headers: Vec<(&[u8], &[u8])> = head
            .headers
            .iter()
            .map(|(name, value)| (name.as_bytes(), value.as_slice()))
            .collect();
        let mut intervention =
            tx.process_request_headers(&head.method, &head.target, &head.protocol, &headers);
        if intervention.is_none() {
            intervention = tx.process_request_body();
        }
        tx.process_logging();
        let matched = self.waf_report(
            set,
            &tx,
            WafSeen {
                mode,
                route: &route.name,
                request_id,
                client,
                method: &head.method,
                uri: &head.target,
                // the answer is 400 whatever the rules would have sent
                status: intervention.map(|_| 400),
            },
        );
        if matched {
            self.score_client(&rt, client, Offence::WafMatch, Some(request_id));
        }
        Some(route)
    }

    fn waf_refusal(&self, ctx: &mut RequestCtx, status: u16) -> Verdict {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| s.is_client_error())
            .unwrap_or(StatusCode::FORBIDDEN);
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return self.refuse(ctx, GatewayError::BodyTooLarge);
        }
        self.refuse(ctx, GatewayError::WafBlocked(status))
    }

    async fn authenticate(&self, ctx: &mut RequestCtx) -> Verdict {
        let Some(route) = ctx.route.clone() else {
            return Verdict::Continue;
        };
        if ctx.builtin {
            return self.builtin_endpoint(ctx).await;
        }
        let rt = Arc::clone(&ctx.rt);
        // A verified client certificate's identity goes upstream on every route (the
        // client's own header of that name was stripped at the edge).
        let identity = ctx
            .conn
            .tls_info
            .as_ref()
            .and_then(|t| t.client_identity.clone());
        if let (Some(id), Some(req)) = (&identity, ctx.req.as_mut())
            && let Ok(v) = HeaderValue::from_str(id)
        {
            req.headers_mut()
                .insert(HeaderName::from_static("x-rampart-client-cert-identity"), v);
        }
        let Some(required) = rt
            .route_auth
            .get(route.index)
            .filter(|a| a.jwt || a.api_key || a.mtls || a.session)
        else {
            return Verdict::Continue;
        };
        if required.mtls {
            match identity {
                Some(id) => {
                    if let Some(allowed) = &required.allow_identities
                        && !rampart_listen::tls::identity_allowed(&id, allowed)
                    {
                        self.security_event(
                            ctx,
                            "auth.mtls.deny",
                            Mode::Enforce,
                            403,
                            "client certificate identity not in allow_identities",
                        );
                        return self.refuse(ctx, GatewayError::IdentityNotAllowed);
                    }
                    if let Some(req) = ctx.req.as_mut()
                        && let Ok(v) = HeaderValue::from_str(&id)
                    {
                        req.headers_mut()
                            .insert(HeaderName::from_static("x-rampart-subject"), v);
                    }
                    ctx.principal = Some(Principal {
                        subject: id,
                        scopes: Vec::new(),
                        session: None,
                        client: None,
                        api_key: None,
                    });
                    return Verdict::Continue;
                }
                None if !(required.jwt || required.api_key) => {
                    self.security_event(
                        ctx,
                        "auth.mtls.deny",
                        Mode::Enforce,
                        401,
                        "no verified client certificate",
                    );
                    self.offence(ctx, Offence::AuthFailed);
                    return self.refuse(ctx, GatewayError::ClientCertRequired);
                }
                None => {}
            }
        }
        if required.session {
            let Some(server) = self.auth.clone() else {
                return self.refuse(ctx, GatewayError::Unavailable("authentication"));
            };
            // Only what the check needs is copied out: the request cannot be held across the
            // store lookup.
            let (cookie, wants_html) = match ctx.req.as_ref() {
                Some(r) => (
                    crate::auth::AuthServer::session_cookie_value(r.headers()),
                    r.headers()
                        .get(http::header::ACCEPT)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|a| a.contains("text/html")),
                ),
                None => return Verdict::Continue,
            };
            match server.session_identity(cookie.as_deref()).await {
                Ok(id) => {
                    if let Some(req) = ctx.req.as_mut() {
                        let h = req.headers_mut();
                        // The session cookie is the gateway's credential, not the app's.
                        strip_cookie(h, rampart_auth::cookie::SESSION_COOKIE);
                        for (name, value) in [
                            ("x-rampart-subject", id.user_id.as_str()),
                            ("x-rampart-session", id.sid.as_str()),
                        ] {
                            if let Ok(v) = HeaderValue::from_str(value) {
                                h.insert(HeaderName::from_static(name), v);
                            }
                        }
                    }
                    ctx.principal = Some(Principal {
                        subject: id.user_id,
                        scopes: Vec::new(),
                        session: Some(id.sid),
                        client: None,
                        api_key: None,
                    });
                    return Verdict::Continue;
                }
                Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    return self.refuse(ctx, GatewayError::Auth(e));
                }
                Err(e) if !(required.jwt || required.api_key) => {
                    self.security_event(
                        ctx,
                        "auth.session.fail",
                        Mode::Enforce,
                        401,
                        &e.to_string(),
                    );
                    let navigation =
                        (ctx.method == Method::GET || ctx.method == Method::HEAD) && wants_html;
                    if navigation {
                        // A browser is sent to the sign-in page, and back here afterwards.
                        let back: String = form_urlencoded::Serializer::new(String::new())
                            .append_pair("return_to", &ctx.log_uri)
                            .finish();
                        let mut r = Response::new(
                            http_body_util::Empty::<bytes::Bytes>::new()
                                .map_err(|never| match never {})
                                .boxed_unsync(),
                        );
                        *r.status_mut() = StatusCode::SEE_OTHER;
                        if let Ok(v) = HeaderValue::from_str(&format!("/auth/signin?{back}")) {
                            r.headers_mut().insert(http::header::LOCATION, v);
                        }
                        r.headers_mut().insert(
                            http::header::CACHE_CONTROL,
                            HeaderValue::from_static("no-store"),
                        );
                        return Verdict::Respond(r);
                    }
                    return self.refuse(
                        ctx,
                        GatewayError::Auth(rampart_auth::AuthError::MissingCredentials),
                    );
                }
                Err(_) => {}
            }
        }
        let Some(server) = self.auth.clone() else {
            return self.refuse(ctx, GatewayError::Unavailable("authentication"));
        };
        // Owned copies: the request is not Sync and must not be held across the store lookup.
        let (authorization, x_api_key) = {
            let Some(req) = ctx.req.as_ref() else {
                return Verdict::Continue;
            };
            let text = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            (text("authorization"), text("x-api-key"))
        };
        let scheme_value = |scheme: &str| {
            authorization
                .as_deref()
                .and_then(|a| a.split_once(' '))
                .filter(|(s, _)| s.eq_ignore_ascii_case(scheme))
                .map(|(_, v)| v.trim().to_owned())
        };
        let api_key: Option<String> = if required.api_key {
            scheme_value("apikey").or(x_api_key)
        } else {
            None
        };
        let outcome: Result<Principal, rampart_auth::AuthError> =
            if required.jwt && (scheme_value("bearer").is_some() || api_key.is_none()) {
                match server
                    .svc
                    .verifier()
                    .authenticate(authorization.as_deref(), &required.scopes)
                {
                    rampart_auth::AuthOutcome::Authenticated(t) => Ok(Principal {
                        subject: t.subject.clone(),
                        scopes: t.scopes.clone(),
                        session: t.session_id.clone(),
                        client: t.client_id.clone(),
                        api_key: None,
                    }),
                    rampart_auth::AuthOutcome::Denied(e) => Err(e),
                }
            } else if let Some(key) = api_key {
                match server.svc.verify_api_key(&key).await {
                    Ok(id) => {
                        let missing: Vec<String> = required
                            .scopes
                            .iter()
                            .filter(|s| !id.scopes.contains(s))
                            .cloned()
                            .collect();
                        if missing.is_empty() {
                            Ok(Principal {
                                subject: id
                                    .owner
                                    .clone()
                                    .unwrap_or_else(|| format!("apikey:{}", id.prefix)),
                                scopes: id.scopes.clone(),
                                session: None,
                                client: None,
                                api_key: Some(id.prefix.clone()),
                            })
                        } else {
                            Err(rampart_auth::AuthError::InsufficientScope { required: missing })
                        }
                    }
                    Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => Err(e),
                    Err(_) => Err(rampart_auth::AuthError::InvalidCredentials),
                }
            } else {
                Err(rampart_auth::AuthError::MissingCredentials)
            };
        match outcome {
            Ok(who) => {
                if let Some(req) = ctx.req.as_mut() {
                    let h = req.headers_mut();
                    if who.api_key.is_some() {
                        // The key is a credential for the gateway, not for the upstream.
                        h.remove("x-api-key");
                        if scheme_value("apikey").is_some() {
                            h.remove(http::header::AUTHORIZATION);
                        }
                    }
                    for (name, value) in [
                        ("x-rampart-subject", Some(who.subject.clone())),
                        ("x-rampart-scopes", Some(who.scopes.join(" "))),
                        ("x-rampart-session", who.session.clone()),
                    ] {
                        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                            h.insert(HeaderName::from_static(name), v);
                        }
                    }
                }
                ctx.principal = Some(who);
                Verdict::Continue
            }
            Err(e) => {
                let status = e.status().as_u16();
                self.security_event(
                    ctx,
                    "auth.token.fail",
                    Mode::Enforce,
                    status,
                    &e.to_string(),
                );
                if status == 401 {
                    self.offence(ctx, Offence::AuthFailed);
                }
                let jwt = required.jwt;
                let with_key = required.api_key;
                match self.refuse(ctx, GatewayError::Auth(e)) {
                    // A 401 names every scheme the route accepts.
                    Verdict::Respond(mut r) if status == 401 && with_key => {
                        let bearer = r
                            .headers()
                            .get(http::header::WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("Bearer")
                            .to_owned();
                        let value = if jwt {
                            format!("{bearer}, ApiKey")
                        } else {
                            "ApiKey".to_owned()
                        };
                        if let Ok(v) = HeaderValue::from_str(&value) {
                            r.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
                        }
                        Verdict::Respond(r)
                    }
                    v => v,
                }
            }
        }
    }

    async fn builtin_endpoint(&self, ctx: &mut RequestCtx) -> Verdict {
        let Some(server) = self.auth.clone() else {
            return self.refuse(ctx, GatewayError::NoRoute);
        };
        let Some(req) = ctx.req.take() else {
            return Verdict::Continue;
        };
        let (parts, body) = req.into_parts();
        let body = match read_capped(body, 64 * 1024).await {
            Ok(b) => b,
            Err(BodyRead::TooLarge) => return self.refuse(ctx, GatewayError::BodyTooLarge),
            Err(BodyRead::Failed) => {
                return self.refuse(
                    ctx,
                    GatewayError::BadRequest("The request body could not be read."),
                );
            }
        };
        let client = ctx.chain.client.to_string();
        let path = ctx.path.clone();
        match server
            .answer(
                &parts.method,
                &path,
                parts.uri.query(),
                &parts.headers,
                &body,
                &client,
            )
            .await
        {
            crate::auth::EndpointAnswer::Page { response, event } => {
                if let Some(event) = event {
                    let status = response.status().as_u16();
                    self.security_event(ctx, event, Mode::Enforce, status, "sign-in refused");
                    if status == 401 {
                        self.offence(ctx, Offence::AuthFailed);
                    }
                }
                Verdict::Respond(response)
            }
            crate::auth::EndpointAnswer::Logged {
                response,
                event,
                reason,
            } => {
                let status = response.status().as_u16();
                if status >= 400 {
                    self.security_event(ctx, event, Mode::Enforce, status, &reason);
                    if status == 401 {
                        self.offence(ctx, Offence::AuthFailed);
                    }
                } else {
                    self.emit(
                        Event::new("info", event)
                            .with("request_id", ctx.request_id.as_str())
                            .with("client_ip", client)
                            .with("status", status)
                            .with("reason", reason),
                    );
                }
                Verdict::Respond(response)
            }
            crate::auth::EndpointAnswer::Response(r) => {
                let signed_in = path == "/auth/signin" && r.status() == StatusCode::SEE_OTHER;
                if path == "/auth/login" || path == "/auth/refresh" || signed_in {
                    self.emit(
                        Event::new(
                            "info",
                            if path == "/auth/refresh" {
                                "auth.refresh"
                            } else {
                                "auth.login"
                            },
                        )
                        .with("request_id", ctx.request_id.as_str())
                        .with("client_ip", client)
                        .with("status", r.status().as_u16()),
                    );
                }
                Verdict::Respond(r)
            }
            crate::auth::EndpointAnswer::Refused {
                error,
                event,
                clear_cookie,
            } => {
                let status = error.status().as_u16();
                self.security_event(ctx, event, Mode::Enforce, status, &error.to_string());
                if status == 401 {
                    self.offence(ctx, Offence::AuthFailed);
                }
                match self.refuse(ctx, GatewayError::Auth(error)) {
                    Verdict::Respond(mut r) if clear_cookie => {
                        if let Ok(v) =
                            HeaderValue::from_str(&rampart_auth::cookie::clear_refresh_cookie())
                        {
                            r.headers_mut().append(http::header::SET_COOKIE, v);
                        }
                        Verdict::Respond(r)
                    }
                    v => v,
                }
            }
            crate::auth::EndpointAnswer::NotFound => self.refuse(ctx, GatewayError::NoRoute),
            crate::auth::EndpointAnswer::MethodNotAllowed(allow) => {
                self.refuse(ctx, GatewayError::MethodNotAllowed(allow))
            }
            crate::auth::EndpointAnswer::CrossSite => {
                self.security_event(
                    ctx,
                    "auth.csrf",
                    Mode::Enforce,
                    403,
                    "cookie endpoint called from another site",
                );
                self.refuse(ctx, GatewayError::CrossSite)
            }
        }
    }

    async fn validate(&self, ctx: &mut RequestCtx) -> Verdict {
        let rt = Arc::clone(&ctx.rt);
        let Some(route) = ctx.route.clone() else {
            return Verdict::Continue;
        };
        let Some(Some(schema)) = rt.schemas.get(route.index) else {
            return Verdict::Continue;
        };
        let Some(req) = ctx.req.as_mut() else {
            return Verdict::Continue;
        };
        let has_body = !req.body().is_end_stream();
        let body = if has_body {
            let taken = std::mem::replace(
                req.body_mut(),
                Empty::new().map_err(|never| match never {}).boxed_unsync(),
            );
            match read_capped(taken, route.max_body_bytes).await {
                Ok(bytes) => {
                    *req.body_mut() = http_body_util::Full::new(bytes.clone())
                        .map_err(|never| match never {})
                        .boxed_unsync();
                    Some(bytes)
                }
                Err(BodyRead::TooLarge) => return self.refuse(ctx, GatewayError::BodyTooLarge),
                Err(BodyRead::Failed) => return self.body_failed(ctx),
            }
        } else {
            None
        };
        let path = route.upstream_path(&ctx.path);
        let parts = rampart_validate::RequestParts {
            method: req.method(),
            path: &path,
            query: req.uri().query(),
            headers: req.headers(),
            body: body.as_deref(),
        };
        let outcome = schema.spec.validate(&parts);
        if !outcome.is_refused(&schema.config) {
            return Verdict::Continue;
        }
        let mode = match schema.config.mode {
            rampart_validate::Mode::Detect => Mode::Detect,
            _ => Mode::Enforce,
        };
        let status = outcome.status().map_or(400, |s| s.as_u16());
        let violations: Vec<String> = outcome
            .violations()
            .iter()
            .map(ToString::to_string)
            .collect();
        let reason = if violations.is_empty() {
            format!("refused with {status}")
        } else {
            violations.join("; ")
        };
        self.security_event(ctx, "validation.reject", mode, status, &reason);
        if mode == Mode::Detect {
            return Verdict::Continue;
        }
        let err = match outcome {
            rampart_validate::Outcome::UnknownPath => GatewayError::UnknownOperation,
            rampart_validate::Outcome::MethodNotAllowed { allow } => {
                GatewayError::MethodNotAllowed(allow)
            }
            rampart_validate::Outcome::UnsupportedMediaType { .. } => {
                GatewayError::UnsupportedMediaType
            }
            rampart_validate::Outcome::BodyTooLarge { .. } => GatewayError::BodyTooLarge,
            rampart_validate::Outcome::Invalid { violations, .. } => {
                GatewayError::Invalid(violations)
            }
            _ => GatewayError::Invalid(Vec::new()),
        };
        self.refuse(ctx, err)
    }

    /// Feeds the behaviour score of the client when bans are on; a crossing bans it.
    fn offence(&self, ctx: &RequestCtx, offence: Offence) {
        self.score_client(&ctx.rt, ctx.chain.client.0, offence, Some(&ctx.request_id));
    }

    async fn proxy(&self, ctx: &mut RequestCtx) -> Verdict {
        let (Some(route), Some(mut req)) = (ctx.route.clone(), ctx.req.take()) else {
            return Verdict::Continue;
        };
        // WebSocket and other HTTP/1.1 upgrades: once the upstream agrees (101), the two
        // connections are joined byte for byte.
        let client_upgrade = (req.version() == Version::HTTP_11
            && rampart_proxy::forward::upgrade_protocol(req.headers()).is_some())
        .then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let tripped = Arc::new(AtomicBool::new(false));
        let body =
            LimitedBody::new(body, route.max_body_bytes, Arc::clone(&tripped)).boxed_unsync();
        let incoming_trace = parts
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .filter(|t| valid_traceparent(t));
        let traceparent = match incoming_trace {
            Some(t) => t.to_owned(),
            None => {
                // Ids are 32 hex digits and never zero: a trace id, and its low half a span id.
                let id = self.next_request_id();
                format!("00-{id}-{}-00", &id[16..])
            }
        };
        let fctx = ForwardContext {
            peer: ctx.chain.peer,
            peer_trusted: ctx.chain.peer_trusted,
            client: ctx.chain.client.0,
            proto: if ctx.conn.tls { "https" } else { "http" },
            path: &ctx.path,
            request_id: &ctx.request_id,
            traceparent: &traceparent,
        };
        let rt = Arc::clone(&ctx.rt);
        match rt.forwarder().forward(&route, parts, body, &fctx).await {
            Ok(mut resp) => {
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS
                    && let Some(client_upgrade) = client_upgrade
                {
                    let upstream_upgrade = hyper::upgrade::on(&mut resp);
                    tokio::spawn(join_upgraded(client_upgrade, upstream_upgrade));
                }
                Verdict::Respond(resp.map(|b| b.map_err(BoxError::from).boxed_unsync()))
            }
            Err(_) if tripped.load(Ordering::Acquire) => {
                self.security_event(
                    ctx,
                    "limits.body",
                    Mode::Enforce,
                    413,
                    "streamed body larger than the route's max_body_bytes",
                );
                self.refuse(ctx, GatewayError::BodyTooLarge)
            }
            Err(_) if ctx.body_slow.load(Ordering::Acquire) => self.body_failed(ctx),
            Err(e) => {
                tracing::warn!(route = %route.name, request_id = %ctx.request_id, error = %e, "upstream failed");
                self.refuse(ctx, GatewayError::Upstream(e))
            }
        }
    }

    /// Response phase: route edits, CORS, security headers, request id.
    fn finish_response(
        &self,
        ctx: &RequestCtx,
        mut resp: Response<ProxyBody>,
    ) -> Response<ProxyBody> {
        let h = resp.headers_mut();
        let route = ctx.route.as_deref();
        if let Some(route) = route {
            route.response_headers.apply(h);
            if let Some(cors) = &route.cors
                && !ctx.preflight_answered
            {
                cors.apply_to_response(ctx.origin.as_ref(), h);
            }
        }
        SecurityHeaderSet::apply(
            &ctx.rt.security_defaults,
            route.and_then(|r| r.security_headers.as_ref()),
            ctx.conn.tls,
            h,
        );
        if let Some(rate) = &ctx.rate_headers {
            put_rate_headers(h, rate);
        }
        if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
            h.insert(HeaderName::from_static("x-request-id"), v);
        }
        if resp.status() == StatusCode::NOT_FOUND {
            // Scanners walk paths: bursts of 404s count toward a ban.
            self.offence(ctx, Offence::NotFound);
        }
        resp
    }

    /// Logging runs last: the access event is written when the body is done (or dropped).
    fn log(self: Arc<Self>, ctx: RequestCtx, resp: Response<ProxyBody>) -> Response<LoggedBody> {
        let status = resp.status();
        let access = AccessLog {
            gateway: self,
            started: ctx.started,
            request_id: ctx.request_id,
            client: ctx.chain.client,
            route: ctx.route,
            method: ctx.method,
            uri: ctx.log_uri,
            status,
            reason: ctx.reason,
            bytes_out: 0,
            done: false,
            rt: ctx.rt,
        };
        resp.map(|body| LoggedBody {
            inner: body,
            access,
        })
    }
}

struct AccessLog {
    gateway: Arc<Gateway>,
    rt: Arc<Runtime>,
    started: Instant,
    request_id: String,
    client: ClientAddr,
    route: Option<Arc<RouteEntry>>,
    method: Method,
    uri: String,
    status: StatusCode,
    reason: Option<String>,
    bytes_out: u64,
    done: bool,
}

impl AccessLog {
    fn write(&mut self, completed: bool) {
        if self.done {
            return;
        }
        self.done = true;
        self.gateway.served(
            &self.rt,
            Served {
                elapsed: self.started.elapsed(),
                request_id: &self.request_id,
                client: self.client.0,
                route: self.route.as_deref(),
                method: self.method.as_str(),
                uri: &self.uri,
                status: self.status,
                reason: self.reason.take(),
                bytes_out: self.bytes_out,
                completed,
            },
        );
    }
}

/// One answered request, as the access log and the request metrics record it.
struct Served<'a> {
    elapsed: std::time::Duration,
    request_id: &'a str,
    client: std::net::IpAddr,
    route: Option<&'a RouteEntry>,
    method: &'a str,
    uri: &'a str,
    status: StatusCode,
    reason: Option<String>,
    bytes_out: u64,
    completed: bool,
}

impl Gateway {
    /// The request metrics and, when `events.access_log` is on, the `http.request` event.
    fn served(&self, rt: &Runtime, s: Served<'_>) {
        let metrics = rt.route_metrics(s.route.map(|r| r.index));
        metrics.requests(s.status).increment(1);
        metrics.duration.record(s.elapsed.as_secs_f64());
        if !rt.config.events.access_log {
            return;
        }
        let level = if s.status.is_server_error() {
            "error"
        } else {
            "info"
        };
        self.emit(
            Event::new(level, "http.request")
                .with("request_id", s.request_id)
                .with("client_ip", s.client.to_string())
                .with("route", s.route.map(|r| r.name.to_string()))
                .with("method", s.method)
                .with_uri(s.uri)
                .with("status", s.status.as_u16())
                .with("reason", s.reason)
                .with(
                    "duration_ms",
                    (s.elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
                )
                .with("bytes_out", s.bytes_out)
                .with("completed", s.completed),
        );
    }
}

pin_project_lite::pin_project! {
    /// The response body, counted; the access event is written when it ends or is dropped.
    pub struct LoggedBody {
        #[pin]
        inner: ProxyBody,
        access: AccessLog,
    }

    impl PinnedDrop for LoggedBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let finished = this.inner.is_end_stream();
            this.access.write(finished);
        }
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.access.bytes_out += d.len() as u64;
                }
            }
            Poll::Ready(None) => this.access.write(true),
            Poll::Ready(Some(Err(_))) => this.access.write(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_get_their_usual_spelling() {
        let one = |n: &str| title_case(std::iter::once(n));
        assert_eq!(one("user-agent"), "User-Agent");
        assert_eq!(one("referer"), "Referer");
        assert_eq!(one("x-forwarded-for"), "X-Forwarded-For");
        assert_eq!(one("-a--b-"), "-A--B-");
        assert_eq!(one(""), "");
    }

    /// A repeated header reaches the WAF once per value, each line under its own name.
    #[test]
    fn waf_headers_pair_each_value_with_its_name() {
        let mut map = http::HeaderMap::new();
        map.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        map.append("cookie", HeaderValue::from_static("a=1"));
        map.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        map.append("user-agent", HeaderValue::from_static("curl"));
        map.append("cookie", HeaderValue::from_static("b=2"));
        let titled = title_case(map.iter().map(|(k, _)| k.as_str()));
        let mut lines: Vec<(String, String)> = waf_headers(&map, &titled)
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect();
        lines.sort();
        let expect = [
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
            ("User-Agent", "curl"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("X-Forwarded-For", "10.0.0.2"),
        ];
        assert_eq!(
            lines,
            expect.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
        // names kept as they are (HTTP/2)
        let raw = waf_headers(&map, "");
        assert!(
            raw.iter()
                .all(|(k, _)| k.iter().all(|b| !b.is_ascii_uppercase()))
        );
        assert_eq!(raw.len(), 5);
    }
}
