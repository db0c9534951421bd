//! The accept loop and one task per connection.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rampart_config::normalize_ip;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::conns::{ConnTracker, Refusal};
use crate::record::{FirstBytes, OnRefused, Recorded};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The HTTP limits a connection is served with, read from the config at accept.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest request head; hyper refuses far larger heads itself, the handler answers 431
    /// with a problem body for the rest.
    pub max_header_bytes: usize,
    /// Time to receive a complete HTTP/1 request head.
    pub header_read_timeout: Duration,
    /// Time a connection may sit with no request in flight.
    pub idle_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections per client address group.
    pub max_connections_per_ip: usize,
    /// HTTP/2 streams open at once per connection.
    pub h2_max_concurrent_streams: u32,
    /// Requests a client may cancel per connection within [`RESET_WINDOW`]; beyond, the
    /// connection is closed and [`Gate::abused`] told (HTTP/2 rapid reset).
    pub h2_max_resets: u32,
}

/// The window `HttpLimits::h2_max_resets` counts cancelled requests in.
pub const RESET_WINDOW: Duration = Duration::from_secs(10);

/// The verdict of a [`Gate`] on a new connection.
#[derive(Debug, Clone, Copy)]
pub enum Admission {
    /// Serve it with these limits.
    Admit(HttpLimits),
    /// Close it now.
    Refuse(Refusal),
}

/// Decides on connections at accept, before any byte is read.
pub trait Gate: Send + Sync + 'static {
    /// Firewall and bans for a new connection from `peer` on `listener`.
    fn admit(&self, listener: &str, peer: SocketAddr) -> Admission;
    /// Told of every refused connection (for events and metrics).
    fn refused(&self, listener: &str, peer: SocketAddr, why: Refusal);
    /// The TLS config new connections on `listener` are served with; `None`: plain HTTP.
    /// Asked at every accept, so a swapped config applies to the next handshake.
    fn tls(&self, _listener: &str) -> Option<Arc<rustls::ServerConfig>> {
        None
    }
    /// Told of every failed TLS handshake (old protocol, no client certificate, revoked
    /// certificate, timeout).
    fn tls_failed(&self, _listener: &str, _peer: SocketAddr, _why: &str) {}
    /// Told when a connection is closed for abusing the protocol (`what`: e.g. too many
    /// cancelled HTTP/2 streams).
    fn abused(&self, _listener: &str, _peer: SocketAddr, _what: &str) {}
    /// Told when the HTTP/1 parser refused a connection's first request head (e.g. for
    /// characters a request target may not hold), before its `400` is written; `head` is what
    /// the client sent, up to the header cap, so the request can still be inspected and logged.
    /// Returns the complete HTTP/1.1 response to send instead of hyper's bare `400` (the
    /// connection closes after it), or `None` to let that one go out.
    fn unparsable(&self, _conn: &ConnInfo, _head: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// Answers requests.
pub trait Handler: Send + Sync + 'static {
    /// Response body type.
    type Body: hyper::body::Body<Data = Bytes, Error = BoxError> + Send + 'static;
    /// Answers one request; never fails (errors are responses).
    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<ConnInfo>,
    ) -> impl Future<Output = Response<Self::Body>> + Send;
}

/// What the handler knows of the connection a request came on.
#[derive(Debug)]
pub struct ConnInfo {
    /// Process-unique connection number.
    pub id: u64,
    /// The listener's name.
    pub listener: Arc<str>,
    /// The TCP peer (IPv4-mapped addresses normalized).
    pub peer: SocketAddr,
    /// The local address the connection arrived on.
    pub local: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// What the TLS handshake negotiated (and the client certificate's identity).
    pub tls_info: Option<crate::tls::TlsInfo>,
    started: Instant,
    in_flight: AtomicUsize,
    last_active_ms: AtomicU64,
    /// Requests cancelled by the client in the current window, and when the window began
    /// (ms since `started`).
    cancels: std::sync::Mutex<(u32, u64)>,
    max_cancels: u32,
    abused: tokio::sync::Notify,
}

impl ConnInfo {
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_active_ms.load(Ordering::Acquire));
        Some(self.started.elapsed().saturating_sub(last))
    }

    /// A request whose answer the client no longer wanted (stream reset, connection gone).
    fn cancelled(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        let mut c = self.cancels.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_sub(c.1) >= RESET_WINDOW.as_millis() as u64 {
            *c = (0, now);
        }
        c.0 = c.0.saturating_add(1);
        if c.0 == self.max_cancels.saturating_add(1) {
            self.abused.notify_one();
        }
    }

    fn touch(&self) {
        self.last_active_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Release);
    }
}

/// Marks a request in flight for as long as it lives; dropped before it is answered, the
/// request counts as cancelled by the client.
struct InFlight {
    conn: Arc<ConnInfo>,
    answered: bool,
}

impl InFlight {
    fn new(conn: Arc<ConnInfo>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.touch();
        InFlight {
            conn,
            answered: false,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.answered {
            self.conn.cancelled();
        }
        self.conn.touch();
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// Accepts connections on `listener` until `shutdown` is cancelled; every connection task is
/// spawned on `tasks`, so the caller can wait for them to drain.
pub async fn serve<G: Gate, H: Handler>(
    listener: TcpListener,
    name: Arc<str>,
    gate: Arc<G>,
    handler: Arc<H>,
    conns: Arc<ConnTracker>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let local = listener.local_addr().ok();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let peer = SocketAddr::new(normalize_ip(peer.ip()), peer.port());
        let limits = match gate.admit(&name, peer) {
            Admission::Admit(limits) => limits,
            Admission::Refuse(why) => {
                gate.refused(&name, peer, why);
                continue;
            }
        };
        let guard = match conns.try_acquire(
            peer.ip(),
            limits.max_connections,
            limits.max_connections_per_ip,
        ) {
            Ok(g) => g,
            Err(why) => {
                gate.refused(&name, peer, why);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let tls = gate.tls(&name);
        let local = stream.local_addr().ok().or(local).unwrap_or(peer);
        let name = Arc::clone(&name);
        let handler = Arc::clone(&handler);
        let gate = Arc::clone(&gate);
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let info = |tls_info: Option<crate::tls::TlsInfo>| {
                Arc::new(ConnInfo {
                    id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
                    listener: Arc::clone(&name),
                    peer,
                    local,
                    tls: tls_info.is_some(),
                    tls_info,
                    started: Instant::now(),
                    in_flight: AtomicUsize::new(0),
                    last_active_ms: AtomicU64::new(0),
                    cancels: std::sync::Mutex::new((0, 0)),
                    max_cancels: limits.h2_max_resets,
                    abused: tokio::sync::Notify::new(),
                })
            };
            let first = Arc::new(FirstBytes::new(limits.max_header_bytes));
            let on_refused = |conn: &Arc<ConnInfo>| -> OnRefused {
                let gate = Arc::clone(&gate);
                let conn = Arc::clone(conn);
                Box::new(move |head: &[u8]| gate.unparsable(&conn, head))
            };
            match tls {
                None => {
                    let conn = info(None);
                    let io = Recorded::new(stream, Arc::clone(&first), Some(on_refused(&conn)))
                        .head_wait(limits.header_read_timeout);
                    serve_connection(
                        TokioIo::new(io),
                        conn,
                        limits,
                        handler,
                        &*gate,
                        shutdown,
                        first,
                    )
                    .await;
                }
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    let handshake = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        r = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)) => r,
                    };
                    let stream = match handshake {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            gate.tls_failed(&name, peer, &e.to_string());
                            return;
                        }
                        Err(_) => {
                            gate.tls_failed(&name, peer, "handshake timed out");
                            return;
                        }
                    };
                    let tls_info = crate::tls::TlsInfo::of(stream.get_ref().1);
                    if tls_info.alpn.as_deref() == Some(crate::tls::ACME_TLS_ALPN) {
                        // An ACME validation handshake: the certificate was the answer.
                        return;
                    }
                    let conn = info(Some(tls_info));
                    let io = Recorded::new(stream, Arc::clone(&first), Some(on_refused(&conn)))
                        .head_wait(limits.header_read_timeout);
                    serve_connection(
                        TokioIo::new(io),
                        conn,
                        limits,
                        handler,
                        &*gate,
                        shutdown,
                        first,
                    )
                    .await;
                }
            }
            drop(guard);
        });
    }
}

async fn serve_connection<I, H, G>(
    io: I,
    info: Arc<ConnInfo>,
    limits: HttpLimits,
    handler: Arc<H>,
    gate: &G,
    shutdown: CancellationToken,
    first: Arc<FirstBytes>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Handler,
    G: Gate,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper answers 431 itself past this; below it the handler checks the exact cap.
        .max_buf_size((limits.max_header_bytes * 2).max(64 * 1024))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes * 2).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        // Streams reset before the handler saw them, and streams the server had to reset:
        // h2 answers floods of either with GOAWAY (ENHANCE_YOUR_CALM) itself.
        .max_pending_accept_reset_streams(Some(20))
        .max_local_error_reset_streams(Some(256));
    let svc_info = Arc::clone(&info);
    let svc_first = Arc::clone(&first);
    let service = service_fn(move |req: Request<Incoming>| {
        let handler = Arc::clone(&handler);
        let conn = Arc::clone(&svc_info);
        svc_first.stop();
        async move {
            let mut in_flight = InFlight::new(Arc::clone(&conn));
            let resp = handler.handle(req, conn).await;
            in_flight.answered = true;
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let check_every =
        (limits.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(conn = info.id, peer = %info.peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = info.abused.notified() => {
                // Cancelled requests beyond the limit: the client makes the server start work
                // it never waits for. The connection goes now, with its streams.
                gate.abused(&info.listener, info.peer, "too many cancelled requests");
                break;
            }
            _ = shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep(check_every), if !closing => {
                if info.idle_for().is_some_and(|idle| idle >= limits.idle_timeout) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}
