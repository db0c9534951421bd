//! Security events and the access log: one JSON object per line, written by one thread so
//! request tasks never wait on the disk. Secrets never reach a line: query parameters named
//! like credentials are redacted here, and no header value is ever logged.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::SystemTime;

use serde_json::{Map, Value, json};

/// Lines queued at most before new ones are dropped and counted (a full disk or a blocked
/// stdout must not stall the gateway).
const QUEUE: usize = 65_536;

enum Msg {
    Line(String),
    Reopen(String, std::sync::mpsc::Sender<Result<(), String>>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// Where events go.
#[derive(Debug)]
pub struct EventSink {
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

fn open(sink: &str) -> Result<Box<dyn Write + Send>, String> {
    match sink {
        "stdout" => Ok(Box::new(std::io::stdout())),
        "stderr" => Ok(Box::new(std::io::stderr())),
        path => {
            if let Some(dir) = std::path::Path::new(path).parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(|f| Box::new(f) as Box<dyn Write + Send>)
                .map_err(|e| format!("cannot open event sink {path}: {e}"))
        }
    }
}

impl EventSink {
    /// Opens the sink (`stdout`, `stderr` or a file, appended to) and starts its writer.
    pub fn open(sink: &str) -> Result<EventSink, String> {
        let out = open(sink)?;
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("rampart-events".into())
            .spawn(move || writer(rx, out))
            .map_err(|e| format!("cannot start the event writer: {e}"))?;
        Ok(EventSink {
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    /// Switches to another sink, or reopens the same file (after log rotation).
    pub fn reopen(&self, sink: &str) -> Result<(), String> {
        let (done, wait) = std::sync::mpsc::channel();
        self.tx
            .send(Msg::Reopen(sink.to_owned(), done))
            .map_err(|_| "event writer stopped".to_owned())?;
        wait.recv().map_err(|_| "event writer stopped".to_owned())?
    }

    /// Waits until every queued line is written.
    pub fn flush(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Queues one event.
    pub fn emit(&self, event: Event) {
        self.emit_value(Value::Object(event.0));
    }

    /// Queues one JSON value as a line (the WAF audit log uses its own record shape).
    pub fn emit_value(&self, value: Value) {
        let mut line = match serde_json::to_string(&value) {
            Ok(l) => l,
            Err(_) => return,
        };
        line.push('\n');
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("rampart_events_dropped_total").increment(1);
            }
        }
    }
}

fn writer(rx: Receiver<Msg>, out: Box<dyn Write + Send>) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    while let Ok(msg) = rx.recv() {
        let mut next = Some(msg);
        // Write everything already queued, then flush once.
        while let Some(msg) = next.take() {
            match msg {
                Msg::Line(l) => {
                    let _ = out.write_all(l.as_bytes());
                }
                Msg::Reopen(sink, done) => {
                    let _ = out.flush();
                    let result = open(&sink).map(|w| out = BufWriter::with_capacity(64 * 1024, w));
                    let _ = done.send(result);
                }
                Msg::Flush(done) => {
                    let _ = out.flush();
                    let _ = done.send(());
                }
            }
            next = rx.try_recv().ok();
        }
        let _ = out.flush();
    }
}

/// One event line under construction. The contract fields are always present (null when
/// they do not apply), so consumers can rely on the shape.
#[derive(Debug)]
pub struct Event(Map<String, Value>);

impl Event {
    /// A new event named `event` (dotted: `http.request`, `firewall.deny`) at `level`.
    pub fn new(level: &'static str, event: &'static str) -> Event {
        let mut m = Map::new();
        m.insert(
            "ts".into(),
            json!(humantime::format_rfc3339_millis(SystemTime::now()).to_string()),
        );
        m.insert("level".into(), json!(level));
        m.insert("event".into(), json!(event));
        for key in [
            "request_id",
            "client_ip",
            "route",
            "method",
            "uri",
            "status",
            "mode",
            "anomaly_score",
            "reason",
        ] {
            m.insert(key.into(), Value::Null);
        }
        m.insert("rule_ids".into(), json!([]));
        Event(m)
    }

    /// Sets a field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Event {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `uri`, with credential-like query parameters redacted and length capped.
    pub fn with_uri(self, uri: &str) -> Event {
        self.with("uri", redact_uri(uri))
    }
}

/// Query parameter names whose values never reach a log.
fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    const EXACT: &[&str] = &[
        "code",
        "key",
        "sig",
        "signature",
        "auth",
        "authorization",
        "session",
        "sessionid",
        "sid",
        "jwt",
        "assertion",
        "pwd",
        "pass",
        "otp",
        "ticket",
    ];
    const CONTAINS: &[&str] = &[
        "token",
        "secret",
        "passw",
        "api_key",
        "apikey",
        "api-key",
        "credential",
        "private",
    ];
    EXACT.contains(&n.as_str()) || CONTAINS.iter().any(|c| n.contains(c))
}

/// Redacts credential-like query values and caps the length of a URI for logging.
pub fn redact_uri(uri: &str) -> String {
    const MAX: usize = 2048;
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (uri, None),
    };
    let mut out = String::with_capacity(uri.len().min(MAX));
    out.push_str(path);
    if let Some(q) = query {
        out.push('?');
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let (name, _) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            if pair.contains('=') && is_secret_name(&decoded) {
                out.push_str(name);
                out.push_str("=REDACTED");
            } else {
                out.push_str(pair);
            }
        }
    }
    if out.len() > MAX {
        let mut cut = MAX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_query_strings_are_redacted() {
        assert_eq!(
            redact_uri("/cb?code=abc&state=xyz&access_token=t0k&API%5FKEY=k&q=1"),
            "/cb?code=REDACTED&state=xyz&access_token=REDACTED&API%5FKEY=REDACTED&q=1"
        );
        assert_eq!(redact_uri("/plain"), "/plain");
        assert_eq!(redact_uri("/a?flag"), "/a?flag");
        assert!(redact_uri(&format!("/{}", "a".repeat(5000))).len() < 2100);
    }

    #[test]
    fn events_always_carry_the_contract_fields() {
        let e = Event::new("info", "http.request").with("status", 200);
        for k in [
            "ts",
            "level",
            "event",
            "request_id",
            "client_ip",
            "route",
            "method",
            "uri",
            "status",
            "mode",
            "rule_ids",
            "anomaly_score",
            "reason",
        ] {
            assert!(e.0.contains_key(k), "{k}");
        }
    }
}
