//! `rampart serve`: bind the listeners, serve, reload on SIGHUP and file change, drain on
//! SIGTERM.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use notify::Watcher;
use rampart_config::ValidatedConfig;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::events::{Event, EventSink};
use crate::runtime::{Gateway, Runtime};

/// Installs the Prometheus recorder (once per process).
fn install_metrics() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("rampart_http_request_duration_seconds".into()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ],
        )
        .map_err(|e| format!("metrics: {e}"))?
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))
}

/// Runs the gateway on a validated config until SIGTERM or SIGINT. `on_ready` is called once
/// every listener is bound.
pub async fn run(
    config: ValidatedConfig,
    on_ready: impl FnOnce(&[(String, SocketAddr)]),
) -> Result<(), String> {
    // SIGHUP's default action ends the process: it is taken over before any listener is
    // announced, so a reload asked for while the gateway starts waits for the reloader
    let hangup = signal(SignalKind::hangup()).ok();
    let metrics = install_metrics()?;
    let events = EventSink::open(&config.events.sink)?;
    for w in config.warnings() {
        tracing::warn!("{}: {}", config.source().display(), w);
    }
    // Watch before reading any certificate, and before announcing a listener.
    let reloader = Reloader::watch(&config);
    let workers = worker_count();
    // One accepting socket per listener and worker (SO_REUSEPORT): the kernel spreads
    // connections, and each worker serves its own on one thread, so a request and its
    // upstream exchange never hop between threads.
    let mut listeners: Vec<(String, SocketAddr, Vec<std::net::TcpListener>)> = Vec::new();
    for l in &config.listener {
        let cannot =
            |e: std::io::Error| format!("listener {:?}: cannot bind {}: {e}", l.name, l.bind);
        let first = bind_reuseport(l.bind).map_err(cannot)?;
        let addr = first.local_addr().map_err(cannot)?;
        let mut socks = vec![first];
        for _ in 1..workers {
            socks.push(bind_reuseport(addr).map_err(cannot)?);
        }
        listeners.push((l.name.clone(), addr, socks));
    }
    // Redirect addresses: plain HTTP, answered with 308 to the TLS listener's port.
    let mut redirects: Vec<(String, SocketAddr, u16, Vec<std::net::TcpListener>)> = Vec::new();
    for l in &config.listener {
        let Some(bind) = l.redirect_http else {
            continue;
        };
        let cannot = |e: std::io::Error| {
            format!(
                "listener {:?}: cannot bind redirect_http {bind}: {e}",
                l.name
            )
        };
        let first = bind_reuseport(bind).map_err(cannot)?;
        let addr = first.local_addr().map_err(cannot)?;
        let mut socks = vec![first];
        for _ in 1..workers {
            socks.push(bind_reuseport(addr).map_err(cannot)?);
        }
        let https_port = listeners
            .iter()
            .find(|(n, _, _)| *n == l.name)
            .map_or(443, |(_, a, _)| a.port());
        redirects.push((l.name.clone(), addr, https_port, socks));
    }
    let admin = TcpListener::bind(config.admin.bind)
        .await
        .map_err(|e| format!("admin: cannot bind {}: {e}", config.admin.bind))?;
    let runtime = Runtime::build(config, workers).map_err(|errs| errs.join("\n"))?;
    let acme = crate::acme::AcmeSet::new(&runtime.config)?;
    let tls = crate::tls::build_all(&runtime.config, &acme).map_err(|errs| errs.join("\n"))?;
    let auth = crate::auth::AuthServer::open(&runtime.config).await?;
    if let (Some(a), Some(cfg)) = (&auth, &runtime.config.auth) {
        a.start_background(&runtime.config.shared.url, cfg.access_ttl.get())
            .await;
    }
    let gateway = Arc::new(Gateway::new(
        runtime,
        events,
        auth,
        crate::tls::TlsState::new(tls),
        acme,
    )?);
    let sweeper = Arc::clone(&gateway);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            sweeper.limiter.sweep();
            sweeper.bans.sweep();
        }
    });

    let shutdown = CancellationToken::new();
    let stop_workers = CancellationToken::new();
    let tasks = TaskTracker::new();
    let mut bound = Vec::new();
    let mut per_worker: Vec<Vec<(Arc<str>, Option<u16>, std::net::TcpListener)>> =
        (0..workers).map(|_| Vec::new()).collect();
    for (name, addr, socks) in listeners {
        bound.push((name.clone(), addr));
        gateway.emit(
            Event::new("info", "server.listening")
                .with("listener", name.as_str())
                .with("addr", addr.to_string()),
        );
        tracing::info!(listener = %name, %addr, workers, "listening");
        let name: Arc<str> = Arc::from(name.as_str());
        for (w, sock) in socks.into_iter().enumerate() {
            per_worker[w].push((Arc::clone(&name), None, sock));
        }
    }
    for (name, addr, https_port, socks) in redirects {
        let shown = format!("{name}.redirect");
        bound.push((shown.clone(), addr));
        gateway.emit(
            Event::new("info", "server.listening")
                .with("listener", shown.as_str())
                .with("addr", addr.to_string()),
        );
        tracing::info!(listener = %shown, %addr, "redirecting to https");
        let name: Arc<str> = Arc::from(name.as_str());
        for (w, sock) in socks.into_iter().enumerate() {
            per_worker[w].push((Arc::clone(&name), Some(https_port), sock));
        }
    }
    let mut threads = Vec::new();
    for (w, socks) in per_worker.into_iter().enumerate() {
        let gateway = Arc::clone(&gateway);
        let (shutdown, stop, tasks) = (shutdown.clone(), stop_workers.clone(), tasks.clone());
        let thread = std::thread::Builder::new()
            .name(format!("rampart-w{w}"))
            .spawn(move || run_worker(w, socks, gateway, shutdown, stop, tasks))
            .map_err(|e| format!("cannot start worker {w}: {e}"))?;
        threads.push(thread);
    }
    let admin_addr = admin.local_addr().map_err(|e| e.to_string())?;
    bound.push(("admin".to_owned(), admin_addr));
    gateway.emit(
        Event::new("info", "server.listening")
            .with("listener", "admin")
            .with("addr", admin_addr.to_string()),
    );
    let admin_stop = CancellationToken::new();
    tokio::spawn(crate::admin::serve(
        admin,
        Arc::clone(&gateway),
        metrics,
        admin_stop.clone(),
    ));

    reloader.start(Arc::clone(&gateway), bound.clone(), hangup);
    gateway.ready.store(true, Ordering::Release);
    on_ready(&bound);

    wait_for_stop().await;
    // Drain: not ready first (load balancers stop sending), then stop accepting and let
    // in-flight requests finish within the deadline.
    gateway.ready.store(false, Ordering::Release);
    let drain = gateway.runtime.load().config.limits.drain_timeout.get();
    gateway.emit(
        Event::new("info", "server.drain")
            .with("reason", format!("draining for at most {drain:?}")),
    );
    shutdown.cancel();
    tasks.close();
    let drained = tokio::time::timeout(drain, tasks.wait()).await.is_ok();
    stop_workers.cancel();
    for t in threads {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    admin_stop.cancel();
    gateway.acme.stop();
    gateway.emit(Event::new("info", "server.stop").with(
        "reason",
        if drained {
            "drained"
        } else {
            "drain deadline passed"
        },
    ));
    gateway.events.flush();
    Ok(())
}

/// Request workers: one per core.
fn worker_count() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, 64)
}

fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// One worker: a single-threaded runtime serving its share of every listener until the
/// gateway has drained.
fn run_worker(
    index: usize,
    socks: Vec<(Arc<str>, Option<u16>, std::net::TcpListener)>,
    gateway: Arc<Gateway>,
    shutdown: CancellationToken,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    crate::runtime::WORKER.with(|w| w.set(index));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(worker = index, error = %e, "cannot start a worker runtime");
            return;
        }
    };
    rt.block_on(async move {
        for (name, redirect_to, sock) in socks {
            match TcpListener::from_std(sock) {
                Ok(listener) if redirect_to.is_some() => {
                    let redirector = crate::redirect::Redirector {
                        gateway: Arc::clone(&gateway),
                        https_port: redirect_to.unwrap_or(443),
                    };
                    tokio::spawn(rampart_listen::serve(
                        listener,
                        name,
                        Arc::new(crate::redirect::PlainGate(Arc::clone(&gateway))),
                        Arc::new(redirector),
                        Arc::clone(&gateway.conns),
                        shutdown.clone(),
                        tasks.clone(),
                    ));
                }
                Ok(listener) => {
                    tokio::spawn(rampart_listen::serve(
                        listener,
                        name,
                        Arc::clone(&gateway),
                        Arc::clone(&gateway),
                        Arc::clone(&gateway.conns),
                        shutdown.clone(),
                        tasks.clone(),
                    ));
                }
                Err(e) => tracing::error!(worker = index, error = %e, "cannot serve a listener"),
            }
        }
        stop.cancelled().await;
    });
}

async fn wait_for_stop() {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// What the watcher looks at: the config file's folder, and the folders of the TLS files.
struct Watched {
    watcher: Option<notify::RecommendedWatcher>,
    dirs: BTreeSet<PathBuf>,
    tls_names: Arc<std::sync::Mutex<BTreeSet<OsString>>>,
}

impl Watched {
    /// Watches the folders of `files` not yet watched, and remembers their names.
    fn add_tls_files(&mut self, files: &BTreeSet<PathBuf>) {
        let names: BTreeSet<OsString> = files
            .iter()
            .filter_map(|f| f.file_name().map(OsString::from))
            .collect();
        if let Ok(mut n) = self.tls_names.lock() {
            *n = names;
        }
        for f in files {
            let dir = f
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            if self.dirs.contains(&dir) {
                continue;
            }
            if let Some(w) = self.watcher.as_mut() {
                match w.watch(&dir, notify::RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        self.dirs.insert(dir);
                    }
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch certificate folder; rotate with SIGHUP")
                    }
                }
            }
        }
    }
}

/// Reloads on SIGHUP and when the config file changes; rebuilds the TLS configs when a
/// certificate, key, CA bundle or CRL file changes. A bad file keeps what is running.
struct Reloader {
    path: PathBuf,
    /// The config file's text as last read: a change event whose text equals it reloads
    /// nothing (SIGHUP always does).
    last_text: Option<String>,
    watched: Watched,
    tx: tokio::sync::mpsc::UnboundedSender<&'static str>,
    rx: tokio::sync::mpsc::UnboundedReceiver<&'static str>,
}

impl Reloader {
    /// Watches the config file's folder and the folders of the TLS files. Called before any of
    /// those files is read: a change from then on is queued until [`Reloader::start`], so a
    /// rotation while the gateway starts is not lost.
    fn watch(config: &ValidatedConfig) -> Reloader {
        let path = config.source().to_path_buf();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        let watch_tx = tx.clone();
        let file_name = path.file_name().map(|f| f.to_os_string());
        let tls_names: Arc<std::sync::Mutex<BTreeSet<OsString>>> = Arc::default();
        let names = Arc::clone(&tls_names);
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            if matches!(ev.kind, notify::EventKind::Access(_)) {
                return;
            }
            // Editors replace files and Kubernetes swaps symlinked folders: any change to the
            // file, or to a hidden entry beside it, is worth a look.
            for p in &ev.paths {
                let Some(n) = p.file_name() else { continue };
                let swapped = n.to_string_lossy().starts_with("..");
                if swapped || Some(n.to_os_string()) == file_name {
                    let _ = watch_tx.send("file change");
                }
                if swapped || names.lock().is_ok_and(|set| set.contains(n)) {
                    let _ = watch_tx.send(CERT_CHANGE);
                }
            }
        });
        let mut watched = Watched {
            watcher: None,
            dirs: BTreeSet::new(),
            tls_names,
        };
        match watcher {
            Ok(mut w) => {
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf();
                match w.watch(&dir, notify::RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        watched.dirs.insert(dir);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP")
                    }
                }
                watched.watcher = Some(w);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP");
            }
        }
        watched.add_tls_files(&crate::tls::watched_files(config));
        // The config was read before its folder was watched: one look at the file, queued
        // now, catches a change in between.
        let _ = tx.send("file change");
        Reloader {
            path,
            last_text: Some(config.text().to_owned()),
            watched,
            tx,
            rx,
        }
    }

    /// Starts reloading: queued changes first, then SIGHUP, file changes and renewed ACME
    /// certificates as they come.
    fn start(
        self,
        gateway: Arc<Gateway>,
        bound: Vec<(String, SocketAddr)>,
        hangup: Option<tokio::signal::unix::Signal>,
    ) {
        let Reloader {
            path,
            mut last_text,
            watched,
            tx,
            mut rx,
        } = self;
        if let Some(mut hup) = hangup {
            let tx = tx.clone();
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    let _ = tx.send("SIGHUP");
                }
            });
        }
        let certs_tx = tx.clone();
        gateway.acme.start(Arc::new(move || {
            let _ = certs_tx.send(CERT_CHANGE);
        }));
        tokio::spawn(async move {
            let mut watched = watched;
            while let Some(trigger) = rx.recv().await {
                // Let a burst of writes settle, then read once.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut triggers = BTreeSet::from([trigger]);
                while let Ok(t) = rx.try_recv() {
                    triggers.insert(t);
                }
                let full = if triggers.contains("SIGHUP") {
                    Some("SIGHUP")
                } else if triggers.contains("file change") {
                    Some("file change")
                } else {
                    None
                };
                if let Some(trigger) = full {
                    let text = std::fs::read_to_string(&path).ok();
                    if trigger == "SIGHUP" || text.is_none() || text != last_text {
                        last_text = text;
                        if reload(&gateway, &path, last_text.as_deref(), &bound, trigger) {
                            let files = crate::tls::watched_files(&gateway.runtime.load().config);
                            watched.add_tls_files(&files);
                            continue;
                        }
                    }
                }
                if triggers.contains(CERT_CHANGE) || full == Some("SIGHUP") {
                    reload_tls(&gateway);
                }
            }
        });
    }
}

/// The trigger of a certificate-only reload.
const CERT_CHANGE: &str = "certificate change";

/// Rebuilds the TLS configs from the running config's files; a file that does not load
/// keeps the running configs.
fn reload_tls(gateway: &Gateway) {
    let rt = gateway.runtime.load();
    match crate::tls::build_all(&rt.config, &gateway.acme) {
        Ok(configs) => {
            let n = configs.len();
            gateway.tls.swap(configs);
            metrics::counter!("rampart_tls_reloads_total", "result" => "ok").increment(1);
            gateway.emit(Event::new("info", "tls.reload").with(
                "reason",
                format!("certificates reloaded for {n} listener(s)"),
            ));
        }
        Err(errors) => {
            metrics::counter!("rampart_tls_reloads_total", "result" => "error").increment(1);
            tracing::error!(
                "certificate reload refused, keeping the running certificates:\n{}",
                errors.join("\n")
            );
            gateway.emit(
                Event::new("error", "tls.reload")
                    .with(
                        "reason",
                        "new certificate files refused; the running ones stay",
                    )
                    .with("errors", errors),
            );
        }
    }
}

/// Reloads the config file; true when the new one is running (TLS configs included).
fn reload(
    gateway: &Gateway,
    path: &Path,
    text: Option<&str>,
    bound: &[(String, SocketAddr)],
    trigger: &str,
) -> bool {
    // (the text just compared, not a second read that could differ from it)
    let loaded = match text {
        Some(text) => rampart_config::load_str(text, path),
        None => rampart_config::load(path),
    };
    match loaded {
        Ok(config) => {
            for l in &config.listener {
                let same = bound.iter().any(|(name, addr)| {
                    *name == l.name
                        && (l.bind.port() == 0
                            || addr.ip() == l.bind.ip() && addr.port() == l.bind.port())
                });
                if !same {
                    gateway.emit(
                        Event::new("warn", "config.reload")
                            .with("reason", format!("listener {:?} ({}) is new or moved: listener changes take effect at restart", l.name, l.bind)),
                    );
                }
            }
            let old = gateway.runtime.load();
            if config.shared.url != old.config.shared.url {
                gateway.emit(
                    Event::new("warn", "config.reload")
                        .with("reason", "shared.url changes take effect at restart"),
                );
            }
            let old_sink = old.config.events.sink.clone();
            drop(old);
            if config.events.sink != old_sink || trigger == "SIGHUP" {
                if let Err(e) = gateway.events.reopen(&config.events.sink) {
                    tracing::error!(error = %e, "event sink unchanged");
                }
            }
            let warnings: Vec<String> = config.warnings().iter().map(ToString::to_string).collect();
            let workers = gateway.runtime.load().workers();
            let built = Runtime::build(config, workers).and_then(|rt| {
                crate::tls::build_all(&rt.config, &gateway.acme).map(|tls| (rt, tls))
            });
            let (runtime, tls) = match built {
                Ok(pair) => pair,
                Err(errors) => {
                    metrics::counter!("rampart_config_reloads_total", "result" => "error")
                        .increment(1);
                    tracing::error!(
                        "config reload refused, keeping the running config:\n{}",
                        errors.join("\n")
                    );
                    gateway.emit(
                        Event::new("error", "config.reload")
                            .with("reason", "new config refused; the running config stays")
                            .with("errors", errors),
                    );
                    return false;
                }
            };
            gateway.runtime.store(Arc::new(runtime));
            gateway.tls.swap(tls);
            metrics::counter!("rampart_config_reloads_total", "result" => "ok").increment(1);
            tracing::info!(trigger, "config reloaded");
            gateway.emit(
                Event::new("info", "config.reload")
                    .with("reason", format!("reloaded on {trigger}"))
                    .with("warnings", warnings),
            );
            true
        }
        Err(e) => {
            metrics::counter!("rampart_config_reloads_total", "result" => "error").increment(1);
            tracing::error!("config reload refused, keeping the running config:\n{e}");
            let errors: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
            gateway.emit(
                Event::new("error", "config.reload")
                    .with("reason", "new config refused; the running config stays")
                    .with("errors", errors),
            );
            false
        }
    }
}
