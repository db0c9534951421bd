//! Loading a rule set: directives → compiled rules → per-phase plans.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::actions::{self, ctl::parse_id_ranges};
use crate::error::{CompileError, LoadError};
use crate::operators::{self, CompileCtx};
use crate::rule::{Action, Rule};
use crate::seclang::{self, Directive};
use crate::variables::{compile_target, split_targets};

/// `SecRuleEngine`: `On` blocks, `DetectionOnly` only logs, `Off` evaluates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuleEngineMode {
    On,
    #[default]
    DetectionOnly,
    Off,
}

impl RuleEngineMode {
    pub(crate) fn parse(s: &str) -> Result<Self, CompileError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "on" => Ok(Self::On),
            "detectiononly" => Ok(Self::DetectionOnly),
            "off" => Ok(Self::Off),
            _ => Err(CompileError::new(format!(
                "expected On, DetectionOnly or Off, got {s:?}"
            ))),
        }
    }
}

/// What to do with a body larger than the configured limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimitAction {
    /// Reject the request (intervention with status 413) — only when the engine is `On`.
    Reject,
    /// Inspect the first `limit` bytes, ignore the rest.
    ProcessPartial,
}

/// Options the gateway passes on top of the rule files.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Overrides `SecRuleEngine` from the files.
    pub mode_override: Option<RuleEngineMode>,
    /// When set, pins `tx.blocking_paranoia_level` and `tx.detection_paranoia_level` to this
    /// value (what `crs-setup.conf` rule 900000 does); rule `setvar`s cannot change them.
    pub paranoia_level: Option<u8>,
    /// Overrides `SecRequestBodyLimit`.
    pub request_body_limit: Option<usize>,
    /// Variable-name prefixes (`REQUEST_HEADERS:Authorization`, `REQUEST_COOKIES`, `ARGS:password`)
    /// whose matched data and logdata are replaced by `[redacted]` in [`crate::MatchedRule`].
    pub redact: Vec<String>,
    /// SecLang loaded before the files of [`WafEngine::from_files`] (base engine settings the
    /// files may override), with the name errors give it.
    pub prelude: Option<(String, String)>,
    /// Evaluates every rule on its own, without the prefilter (which answers the `@rx` and
    /// `@pm` rules that read the same values together): slower, with the same results (what
    /// a test holds the prefilter to).
    pub without_prefilter: bool,
    /// Runs the first rules of phase 1 on every transaction instead of once at load (see
    /// [`crate::preamble`]): slower, with the same results.
    pub without_preamble: bool,
}

/// Engine settings collected from the directives.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub mode: RuleEngineMode,
    pub req_body_access: bool,
    pub resp_body_access: bool,
    pub req_body_limit: usize,
    pub req_body_no_files_limit: usize,
    pub req_body_limit_action: BodyLimitAction,
    pub resp_body_limit: usize,
    pub resp_body_limit_action: BodyLimitAction,
    pub resp_mime: Vec<String>,
    pub args_limit: usize,
    pub json_depth: usize,
    pub arg_separator: u8,
    pub upload_file_limit: usize,
    pub component_signatures: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: RuleEngineMode::DetectionOnly,
            req_body_access: false,
            resp_body_access: false,
            req_body_limit: 13_107_200,
            req_body_no_files_limit: 1_048_576,
            req_body_limit_action: BodyLimitAction::Reject,
            resp_body_limit: 524_288,
            resp_body_limit_action: BodyLimitAction::ProcessPartial,
            resp_mime: vec!["text/plain".into(), "text/html".into()],
            args_limit: 1000,
            json_depth: 512,
            arg_separator: b'&',
            upload_file_limit: 100,
            component_signatures: Vec::new(),
        }
    }
}

/// One step of a phase plan.
#[derive(Debug)]
pub(crate) enum Item {
    Rule(PlanRule),
    Marker,
}

/// A rule in a phase's plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanRule {
    /// Index into `WafEngine::rules`.
    pub index: usize,
    /// Where `skipAfter` continues (a plan index).
    pub skip_to: Option<usize>,
    /// The rule's prefilter place ([`Rule::prefilter`]), copied here so that a transaction
    /// passes a rule the prefilter rules out without reading the rule itself.
    pub prefilter: Option<(u32, u32)>,
    /// For a rule whose outcome the preamble's state settles ([`crate::preamble`]): its
    /// index in `WafEngine::settled`.
    pub settled: Option<u32>,
}

/// A compiled rule set: shared by all transactions (`Send + Sync`, wrap it in an `Arc`).
#[derive(Debug)]
pub struct WafEngine {
    pub(crate) rules: Vec<Rule>,
    /// Plans for phases 1–5 (index 0 unused).
    pub(crate) phases: [Vec<Item>; 6],
    pub(crate) config: Config,
    /// Disruptive action of `SecDefaultAction` per phase (what `block` means).
    pub(crate) default_action: [Action; 6],
    pub(crate) default_status: [Option<u16>; 6],
    pub(crate) pinned: Vec<(Arc<str>, Arc<[u8]>)>,
    pub(crate) redact: Vec<String>,
    /// Every tag a rule carries, interned: exclusions by tag compare ids, not strings.
    pub(crate) tag_ids: std::collections::HashMap<String, u32>,
    /// `@rx` rules answered together, see [`crate::prefilter`].
    pub(crate) prefilters: Vec<crate::prefilter::Prefilter>,
    /// What the first rules of phase 1 leave behind, see [`crate::preamble`].
    pub(crate) preamble: Option<crate::preamble::Preamble>,
    /// The outcomes of the rules the preamble's state settles: `None` when the rule does not
    /// match, else the `MATCHED_VAR*` its match leaves.
    pub(crate) settled: Vec<Option<crate::preamble::Matched>>,
}

enum Deferred {
    RemoveById(Vec<(u32, u32)>),
    RemoveByTag(String),
    RemoveByMsg(String),
    UpdateTarget(Sel, String, Option<String>),
    UpdateAction(u32, String),
}

enum Sel {
    Id(Vec<(u32, u32)>),
    Tag(String),
    Msg(String),
}

enum Entry {
    Rule(Box<Rule>),
    Marker(String),
}

struct Loader {
    entries: Vec<Entry>,
    config: Config,
    defaults: [Vec<(String, Option<String>)>; 6],
    deferred: Vec<(Arc<str>, usize, Deferred)>,
    errors: Vec<LoadError>,
    chain_open: bool,
    depth: usize,
}

fn on_off(v: Option<&String>) -> Result<bool, String> {
    match v.map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        _ => Err("expected On or Off".into()),
    }
}

fn limit_action(v: Option<&String>) -> Result<BodyLimitAction, String> {
    match v.map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("reject") => Ok(BodyLimitAction::Reject),
        Some("processpartial") => Ok(BodyLimitAction::ProcessPartial),
        _ => Err("expected Reject or ProcessPartial".into()),
    }
}

fn number(v: Option<&String>) -> Result<usize, String> {
    v.and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| "expected a number".to_string())
}

impl Loader {
    fn new() -> Self {
        Loader {
            entries: Vec::new(),
            config: Config::default(),
            defaults: Default::default(),
            deferred: Vec::new(),
            errors: Vec::new(),
            chain_open: false,
            depth: 0,
        }
    }

    fn err(&mut self, file: &str, line: usize, rule_id: Option<u32>, message: impl Into<String>) {
        self.errors.push(LoadError {
            file: file.to_string(),
            line,
            rule_id,
            message: message.into(),
        });
    }

    fn load_file(&mut self, path: &Path) {
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let dir = path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."));
                self.load_text(&text, &path.to_string_lossy(), &dir);
            }
            Err(e) => self.err(
                &path.to_string_lossy(),
                0,
                None,
                format!("cannot read: {e}"),
            ),
        }
    }

    fn load_text(&mut self, text: &str, origin: &str, dir: &Path) {
        let file: Arc<str> = Arc::from(origin);
        for d in seclang::parse(text) {
            match d {
                Ok(d) => self.directive(&d, &file, dir),
                Err((line, msg)) => self.err(origin, line, None, msg),
            }
        }
    }

    fn directive(&mut self, d: &Directive, file: &Arc<str>, dir: &Path) {
        let a = |i: usize| d.args.get(i);
        let name = d.name.to_ascii_lowercase();
        if self.chain_open && name != "secrule" {
            self.err(
                file,
                d.line,
                None,
                "chained rule is missing its next SecRule",
            );
            self.chain_open = false;
        }
        let res: Result<(), String> = match name.as_str() {
            "secrule" => {
                if d.args.len() < 2 || d.args.len() > 3 {
                    Err("SecRule takes VARIABLES OPERATOR [ACTIONS]".into())
                } else {
                    self.rule(
                        file,
                        d.line,
                        dir,
                        Some((&d.args[0], &d.args[1])),
                        d.args.get(2).map(String::as_str),
                    );
                    Ok(())
                }
            }
            "secaction" => {
                if d.args.len() != 1 {
                    Err("SecAction takes one argument".into())
                } else {
                    self.rule(file, d.line, dir, None, Some(&d.args[0]));
                    Ok(())
                }
            }
            "secmarker" => match a(0) {
                Some(m) => {
                    self.entries.push(Entry::Marker(m.clone()));
                    Ok(())
                }
                None => Err("SecMarker needs a name".into()),
            },
            "secdefaultaction" => self.default_action(a(0)),
            "secruleengine" => match a(0).map(|s| RuleEngineMode::parse(s)) {
                Some(Ok(m)) => {
                    self.config.mode = m;
                    Ok(())
                }
                _ => Err("expected On, DetectionOnly or Off".into()),
            },
            "secrequestbodyaccess" => on_off(a(0)).map(|v| self.config.req_body_access = v),
            "secresponsebodyaccess" => on_off(a(0)).map(|v| self.config.resp_body_access = v),
            "secrequestbodylimit" => number(a(0)).map(|v| self.config.req_body_limit = v),
            "secrequestbodynofileslimit" => {
                number(a(0)).map(|v| self.config.req_body_no_files_limit = v)
            }
            "secrequestbodylimitaction" => {
                limit_action(a(0)).map(|v| self.config.req_body_limit_action = v)
            }
            "secresponsebodylimit" => number(a(0)).map(|v| self.config.resp_body_limit = v),
            "secresponsebodylimitaction" => {
                limit_action(a(0)).map(|v| self.config.resp_body_limit_action = v)
            }
            "secresponsebodymimetype" => {
                self.config.resp_mime.extend(
                    d.args
                        .iter()
                        .flat_map(|s| s.split_whitespace())
                        .map(|s| s.to_ascii_lowercase()),
                );
                Ok(())
            }
            "secresponsebodymimetypesclear" => {
                self.config.resp_mime.clear();
                Ok(())
            }
            "secargumentslimit" => number(a(0)).map(|v| self.config.args_limit = v),
            "secrequestbodyjsondepthlimit" => number(a(0)).map(|v| self.config.json_depth = v),
            "secuploadfilelimit" => number(a(0)).map(|v| self.config.upload_file_limit = v),
            "secargumentseparator" => match a(0).map(|s| s.as_bytes()) {
                Some([c]) => {
                    self.config.arg_separator = *c;
                    Ok(())
                }
                _ => Err("expected one character".into()),
            },
            "seccomponentsignature" => {
                self.config
                    .component_signatures
                    .extend(d.args.iter().cloned());
                Ok(())
            }
            "secruleremovebyid" => match d
                .args
                .iter()
                .map(|s| parse_id_ranges(s))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(r) => {
                    self.deferred
                        .push((file.clone(), d.line, Deferred::RemoveById(r.concat())));
                    Ok(())
                }
                Err(e) => Err(e.0),
            },
            "secruleremovebytag" | "secruleremovebymsg" => match a(0) {
                Some(t) => {
                    let x = if name.ends_with("tag") {
                        Deferred::RemoveByTag(t.clone())
                    } else {
                        Deferred::RemoveByMsg(t.clone())
                    };
                    self.deferred.push((file.clone(), d.line, x));
                    Ok(())
                }
                None => Err("missing argument".into()),
            },
            "secruleupdatetargetbyid" | "secruleupdatetargetbytag" | "secruleupdatetargetbymsg" => {
                match (a(0), a(1)) {
                    (Some(s), Some(t)) => {
                        let sel = if name.ends_with("id") {
                            match parse_id_ranges(s) {
                                Ok(r) => Ok(Sel::Id(r)),
                                Err(e) => Err(e.0),
                            }
                        } else if name.ends_with("tag") {
                            Ok(Sel::Tag(s.clone()))
                        } else {
                            Ok(Sel::Msg(s.clone()))
                        };
                        sel.map(|sel| {
                            self.deferred.push((
                                file.clone(),
                                d.line,
                                Deferred::UpdateTarget(sel, t.clone(), a(2).cloned()),
                            ))
                        })
                    }
                    _ => Err("expected SELECTOR TARGETS".into()),
                }
            }
            "secruleupdateactionbyid" => match (
                a(0).and_then(|s| s.split(':').next()?.trim().parse::<u32>().ok()),
                a(1),
            ) {
                (Some(id), Some(acts)) => {
                    self.deferred.push((
                        file.clone(),
                        d.line,
                        Deferred::UpdateAction(id, acts.clone()),
                    ));
                    Ok(())
                }
                _ => Err("expected ID ACTIONS".into()),
            },
            "include" => match a(0) {
                Some(p) => {
                    let p = Path::new(p);
                    let full = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        dir.join(p)
                    };
                    if self.depth > 16 {
                        Err("Include nested too deeply".into())
                    } else {
                        let files = seclang::glob(&full);
                        if files.is_empty() && !full.to_string_lossy().contains('*') {
                            Err(format!("no file matches {}", full.display()))
                        } else {
                            self.depth += 1;
                            for f in files {
                                self.load_file(&f);
                            }
                            self.depth -= 1;
                            Ok(())
                        }
                    }
                }
                None => Err("Include needs a path".into()),
            },
            // Settings that only matter to ModSecurity's storage, logs or PCRE: accepted, ignored.
            "seccollectiontimeout"
            | "secpcrematchlimit"
            | "secpcrematchlimitrecursion"
            | "sectmpdir"
            | "secdatadir"
            | "secuploaddir"
            | "secuploadkeepfiles"
            | "secuploadfilemode"
            | "sectmpsaveuploadedfiles"
            | "secauditengine"
            | "secauditlog"
            | "secauditlog2"
            | "secauditlogparts"
            | "secauditlogrelevantstatus"
            | "secauditlogtype"
            | "secauditlogformat"
            | "secauditlogstoragedir"
            | "secauditlogdirmode"
            | "secauditlogfilemode"
            | "secdebuglog"
            | "secdebugloglevel"
            | "seccookieformat"
            | "secunicodemapfile"
            | "secunicodecodepage"
            | "secstatusengine"
            | "secserversignature"
            | "secwebappid"
            | "secsensorid"
            | "secrequestbodyinmemorylimit"
            | "secxmlexternalentity"
            | "secstreaminbodyinspection"
            | "secstreamoutbodyinspection"
            | "secconnengine"
            | "secinterceptonerror"
            | "sechashengine"
            | "sechashkey"
            | "sechashparam"
            | "sechashmethodrx"
            | "sechashmethodpm"
            | "secgeolookupdb"
            | "sechttpblkey"
            | "secparsexmlintoargs"
            | "secuploadfilelimit_" => Ok(()),
            _ => Err(format!("unknown directive {}", d.name)),
        };
        if let Err(e) = res {
            self.err(file, d.line, None, e);
        }
    }

    fn default_action(&mut self, arg: Option<&String>) -> Result<(), String> {
        let acts = actions::split(arg.ok_or("SecDefaultAction needs actions")?).map_err(|e| e.0)?;
        let mut probe = Rule::default();
        for (n, v) in &acts {
            actions::apply(&mut probe, n, v.as_deref()).map_err(|e| e.0)?;
        }
        if !probe.has_phase {
            return Err("SecDefaultAction must name a phase".into());
        }
        if probe.action.is_none() {
            return Err("SecDefaultAction must name a disruptive action".into());
        }
        self.defaults[usize::from(probe.phase)] = acts
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("phase"))
            .collect();
        Ok(())
    }

    fn rule(
        &mut self,
        file: &Arc<str>,
        line: usize,
        dir: &Path,
        var_op: Option<(&str, &str)>,
        acts: Option<&str>,
    ) {
        let acts = match actions::split(acts.unwrap_or("")) {
            Ok(a) => a,
            Err(e) => return self.err(file, line, None, e.0),
        };
        let id = acts
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("id"))
            .and_then(|(_, v)| v.as_deref()?.trim().parse::<u32>().ok());
        let mut r = Rule {
            file: file.clone(),
            line,
            phase: 2,
            ..Rule::default()
        };
        let is_child = self.chain_open;
        let mut errs: Vec<String> = Vec::new();
        if !is_child {
            // defaults of the rule's phase come first, the rule's own actions override them
            let phase = acts
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("phase"))
                .and_then(|(_, v)| {
                    let mut p = Rule::default();
                    actions::apply(&mut p, "phase", v.as_deref())
                        .ok()
                        .map(|_| p.phase)
                })
                .unwrap_or(2);
            for (n, v) in self.defaults[usize::from(phase)].clone() {
                if let Err(e) = actions::apply(&mut r, &n, v.as_deref()) {
                    errs.push(e.0);
                }
            }
        }
        for (n, v) in &acts {
            if let Err(e) = actions::apply(&mut r, n, v.as_deref()) {
                errs.push(e.0);
            }
        }
        if let Some((vars, op)) = var_op {
            for t in split_targets(vars) {
                match compile_target(&t) {
                    Ok(t) if t.exclude => r.excludes.push(t),
                    Ok(t) => r.targets.push(t),
                    Err(e) => errs.push(e.0),
                }
            }
            match operators::compile(op, &CompileCtx { dir }) {
                Ok(o) => r.op = Some(o),
                Err(e) => errs.push(e.0),
            }
        }
        if !is_child && r.id == 0 {
            errs.push("rule has no id".into());
        }
        let id = if r.id != 0 { Some(r.id) } else { id };
        if !errs.is_empty() {
            for e in errs {
                self.err(file, line, id, e);
            }
            self.chain_open = r.is_chained;
            return;
        }
        self.chain_open = r.is_chained;
        if is_child {
            if let Some(Entry::Rule(parent)) = self
                .entries
                .iter_mut()
                .rev()
                .find(|e| matches!(e, Entry::Rule(_)))
            {
                let tail = parent.chain_tail_mut();
                r.phase = tail.phase;
                r.id = 0;
                tail.chain = Some(Box::new(r));
            }
        } else {
            if let Some(dup) = self
                .entries
                .iter()
                .find(|e| matches!(e, Entry::Rule(x) if x.id == r.id))
            {
                let _ = dup;
                self.err(
                    file,
                    line,
                    Some(r.id),
                    format!("duplicate rule id {}", r.id),
                );
                return;
            }
            self.entries.push(Entry::Rule(Box::new(r)));
        }
    }

    fn apply_deferred(&mut self) {
        let deferred = std::mem::take(&mut self.deferred);
        let in_ranges = |id: u32, r: &[(u32, u32)]| r.iter().any(|(a, b)| (*a..=*b).contains(&id));
        for (file, line, d) in deferred {
            match d {
                Deferred::RemoveById(r) => self
                    .entries
                    .retain(|e| !matches!(e, Entry::Rule(x) if in_ranges(x.id, &r))),
                Deferred::RemoveByTag(t) => self
                    .entries
                    .retain(|e| !matches!(e, Entry::Rule(x) if x.tags.contains(&t))),
                Deferred::RemoveByMsg(m) => self
                    .entries
                    .retain(|e| !matches!(e, Entry::Rule(x) if x.msg_raw == m)),
                Deferred::UpdateTarget(sel, targets, replaced) => {
                    let mut compiled = Vec::new();
                    for t in split_targets(&targets) {
                        match compile_target(&t) {
                            Ok(t) => compiled.push(t),
                            Err(e) => self.errors.push(LoadError {
                                file: file.to_string(),
                                line,
                                rule_id: None,
                                message: e.0,
                            }),
                        }
                    }
                    let replaced = match replaced.map(|r| compile_target(&r)) {
                        Some(Ok(t)) => Some(t),
                        Some(Err(e)) => {
                            self.errors.push(LoadError {
                                file: file.to_string(),
                                line,
                                rule_id: None,
                                message: e.0,
                            });
                            continue;
                        }
                        None => None,
                    };
                    for e in &mut self.entries {
                        let Entry::Rule(r) = e else { continue };
                        let hit = match &sel {
                            Sel::Id(ids) => in_ranges(r.id, ids),
                            Sel::Tag(t) => r.tags.iter().any(|g| g == t),
                            Sel::Msg(m) => r.msg_raw == *m,
                        };
                        if !hit {
                            continue;
                        }
                        if let Some(old) = &replaced {
                            r.targets.retain(|t| !t.same_as(old));
                        }
                        for t in &compiled {
                            if t.exclude {
                                r.excludes.push(t.clone());
                            } else {
                                r.targets.push(t.clone());
                            }
                        }
                    }
                }
                Deferred::UpdateAction(id, acts) => {
                    let parsed = match actions::split(&acts) {
                        Ok(p) => p,
                        Err(e) => {
                            self.errors.push(LoadError {
                                file: file.to_string(),
                                line,
                                rule_id: Some(id),
                                message: e.0,
                            });
                            continue;
                        }
                    };
                    for e in &mut self.entries {
                        let Entry::Rule(r) = e else { continue };
                        if r.id != id {
                            continue;
                        }
                        for (n, v) in &parsed {
                            // a new disruptive action replaces the old one, including `block`
                            if ["deny", "pass", "drop", "allow", "redirect", "block"]
                                .iter()
                                .any(|d| d.eq_ignore_ascii_case(n))
                            {
                                r.block = false;
                            }
                            if n.eq_ignore_ascii_case("tag") || n.eq_ignore_ascii_case("setvar") {
                                // appended, as ModSecurity does
                            }
                            if let Err(err) = actions::apply(r, n, v.as_deref()) {
                                self.errors.push(LoadError {
                                    file: file.to_string(),
                                    line,
                                    rule_id: Some(id),
                                    message: err.0,
                                });
                            }
                        }
                    }
                }
            }
        }
    }

    fn finish(mut self, opts: &EngineOptions) -> Result<WafEngine, Vec<LoadError>> {
        if self.chain_open {
            self.err(
                "",
                0,
                None,
                "the last rule is chained but nothing follows it",
            );
        }
        self.apply_deferred();
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        let mut config = self.config;
        if let Some(m) = opts.mode_override {
            config.mode = m;
        }
        if let Some(l) = opts.request_body_limit {
            config.req_body_limit = l;
        }
        let mut default_action: [Action; 6] = Default::default();
        let mut default_status = [None; 6];
        for p in 1..=5 {
            let mut probe = Rule::default();
            for (n, v) in &self.defaults[p] {
                let _ = actions::apply(&mut probe, n, v.as_deref());
            }
            default_action[p] = probe.action.unwrap_or_default();
            default_status[p] = probe.status;
        }
        let mut chains: std::collections::HashMap<Vec<usize>, u32> =
            std::collections::HashMap::new();
        fn intern(r: &mut Rule, chains: &mut std::collections::HashMap<Vec<usize>, u32>) {
            if !r.transforms.is_empty() {
                let key: Vec<usize> = r.transforms.iter().map(|(i, _)| *i).collect();
                let next = chains.len() as u32 + 1;
                r.tchain = *chains.entry(key).or_insert(next);
            }
            if let Some(c) = r.chain.as_deref_mut() {
                intern(c, chains);
            }
        }
        let mut tag_ids: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        for e in &mut self.entries {
            if let Entry::Rule(r) = e {
                intern(r, &mut chains);
                r.tag_ids = r
                    .tags
                    .iter()
                    .map(|t| {
                        let next = tag_ids.len() as u32;
                        *tag_ids.entry(t.clone()).or_insert(next)
                    })
                    .collect();
            }
        }
        let mut rules = Vec::new();
        let mut phases: [Vec<Item>; 6] = Default::default();
        let mut marker_names: [Vec<Option<String>>; 6] = Default::default();
        for e in self.entries {
            match e {
                Entry::Rule(r) => {
                    let p = usize::from(r.phase);
                    phases[p].push(Item::Rule(PlanRule {
                        index: rules.len(),
                        skip_to: None,
                        prefilter: None,
                        settled: None,
                    }));
                    marker_names[p].push(None);
                    rules.push(*r);
                }
                Entry::Marker(m) => {
                    for p in 1..=5 {
                        phases[p].push(Item::Marker);
                        marker_names[p].push(Some(m.clone()));
                    }
                }
            }
        }
        for p in 1..=5 {
            for i in 0..phases[p].len() {
                if let Item::Rule(pr) = &mut phases[p][i]
                    && let Some(target) = &rules[pr.index].skip_after
                {
                    let to = (i + 1..marker_names[p].len())
                        .find(|&j| marker_names[p][j].as_deref() == Some(target.as_str()))
                        .unwrap_or(marker_names[p].len());
                    pr.skip_to = Some(to);
                }
            }
        }
        let pinned = match opts.paranoia_level {
            Some(pl) => ["blocking_paranoia_level", "detection_paranoia_level"]
                .map(|k| (Arc::from(k), Arc::from(pl.to_string().as_bytes())))
                .to_vec(),
            None => Vec::new(),
        };
        let mut engine = WafEngine {
            rules,
            phases,
            config,
            default_action,
            default_status,
            pinned,
            redact: opts.redact.clone(),
            tag_ids,
            prefilters: Vec::new(),
            preamble: None,
            settled: Vec::new(),
        };
        if !opts.without_preamble {
            engine.preamble = engine.run_preamble();
            engine.settle();
        }
        // (after the settled rules: a rule a settled jump always passes over needs no place
        // in a group, see `WafEngine::reachable`)
        if !opts.without_prefilter {
            let reachable = engine.reachable();
            engine.prefilters = crate::prefilter::build(&mut engine.rules, &reachable);
            for item in engine.phases.iter_mut().flatten() {
                if let Item::Rule(pr) = item {
                    pr.prefilter = engine.rules[pr.index].prefilter;
                }
            }
        }
        Ok(engine)
    }
}

impl WafEngine {
    /// Loads rule files in order (each path may be a glob such as `rules/*.conf`).
    pub fn from_files(
        paths: &[PathBuf],
        opts: &EngineOptions,
    ) -> Result<WafEngine, Vec<LoadError>> {
        let mut l = Loader::new();
        if let Some((origin, text)) = &opts.prelude {
            l.load_text(text, origin, Path::new("."));
        }
        for p in paths {
            let files = seclang::glob(p);
            if files.is_empty() {
                l.err(&p.to_string_lossy(), 0, None, "no file matches");
            }
            for f in files {
                l.load_file(&f);
            }
        }
        l.finish(opts)
    }

    /// Loads rules from a string; `origin` names it in errors, `Include`s and data files are
    /// resolved against the current directory.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(
        text: &str,
        origin: &str,
        opts: &EngineOptions,
    ) -> Result<WafEngine, Vec<LoadError>> {
        let mut l = Loader::new();
        l.load_text(text, origin, Path::new("."));
        l.finish(opts)
    }

    /// The effective `SecRuleEngine` mode.
    pub fn mode(&self) -> RuleEngineMode {
        self.config.mode
    }

    /// Number of rules (chains count once).
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// `SecComponentSignature` values.
    pub fn component_signatures(&self) -> &[String] {
        &self.config.component_signatures
    }
}

/// Checks rule files without keeping the result (for `rampart waf check FILES...`).
pub fn check(paths: &[PathBuf]) -> Vec<LoadError> {
    match WafEngine::from_files(paths, &EngineOptions::default()) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}
