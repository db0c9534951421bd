//! WAF layer: a SecLang (ModSecurity rule language) parser and engine that runs the OWASP Core
//! Rule Set. It does no network or file IO on the request path (files are read only while
//! loading rules) and never panics on input.
//!
//! # Use
//!
//! ```no_run
//! use std::path::PathBuf;
//! use rampart_waf::{ConnInfo, EngineOptions, WafEngine};
//!
//! let engine = WafEngine::from_files(
//!     &[PathBuf::from("waf/engine.conf"), PathBuf::from("waf/crs-setup.conf"), PathBuf::from("crs/rules/*.conf")],
//!     &EngineOptions::default(),
//! ).expect("rules load");                       // Err(Vec<LoadError>): file, line, rule id, message
//! let mut tx = engine.transaction(ConnInfo { client_ip: "192.0.2.1".into(), request_id: "abc".into(), ..Default::default() });
//! let headers: &[(&[u8], &[u8])] = &[(b"Host", b"example.com")];
//! if let Some(stop) = tx.process_request_headers("GET", "/?q=1", "HTTP/1.1", headers) { /* answer stop.status */ }
//! if tx.wants_request_body() { tx.append_request_body(b""); }     // per chunk, up to request_body_limit()
//! if let Some(stop) = tx.process_request_body() { /* answer stop.status */ }
//! // … forward upstream …
//! tx.process_response_headers(200, "HTTP/1.1", &[(b"Content-Type", b"text/html")]);
//! if tx.wants_response_body() { tx.append_response_body(b"<html>"); }
//! tx.process_response_body();
//! tx.process_logging();
//! println!("{}", tx.audit_record());            // one JSON line for the audit log
//! ```
//!
//! Order: `process_request_headers` (phase 1) → `append_request_body`* → `process_request_body`
//! (body processor + phase 2) → `process_response_headers` (3) → `append_response_body`* →
//! `process_response_body` (4) → `process_logging` (5). Every `process_*` may return an
//! [`Intervention`] (only when the engine is `On`); the gateway then answers with its status
//! (or drops / redirects) and still calls `process_logging`. In `DetectionOnly` nothing is
//! returned and [`Transaction::matched_rules`] / [`Transaction::audit_record`] say what would
//! have happened.
//!
//! # API
//!
//! * [`WafEngine`] — compiled rule set, `Send + Sync`, built once per config and shared in an
//!   `Arc`: [`WafEngine::from_files`] (paths may be globs; `Include`s are relative to the
//!   including file), [`WafEngine::from_str`], [`WafEngine::transaction`]; errors are
//!   `Vec<`[`LoadError`]`>` (file, line, rule id, message). [`check`] validates files for a
//!   `rampart waf check FILES...` command.
//! * [`EngineOptions`] — `mode_override` ([`RuleEngineMode`] `On | DetectionOnly | Off`),
//!   `paranoia_level` (pins `tx.blocking_paranoia_level` and `tx.detection_paranoia_level`),
//!   `request_body_limit`, `redact` (variable-name prefixes whose matched data is hidden).
//! * [`Transaction`] — `process_request_headers`, `wants_request_body`, `request_body_limit`,
//!   `append_request_body`, `process_request_body`, `process_response_headers`,
//!   `wants_response_body`, `append_response_body`, `process_response_body`,
//!   `process_logging`, `intervention`, `matched_rules` ([`MatchedRule`]), `logs`,
//!   `inbound_anomaly_score`, `outbound_anomaly_score`, `tx_var`, `audit_record`.
//! * [`Intervention`] — `status`, `rule_id`, `disruptive` ([`Disruptive`] `Deny | Drop |
//!   Redirect(url)`), `message` (for logs only).
//!
//! # Layout
//!
//! `seclang` (directives, Include) → `engine` (load, per-phase plans) → `rule`; the four
//! registries `variables/`, `operators/`, `transforms/`, `actions/` (one table each, names
//! case-insensitive, compile may fail with the rule id and line, eval cannot fail); `body/`
//! (URLENCODED, MULTIPART, JSON, XML); `prefilter` (one regex set per group of `@rx` rules
//! answers them all at once); `transaction` (evaluation); `fuzzing` (hidden: body processors,
//! transformations and operators on their own, for the targets in `fuzz/`).
#![forbid(unsafe_code)]

mod actions;
mod body;
mod engine;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod macros;
mod operators;
mod per_thread;
mod preamble;
mod prefilter;
mod rule;
mod seclang;
mod state;
mod transaction;
mod transforms;
mod variables;

pub use actions::ctl::Exclusions;
pub use engine::{BodyLimitAction, EngineOptions, RuleEngineMode, WafEngine, check};
pub use error::{CompileError, LoadError};
pub use transaction::{ConnInfo, Disruptive, Intervention, MatchedRule, Transaction};

#[cfg(test)]
mod tests;
