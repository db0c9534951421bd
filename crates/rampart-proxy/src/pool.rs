//! Keep-alive connections to plain-HTTP upstreams, one pool per request worker.
//!
//! A connection is taken from the pool for one exchange and goes back when the response body
//! has been read to its end (and the connection is ready for the next request); a response
//! dropped half-read, an upgraded connection or one the upstream closed never goes back. The
//! most recently used connection is taken first, so a quiet period lets the oldest ones age out:
//! those idle longer than the idle timeout are closed when the pool is next used.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::ProxyBody;

/// Why no connection could be had.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// Every address refused, was unreachable or could not be resolved.
    Failed(String),
    /// The connect timeout passed first.
    TimedOut,
}

/// Idle connections by upstream authority.
#[derive(Debug)]
pub(crate) struct Pool {
    idle: Mutex<HashMap<Authority, Vec<Idle>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle_per_host: usize,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<ProxyBody>,
    since: Instant,
}

/// A connection taken from the pool (or new) for one exchange.
pub(crate) struct Lease {
    pub(crate) sender: SendRequest<ProxyBody>,
    /// Whether it served an earlier exchange: a request it did not take may then be sent again
    /// on a new connection, since the upstream may have closed it while it idled.
    pub(crate) reused: bool,
}

impl Pool {
    pub(crate) fn new(
        connect_timeout: Duration,
        idle_timeout: Duration,
        max_idle_per_host: usize,
    ) -> Pool {
        Pool {
            idle: Mutex::new(HashMap::new()),
            connect_timeout,
            idle_timeout,
            max_idle_per_host,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Authority, Vec<Idle>>> {
        // the map holds no invariant a panic elsewhere could break
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection to `authority` ready for a request, else a new one.
    pub(crate) async fn lease(&self, authority: &Authority) -> Result<Lease, ConnectError> {
        if let Some(sender) = self.take_idle(authority) {
            return Ok(Lease {
                sender,
                reused: true,
            });
        }
        let sender = self.connect(authority).await?;
        Ok(Lease {
            sender,
            reused: false,
        })
    }

    fn take_idle(&self, authority: &Authority) -> Option<SendRequest<ProxyBody>> {
        let now = Instant::now();
        let mut map = self.lock();
        let list = map.get_mut(authority)?;
        self.expire(list, now);
        // only connections ready at their return are pooled: one not ready now was closed
        while let Some(idle) = list.pop() {
            if idle.sender.is_ready() {
                return Some(idle.sender);
            }
        }
        None
    }

    /// Drops connections idle for longer than the idle timeout (the oldest are first).
    fn expire(&self, list: &mut Vec<Idle>, now: Instant) {
        let old = list
            .iter()
            .take_while(|i| now.duration_since(i.since) >= self.idle_timeout)
            .count();
        if old > 0 {
            list.drain(..old);
        }
    }

    /// Puts a connection back for the next exchange, once it is ready for one.
    fn give_back(self: Arc<Self>, authority: Authority, mut sender: SendRequest<ProxyBody>) {
        if sender.is_closed() {
            return;
        }
        if !sender.is_ready() {
            // the connection has not yet taken in the end of the last exchange
            tokio::spawn(async move {
                if sender.ready().await.is_ok() {
                    self.put(authority, sender);
                }
            });
            return;
        }
        self.put(authority, sender);
    }

    fn put(&self, authority: Authority, sender: SendRequest<ProxyBody>) {
        let now = Instant::now();
        let mut map = self.lock();
        let list = map.entry(authority).or_default();
        self.expire(list, now);
        if list.len() < self.max_idle_per_host {
            list.push(Idle { sender, since: now });
        }
    }

    async fn connect(&self, authority: &Authority) -> Result<SendRequest<ProxyBody>, ConnectError> {
        let port = authority.port_u16().unwrap_or(80);
        let host = authority.host();
        let stream = tokio::time::timeout(self.connect_timeout, async {
            let literal = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>();
            let addrs: Vec<SocketAddr> = match literal {
                Ok(ip) => vec![SocketAddr::new(ip, port)],
                Err(_) => tokio::net::lookup_host((host, port))
                    .await
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .collect(),
            };
            let mut last = format!("{host} resolved to no address");
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(s) => return Ok(s),
                    Err(e) => last = format!("{addr}: {e}"),
                }
            }
            Err(last)
        })
        .await
        .map_err(|_| ConnectError::TimedOut)?
        .map_err(ConnectError::Failed)?;
        // small requests and responses go out at once rather than waiting for an ACK
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ConnectError::Failed(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// The body of an upstream's response. Read to its end, it gives its connection back to the
/// pool.
pub struct UpstreamBody {
    inner: Incoming,
    back: Option<GiveBack>,
    /// The last frame was read.
    ended: bool,
}

struct GiveBack {
    pool: Arc<Pool>,
    authority: Authority,
    sender: SendRequest<ProxyBody>,
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("pooled", &self.back.is_some())
            .finish_non_exhaustive()
    }
}

impl UpstreamBody {
    /// A body not tied to the pool (an upgraded exchange, or a TLS upstream's).
    pub(crate) fn detached(inner: Incoming) -> UpstreamBody {
        UpstreamBody {
            inner,
            back: None,
            ended: false,
        }
    }

    pub(crate) fn pooled(
        inner: Incoming,
        pool: Arc<Pool>,
        authority: Authority,
        sender: SendRequest<ProxyBody>,
    ) -> UpstreamBody {
        UpstreamBody {
            inner,
            back: Some(GiveBack {
                pool,
                authority,
                sender,
            }),
            ended: false,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            // a broken exchange leaves the connection unusable
            Poll::Ready(Some(Err(_))) => self.back = None,
            Poll::Ready(None) => self.ended = true,
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // only a body read to its end leaves the connection between exchanges; hyper closes
        // one whose body was abandoned
        if let Some(b) = self.back.take()
            && (self.ended || self.inner.is_end_stream())
        {
            b.pool.give_back(b.authority, b.sender);
        }
    }
}
