//! A transaction: one HTTP exchange evaluated against a [`WafEngine`], phase by phase.

use std::borrow::Cow;
use std::collections::HashMap;

use regex_automata::PatternSet;
use smallvec::SmallVec;
use std::hash::{BuildHasherDefault, Hasher};

use crate::actions::ctl::Ctl;
use crate::body::{self, BodyError};
use crate::engine::{BodyLimitAction, Item, PlanRule, RuleEngineMode, WafEngine};
use crate::preamble::{Preamble, TxSnapshot};
use crate::prefilter::Prefilter;
use crate::rule::{Action, AllowScope, Rule};
use crate::state::{MpFlag, TxData};
use crate::transforms::{self, url_decode};
use crate::variables::{self, Selector, Target};

/// Addresses and id of the connection carrying the request.
#[derive(Debug, Clone, Default)]
pub struct ConnInfo {
    pub client_ip: String,
    pub client_port: u16,
    pub server_ip: String,
    pub server_port: u16,
    /// The request id (`UNIQUE_ID`, `request_id` of the audit record).
    pub request_id: String,
}

/// What the engine asks the gateway to do (only produced in `On` mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disruptive {
    /// Answer with `Intervention::status`.
    Deny,
    /// Close the connection without answering.
    Drop,
    /// Answer with a redirect (status 302 unless the rule set one) to this URL.
    Redirect(String),
}

/// A decision to stop the request (or response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervention {
    pub status: u16,
    pub rule_id: Option<u32>,
    pub disruptive: Disruptive,
    /// ModSecurity-style log text, for the gateway's log only (never the response body).
    pub message: String,
}

/// A rule that matched and is logged (not `nolog`). For chains: the chain's first rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRule {
    pub id: u32,
    pub phase: u8,
    /// Expanded `msg`.
    pub msg: String,
    /// Expanded `logdata`.
    pub logdata: String,
    /// 0 (EMERGENCY) … 7 (DEBUG).
    pub severity: Option<u8>,
    pub tags: Vec<String>,
    /// `MATCHED_VAR_NAME`, e.g. `ARGS:q`.
    pub var: String,
    /// `MATCHED_VAR` (transformed value); `[redacted]` for variables listed in
    /// [`crate::EngineOptions::redact`].
    pub data: String,
    /// Whether this rule produced the intervention.
    pub disruptive: bool,
    /// Rule file and line where the rule is defined.
    pub file: std::sync::Arc<str>,
    pub line: usize,
}

impl MatchedRule {
    /// One ModSecurity-style error-log line (bytes outside printable ASCII, `"` and `\` escaped).
    pub fn log_line(&self) -> String {
        format!(
            "ModSecurity: Warning. Matched at {}. [file \"{}\"] [line \"{}\"] [id \"{}\"] [msg \"{}\"] [data \"{}\"] [severity \"{}\"]{}",
            esc(&self.var),
            esc(&self.file),
            self.line,
            self.id,
            esc(&self.msg),
            esc(&self.logdata),
            self.severity.map_or(String::new(), |s| s.to_string()),
            self.tags
                .iter()
                .map(|t| format!(" [tag \"{}\"]", esc(t)))
                .collect::<String>()
        )
    }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            o.push(char::from(b));
        } else {
            o.push_str(&format!("\\x{b:02x}"));
        }
    }
    o
}

fn lossy(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

enum RemovedTarget {
    Ids(Vec<(u32, u32)>, Target),
    /// An interned tag id (`WafEngine::tag_ids`).
    Tag(u32, Target),
}

impl RemovedTarget {
    fn target(&self) -> &Target {
        match self {
            RemovedTarget::Ids(_, t) | RemovedTarget::Tag(_, t) => t,
        }
    }
}

/// One HTTP exchange. Call the `process_*` methods in request order; each may return an
/// [`Intervention`] (only in `On` mode). See the crate docs for the sequence.
pub struct Transaction<'e> {
    engine: &'e WafEngine,
    st: TxData,
    mode: RuleEngineMode,
    removed_ids: Vec<(u32, u32)>,
    /// Interned tag ids.
    removed_tags: Vec<u32>,
    removed_msgs: Vec<String>,
    removed_targets: Vec<RemovedTarget>,
    body_processor: Option<String>,
    req_body_access: bool,
    resp_body_access: bool,
    req_body: Vec<u8>,
    req_body_over: bool,
    /// `ctl:forceRequestBodyVariable=On`: REQUEST_BODY holds the raw body whatever parsed it.
    force_req_body_var: bool,
    resp_body: Vec<u8>,
    matched: Vec<MatchedRule>,
    intervention: Option<Intervention>,
    allow: Option<AllowScope>,
    allow_phase: u8,
    logs: Vec<String>,
    ran: [bool; 6],
    content_type: Vec<u8>,
    x_crs_test: Option<String>,
    /// Transformations of request and response values, see [`TransformCache`].
    tcache: TransformCache,
    /// The values a rule matched (name, transformed value), in buffers reused from rule to
    /// rule: swapped with `MATCHED_VARS` once the rule has matched.
    hit_bufs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Per prefilter group, the members (one bit each) found in some value (computed on
    /// first use).
    prefilter_hits: Vec<Option<u64>>,
    /// The regex sets' scratch result (sized for the largest group).
    prefilter_found: Option<PatternSet>,
    /// The phase-1 plan index rule evaluation starts at: past the engine's preamble when the
    /// transaction starts from the state it leaves (see [`crate::preamble`]).
    phase1_start: usize,
}

impl WafEngine {
    /// Starts a transaction. Cheap; one per HTTP exchange.
    pub fn transaction(&self, conn: ConnInfo) -> Transaction<'_> {
        let mut st = TxData {
            unique_id: conn.request_id.into_bytes(),
            remote_addr: conn.client_ip.into_bytes(),
            remote_port: itoa::Buffer::new()
                .format(conn.client_port)
                .as_bytes()
                .to_vec(),
            server_addr: conn.server_ip.into_bytes(),
            server_port: itoa::Buffer::new()
                .format(conn.server_port)
                .as_bytes()
                .to_vec(),
            ..TxData::default()
        };
        let phase1_start = match &self.preamble {
            // the state the preamble rules leave (they hold the pinned values)
            Some(pre) => {
                pre.state.apply(&mut st);
                pre.next
            }
            None => {
                self.start_tx(&mut st);
                0
            }
        };
        Transaction {
            engine: self,
            st,
            mode: self.config.mode,
            removed_ids: Vec::new(),
            removed_tags: Vec::new(),
            removed_msgs: Vec::new(),
            removed_targets: Vec::new(),
            body_processor: None,
            req_body_access: self.config.req_body_access,
            resp_body_access: self.config.resp_body_access,
            req_body: Vec::new(),
            req_body_over: false,
            force_req_body_var: false,
            resp_body: Vec::new(),
            matched: Vec::new(),
            intervention: None,
            allow: None,
            allow_phase: 0,
            logs: Vec::new(),
            ran: [false; 6],
            content_type: Vec::new(),
            x_crs_test: None,
            tcache: TransformCache::default(),
            hit_bufs: Vec::new(),
            prefilter_hits: vec![None; self.prefilters.len()],
            prefilter_found: None,
            phase1_start,
        }
    }

    /// Gives `st` the `TX` a transaction starts with: the pinned values.
    fn start_tx(&self, st: &mut TxData) {
        // CRS sets about a hundred TX variables per request: no rehashing on the way
        st.tx = crate::state::TxMap::with_capacity_and_hasher(256, Default::default());
        st.tx.extend(self.pinned.iter().cloned());
        st.tx_digits = self
            .pinned
            .iter()
            .fold(0, |bits, (k, _)| bits | crate::state::digit_bit(k));
    }

    /// Runs the first rules of phase 1 for as long as they are [pure or
    /// independent](crate::preamble) and returns the state the pure ones leave, or `None` when
    /// there are none.
    pub(crate) fn run_preamble(&self) -> Option<Preamble> {
        // an engine that is off runs no rule: its transactions keep the pinned values alone
        if self.config.mode == RuleEngineMode::Off {
            return None;
        }
        let mut t = self.transaction(ConnInfo::default());
        let plan = &self.phases[1];
        let default_action = &self.default_action[1];
        let (mut deferred, mut last_match, mut ran) = (Vec::new(), None, Vec::new());
        let mut i = 0;
        while let Some(item) = plan.get(i) {
            let Item::Rule(pr) = *item else {
                i += 1;
                continue;
            };
            let rule = &self.rules[pr.index];
            if !crate::preamble::reads_only_tx(rule) {
                if crate::preamble::condition_reads_only_tx(rule)
                    && let Some(op) = &rule.op
                    && t.match_values(rule, op, rule).0 == 0
                {
                    ran.push(pr.index);
                } else if crate::preamble::is_independent(rule, default_action) {
                    deferred.push(i);
                } else {
                    break;
                }
                i += 1;
                continue;
            }
            // a rule whose match would do more than its evaluation did may stay only if it
            // does not match: the state before it is kept for when it does
            let quiet = crate::preamble::is_quiet(rule, default_action);
            let before = (!quiet).then(|| TxSnapshot::of(&t.st));
            t.st.rule_id = rule.id;
            if !t.eval_chain(rule) {
                ran.push(pr.index);
                i += 1;
                continue;
            }
            if let Some(before) = before {
                before.apply(&mut t.st);
                break;
            }
            // (a quiet match passes and logs nothing: this only keeps the one order of effects)
            if t.on_match(rule, 1).is_some() || !t.matched.is_empty() || t.allow.is_some() {
                return None;
            }
            ran.push(pr.index);
            last_match = Some(i);
            i = next_after_match(plan, i, pr, rule);
        }
        (!ran.is_empty()).then(|| Preamble {
            next: i,
            deferred,
            ran,
            last_match,
            state: TxSnapshot::take(&mut t.st),
        })
    }
}

impl WafEngine {
    /// Evaluates the rules past the preamble whose outcome its state settles (see
    /// [`crate::preamble`]) and marks them in the plans.
    pub(crate) fn settle(&mut self) {
        let Some(pre) = &self.preamble else {
            return;
        };
        let writers = crate::preamble::TxWriters::of(self, &pre.ran);
        let mut t = self.transaction(ConnInfo::default());
        let mut settled = Vec::new();
        for p in 1..=5 {
            let start = if p == 1 { pre.next } else { 0 };
            for (i, item) in self.phases[p].iter().enumerate().skip(start) {
                let Item::Rule(pr) = item else { continue };
                let rule = &self.rules[pr.index];
                if !crate::preamble::is_settled(rule, &self.default_action[p], &writers) {
                    continue;
                }
                t.st.rule_id = rule.id;
                let outcome = t
                    .eval_chain(rule)
                    .then(|| crate::preamble::Matched::of(&t.st));
                settled.push((p, i, outcome));
            }
        }
        drop(t);
        let mut ids = 0;
        for (p, i, mut outcome) in settled {
            if let Some(m) = &mut outcome {
                m.id = match self.settled.iter().flatten().find(|e| e.same_vars(m)) {
                    Some(earlier) => earlier.id,
                    None => {
                        ids += 1;
                        ids
                    }
                };
            }
            if let Item::Rule(pr) = &mut self.phases[p][i] {
                pr.settled = Some(self.settled.len() as u32);
                self.settled.push(outcome);
            }
        }
    }

    /// Which rules (indexes into `rules`) a transaction that starts from the preamble may
    /// evaluate, following each phase's plan: a settled rule goes on where its outcome goes,
    /// any other rule both past itself and to where its match jumps. Rules a settled jump
    /// always passes over (CRS's rules above the paranoia level) are left out of the
    /// prefilter's groups: they are evaluated only by transactions that evaluate the
    /// settled rules themselves (see [`crate::preamble`]), and then on their own, as any rule
    /// without a group. Every rule without a preamble.
    pub(crate) fn reachable(&self) -> Vec<bool> {
        let Some(pre) = &self.preamble else {
            return vec![true; self.rules.len()];
        };
        let mut reached = vec![false; self.rules.len()];
        for p in 1..=5 {
            let plan = &self.phases[p];
            let start = if p == 1 { pre.next } else { 0 };
            // the preamble's own rules (those deferred to their place among them) stay
            for item in &plan[..start] {
                if let Item::Rule(pr) = item {
                    reached[pr.index] = true;
                }
            }
            let mut seen = vec![false; plan.len()];
            let mut todo = vec![start];
            while let Some(i) = todo.pop() {
                if i >= plan.len() || std::mem::replace(&mut seen[i], true) {
                    continue;
                }
                let Item::Rule(pr) = plan[i] else {
                    todo.push(i + 1);
                    continue;
                };
                reached[pr.index] = true;
                let jump = next_after_match(plan, i, pr, &self.rules[pr.index]);
                match pr.settled.map(|s| &self.settled[s as usize]) {
                    Some(None) => todo.push(i + 1),
                    Some(Some(_)) => todo.push(jump),
                    None => todo.extend([i + 1, jump]),
                }
            }
        }
        reached
    }
}

/// Where a phase goes on after the rule at plan index `i` matched: its `skipAfter` marker, or
/// past the `skip` count of rules that follow it.
fn next_after_match(plan: &[Item], i: usize, pr: PlanRule, rule: &Rule) -> usize {
    if let Some(to) = pr.skip_to {
        return to;
    }
    let mut i = i + 1;
    let mut n = rule.skip;
    while n > 0 && i < plan.len() {
        if matches!(plan[i], Item::Rule(..)) {
            n -= 1;
        }
        i += 1;
    }
    i
}

fn in_ranges(id: u32, r: &[(u32, u32)]) -> bool {
    r.iter().any(|(a, b)| (*a..=*b).contains(&id))
}

/// `%XX` decoding only (no `+`), as ModSecurity decodes the URI.
fn uri_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%'
            && i + 2 < v.len()
            && let (Some(h), Some(l)) = (
                crate::transforms::hexval(v[i + 1]),
                crate::transforms::hexval(v[i + 2]),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

impl<'e> Transaction<'e> {
    /// Phase 1. `uri` is the raw request target; header names and values are raw bytes.
    pub fn process_request_headers(
        &mut self,
        method: &str,
        uri: &str,
        protocol: &str,
        headers: &[(&[u8], &[u8])],
    ) -> Option<Intervention> {
        self.tcache.clear();
        let st = &mut self.st;
        st.method = method.as_bytes().to_vec();
        st.protocol = protocol.as_bytes().to_vec();
        st.uri_raw = uri.as_bytes().to_vec();
        st.request_line = format!("{method} {uri} {protocol}").into_bytes();
        let raw = uri.as_bytes();
        // absolute-form targets: the path starts after the authority
        let rel = match raw.windows(3).position(|w| w == b"://") {
            Some(p) if raw[..p].iter().all(|c| c.is_ascii_alphabetic()) => {
                let after = &raw[p + 3..];
                let s = after
                    .iter()
                    .position(|&c| c == b'/' || c == b'?')
                    .unwrap_or(after.len());
                &after[s..]
            }
            _ => raw,
        };
        let (path, query) = match rel.iter().position(|&c| c == b'?') {
            Some(q) => (&rel[..q], Some(&rel[q + 1..])),
            None => (rel, None),
        };
        st.uri = uri_decode(raw);
        st.filename = uri_decode(path);
        st.basename = match st.filename.iter().rposition(|&c| c == b'/' || c == b'\\') {
            Some(p) => st.filename[p + 1..].to_vec(),
            None => st.filename.clone(),
        };
        if let Some(q) = query {
            st.query_string = q.to_vec();
            let (args, bad) = body::urlencoded::parse(q, self.engine.config.arg_separator);
            st.args_get = args;
            st.urlencoded_error |= bad;
        }
        for (k, v) in headers {
            st.req_headers.push((k.to_vec(), v.to_vec()));
            if k.eq_ignore_ascii_case(b"cookie") {
                body::urlencoded::parse_cookies(v, &mut st.cookies);
            } else if k.eq_ignore_ascii_case(b"host") {
                let h = v.split(|&c| c == b':').next().unwrap_or(&[]);
                st.server_name = h.to_vec();
            } else if k.eq_ignore_ascii_case(b"content-type") {
                self.content_type = v.to_vec();
            } else if k.eq_ignore_ascii_case(b"x-crs-test") {
                self.x_crs_test = Some(lossy(v));
            }
        }
        let ct = self.content_type.to_ascii_lowercase();
        let ct = ct.trim_ascii_start();
        if ct.starts_with(b"application/x-www-form-urlencoded") {
            self.set_body_processor("URLENCODED");
        } else if ct.starts_with(b"multipart/form-data") {
            self.set_body_processor("MULTIPART");
        }
        self.run_phase(1)
    }

    /// Whether the gateway should stream the request body into [`Self::append_request_body`].
    pub fn wants_request_body(&self) -> bool {
        self.mode != RuleEngineMode::Off && self.req_body_access && self.intervention.is_none()
    }

    /// Bytes of request body inspected at most: `SecRequestBodyLimit`, or
    /// `SecRequestBodyNoFilesLimit` when the body is not `multipart/form-data`.
    pub fn request_body_limit(&self) -> usize {
        let c = &self.engine.config;
        if self.body_processor.as_deref() == Some("MULTIPART") {
            c.req_body_limit
        } else {
            c.req_body_limit.min(c.req_body_no_files_limit)
        }
    }

    /// Buffers a chunk. Past the limit: `Reject` gives a 413 intervention (in `On` mode),
    /// `ProcessPartial` keeps the first `limit` bytes.
    pub fn append_request_body(&mut self, chunk: &[u8]) -> Option<Intervention> {
        let limit = self.request_body_limit();
        let room = limit.saturating_sub(self.req_body.len());
        self.st.req_body_len += chunk.len();
        if chunk.len() > room {
            self.req_body.extend_from_slice(&chunk[..room]);
            if !self.req_body_over {
                self.req_body_over = true;
                self.st.inbound_data_error = true;
                if self.engine.config.req_body_limit_action == BodyLimitAction::Reject
                    && self.mode == RuleEngineMode::On
                {
                    let i = Intervention {
                        status: 413,
                        rule_id: None,
                        disruptive: Disruptive::Deny,
                        message: format!(
                            "Request body is larger than the configured limit ({limit})."
                        ),
                    };
                    self.intervention = Some(i.clone());
                    return Some(i);
                }
            }
        } else {
            self.req_body.extend_from_slice(chunk);
        }
        None
    }

    /// Runs the body processor, then phase 2.
    pub fn process_request_body(&mut self) -> Option<Intervention> {
        if self.intervention.is_some() {
            return self.intervention.clone();
        }
        if self.req_body_access && self.mode != RuleEngineMode::Off {
            self.parse_request_body();
        }
        self.run_phase(2)
    }

    fn parse_request_body(&mut self) {
        // the parsed body goes to buffers that were empty (no cached value points into them,
        // and none is freed): what the cache holds of the headers, cookies and query stays
        // true for phase 2. Buffers that held values are replaced: then it is cleared.
        let st = &self.st;
        if !(st.args_post.is_empty()
            && st.files.is_empty()
            && st.mp_part_headers.is_empty()
            && st.xml.is_none()
            && st.xml_attrs.is_empty()
            && st.req_body.is_empty())
        {
            self.tcache.clear();
        }
        let body = std::mem::take(&mut self.req_body);
        let cfg = &self.engine.config;
        let proc_name = self.body_processor.clone();
        let st = &mut self.st;
        st.req_body_len = st.req_body_len.max(body.len());
        let res: Result<(), BodyError> = match proc_name.as_deref() {
            // no body: nothing to parse, but the multipart boundary is still checked (its flags
            // count) and an empty XML document is an error (libxml2), as in ModSecurity v3
            Some("MULTIPART") if body.is_empty() => {
                let ct = self.content_type.clone();
                body::multipart::boundary(&ct, st).map(|_| ())
            }
            Some(p) if body.is_empty() && p != "XML" => Ok(()),
            Some("URLENCODED") => {
                let (args, bad) = body::urlencoded::parse(&body, cfg.arg_separator);
                st.args_post = args;
                st.urlencoded_error |= bad;
                Ok(())
            }
            Some("MULTIPART") => {
                let ct = self.content_type.clone();
                match body::multipart::parse(&ct, &body, st, cfg.upload_file_limit) {
                    Ok(p) => {
                        st.args_post = p.args;
                        st.files = p.files;
                        st.mp_part_headers = p.part_headers;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Some("JSON") => {
                if body.is_empty() {
                    Ok(())
                } else {
                    body::json::parse(&body, cfg.json_depth, &mut st.args_post)
                }
            }
            Some("XML") => body::xml::parse(&body).map(|(t, a)| {
                st.xml = Some(t);
                st.xml_attrs = a;
            }),
            _ => Ok(()),
        };
        if let Some(p) = &proc_name {
            st.reqbody_processor = p.as_bytes().to_vec();
        }
        if let Err(BodyError(msg)) = res {
            st.reqbody_error = true;
            let label = match proc_name.as_deref() {
                Some("MULTIPART") => "Multipart",
                Some("JSON") => "JSON",
                Some("XML") => "XML",
                _ => "Request body",
            };
            self.logs.push(format!("{label} parsing error: {msg}"));
            st.reqbody_error_msg = msg.into_bytes();
        }
        if proc_name.as_deref() == Some("MULTIPART") && !st.mp_final_boundary_missing {
            use MpFlag::*;
            let strict = st.reqbody_error
                || [
                    BoundaryQuoted,
                    BoundaryWhitespace,
                    DataBefore,
                    DataAfter,
                    HeaderFolding,
                    LfLine,
                    MissingSemicolon,
                    InvalidQuoting,
                    InvalidPart,
                    InvalidHeaderFolding,
                    FileLimitExceeded,
                ]
                .iter()
                .any(|f| st.mp(*f));
            if strict {
                st.set_mp(StrictError);
            }
        }
        let total = st.args_get.len() + st.args_post.len();
        if total > cfg.args_limit {
            let keep = cfg.args_limit.saturating_sub(st.args_get.len());
            st.args_post.truncate(keep);
        }
        // As ModSecurity v3: a body the XML processor parsed is inspected through XML:/* and
        // XML://@*, not as raw REQUEST_BODY (element and attribute names are not values).
        if proc_name.as_deref() != Some("XML") || self.force_req_body_var {
            st.req_body = body;
        }
    }

    /// Phase 3.
    pub fn process_response_headers(
        &mut self,
        status: u16,
        protocol: &str,
        headers: &[(&[u8], &[u8])],
    ) -> Option<Intervention> {
        // replaces buffers the transformation cache may point at (unless they were empty)
        if !self.st.resp_headers.is_empty() {
            self.tcache.clear();
        }
        self.st.resp_status = status.to_string().into_bytes();
        self.st.resp_protocol = protocol.as_bytes().to_vec();
        self.st.resp_headers = headers
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        self.run_phase(3)
    }

    /// Whether the response body should be fed (body access on and a listed MIME type).
    pub fn wants_response_body(&self) -> bool {
        if self.mode == RuleEngineMode::Off || !self.resp_body_access {
            return false;
        }
        let ct = self.st.resp_header("content-type").unwrap_or(b"");
        let mime = ct
            .split(|&c| c == b';')
            .next()
            .unwrap_or(&[])
            .trim_ascii()
            .to_ascii_lowercase();
        self.engine
            .config
            .resp_mime
            .iter()
            .any(|m| m.as_bytes() == mime.as_slice())
    }

    /// Buffers a response chunk (up to `SecResponseBodyLimit`; the rest is not inspected).
    pub fn append_response_body(&mut self, chunk: &[u8]) -> Option<Intervention> {
        let room = self
            .engine
            .config
            .resp_body_limit
            .saturating_sub(self.resp_body.len());
        if chunk.len() > room {
            self.st.outbound_data_error = true;
        }
        self.resp_body
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        None
    }

    /// Phase 4.
    pub fn process_response_body(&mut self) -> Option<Intervention> {
        if self.wants_response_body() {
            if !self.st.resp_body.is_empty() {
                self.tcache.clear();
            }
            self.st.resp_body = std::mem::take(&mut self.resp_body);
        }
        self.run_phase(4)
    }

    /// Phase 5 (logging); runs whatever happened before.
    pub fn process_logging(&mut self) {
        let saved = self.intervention.take();
        self.run_phase(5);
        if saved.is_some() {
            self.intervention = saved;
        }
    }

    /// The intervention decided so far, if any.
    pub fn intervention(&self) -> Option<&Intervention> {
        self.intervention.as_ref()
    }

    /// Rules that matched and are logged, in evaluation order.
    pub fn matched_rules(&self) -> &[MatchedRule] {
        &self.matched
    }

    /// Body-processor errors and other engine notes (ModSecurity-style text).
    pub fn logs(&self) -> &[String] {
        &self.logs
    }

    /// A `TX` variable (lowercase key), for diagnostics.
    pub fn tx_var(&self, key: &str) -> Option<&[u8]> {
        self.st.tx_get(key)
    }

    /// CRS inbound anomaly score (`tx.blocking_inbound_anomaly_score`, or the sum of the
    /// per-paranoia-level scores before phase 2 has computed it).
    pub fn inbound_anomaly_score(&self) -> i64 {
        self.score("blocking_inbound_anomaly_score", "inbound_anomaly_score_pl")
    }

    /// CRS outbound anomaly score.
    pub fn outbound_anomaly_score(&self) -> i64 {
        self.score(
            "blocking_outbound_anomaly_score",
            "outbound_anomaly_score_pl",
        )
    }

    fn score(&self, total: &str, per_pl: &str) -> i64 {
        if self.st.tx_get(total).is_some() {
            return self.st.tx_int(total);
        }
        let bpl = self.st.tx_int("blocking_paranoia_level").clamp(1, 4);
        (1..=bpl)
            .map(|pl| self.st.tx_int(&format!("{per_pl}{pl}")))
            .sum()
    }

    /// The JSON-lines audit record (see `tools/ftw/README.md`): `request_id`, `x_crs_test`,
    /// `matched_rules`, `matches`, `logs`, scores and the intervention status.
    pub fn audit_record(&self) -> serde_json::Value {
        let ids: Vec<u32> = self.matched.iter().map(|m| m.id).collect();
        let matches: Vec<serde_json::Value> = self
            .matched
            .iter()
            .map(|m| serde_json::json!({"id": m.id, "phase": m.phase, "msg": m.msg, "data": m.logdata, "var": m.var, "severity": m.severity}))
            .collect();
        let mut logs: Vec<String> = self.matched.iter().map(MatchedRule::log_line).collect();
        logs.extend(self.logs.iter().cloned());
        serde_json::json!({
            "request_id": lossy(&self.st.unique_id),
            "x_crs_test": self.x_crs_test,
            "matched_rules": ids,
            "matches": matches,
            "logs": logs,
            "inbound_anomaly_score": self.inbound_anomaly_score(),
            "outbound_anomaly_score": self.outbound_anomaly_score(),
            "status": self.intervention.as_ref().map(|i| i.status),
            "intervention_rule": self.intervention.as_ref().and_then(|i| i.rule_id),
        })
    }

    fn removed(&self, r: &Rule) -> bool {
        in_ranges(r.id, &self.removed_ids)
            || (!self.removed_tags.is_empty()
                && r.tag_ids.iter().any(|t| self.removed_tags.contains(t)))
            || (!self.removed_msgs.is_empty() && self.removed_msgs.contains(&r.msg_raw))
    }

    fn run_phase(&mut self, phase: u8) -> Option<Intervention> {
        let p = usize::from(phase);
        if self.ran[p] || self.mode == RuleEngineMode::Off {
            return self.intervention.clone();
        }
        self.ran[p] = true;
        if self.intervention.is_some() {
            return self.intervention.clone();
        }
        match self.allow {
            Some(AllowScope::All) if phase < 5 => return None,
            Some(AllowScope::Request) if phase <= 2 => return None,
            _ => {}
        }
        let engine = self.engine;
        let plan = &engine.phases[p];
        // phase 1 starts from the preamble's state: of its rules, only those it stepped over
        // run here, at their place
        let mut preamble = engine
            .preamble
            .as_ref()
            .filter(|_| phase == 1 && self.phase1_start > 0);
        let mut restore_matched = false;
        let mut i = 0;
        loop {
            if let Some(pre) = preamble {
                if i < self.phase1_start {
                    i = pre.resume_at(i);
                }
                if i >= self.phase1_start {
                    preamble = None;
                    if restore_matched {
                        pre.state.apply_matched(&mut self.st);
                    }
                }
            }
            if i >= plan.len() {
                break;
            }
            let Item::Rule(pr) = plan[i] else {
                i += 1;
                continue;
            };
            // a rule whose pattern the prefilter found in none of its values cannot match,
            // removed or not: passed by without reading it
            if let Some((group, slot)) = pr.prefilter
                && !self.prefilter_hit(group as usize, slot as usize)
            {
                i += 1;
                continue;
            }
            let rule = &engine.rules[pr.index];
            if self.removed(rule) {
                i += 1;
                continue;
            }
            self.st.rule_id = rule.id;
            // a rule the preamble's state settles: its outcome, without evaluating it
            if let Some(s) = pr.settled
                && self.phase1_start > 0
                && !self.tx_targets_removed()
            {
                match &engine.settled[s as usize] {
                    None => i += 1,
                    Some(matched) => {
                        matched.apply(&mut self.st);
                        i = next_after_match(plan, i, pr, rule);
                    }
                }
                continue;
            }
            if !self.eval_chain(rule) {
                i += 1;
                continue;
            }
            if i < self.phase1_start && preamble.is_some_and(|p| p.last_match > Some(i)) {
                restore_matched = true;
            }
            if let Some(iv) = self.on_match(rule, phase) {
                self.intervention = Some(iv.clone());
                return Some(iv);
            }
            if self.mode == RuleEngineMode::Off {
                return None;
            }
            if self.allow.is_some() && self.allow_phase == phase {
                return None;
            }
            i = next_after_match(plan, i, pr, rule);
        }
        None
    }

    /// Whether an exclusion or `ctl` removed a `TX` target from some rule.
    fn tx_targets_removed(&self) -> bool {
        (self.removed_targets.iter()).any(|rt| rt.target().var == variables::Var::Tx)
    }

    fn eval_chain(&mut self, rule: &Rule) -> bool {
        let mut r = rule;
        loop {
            if !self.eval_rule(r, rule) {
                return false;
            }
            match &r.chain {
                Some(c) => r = c,
                None => return true,
            }
        }
    }

    fn eval_rule(&mut self, r: &Rule, head: &Rule) -> bool {
        let Some(op) = &r.op else {
            for sv in &r.setvars {
                sv.eval(&mut self.st, &self.engine.pinned);
            }
            return true;
        };
        let (nhits, hit_caps_of) = self.match_values(r, op, head);
        if nhits == 0 {
            return false;
        }
        // as ModSecurity v3: capture and setvar run once per matched value, in order, so a
        // `setvar:tx.x_%{tx.0}` records every match (CRS 920450) and the next chain link sees them
        let mut hit_caps_of = hit_caps_of.into_iter();
        for (name, value) in &self.hit_bufs[..nhits] {
            if let Some(Some(c)) = hit_caps_of.next() {
                // the groups go to TX:0…; any higher TX:n left from before goes
                let kept = (1u16 << c.len().min(CAPTURE_NAMES.len())) - 1;
                let stale = self.st.tx_digits & !kept;
                for (n, name) in CAPTURE_NAMES.iter().enumerate() {
                    if stale & (1 << n) != 0 {
                        self.st.tx.remove(*name);
                    }
                }
                self.st.tx_digits &= kept;
                for (name, g) in CAPTURE_NAMES.iter().zip(c) {
                    match self.st.tx.get_mut(*name) {
                        Some(slot) => crate::state::set_tx_value(slot, &g),
                        None => self.st.tx_insert(name, &g),
                    }
                }
            }
            self.st.matched_var_name.clear();
            self.st.matched_var_name.extend_from_slice(name);
            self.st.matched_var.clear();
            self.st.matched_var.extend_from_slice(value);
            for sv in &r.setvars {
                sv.eval(&mut self.st, &self.engine.pinned);
            }
        }
        // the hits become MATCHED_VARS; the previous ones' buffers serve the next rule
        std::mem::swap(&mut self.hit_bufs, &mut self.st.matched_vars);
        self.st.matched_vars_len = nhits;
        self.st.matched_from = 0;
        true
    }

    /// Runs `op` over the values of `r`'s targets (transformed) and writes each match into
    /// `hit_bufs`: returns how many matched and, when the rule captures, each match's groups.
    /// The values live only here (a `Values` is large: dropped in place, never moved).
    fn match_values(
        &mut self,
        r: &Rule,
        op: &crate::operators::CompiledOp,
        head: &Rule,
    ) -> (usize, Vec<Option<Vec<Vec<u8>>>>) {
        // (a target removed at run time, such as CRS 941010's REQUEST_FILENAME for the XSS
        // rules on nearly every request, matters here only when it is a TX variable)
        if let Some((t, key)) = single_tx_key(r)
            && !self.tx_targets_removed()
        {
            return (self.match_tx_key(t, key, op), Vec::new());
        }
        let mut excl: SmallVec<[&Target; 8]> = r.excludes.iter().collect();
        for rt in &self.removed_targets {
            match rt {
                RemovedTarget::Ids(ids, t) if in_ranges(head.id, ids) => excl.push(t),
                RemovedTarget::Tag(tag, t) if head.tag_ids.contains(tag) => excl.push(t),
                _ => {}
            }
        }
        let mut vals: variables::Values = SmallVec::new();
        // where each target's values end and whether they are cacheable (no allocation: rules
        // have few targets; values past the 16th target are simply not cached)
        let mut seg_ends = [(0usize, false); 16];
        let mut nseg = 0;
        for t in &r.targets {
            if excl
                .iter()
                .any(|e| e.var == t.var && matches!(e.sel, Selector::All) && !t.count)
            {
                continue;
            }
            variables::collect(&self.st, t, &excl, &mut vals);
            if nseg < seg_ends.len() {
                seg_ends[nseg] = (vals.len(), variables::is_stable(t.var) && !t.count);
                nseg += 1;
            }
        }
        let mut caps: Vec<Vec<u8>> = Vec::new();
        let want = r.capture;
        let hit_bufs = &mut self.hit_bufs;
        let mut nhits = 0;
        // the captures of each hit, when the rule captures
        let mut hit_caps_of: Vec<Option<Vec<Vec<u8>>>> = Vec::new();
        let st = &self.st;
        let tcache = &mut self.tcache;
        let cacheable = !r.multi_match && r.tchain != 0;
        let mut seg = 0;
        for (vi, v) in vals.iter().enumerate() {
            while seg < nseg && vi >= seg_ends[seg].0 {
                seg += 1;
            }
            let stable = seg < nseg && seg_ends[seg].1;
            let mut hit = false;
            let mut hit_caps = None;
            let mut check = |val: &[u8], caps: &mut Vec<Vec<u8>>| {
                caps.clear();
                let m = op.op.eval(st, val, if want { Some(caps) } else { None }) != op.negated;
                if m && want && !op.negated && !caps.is_empty() {
                    hit_caps = Some(caps.clone());
                }
                m
            };
            let value: &[u8] = &v.value;
            let cur: Cow<[u8]> = if cacheable && stable && matches!(v.value, Cow::Borrowed(_)) {
                tcache.transformed(r.tchain, &r.transforms, value)
            } else if !r.multi_match {
                match apply_chain(value, &r.transforms) {
                    Some(t) => Cow::Owned(t),
                    None => Cow::Borrowed(value),
                }
            } else {
                // checked as it is and after each transformation that changes it
                if !r.transforms.is_empty() {
                    hit |= check(value, &mut caps);
                }
                let have = transforms::features(value);
                match apply_chain_steps(value, have, &r.transforms, |o| hit |= check(o, &mut caps))
                {
                    Some(o) => Cow::Owned(o),
                    None => Cow::Borrowed(value),
                }
            };
            if !r.multi_match || r.transforms.is_empty() {
                hit = check(&cur, &mut caps);
            }
            if hit {
                if nhits == hit_bufs.len() {
                    hit_bufs.push(Default::default());
                }
                let (name, value) = &mut hit_bufs[nhits];
                v.write_full_name(name);
                value.clear();
                value.extend_from_slice(&cur);
                if want {
                    hit_caps_of.push(hit_caps);
                }
                nhits += 1;
            }
        }
        (nhits, hit_caps_of)
    }

    /// [`Self::match_values`] for a rule that reads one `TX:name` (or `&TX:name`), found by
    /// [`single_tx_key`]: the one value, if there is one, is read in place. (Most rules a CRS
    /// transaction evaluates are of this kind: paranoia-level checks, settings and scores.)
    fn match_tx_key(&mut self, t: &Target, key: &str, op: &crate::operators::CompiledOp) -> usize {
        let found = self.st.tx.get_key_value(key);
        let (name_key, value): (&[u8], &[u8]) = match (found, t.count) {
            (Some((k, v)), false) => (k.as_bytes(), v),
            (None, false) => return 0,
            // as `collect` counts: the count's name is the collection's alone
            (found, true) => (b"", if found.is_some() { b"1" } else { b"0" }),
        };
        if op.op.eval(&self.st, value, None) == op.negated {
            return 0;
        }
        if self.hit_bufs.is_empty() {
            self.hit_bufs.push(Default::default());
        }
        let (name, v) = &mut self.hit_bufs[0];
        variables::VarValue {
            coll: t.name,
            key: Cow::Borrowed(name_key),
            value: Cow::Borrowed(b""),
        }
        .write_full_name(name);
        v.clear();
        v.extend_from_slice(value);
        1
    }

    /// The members (one bit each) each prefilter group found, for the groups scanned so far.
    #[cfg(test)]
    pub(crate) fn prefilter_found(&self) -> Vec<(usize, u64)> {
        (self.prefilter_hits.iter().enumerate())
            .filter_map(|(g, h)| h.map(|h| (g, h)))
            .collect()
    }

    /// Whether pattern `slot` of prefilter `group` matched any value of the group's targets
    /// (the set runs over them on the group's first use in the transaction).
    fn prefilter_hit(&mut self, group: usize, slot: usize) -> bool {
        let hits = match self.prefilter_hits[group] {
            Some(hits) => hits,
            None => {
                let hits = self.prefilter_scan(group);
                self.prefilter_hits[group] = Some(hits);
                hits
            }
        };
        hits & (1 << slot) != 0
    }

    /// Runs prefilter `group` over its values: the members (one bit each) found in what their
    /// own chain makes of some value. (Once per group and transaction: kept out of the rule
    /// loop's code.)
    #[inline(never)]
    fn prefilter_scan(&mut self, group: usize) -> u64 {
        let Self {
            engine,
            st,
            tcache,
            prefilter_found,
            ..
        } = self;
        let pf = &engine.prefilters[group];
        let mut vals: variables::Values = SmallVec::new();
        for t in &pf.targets {
            variables::collect(st, t, &[], &mut vals);
        }
        let found =
            prefilter_found.get_or_insert_with(|| PatternSet::new(crate::prefilter::MAX_GROUP));
        if vals.len() > 1 && vals.iter().map(|v| v.value.len() + 1).sum::<usize>() <= JOINED_MAX {
            JOINED.with_borrow_mut(|joined| scan_joined(pf, &vals, tcache, found, joined))
        } else {
            scan_each(pf, &vals, tcache, found, 0)
        }
    }
}

thread_local! {
    /// Scratch haystacks of joined prefilter scans, kept by each thread from one transaction
    /// to the next (they grow to the size of the values scanned, at most [`JOINED_MAX`] for
    /// the raw values and about as much for each chain).
    static JOINED: std::cell::RefCell<Joined> = std::cell::RefCell::default();
}

/// The chains' own haystacks of the last joined scan on this thread, then the one the
/// `multiMatch` members share (each holds what a chain or the members made of the values and
/// needed a scan of its own; past that group's chains, an earlier group's may follow).
#[cfg(test)]
pub(crate) fn last_own_haystacks() -> Vec<Vec<u8>> {
    JOINED.with_borrow(|j| {
        let own = j.own.iter().chain(std::iter::once(&j.multi));
        own.map(|(hay, _)| hay.clone()).collect()
    })
}

/// Values of at most this many bytes in all are scanned joined (with what each chain changes
/// of them in a haystack of its own while the group is scanned): joining saves a scan's fixed cost
/// per value, which matters for many short values, not for long ones.
const JOINED_MAX: usize = 16 * 1024;

/// [`Transaction::prefilter_scan`] one value at a time, for the members not in `known`
/// (returned as found).
fn scan_each(
    pf: &Prefilter,
    vals: &variables::Values,
    tcache: &mut TransformCache,
    found: &mut PatternSet,
    known: u64,
) -> u64 {
    let all = pf.all_members();
    let mut hits = known & all;
    if hits == all {
        return hits;
    }
    // each distinct output of the members' chains, with the members whose chain produces
    // it: most values come out of most chains unchanged, so one scan usually serves every
    // chain. What a chain makes of a value is kept for the other groups and the rules.
    let mut steps: Vec<(Vec<u8>, u64)> = Vec::new();
    for v in vals {
        let (value, cacheable, have) = tcache.value_features(v);
        steps.clear();
        for (bit, touch, chain) in &pf.multi {
            if bit & !hits != 0 && touch.is_none_or(|t| t & have != 0) {
                apply_chain_steps(value, have, chain, |o| {
                    if pf.same_but_case(*bit, o, value) {
                        return;
                    }
                    match steps.iter_mut().find(|(s, _)| s == o) {
                        Some((_, members)) => *members |= bit,
                        None => steps.push((o.to_vec(), *bit)),
                    }
                });
            }
        }
        for (o, members) in &steps {
            hits |= pf.find(o, found) & members;
        }
        if cacheable {
            for (c, (id, chain)) in pf.chains.iter().enumerate() {
                if pf.rewrites(c, have) {
                    tcache.fill(*id, chain, value, have);
                }
            }
        }
        let tcache = &*tcache;
        let mut outputs: SmallVec<[Output; 4]> = SmallVec::new();
        for (c, (id, chain)) in pf.chains.iter().enumerate() {
            let out = if !pf.rewrites(c, have) {
                None
            } else {
                tcache
                    .chain_output(*id, chain, value, have, cacheable)
                    .filter(|o| !pf.same_but_case(pf.chain_members[c], o, value))
            };
            let members = pf.chain_members[c];
            match outputs.iter_mut().find(|(o, _)| *o == out) {
                Some((_, mask)) => *mask |= members,
                None => outputs.push((out, members)),
            }
        }
        for (out, members) in &outputs {
            // members already found need no second look
            if *members & !hits == 0 {
                continue;
            }
            hits |= pf.find(out.as_deref().unwrap_or(value), found) & members;
        }
        if hits == all {
            break;
        }
    }
    hits
}

/// The haystacks of [`scan_joined`], kept from one scan to the next: the values as they are,
/// and what each chain makes of those it changes, joined by line breaks; with the offset of
/// each value's end (its line break) in each.
#[derive(Default)]
pub(crate) struct Joined {
    raw: (Vec<u8>, Vec<usize>),
    /// For each value of `raw`, the members (one bit each) whose chain changes it.
    changed_for: Vec<u64>,
    /// For each chain, its outputs that differ from their value.
    own: Vec<(Vec<u8>, Vec<usize>)>,
    /// What the steps of the `multiMatch` members' chains make of the values, each distinct
    /// output of a value once,
    multi: (Vec<u8>, Vec<usize>),
    /// with the members (one bit each) that leave it out: all but those whose steps made it.
    multi_not_for: Vec<u64>,
}

/// [`Transaction::prefilter_scan`] on values joined by line breaks (what the patterns of a
/// group mean there: [`crate::prefilter`]). The values as they are form one haystack, which
/// answers for each member on the values its chain leaves alone; what a chain changes goes
/// to that chain's own haystack, which answers for its members. A match in one value is a
/// match in the joined haystack; one across a line break only makes the member count as
/// found, and its rule is then evaluated as usual.
fn scan_joined(
    pf: &Prefilter,
    vals: &variables::Values,
    tcache: &mut TransformCache,
    found: &mut PatternSet,
    joined: &mut Joined,
) -> u64 {
    let mut hits = 0u64;
    let Joined {
        raw,
        changed_for,
        own,
        multi,
        multi_not_for,
    } = joined;
    raw.0.clear();
    raw.1.clear();
    changed_for.clear();
    own.resize_with(pf.chains.len(), Default::default);
    for (hay, ends) in own[..pf.chains.len()]
        .iter_mut()
        .chain(std::iter::once(&mut *multi))
    {
        hay.clear();
        ends.clear();
    }
    multi_not_for.clear();
    let all = pf.all_members();
    for v in vals {
        let (value, cacheable, have) = tcache.value_features(v);
        // (members whose chains share steps, as CRS's decoding chains do, make the same
        // outputs: each is scanned once, for all of them)
        let first = multi_not_for.len();
        for (bit, touch, chain) in &pf.multi {
            if touch.is_none_or(|t| t & have != 0) {
                apply_chain_steps(value, have, chain, |o| {
                    if pf.same_but_case(*bit, o, value) {
                        return;
                    }
                    let (hay, ends) = &*multi;
                    let start = |k: usize| if k == 0 { 0 } else { ends[k - 1] + 1 };
                    match (first..ends.len()).find(|&k| hay[start(k)..ends[k]] == *o) {
                        Some(k) => multi_not_for[k] &= !bit,
                        None => {
                            push_value(multi, o);
                            multi_not_for.push(all & !bit);
                        }
                    }
                });
            }
        }
        let mut changed = 0u64;
        for (c, (id, chain)) in pf.chains.iter().enumerate() {
            if !pf.rewrites(c, have) {
                continue;
            }
            if cacheable {
                tcache.fill(*id, chain, value, have);
            }
            if let Some(o) = tcache.chain_output(*id, chain, value, have, cacheable)
                && !pf.same_but_case(pf.chain_members[c], &o, value)
            {
                push_value(&mut own[c], &o);
                changed |= pf.chain_members[c];
            }
        }
        push_value(raw, value);
        changed_for.push(changed);
    }
    hits |= pf.find_joined(&raw.0, &raw.1, changed_for, found);
    for (members, (hay, ends)) in own.iter().zip(&pf.chain_members).map(|(h, &m)| (m, h)) {
        if !hay.is_empty() && members & !hits != 0 {
            hits |= pf.find_joined(hay, ends, &[], found) & members;
        }
    }
    let multi_members = pf.multi.iter().fold(0, |bits, (bit, _, _)| bits | bit);
    if !multi.0.is_empty() && multi_members & !hits != 0 {
        hits |= pf.find_joined(&multi.0, &multi.1, multi_not_for, found) & multi_members;
    }
    hits
}

fn push_value((hay, ends): &mut (Vec<u8>, Vec<usize>), value: &[u8]) {
    hay.extend_from_slice(value);
    ends.push(hay.len());
    hay.push(b'\n');
}

impl Transaction<'_> {
    fn on_match(&mut self, rule: &Rule, phase: u8) -> Option<Intervention> {
        let engine = self.engine;
        let mut link = Some(rule);
        while let Some(r) = link {
            for c in &r.ctls {
                self.apply_ctl(c, phase);
            }
            link = r.chain.as_deref();
        }
        if let Some(s) = rule.severity {
            self.st.highest_severity = Some(self.st.highest_severity.map_or(s, |h| h.min(s)));
        }
        let action = if rule.block {
            engine.default_action[usize::from(phase)].clone()
        } else {
            rule.action
                .clone()
                .unwrap_or_else(|| engine.default_action[usize::from(phase)].clone())
        };
        let status = rule.status.or(engine.default_status[usize::from(phase)]);
        let enforce = self.mode == RuleEngineMode::On;
        let disruptive =
            enforce && matches!(action, Action::Deny | Action::Drop | Action::Redirect(_));
        let mut m = None;
        if rule.log.unwrap_or(true) {
            let var = lossy(&self.st.matched_var_name);
            let redacted = engine.redact.iter().any(|p| {
                // Bytes, not `str` slices: a variable name may hold any bytes (decoded
                // from the request), and `p.len()` need not fall on a char boundary.
                var.as_bytes()
                    .get(..p.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes()))
            });
            let mr = MatchedRule {
                id: rule.id,
                phase,
                msg: rule
                    .msg
                    .as_ref()
                    .map(|x| lossy(&x.expand(&self.st)))
                    .unwrap_or_default(),
                logdata: if redacted {
                    "[redacted]".into()
                } else {
                    rule.logdata
                        .as_ref()
                        .map(|x| lossy(&truncate(&x.expand(&self.st), 512)))
                        .unwrap_or_default()
                },
                severity: rule.severity,
                tags: rule.tags.clone(),
                var,
                data: if redacted {
                    "[redacted]".into()
                } else {
                    lossy(&truncate(&self.st.matched_var, 512))
                },
                disruptive,
                file: rule.file.clone(),
                line: rule.line,
            };
            m = Some(mr.log_line());
            self.matched.push(mr);
        }
        if !enforce {
            return None;
        }
        // the message of a disruptive action only: most matches are `pass`
        let message = move || m.unwrap_or_else(|| format!("[id \"{}\"]", rule.id));
        match action {
            Action::Pass => None,
            Action::Allow(scope) => {
                self.allow = Some(scope);
                self.allow_phase = phase;
                None
            }
            Action::Deny => Some(Intervention {
                status: status.unwrap_or(403),
                rule_id: Some(rule.id),
                disruptive: Disruptive::Deny,
                message: message(),
            }),
            Action::Drop => Some(Intervention {
                status: status.unwrap_or(403),
                rule_id: Some(rule.id),
                disruptive: Disruptive::Drop,
                message: message(),
            }),
            Action::Redirect(url) => {
                let url = lossy(&crate::macros::Macro::parse(&url).expand(&self.st));
                Some(Intervention {
                    status: status.filter(|s| (300..400).contains(s)).unwrap_or(302),
                    rule_id: Some(rule.id),
                    disruptive: Disruptive::Redirect(url),
                    message: message(),
                })
            }
        }
    }

    /// `REQBODY_PROCESSOR` is visible from phase 1 on, as in ModSecurity.
    fn set_body_processor(&mut self, p: &str) {
        self.body_processor = Some(p.to_string());
        self.st.reqbody_processor = p.as_bytes().to_vec();
    }

    /// Applies a scope's rule exclusions, as if a rule had run their `ctl` actions first.
    /// Call before the first phase.
    pub fn exclude(&mut self, exclusions: &crate::Exclusions) {
        if exclusions.0.is_empty() {
            return;
        }
        // an exclusion that reaches a rule the preamble ran: this transaction runs it all
        if self.phase1_start > 0
            && !self.ran[1]
            && let Some(pre) = &self.engine.preamble
            && exclusions.0.iter().any(|c| pre.excluded_by(c, self.engine))
        {
            self.engine.start_tx(&mut self.st);
            self.st.matched_var.clear();
            self.st.matched_var_name.clear();
            self.st.matched_vars_len = 0;
            self.st.matched_from = 0;
            self.st.rule_id = 0;
            self.phase1_start = 0;
        }
        for c in &exclusions.0 {
            self.apply_ctl(c, 1);
        }
    }

    /// Whether phase 1 starts past the engine's preamble.
    #[cfg(test)]
    pub(crate) fn starts_past_preamble(&self) -> bool {
        self.phase1_start > 0
    }

    fn apply_ctl(&mut self, c: &Ctl, _phase: u8) {
        match c {
            Ctl::RuleRemoveById(r) => self.removed_ids.extend_from_slice(r),
            // a tag no rule carries removes nothing
            Ctl::RuleRemoveByTag(t) => self.removed_tags.extend(self.engine.tag_ids.get(t)),
            Ctl::RuleRemoveByMsg(m) => self.removed_msgs.push(m.clone()),
            Ctl::RuleRemoveTargetById(ids, t) => self
                .removed_targets
                .push(RemovedTarget::Ids(ids.clone(), t.clone())),
            Ctl::RuleRemoveTargetByTag(tag, t) => {
                if let Some(&id) = self.engine.tag_ids.get(tag) {
                    self.removed_targets.push(RemovedTarget::Tag(id, t.clone()));
                }
            }
            Ctl::RuleEngine(m) => self.mode = *m,
            Ctl::RequestBodyProcessor(p) => self.set_body_processor(p),
            Ctl::RequestBodyAccess(b) => self.req_body_access = *b,
            Ctl::ResponseBodyAccess(b) => self.resp_body_access = *b,
            Ctl::ForceRequestBodyVariable(on) => self.force_req_body_var = *on,
            Ctl::Ignored => {}
        }
    }
}

/// `TX:0` … `TX:9`, where `capture` puts the groups of a match.
const CAPTURE_NAMES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Values longer than this are transformed each time instead of cached.
const TCACHE_MAX_VALUE: usize = 16 * 1024;
/// Upper bound of the memory the transformation cache of one transaction may hold.
const TCACHE_BUDGET: usize = 1024 * 1024;

/// What the transformation chains make of request and response values, and which byte
/// classes ([`transforms::features`]) those values hold. Request and response buffers are
/// written once per transaction, so a value's (address, length) identifies it; the cache is
/// cleared whenever they are replaced. Only such values may be looked up here.
struct TransformCache {
    /// (transformation chain id, value address, value length) → transformed value (`None` =
    /// unchanged).
    outputs: HashMap<(u32, usize, usize), Option<Vec<u8>>, Fx>,
    /// Bytes held by `outputs` (bounded by [`TCACHE_BUDGET`]).
    bytes: usize,
    /// (value address, value length) → the value's features, for values long enough that a
    /// lookup is cheaper than a pass over their bytes.
    features: HashMap<(usize, usize), u32, Fx>,
}

type Fx = BuildHasherDefault<FxHasher>;

/// What some chains make of a value (`None`: the value unchanged) and the group members
/// (one bit each) whose chain that is.
type Output<'a> = (Option<Cow<'a, [u8]>>, u64);

/// Shorter values have their features computed each time.
const FEATURES_CACHED_FROM: usize = 16;

impl Default for TransformCache {
    fn default() -> Self {
        TransformCache {
            // (a GET with CRS fills about 60; a JSON body's values a thousand, and it grows)
            outputs: HashMap::with_capacity_and_hasher(128, Default::default()),
            bytes: 0,
            // (a handful of values per request are long enough to be kept)
            features: HashMap::default(),
        }
    }
}

impl TransformCache {
    fn clear(&mut self) {
        self.outputs.clear();
        self.bytes = 0;
        self.features.clear();
    }

    /// The [`transforms::features`] of `value`.
    fn features(&mut self, value: &[u8]) -> u32 {
        if value.len() < FEATURES_CACHED_FROM || value.len() > TCACHE_MAX_VALUE {
            return transforms::features(value);
        }
        *self
            .features
            .entry((value.as_ptr() as usize, value.len()))
            .or_insert_with(|| transforms::features(value))
    }

    /// A collected value, whether the cache may keep what is made of it (it lives in the
    /// request or response buffers), and its features.
    #[inline]
    fn value_features<'v>(&mut self, v: &'v variables::VarValue<'_>) -> (&'v [u8], bool, u32) {
        let value: &[u8] = &v.value;
        let cacheable = matches!(v.value, Cow::Borrowed(_));
        let have = if cacheable {
            self.features(value)
        } else {
            transforms::features(value)
        };
        (value, cacheable, have)
    }

    /// What chain `tchain` makes of `value` (`None`: the value as it is), from the cache when
    /// the value is `cacheable` and the cache holds it ([`Self::fill`] puts it there).
    #[inline]
    fn chain_output<'a>(
        &'a self,
        tchain: u32,
        transforms: &[(usize, crate::transforms::Transform)],
        value: &'a [u8],
        have: u32,
        cacheable: bool,
    ) -> Option<Cow<'a, [u8]>> {
        match cacheable.then(|| self.cached(tchain, value)).flatten() {
            Some(out) => out.map(Cow::Borrowed),
            None => apply_chain_from(value, have, transforms).map(Cow::Owned),
        }
    }

    /// Puts what chain `tchain` makes of `value` (whose features are `have`) in the cache,
    /// unless it is there or the cache is full.
    fn fill(
        &mut self,
        tchain: u32,
        transforms: &[(usize, crate::transforms::Transform)],
        value: &[u8],
        have: u32,
    ) {
        if value.len() > TCACHE_MAX_VALUE || self.bytes >= TCACHE_BUDGET {
            return;
        }
        let bytes = &mut self.bytes;
        self.outputs
            .entry((tchain, value.as_ptr() as usize, value.len()))
            .or_insert_with(|| {
                let t = apply_chain_from(value, have, transforms);
                *bytes += t.as_ref().map_or(0, Vec::len) + 32;
                t
            });
    }

    /// What chain `tchain` makes of `value` if the cache holds it: `Some(None)` for unchanged.
    fn cached(&self, tchain: u32, value: &[u8]) -> Option<Option<&[u8]>> {
        self.outputs
            .get(&(tchain, value.as_ptr() as usize, value.len()))
            .map(|t| t.as_deref())
    }

    /// `value` through a transformation chain, from the cache when it holds the result.
    fn transformed<'a>(
        &'a mut self,
        tchain: u32,
        transforms: &[(usize, crate::transforms::Transform)],
        value: &'a [u8],
    ) -> Cow<'a, [u8]> {
        if value.len() > TCACHE_MAX_VALUE || self.bytes >= TCACHE_BUDGET {
            return match apply_chain(value, transforms) {
                Some(t) => Cow::Owned(t),
                None => Cow::Borrowed(value),
            };
        }
        let bytes = &mut self.bytes;
        let t = self
            .outputs
            .entry((tchain, value.as_ptr() as usize, value.len()))
            .or_insert_with(|| {
                let t = apply_chain(value, transforms);
                *bytes += t.as_ref().map_or(0, Vec::len) + 32;
                t
            });
        match t {
            Some(t) => Cow::Borrowed(t.as_slice()),
            None => Cow::Borrowed(value),
        }
    }
}

/// A small multiplicative hasher for the cache keys (integers chosen by us, not by clients).
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The target and key of a rule that reads exactly one `TX:name` (or its count) as it is: no
/// transformation, capture, `multiMatch` or exclusion.
fn single_tx_key(r: &Rule) -> Option<(&Target, &str)> {
    match r.targets.as_slice() {
        [
            t @ Target {
                var: variables::Var::Tx,
                sel: Selector::Key(key),
                exclude: false,
                ..
            },
        ] if r.transforms.is_empty() && !r.capture && !r.multi_match && r.excludes.is_empty() => {
            Some((t, key.as_str()))
        }
        _ => None,
    }
}

/// Runs a transformation chain; `None` when the value comes out unchanged.
fn apply_chain(v: &[u8], chain: &[(usize, crate::transforms::Transform)]) -> Option<Vec<u8>> {
    apply_chain_from(v, transforms::features(v), chain)
}

/// [`apply_chain`] for a value whose [`transforms::features`] are `have`.
fn apply_chain_from(
    v: &[u8],
    have: u32,
    chain: &[(usize, crate::transforms::Transform)],
) -> Option<Vec<u8>> {
    apply_chain_steps(v, have, chain, |_| {})
}

/// [`apply_chain_from`], calling `each` with what every step that changes the value makes of
/// it, in order: the values a `multiMatch` rule checks besides the value itself.
#[inline]
fn apply_chain_steps(
    v: &[u8],
    mut have: u32,
    chain: &[(usize, crate::transforms::Transform)],
    mut each: impl FnMut(&[u8]),
) -> Option<Vec<u8>> {
    let mut cur: Option<Vec<u8>> = None;
    // most values hold nothing most transformations rewrite: the value's byte classes decide
    // which can be skipped, until one changes the value
    for &(i, f) in chain {
        if transforms::skips(i, have) {
            continue;
        }
        let input: &[u8] = cur.as_deref().unwrap_or(v);
        let next = match f(input) {
            Cow::Owned(o) => Some(o),
            Cow::Borrowed(b) if b.len() != input.len() => Some(b.to_vec()),
            Cow::Borrowed(_) => None,
        };
        if let Some(n) = next {
            have = transforms::features(&n);
            each(&n);
            cur = Some(n);
        }
    }
    cur
}

fn truncate(v: &[u8], n: usize) -> Cow<'_, [u8]> {
    if v.len() > n {
        Cow::Borrowed(&v[..n])
    } else {
        Cow::Borrowed(v)
    }
}

#[allow(dead_code)]
fn _decode(v: &[u8]) -> Vec<u8> {
    url_decode::decode(v)
}
