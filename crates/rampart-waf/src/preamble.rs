//! The preamble: what the first rules of phase 1 leave behind when they read and write
//! nothing but `TX`.
//!
//! A rule set starts by setting its defaults: CRS's REQUEST-901-INITIALIZATION checks and sets
//! some 60 `TX` variables (thresholds, paranoia levels, allowed methods and content types)
//! before its first rule that reads the request. Those rules see the same `TX` on every
//! request (the engine's pinned values and nothing else), so they end the same way every time.
//! The engine runs them once when it is built and keeps the state they leave; a transaction
//! starts from that state.
//!
//! A rule belongs to the preamble when it and every link of its chain read only `TX` (targets,
//! exclusions, the operator's macro, `setvar` keys and values), and when it either does not
//! match or its match is *quiet*: `pass`, `nolog` (recorded nowhere), no severity, no `ctl`.
//! (CRS 901001 denies when the setup file was not loaded: with the setup loaded it never
//! matches, and the preamble goes on past it.) A rule whose first link reads only `TX` and
//! matches nothing stays in the preamble too, whatever its actions would read.
//!
//! Rules that read the request but neither read nor write `TX` nor change which rules run
//! may sit among them (the gateway's body-processor rules, which come first): the preamble
//! steps over such *independent* rules and a transaction runs them at their place, so the
//! preamble ends only at the first rule that is neither. An independent rule: `pass` whatever
//! `block` means; no `TX` in targets, exclusions or macros (operator, `msg`, `logdata`), no
//! `MATCHED_VAR*` target or reference in its operator (those hold what ran before it); no
//! `setvar` on `TX`, no `capture`, no `skip`/`skipAfter`; `ctl` only of the body settings.
//!
//! A transaction with exclusions of its own ([`crate::Transaction::exclude`]) that name a rule
//! the preamble ran (by id, tag or message; for a target removal, a `TX` target) runs the
//! whole phase; other exclusions leave it be (the rules stepped over run at their place and
//! see them as usual).
//!
//! Past the preamble, a rule may still read nothing but settings: CRS starts each file, in
//! each phase, with paranoia-level checks (`TX:DETECTION_PARANOIA_LEVEL "@lt 2"`, then
//! `skipAfter` the file's end), some 200 rules of which a request meets about a hundred. When
//! every `TX` variable such a rule reads is one no rule a transaction runs can write (no
//! `setvar` names it, literally or by a key whose text before its first macro starts it; not
//! `TX:0`-`TX:9`, which `capture` writes; pinned values are never written), it sees the
//! preamble's value wherever it runs, so its outcome is *settled*: the engine evaluates it
//! once when built and a transaction that starts from the preamble takes the outcome (the
//! jump and the `MATCHED_VAR*` of a match) instead of evaluating it. This holds for rules
//! whose links each read `TX:name` targets alone, with no exclusion, an operator without
//! macro, no `setvar` and no `capture`, and whose match is quiet (above). A removal of a rule
//! at run time passes it by as usual; a `TX` target removed at run time (from any rule)
//! makes the transaction evaluate them all.
use crate::WafEngine;
use crate::actions::ctl::Ctl;
use crate::rule::{Action, Rule};
use crate::state::{Kv, TxData, TxMap};
use crate::variables::{Selector, Var};

/// What rules leave in a transaction's `TX` and `MATCHED_VAR*`: the part of its state the
/// preamble hands on, and what it keeps to undo a rule that must not stay in it.
#[derive(Debug, Clone, Default)]
pub(crate) struct TxSnapshot {
    tx: TxMap,
    tx_digits: u16,
    matched: Matched,
}

/// `MATCHED_VAR`, `MATCHED_VAR_NAME` and `MATCHED_VARS` as a match leaves them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Matched {
    var: Vec<u8>,
    var_name: Vec<u8>,
    vars: Vec<Kv>,
    /// For a settled rule's outcome: the same number as every equal outcome's, from 1 (CRS's
    /// paranoia-level checks all leave `TX:detection_paranoia_level`); 0 for other states.
    pub id: u32,
}

impl Matched {
    /// A copy of `st`'s `MATCHED_VAR*`.
    pub(crate) fn of(st: &TxData) -> Self {
        Matched {
            var: st.matched_var.clone(),
            var_name: st.matched_var_name.clone(),
            vars: st.matched_vars[..st.matched_vars_len].to_vec(),
            id: 0,
        }
    }

    /// Whether both hold the same variables.
    pub(crate) fn same_vars(&self, other: &Matched) -> bool {
        (&self.var, &self.var_name, &self.vars) == (&other.var, &other.var_name, &other.vars)
    }

    /// Puts them into `st` (unless they are there already: an outcome equal to the one that
    /// set them, with nothing set since).
    pub(crate) fn apply(&self, st: &mut TxData) {
        if self.id != 0 && st.matched_from == self.id {
            return;
        }
        st.matched_from = self.id;
        st.matched_var.clone_from(&self.var);
        st.matched_var_name.clone_from(&self.var_name);
        let n = self.vars.len();
        if st.matched_vars.len() < n {
            st.matched_vars.resize_with(n, Default::default);
        }
        for ((name, value), (n2, v2)) in st.matched_vars.iter_mut().zip(&self.vars) {
            name.clone_from(n2);
            value.clone_from(v2);
        }
        st.matched_vars_len = n;
    }
}

impl TxSnapshot {
    /// A copy of `st`'s `TX` and `MATCHED_VAR*`.
    pub(crate) fn of(st: &TxData) -> Self {
        TxSnapshot {
            tx: st.tx.clone(),
            tx_digits: st.tx_digits,
            matched: Matched::of(st),
        }
    }

    /// Moves `st`'s `TX` and `MATCHED_VAR*` out (the rest of `st` is not used again).
    pub(crate) fn take(st: &mut TxData) -> Self {
        st.matched_vars.truncate(st.matched_vars_len);
        TxSnapshot {
            tx: std::mem::take(&mut st.tx),
            tx_digits: st.tx_digits,
            matched: Matched {
                var: std::mem::take(&mut st.matched_var),
                var_name: std::mem::take(&mut st.matched_var_name),
                vars: std::mem::take(&mut st.matched_vars),
                id: 0,
            },
        }
    }

    /// Puts the state into `st`.
    pub(crate) fn apply(&self, st: &mut TxData) {
        st.tx.clone_from(&self.tx);
        st.tx_digits = self.tx_digits;
        self.apply_matched(st);
    }

    /// Sets `MATCHED_VAR`, `MATCHED_VAR_NAME` and `MATCHED_VARS` alone.
    pub(crate) fn apply_matched(&self, st: &mut TxData) {
        self.matched.apply(st);
    }
}

/// The state the preamble's pure rules leave, and what a transaction still runs of it.
#[derive(Debug, Clone)]
pub(crate) struct Preamble {
    /// The phase-1 plan index of the first rule past the preamble.
    pub next: usize,
    /// The independent rules the preamble stepped over (plan indexes, in order).
    pub deferred: Vec<usize>,
    /// The rules it ran (indexes into the engine's rules): what an exclusion must leave
    /// alone for a transaction to start from the preamble.
    pub ran: Vec<usize>,
    /// The plan index of the last pure rule that matched: an independent rule before it that
    /// matches leaves `MATCHED_VAR*` to that rule's, as they would be in order.
    pub last_match: Option<usize>,
    /// `TX` and `MATCHED_VAR*` as the pure rules leave them.
    pub state: TxSnapshot,
}

impl Preamble {
    /// Whether exclusion `c` would change what a rule the preamble ran does.
    pub(crate) fn excluded_by(&self, c: &Ctl, engine: &WafEngine) -> bool {
        let ran = || self.ran.iter().map(|&r| &engine.rules[r]);
        let tagged = |tag: &str| {
            engine
                .tag_ids
                .get(tag)
                .is_some_and(|id| ran().any(|r| r.tag_ids.contains(id)))
        };
        let by_id =
            |ids: &[(u32, u32)]| ran().any(|r| ids.iter().any(|(a, b)| (*a..=*b).contains(&r.id)));
        match c {
            Ctl::RuleRemoveById(ids) => by_id(ids),
            Ctl::RuleRemoveByTag(tag) => tagged(tag),
            // the rules it ran read TX alone (their first link, for those that matched
            // nothing): a target of another collection is not theirs to lose
            Ctl::RuleRemoveTargetById(ids, t) => t.var == Var::Tx && by_id(ids),
            Ctl::RuleRemoveTargetByTag(tag, t) => t.var == Var::Tx && tagged(tag),
            Ctl::RuleRemoveByMsg(m) => ran().any(|r| r.msg_raw == *m),
            // (exclusions are removals; anything else is taken to touch everything)
            _ => true,
        }
    }

    /// Where phase 1 goes on from plan index `i` (inside the preamble): the next rule it
    /// stepped over, or the first rule past it.
    pub(crate) fn resume_at(&self, i: usize) -> usize {
        let d = self.deferred.partition_point(|&d| d < i);
        self.deferred.get(d).copied().unwrap_or(self.next)
    }
}

/// The `TX` variables the rules a transaction runs may write (see the module docs).
pub(crate) struct TxWriters {
    /// `setvar` keys without macro, lowercased.
    keys: std::collections::HashSet<String>,
    /// The text before the first macro of the other `setvar` keys, lowercased.
    prefixes: Vec<String>,
    /// Keys no rule can change (the engine options pin them).
    pinned: Vec<std::sync::Arc<str>>,
}

impl TxWriters {
    /// The writers among the rules of `engine` other than those the preamble ran (`ran`).
    pub(crate) fn of(engine: &WafEngine, ran: &[usize]) -> Self {
        let mut w = TxWriters {
            keys: Default::default(),
            prefixes: Vec::new(),
            pinned: engine.pinned.iter().map(|(k, _)| k.clone()).collect(),
        };
        let ran: std::collections::HashSet<usize> = ran.iter().copied().collect();
        let runs = (engine.rules.iter().enumerate()).filter(|(i, _)| !ran.contains(i));
        for (_, rule) in runs {
            for sv in links(rule).flat_map(|r| &r.setvars).filter(|sv| sv.tx) {
                match &sv.literal_key {
                    Some(k) => {
                        w.keys.insert(k.clone());
                    }
                    None => w.prefixes.push(
                        String::from_utf8_lossy(sv.key.literal_prefix()).to_ascii_lowercase(),
                    ),
                }
            }
        }
        w
    }

    /// Whether a rule a transaction runs may change `TX:key` (`key` lowercased).
    pub(crate) fn may_write(&self, key: &str) -> bool {
        let capture = matches!(key.as_bytes(), [b'0'..=b'9']);
        !self.pinned.iter().any(|p| **p == *key)
            && (capture
                || self.keys.contains(key)
                || self.prefixes.iter().any(|p| key.starts_with(p.as_str())))
    }
}

/// Whether the outcome of `rule` (a chain head past the preamble) is settled by the
/// preamble's state: see the module docs. `default_action` is what `block` means in its phase.
pub(crate) fn is_settled(rule: &Rule, default_action: &Action, writers: &TxWriters) -> bool {
    is_quiet(rule, default_action)
        && links(rule).all(|r| {
            r.op.as_ref().is_some_and(|op| op.op.arg_macro().is_none())
                && !r.capture
                && r.setvars.is_empty()
                && r.excludes.is_empty()
                && r.prefilter.is_none()
                && !r.targets.is_empty()
                && r.targets.iter().all(|t| {
                    t.var == Var::Tx && matches!(&t.sel, Selector::Key(k) if !writers.may_write(k))
                })
        })
}

/// What a match of `rule` does, `block` resolved.
fn action<'a>(rule: &'a Rule, default_action: &'a Action) -> &'a Action {
    if rule.block {
        default_action
    } else {
        rule.action.as_ref().unwrap_or(default_action)
    }
}

fn links(rule: &Rule) -> impl Iterator<Item = &Rule> {
    std::iter::successors(Some(rule), |r| r.chain.as_deref())
}

/// Whether `rule` (a chain head) reads nothing but `TX`: targets, exclusions, the operator's
/// macro, `setvar` keys and values, in every link. Such a rule matches or not the same way on
/// every transaction that starts from the same `TX`, and what its evaluation changes (`setvar`,
/// `capture`, `MATCHED_VAR*`) is the same too.
pub(crate) fn reads_only_tx(rule: &Rule) -> bool {
    let tx_only = |v: Var| v == Var::Tx;
    links(rule).all(|r| {
        r.targets
            .iter()
            .chain(&r.excludes)
            .all(|t| t.var == Var::Tx)
            && r.op
                .as_ref()
                .is_none_or(|op| op.op.arg_macro().is_none_or(|m| m.reads_only(tx_only)))
            && r.prefilter.is_none()
            && r.setvars.iter().all(|s| s.reads_only(tx_only))
    })
}

/// Whether the first link of `rule` decides its match from `TX` alone (targets, exclusions,
/// the operator's macro), whatever its actions read: when that link matches nothing, the rule
/// does nothing (CRS 901320 copies the `User-Agent` only when a setting asks for it).
pub(crate) fn condition_reads_only_tx(rule: &Rule) -> bool {
    let tx_only = |v: Var| v == Var::Tx;
    rule.op
        .as_ref()
        .is_some_and(|op| op.op.arg_macro().is_none_or(|m| m.reads_only(tx_only)))
        && rule.prefilter.is_none()
        && rule
            .targets
            .iter()
            .chain(&rule.excludes)
            .all(|t| t.var == Var::Tx)
}

/// Whether a match of `rule` (a chain head) does nothing beyond what its evaluation did:
/// `pass`, `nolog`, no severity, no `ctl`. `default_action` is what `block` means in phase 1.
pub(crate) fn is_quiet(rule: &Rule, default_action: &Action) -> bool {
    *action(rule, default_action) == Action::Pass
        && rule.log == Some(false)
        && rule.severity.is_none()
        && links(rule).all(|r| r.ctls.is_empty())
}

/// Whether the preamble may step over `rule` (a chain head) and leave it to transactions:
/// see the module docs.
pub(crate) fn is_independent(rule: &Rule, default_action: &Action) -> bool {
    let matched = |v: Var| {
        matches!(
            v,
            Var::MatchedVar | Var::MatchedVarName | Var::MatchedVars | Var::MatchedVarsNames
        )
    };
    let no_tx = |v: Var| v != Var::Tx;
    let no_tx_or_matched = |v: Var| v != Var::Tx && !matched(v);
    *action(rule, default_action) == Action::Pass
        && rule.skip == 0
        && rule.skip_after.is_none()
        && links(rule).all(|r| {
            r.targets
                .iter()
                .chain(&r.excludes)
                .all(|t| no_tx_or_matched(t.var))
                && r.op.as_ref().is_none_or(|op| {
                    op.op
                        .arg_macro()
                        .is_none_or(|m| m.reads_only(no_tx_or_matched))
                })
                && [&r.msg, &r.logdata]
                    .into_iter()
                    .flatten()
                    .all(|m| m.reads_only(no_tx))
                && !r.capture
                && r.setvars.iter().all(|s| !s.tx)
                && r.ctls.iter().all(|c| {
                    matches!(
                        c,
                        Ctl::RequestBodyProcessor(_)
                            | Ctl::RequestBodyAccess(_)
                            | Ctl::ResponseBodyAccess(_)
                            | Ctl::ForceRequestBodyVariable(_)
                            | Ctl::Ignored
                    )
                })
        })
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn engines(rules: &str) -> (WafEngine, WafEngine) {
        let load = |without_preamble| {
            let opts = EngineOptions {
                without_preamble,
                ..Default::default()
            };
            WafEngine::from_str(rules, "test.conf", &opts).unwrap_or_else(|e| panic!("{e:?}"))
        };
        (load(false), load(true))
    }

    /// Matched rule ids with their messages, the status of an intervention, and the TX
    /// variables asked for, after phase 1.
    type Outcome = (Vec<(u32, String)>, Option<u16>, Vec<Option<Vec<u8>>>);

    fn run(
        e: &WafEngine,
        exclusions: &[&str],
        headers: &[(&[u8], &[u8])],
        vars: &[&str],
    ) -> Outcome {
        let mut tx = e.transaction(ConnInfo::default());
        tx.exclude(&Exclusions::parse(exclusions).unwrap());
        // the preamble serves unless an exclusion names a rule it ran (2-5 here)
        let touched = exclusions.iter().any(|x| {
            let (_, named) = x.split_once('=').unwrap_or_default();
            let (named, target) = named.split_once(';').unwrap_or((named, "TX"));
            matches!(named, "2" | "3" | "4" | "5" | "setup") && target.starts_with("TX")
        });
        assert_eq!(
            tx.starts_past_preamble(),
            e.preamble.is_some() && !touched,
            "{exclusions:?}"
        );
        let iv = tx.process_request_headers("GET", "/x", "HTTP/1.1", headers);
        let matched = tx.matched_rules().iter().map(|m| (m.id, m.msg.clone()));
        let vars = vars.iter().map(|v| tx.tx_var(v).map(<[u8]>::to_vec));
        (matched.collect(), iv.map(|iv| iv.status), vars.collect())
    }

    const RULES: &str = r#"SecRuleEngine On
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecAction "id:2,phase:1,pass,nolog,tag:'setup',setvar:tx.threshold=5,setvar:tx.score=0"
SecRule &TX:threshold "@eq 0" "id:3,phase:1,deny,status:500,log,msg:'no setup'"
SecRule TX:threshold "@eq 5" "id:4,phase:1,pass,nolog,setvar:tx.score=+1,setvar:tx.seen=%{tx.threshold}"
SecRule TX:copy_ua "@eq 1" "id:5,phase:1,pass,nolog,setvar:tx.ua=%{REQUEST_HEADERS.User-Agent}"
SecRule REQUEST_METHOD "@streq GET" "id:6,phase:1,pass,log,msg:'get'"
SecRule TX:score "@eq 1" "id:7,phase:1,pass,log,msg:'score %{tx.score}',setvar:tx.score=+10"
SecRule REQBODY_PROCESSOR "@streq JSON" "id:8,phase:1,pass,log,msg:'json'"
SecRule REQUEST_URI "@contains attack" "id:9,phase:1,deny,status:403,log"
"#;

    #[test]
    fn defaults_are_set_once_and_the_rules_among_them_still_run() {
        let (e, plain) = engines(RULES);
        let pre = e.preamble.as_ref().expect("a preamble");
        // 2-5 run at load (3 and 5 match nothing); 1 and 6 read the request and run in place;
        // 7 logs its match, so the preamble ends there (and leaves its setvar to transactions)
        assert_eq!((pre.deferred.as_slice(), pre.next), (&[0, 5][..], 6));
        assert!(plain.preamble.is_none());
        // an engine that is off sets nothing
        let (off, _) = engines(&RULES.replacen("SecRuleEngine On", "SecRuleEngine Off", 1));
        assert!(off.preamble.is_none());
        assert_eq!(run(&off, &[], &[], &["threshold"]).2, [None]);
        let headers: &[(&[u8], &[u8])] = &[
            (b"Content-Type", b"application/json"),
            (b"User-Agent", b"curl"),
        ];
        let vars = ["threshold", "score", "seen", "ua"];
        let got = run(&e, &[], headers, &vars);
        assert_eq!(got, run(&plain, &[], headers, &vars));
        let msgs = |v: &[(u32, String)]| v.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>();
        assert_eq!(msgs(&got.0), ["get", "score 11", "json"]);
        assert_eq!(got.1, None);
        assert_eq!(
            got.2[..3],
            [
                Some(b"5".to_vec()),
                Some(b"11".to_vec()),
                Some(b"5".to_vec())
            ]
        );
        assert_eq!(got.2[3], None);
        // the independent rules see each request: no JSON here, no rule 8
        let got = run(&e, &[], &[(b"User-Agent", b"curl")], &vars);
        assert_eq!(msgs(&got.0), ["get", "score 11"]);
    }

    #[test]
    fn exclusions_of_a_transaction_reach_the_preamble_rules() {
        let (e, plain) = engines(RULES);
        // without rule 2 there is no threshold: rule 3 denies
        let got = run(&e, &["ruleRemoveById=2"], &[], &["threshold", "score"]);
        assert_eq!(
            got,
            run(&plain, &["ruleRemoveById=2"], &[], &["threshold", "score"])
        );
        assert_eq!((got.0[0].0, got.1, &got.2[0]), (3, Some(500), &None));
        // also by tag and by message
        for x in [
            "ruleRemoveByTag=setup",
            "ruleRemoveTargetById=3;TX:threshold",
        ] {
            assert_eq!(run(&e, &[x], &[], &[]).0, run(&plain, &[x], &[], &[]).0);
        }
        // and a transaction without exclusions after it starts from the preamble again
        let got = run(&e, &[], &[], &["threshold"]);
        assert_eq!((got.1, &got.2[0]), (None, &Some(b"5".to_vec())));
        // exclusions of the rules it stepped over or of later ones leave it be, and apply
        let headers: &[(&[u8], &[u8])] = &[(b"Content-Type", b"application/json")];
        for x in [
            "ruleRemoveById=6",
            "ruleRemoveById=1",
            "ruleRemoveById=7-9",
            "ruleRemoveTargetByTag=setup;ARGS:q",
        ] {
            let got = run(&e, &[x], headers, &["score"]);
            assert_eq!(got, run(&plain, &[x], headers, &["score"]), "{x}");
        }
        let ids = |x| {
            run(&e, &[x], headers, &[])
                .0
                .iter()
                .map(|m| m.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("ruleRemoveById=6"), [7, 8]);
        assert_eq!(ids("ruleRemoveById=1"), [6, 7]);
    }

    #[test]
    fn a_rule_stepped_over_leaves_the_matched_variables_in_order() {
        // 1 matches at run time, after the preamble's 3 has matched at load: rule 4 must
        // still see 3's match, as it would in order
        let (e, plain) = engines(
            r#"SecRuleEngine On
SecRule REQUEST_METHOD "@streq GET" "id:1,phase:1,pass,nolog"
SecAction "id:2,phase:1,pass,nolog,setvar:tx.a=1"
SecRule TX:a "@eq 1" "id:3,phase:1,pass,nolog"
SecRule MATCHED_VAR_NAME "@streq TX:a" "id:4,phase:1,pass,log,msg:'%{MATCHED_VAR}'"
"#,
        );
        assert_eq!(e.preamble.as_ref().map(|p| p.next), Some(3));
        let got = run(&e, &[], &[], &[]);
        assert_eq!(got, run(&plain, &[], &[], &[]));
        assert_eq!(got.0, [(4, "TX:a".to_string())]);
    }

    const SETTLED: &str = r#"SecRuleEngine On
SecAction "id:1,phase:1,pass,nolog,setvar:tx.level=1,setvar:tx.score=0"
SecRule REQUEST_METHOD "@rx ." "id:2,phase:1,pass,nolog,setvar:tx.seen_%{REQUEST_METHOD}=1"
SecRule REQUEST_URI "@contains y" "id:3,phase:1,pass,nolog,setvar:tx.score=+1"
SecRule TX:level "@lt 2" "id:10,phase:1,pass,nolog,skipAfter:END-1"
SecRule REQUEST_URI "@rx x" "id:11,phase:1,deny,status:403,log"
SecMarker END-1
SecRule MATCHED_VAR_NAME "@streq TX:level" "id:12,phase:1,pass,log,msg:'%{MATCHED_VAR}'"
SecRule TX:level "@gt 5" "id:13,phase:2,pass,nolog,skipAfter:END-2"
SecRule REQUEST_URI "@rx x" "id:14,phase:2,pass,log,msg:'p2'"
SecMarker END-2
SecRule TX:score "@eq 0" "id:15,phase:2,pass,nolog,skipAfter:END-3"
SecRule REQUEST_URI "@rx ." "id:20,phase:2,pass,log,msg:'scored'"
SecMarker END-3
SecRule TX:seen_get "@eq 1" "id:17,phase:2,pass,nolog,skipAfter:END-4"
SecRule REQUEST_URI "@rx ." "id:19,phase:2,pass,log,msg:'not skipped'"
SecMarker END-4
SecRule TX:level "@eq 1" "id:18,phase:2,pass,log,msg:'logs'"
"#;

    /// Matched rule ids with their messages and the status of an intervention, after phase 2.
    fn run_through_phase_2(e: &WafEngine, exclusions: &[&str], uri: &str) -> Outcome {
        let mut tx = e.transaction(ConnInfo::default());
        tx.exclude(&Exclusions::parse(exclusions).unwrap());
        let iv = tx
            .process_request_headers("GET", uri, "HTTP/1.1", &[])
            .or_else(|| tx.process_request_body());
        let matched = tx.matched_rules().iter().map(|m| (m.id, m.msg.clone()));
        (matched.collect(), iv.map(|iv| iv.status), Vec::new())
    }

    fn settled_ids(e: &WafEngine) -> Vec<u32> {
        let plans = e.phases.iter().flatten();
        let rules = plans.filter_map(|item| match item {
            crate::engine::Item::Rule(pr) if pr.settled.is_some() => Some(e.rules[pr.index].id),
            _ => None,
        });
        rules.collect()
    }

    #[test]
    fn rules_that_read_only_unwritten_settings_are_settled_once() {
        let (e, plain) = engines(SETTLED);
        assert_eq!(e.preamble.as_ref().map(|p| p.next), Some(1));
        // 15 reads a score rule 3 writes, 17 a key that 2's setvar may name, 18 logs its
        // match: those stay evaluated
        assert_eq!(settled_ids(&e), [10, 13]);
        assert!(settled_ids(&plain).is_empty());
        // 11 lies where the settled match of 10 always jumps over: no prefilter group holds
        // it (13 settles as no match: 14 past it keeps its place), and it still runs where 10
        // does not jump (below)
        let grouped = |e: &WafEngine| {
            let rules = e.rules.iter().filter(|r| r.prefilter.is_some());
            rules.map(|r| r.id).collect::<Vec<_>>()
        };
        assert_eq!(grouped(&e), [2, 14, 20, 19]);
        assert_eq!(grouped(&plain), [2, 11, 14, 20, 19]);
        let ids = |o: &Outcome| o.0.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        for (uri, want) in [("/x", [12, 14, 18]), ("/y", [12, 20, 18])] {
            let got = run_through_phase_2(&e, &[], uri);
            assert_eq!(got, run_through_phase_2(&plain, &[], uri), "{uri}");
            assert_eq!((ids(&got), got.1), (want.to_vec(), None), "{uri}");
            // 12 matched on the MATCHED_VAR_NAME that the settled match of 10 left
            assert_eq!(got.0[0].1, "TX:level");
        }
        // removed at run time, or its target removed: 10 no longer skips 11, which denies
        for x in ["ruleRemoveById=10", "ruleRemoveTargetById=10;TX:level"] {
            let got = run_through_phase_2(&e, &[x], "/x");
            assert_eq!(got, run_through_phase_2(&plain, &[x], "/x"), "{x}");
            assert_eq!((ids(&got), got.1), (vec![11], Some(403)), "{x}");
        }
    }

    /// Settled outcomes that leave the same `MATCHED_VAR*` share one id: the second is not
    /// copied in again unless a match in between changed them.
    #[test]
    fn equal_settled_outcomes_are_applied_again_after_another_match() {
        let rules = r#"SecRuleEngine On
SecAction "id:1,phase:1,pass,nolog,setvar:tx.level=1"
SecRule REQUEST_URI "@rx ." "id:2,phase:1,pass,nolog,setvar:tx.uri_seen=1"
SecRule TX:level "@lt 2" "id:3,phase:1,pass,nolog"
SecRule REQUEST_URI "@rx x" "id:4,phase:1,pass,nolog"
SecRule TX:level "@lt 3" "id:5,phase:1,pass,nolog"
SecRule MATCHED_VAR_NAME "@streq TX:level" "id:6,phase:1,pass,log,msg:'level'"
"#;
        let (e, plain) = engines(rules);
        assert_eq!(settled_ids(&e), [3, 5]);
        let ids: Vec<u32> = e.settled.iter().flatten().map(|m| m.id).collect();
        assert_eq!(ids, [1, 1]);
        for uri in ["/x", "/y"] {
            let got = run_through_phase_2(&e, &[], uri);
            assert_eq!(got, run_through_phase_2(&plain, &[], uri), "{uri}");
            // on /x, 4's match comes between 3 and 5: 5's outcome is put back
            assert_eq!(got.0, [(6, "level".to_string())], "{uri}");
        }
    }

    #[test]
    fn a_pinned_setting_is_settled_even_where_a_rule_would_write_it() {
        let rules = r#"SecRuleEngine On
SecAction "id:1,phase:1,pass,nolog,setvar:tx.detection_paranoia_level=1"
SecRule REQUEST_URI "@contains high" "id:2,phase:1,pass,nolog,setvar:tx.detection_paranoia_level=4"
SecRule TX:detection_paranoia_level "@lt 2" "id:3,phase:1,pass,nolog,skipAfter:END"
SecRule REQUEST_URI "@rx ." "id:4,phase:1,pass,log,msg:'paranoid'"
SecMarker END
"#;
        let load = |paranoia_level, without_preamble| {
            let opts = EngineOptions {
                paranoia_level,
                without_preamble,
                ..Default::default()
            };
            WafEngine::from_str(rules, "test.conf", &opts).unwrap_or_else(|e| panic!("{e:?}"))
        };
        // pinned at 1, rule 2 cannot raise it; unpinned, it can
        let (pinned, plain) = (load(Some(1), false), load(Some(1), true));
        assert_eq!(settled_ids(&pinned), [3]);
        assert!(settled_ids(&load(None, false)).is_empty());
        for uri in ["/high", "/low"] {
            let got = run_through_phase_2(&pinned, &[], uri);
            assert_eq!(got, run_through_phase_2(&plain, &[], uri), "{uri}");
            assert!(got.0.is_empty(), "{uri}: {:?}", got.0);
        }
        let unpinned = load(None, false);
        assert_eq!(run_through_phase_2(&unpinned, &[], "/high").0.len(), 1);
    }
}
