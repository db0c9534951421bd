//! `rampart serve`: bind the listeners, serve, reload on SIGHUP and file change, drain on
//! SIGTERM.

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
    let metrics = install_metrics()?;
    let events = EventSink::open(&config.events.sink)?;
    for w in config.warnings() {
        tracing::warn!("{}: {}", config.source().display(), w);
    }
    let config_path = config.source().to_path_buf();
    let mut listeners = Vec::new();
    for l in &config.listener {
        let sock = TcpListener::bind(l.bind)
            .await
            .map_err(|e| format!("listener {:?}: cannot bind {}: {e}", l.name, l.bind))?;
        listeners.push((l.name.clone(), sock));
    }
    let admin = TcpListener::bind(config.admin.bind)
        .await
        .map_err(|e| format!("admin: cannot bind {}: {e}", config.admin.bind))?;
    let gateway = Arc::new(Gateway::new(Runtime::build(config), events)?);
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
    let tasks = TaskTracker::new();
    let mut bound = Vec::new();
    for (name, sock) in listeners {
        let addr = sock.local_addr().map_err(|e| e.to_string())?;
        bound.push((name.clone(), addr));
        gateway.emit(
            Event::new("info", "server.listening")
                .with("listener", name.as_str())
                .with("addr", addr.to_string()),
        );
        tracing::info!(listener = %name, %addr, "listening");
        tokio::spawn(rampart_listen::serve(
            sock,
            Arc::from(name.as_str()),
            Arc::clone(&gateway),
            Arc::clone(&gateway),
            Arc::clone(&gateway.conns),
            shutdown.clone(),
            tasks.clone(),
        ));
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

    spawn_reloader(Arc::clone(&gateway), config_path, bound.clone());
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
    admin_stop.cancel();
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

/// Reloads on SIGHUP and when the config file changes. A bad file keeps the running config.
fn spawn_reloader(gateway: Arc<Gateway>, path: PathBuf, bound: Vec<(String, SocketAddr)>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let watch_tx = tx.clone();
    let file_name = path.file_name().map(|f| f.to_os_string());
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, notify::EventKind::Access(_)) {
            return;
        }
        // Editors replace files and Kubernetes swaps symlinked folders: any change to the
        // file, or to a hidden entry beside it, is worth a look.
        let relevant = ev.paths.iter().any(|p| {
            p.file_name().is_some_and(|n| {
                Some(n.to_os_string()) == file_name || n.to_string_lossy().starts_with("..")
            })
        });
        if relevant {
            let _ = watch_tx.send("file change");
        }
    });
    let watcher = match watcher {
        Ok(mut w) => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            match w.watch(dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP");
                    None
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP");
            None
        }
    };
    if let Ok(mut hup) = signal(SignalKind::hangup()) {
        let tx = tx.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let _ = tx.send("SIGHUP");
            }
        });
    }
    tokio::spawn(async move {
        let _keep_watching = watcher;
        let mut last_text: Option<String> = None;
        while let Some(trigger) = rx.recv().await {
            // Let a burst of writes settle, then read once.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut trigger = trigger;
            while let Ok(t) = rx.try_recv() {
                if t == "SIGHUP" {
                    trigger = t;
                }
            }
            let text = std::fs::read_to_string(&path).ok();
            if trigger != "SIGHUP" && text.is_some() && text == last_text {
                continue;
            }
            last_text = text;
            reload(&gateway, &path, &bound, trigger);
        }
    });
}

fn reload(gateway: &Gateway, path: &Path, bound: &[(String, SocketAddr)], trigger: &str) {
    match rampart_config::load(path) {
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
            gateway.runtime.store(Arc::new(Runtime::build(config)));
            metrics::counter!("rampart_config_reloads_total", "result" => "ok").increment(1);
            tracing::info!(trigger, "config reloaded");
            gateway.emit(
                Event::new("info", "config.reload")
                    .with("reason", format!("reloaded on {trigger}"))
                    .with("warnings", warnings),
            );
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
        }
    }
}
