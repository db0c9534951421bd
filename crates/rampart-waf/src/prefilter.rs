//! Prefilter: the `@rx` rules of one phase that read the same values are answered for all
//! their values at once.
//!
//! A rule qualifies when its operator is a non-negated `@rx`, it is not `multiMatch`, and every
//! target reads request or response data (values that do not change during a phase, see
//! [`variables::is_stable`]). Such rules are grouped by phase and the values they read (up to
//! [`MAX_GROUP`] rules a group, whatever their transformation chains); each group compiles its
//! patterns into one multi-pattern regex and reads its targets without exclusions. On the first
//! rule of a group a transaction evaluates, every value of that union goes through each of the
//! members' chains; each distinct output is scanned once (benign values mostly come out of
//! every chain unchanged, so one scan serves them all), and a pattern found in an output counts
//! only if that output is what its own rule's chain makes of the value. A rule whose pattern
//! was found in none cannot match its own values (a subset of the union, transformed by the
//! same chain): it is skipped without reading its targets. A rule whose pattern was found is
//! evaluated as usual, so what a rule reports never depends on the prefilter.
//!
//! One set scan per value replaces one regex scan per rule and value; on CRS at paranoia level 1
//! that is a few dozen scans instead of thousands for an ordinary request.

use std::collections::HashMap;

use regex_automata::meta;
use regex_automata::util::syntax;
use regex_automata::{MatchKind, nfa::thompson::WhichCaptures};

use crate::per_thread::PerThread;
use crate::rule::Rule;
use crate::transforms::Transform;
use crate::variables::{self, Target};

/// One group: rules of one phase that read the same values, whatever their transformation
/// chains.
#[derive(Debug)]
pub(crate) struct Prefilter {
    /// The members' distinct transformation chains: cache id ([`Rule::tchain`]) and functions.
    pub chains: Vec<(u32, Vec<(usize, Transform)>)>,
    /// For pattern `i`, the index in `chains` of its rule's chain.
    pub chain_of: Vec<u8>,
    /// The group's targets (each once, without exclusions).
    pub targets: Vec<Target>,
    /// Pattern `i` is the pattern of the rule whose `prefilter` is `(group, i)`.
    pub set: PerThread<meta::Regex>,
}

/// Groups with fewer rules than this are left to the rules themselves.
const MIN_GROUP: usize = 2;

/// Larger groups are split: past a few dozen patterns a set's lazy DFA grows faster than
/// the scans it saves.
pub(crate) const MAX_GROUP: usize = 64;

/// Distinct chains per group (a chain is one bit of a mask while scanning).
const MAX_CHAINS: usize = 64;

/// Builds the groups and records each member's place in `rules[..].prefilter`.
pub(crate) fn build(rules: &mut [Rule]) -> Vec<Prefilter> {
    let mut groups: HashMap<(u8, String), Vec<usize>> = HashMap::new();
    let mut order = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        if eligible(r).is_some() {
            let key = (r.phase, signature(&r.targets));
            let members = groups.entry(key.clone()).or_default();
            if members.is_empty() {
                order.push(key);
            }
            members.push(i);
        }
    }
    let mut out = Vec::new();
    for key in order {
        for members in groups[&key].chunks(MAX_GROUP) {
            if members.len() < MIN_GROUP {
                continue;
            }
            let mut chains: Vec<(u32, Vec<(usize, Transform)>)> = Vec::new();
            let mut chain_of = Vec::with_capacity(members.len());
            for &i in members {
                let r = &rules[i];
                let c = match chains.iter().position(|(id, _)| *id == r.tchain) {
                    Some(c) => c,
                    None => {
                        chains.push((r.tchain, r.transforms.clone()));
                        chains.len() - 1
                    }
                };
                chain_of.push(c as u8);
            }
            if chains.len() > MAX_CHAINS {
                continue;
            }
            let patterns: Vec<&str> = members
                .iter()
                .filter_map(|&i| eligible(&rules[i]))
                .collect();
            // a set the regex crate cannot build (size limits) leaves its rules unfiltered
            let Ok(set) = build_set(&patterns) else {
                continue;
            };
            let mut targets: Vec<Target> = Vec::new();
            for &i in members {
                for t in &rules[i].targets {
                    if !targets.iter().any(|u| u.same_as(t)) {
                        targets.push(t.clone());
                    }
                }
            }
            let group = out.len() as u32;
            for (slot, &i) in members.iter().enumerate() {
                rules[i].prefilter = Some((group, slot as u32));
            }
            out.push(Prefilter {
                chains,
                chain_of,
                targets,
                set: PerThread::new(set),
            });
        }
    }
    out
}

/// The group's patterns as one multi-pattern regex, compiled as `@rx` compiles each of them
/// (ModSecurity v3's flags, the same limits): every pattern that matches anywhere is reported.
fn build_set(patterns: &[&str]) -> Result<meta::Regex, Box<meta::BuildError>> {
    let (size_limit, dfa_size_limit) = crate::operators::rx::LIMITS;
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::All)
                .utf8_empty(false)
                .which_captures(WhichCaptures::None)
                .nfa_size_limit(Some(size_limit))
                .hybrid_cache_capacity(dfa_size_limit),
        )
        .syntax(
            syntax::Config::new()
                .unicode(false)
                .utf8(false)
                .dot_matches_new_line(true)
                .multi_line(true),
        )
        .build_many(patterns)
        .map_err(Box::new)
}

/// Which values a target list reads (exclusions aside): rules that read the same values share
/// a group, so no set scans values most of its rules never read.
fn signature(targets: &[Target]) -> String {
    let mut parts: Vec<String> = targets
        .iter()
        .map(|t| format!("{}:{:?}", t.name, t.sel))
        .collect();
    parts.sort();
    parts.dedup();
    parts.join("|")
}

/// The pattern of a rule the prefilter can answer for, if it can.
fn eligible(r: &Rule) -> Option<&str> {
    let op = r.op.as_ref()?;
    if op.negated || r.multi_match || r.targets.is_empty() {
        return None;
    }
    if !r
        .targets
        .iter()
        .all(|t| variables::is_stable(t.var) && !t.count && !t.exclude)
    {
        return None;
    }
    op.op.rx_pattern()
}

#[cfg(test)]
mod tests {
    use crate::{ConnInfo, EngineOptions, RuleEngineMode, WafEngine};

    fn engine(rules: &str) -> WafEngine {
        let opts = EngineOptions {
            mode_override: Some(RuleEngineMode::DetectionOnly),
            ..EngineOptions::default()
        };
        WafEngine::from_str(rules, "test", &opts).expect("rules compile")
    }

    fn matched(e: &WafEngine, uri: &str, headers: &[(&[u8], &[u8])]) -> Vec<u32> {
        let mut tx = e.transaction(ConnInfo::default());
        tx.process_request_headers("GET", uri, "HTTP/1.1", headers);
        tx.process_request_body();
        tx.matched_rules().iter().map(|m| m.id).collect()
    }

    const RULES: &str = r#"
SecRule ARGS "@rx ^a+$" "id:1,phase:1,pass,log,t:none,t:lowercase"
SecRule REQUEST_HEADERS:User-Agent "@rx bot" "id:2,phase:1,pass,log,t:none,t:lowercase"
SecRule ARGS|!ARGS:skip "@rx zz" "id:3,phase:1,pass,log,t:none,t:lowercase"
SecRule ARGS_NAMES "@rx ^(?:x|y)$" "id:4,phase:1,pass,log,t:none,t:lowercase"
SecRule ARGS "@rx ^b$" "id:5,phase:2,pass,log,t:none,t:lowercase,chain"
    SecRule ARGS_NAMES "@rx ^y$" "t:none"
SecRule TX:never "@rx ." "id:6,phase:1,pass,log,t:none,t:lowercase"
SecRule ARGS "@rx ^c" "id:7,phase:1,pass,log,t:none,t:lowercase"
SecRule ARGS "@rx ^d" "id:8,phase:1,pass,log,t:none"
"#;

    #[test]
    fn groups_rules_that_read_only_request_data() {
        let e = engine(RULES);
        // 1, 3, 7 and 8 share phase 1 and their values (8 with another chain); 5 is alone
        // in phase 2, 6 reads TX
        assert_eq!(e.prefilters.len(), 1);
        assert_eq!(e.prefilters[0].set.get().pattern_len(), 4);
        assert_eq!(e.prefilters[0].chains.len(), 2);
        let grouped: Vec<u32> = e
            .rules
            .iter()
            .filter(|r| r.prefilter.is_some())
            .map(|r| r.id)
            .collect();
        assert_eq!(grouped, [1, 3, 7, 8]);
    }

    #[test]
    fn results_are_those_of_the_rules_alone() {
        let e = engine(RULES);
        let ua: &[(&[u8], &[u8])] = &[(b"User-Agent", b"Some BOT/1.0")];
        assert_eq!(matched(&e, "/?q=AAA&skip=zz", ua), [1, 2]);
        // the set sees `zz` in ARGS:skip, but rule 3 excludes it: the rule decides
        assert_eq!(matched(&e, "/?skip=zz", &[]), Vec::<u32>::new());
        assert_eq!(matched(&e, "/?other=zz&x=1", &[]), [3, 4]);
        // a value that matches another rule's pattern only
        assert_eq!(matched(&e, "/?y=b", &[]), [4, 5]);
        assert_eq!(matched(&e, "/?q=ab", &[]), Vec::<u32>::new());
        assert_eq!(matched(&e, "/?q=Cd&r=d", &[]), [7, 8]);
        assert_eq!(matched(&e, "/?q=D", &[]), Vec::<u32>::new());
    }
}
