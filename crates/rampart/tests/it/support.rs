//! Test support: the real `rampart` binary on loopback with a temp config, a recording
//! upstream, and clients. Waits poll for a condition with a generous cap; nothing here
//! asserts how fast anything is.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Generous cap for anything the tests wait for.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rampart")
}

/// Polls `f` until it returns `Some`, or panics with `what` after [`PATIENCE`].
pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A request an upstream received.
#[derive(Debug, Clone)]
#[allow(dead_code)] // read in failure output
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub body_len: usize,
    pub body: Bytes,
}

/// A TCP connection to `addr` from the loopback address `source` (tests play distinct
/// clients as 127.0.0.x).
pub async fn connect_from(
    source: std::net::IpAddr,
    addr: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(source, 0))?;
    sock.connect(addr).await
}

/// A loopback address where nothing listens (connections are refused).
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A recording upstream on a free loopback port. Paths:
/// `/slow?ms=N` answers after N ms; `/status/N` answers N; `/big?n=N` answers N bytes;
/// `/headers` sets its own CORS and frame headers; anything else answers 200 with JSON.
#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub async fn start(name: &'static str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let up = Upstream {
            addr,
            seen: seen.clone(),
        };
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| answer(name, seen.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        up
    }

    /// Like `start`, on TLS with `config`; a client certificate's subject CN is recorded as
    /// the request header `x-test-peer-cn` of what the upstream saw.
    pub async fn start_tls(name: &'static str, config: Arc<rustls::ServerConfig>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let up = Upstream {
            addr,
            seen: seen.clone(),
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let peer = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| format!("{} bytes", c.len()));
                    let svc = service_fn(move |mut req: Request<Incoming>| {
                        if let Some(p) = &peer {
                            req.headers_mut()
                                .insert("x-test-peer-cert", p.parse().unwrap());
                        }
                        answer(name, seen.clone(), req)
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        up
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the upstream saw no request")
    }
}

fn query_num(uri: &http::Uri, key: &str) -> Option<u64> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

async fn answer(
    name: &'static str,
    seen: Arc<Mutex<Vec<Seen>>>,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/ws" && req.headers().get("upgrade").is_some() {
        // Switches to an echo protocol: every byte sent comes back.
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let (mut r, mut w) = tokio::io::split(TokioIo::new(up));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let mut r = Response::new(Full::default());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut().insert("upgrade", "echo".parse().unwrap());
        r.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        return Ok(r);
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers.clone(),
        body_len: body.len(),
        body: body.clone(),
    });
    let path = parts.uri.path();
    if path.starts_with("/slow") {
        tokio::time::sleep(Duration::from_millis(
            query_num(&parts.uri, "ms").unwrap_or(1000),
        ))
        .await;
    }
    let mut resp = if let Some(code) = path.strip_prefix("/status/") {
        let mut r = Response::new(Full::new(Bytes::from_static(b"status")));
        *r.status_mut() = StatusCode::from_u16(code.parse().unwrap_or(500))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        r
    } else if path.starts_with("/big") {
        let n = query_num(&parts.uri, "n").unwrap_or(1 << 20) as usize;
        Response::new(Full::new(Bytes::from(vec![b'x'; n])))
    } else {
        let v = serde_json::json!({ "upstream": name, "uri": parts.uri.to_string(), "body_len": body.len() });
        Response::new(Full::new(Bytes::from(v.to_string())))
    };
    resp.headers_mut()
        .insert("x-upstream", name.parse().unwrap());
    if !resp.headers().contains_key("content-type") {
        resp.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
    }
    if path.starts_with("/headers") {
        let h = resp.headers_mut();
        h.insert("access-control-allow-origin", "*".parse().unwrap());
        h.insert("x-frame-options", "SAMEORIGIN".parse().unwrap());
        h.insert("connection", "x-drop-me".parse().unwrap());
        h.insert("x-drop-me", "1".parse().unwrap());
    }
    Ok(resp)
}

/// The gateway process.
pub struct Gateway {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub events: PathBuf,
    pub listeners: HashMap<String, SocketAddr>,
}

impl Gateway {
    /// Starts `rampart serve` with `body` appended to a header that sets `version`, the admin
    /// listener and the event sink. `body` should declare its listeners with port 0.
    pub async fn start(body: &str) -> Gateway {
        Gateway::start_with_events(body, "").await
    }

    /// Like `start`, with extra lines for the `[events]` table.
    pub async fn start_with_events(body: &str, events_extra: &str) -> Gateway {
        Gateway::start_with_env(body, events_extra, &[]).await
    }

    /// Like `start_with_events`, with extra environment variables for the process.
    pub async fn start_with_env(body: &str, events_extra: &str, env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("rampart.toml");
        let events = dir.path().join("events.jsonl");
        std::fs::write(
            &config,
            full_config(body).replace(
                "sink = \"events.jsonl\"\n",
                &format!("sink = \"events.jsonl\"\n{events_extra}\n"),
            ),
        )
        .unwrap();
        let out = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&config)
            .env("RAMPART_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut gw = Gateway {
            child,
            dir,
            config,
            events,
            listeners: HashMap::new(),
        };
        let expected = body.matches("[[listener]]").count() + 1;
        let events_path = gw.events.clone();
        let stderr_path = gw.dir.path().join("stderr.log");
        let child = &mut gw.child;
        let listeners = eventually("the gateway to listen", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "rampart exited with {status}:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
            let found: HashMap<String, SocketAddr> = read_events(&events_path)
                .into_iter()
                .filter(|e| e["event"] == "server.listening")
                .map(|e| {
                    (
                        e["listener"].as_str().unwrap().to_owned(),
                        e["addr"].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect();
            (found.len() >= expected && found.contains_key("admin")).then_some(found)
        })
        .await;
        gw.listeners = listeners;
        gw
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        self.listeners[listener]
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr("public"), path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr("admin"), path)
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        read_events(&self.events)
    }

    /// Waits for an event satisfying `pred`.
    pub async fn event(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        eventually(what, || self.events().into_iter().find(|e| pred(e))).await
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Rewrites the config file (same header as at start).
    pub fn rewrite_config(&self, body: &str) {
        let tmp = self.dir.path().join("rampart.toml.new");
        std::fs::write(&tmp, full_config(body)).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }
}

fn full_config(body: &str) -> String {
    format!(
        "version = 1\ndata_dir = \"./data\"\n[admin]\nbind = \"127.0.0.1:0\"\n[events]\nsink = \"events.jsonl\"\n{body}"
    )
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn read_events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// An HTTP/1.1 client with connection pooling.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 client speaking h2c with prior knowledge.
pub fn h2_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn send(client: &Client<HttpConnector, Full<Bytes>>, req: Request<Full<Bytes>>) -> Reply {
    let resp = tokio::time::timeout(PATIENCE, client.request(req))
        .await
        .expect("request timed out")
        .expect("request failed");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(url: &str) -> Reply {
    send(&client(), Request::get(url).body(Full::default()).unwrap()).await
}

pub fn req(method: &str, url: &str) -> http::request::Builder {
    Request::builder().method(method).uri(url)
}

/// Sends raw bytes on a fresh connection and reads until the server closes or `PATIENCE`.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
