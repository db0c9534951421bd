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
use crate::WafEngine;
use crate::actions::ctl::Ctl;
use crate::rule::{Action, Rule};
use crate::state::{Kv, TxData, TxMap};
use crate::variables::Var;

/// What rules leave in a transaction's `TX` and `MATCHED_VAR*`: the part of its state the
/// preamble hands on, and what it keeps to undo a rule that must not stay in it.
#[derive(Debug, Clone, Default)]
pub(crate) struct TxSnapshot {
    tx: TxMap,
    tx_digits: u16,
    matched_var: Vec<u8>,
    matched_var_name: Vec<u8>,
    matched_vars: Vec<Kv>,
}

impl TxSnapshot {
    /// A copy of `st`'s `TX` and `MATCHED_VAR*`.
    pub(crate) fn of(st: &TxData) -> Self {
        TxSnapshot {
            tx: st.tx.clone(),
            tx_digits: st.tx_digits,
            matched_var: st.matched_var.clone(),
            matched_var_name: st.matched_var_name.clone(),
            matched_vars: st.matched_vars[..st.matched_vars_len].to_vec(),
        }
    }

    /// Moves `st`'s `TX` and `MATCHED_VAR*` out (the rest of `st` is not used again).
    pub(crate) fn take(st: &mut TxData) -> Self {
        st.matched_vars.truncate(st.matched_vars_len);
        TxSnapshot {
            tx: std::mem::take(&mut st.tx),
            tx_digits: st.tx_digits,
            matched_var: std::mem::take(&mut st.matched_var),
            matched_var_name: std::mem::take(&mut st.matched_var_name),
            matched_vars: std::mem::take(&mut st.matched_vars),
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
        st.matched_var.clone_from(&self.matched_var);
        st.matched_var_name.clone_from(&self.matched_var_name);
        st.matched_vars.clone_from(&self.matched_vars);
        st.matched_vars_len = self.matched_vars.len();
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
}
