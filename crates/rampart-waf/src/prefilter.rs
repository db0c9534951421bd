//! Prefilter: the `@rx` rules of one phase that read the same values are answered for all
//! their values at once, and so are the `@pm` / `@pmFromFile` rules.
//!
//! A rule qualifies when its operator is a non-negated `@rx`, `@pm` or `@pmFromFile` and every
//! target reads request or response data (values that do not change
//! during a phase, see [`variables::is_stable`]). Such rules are grouped by phase, operator kind
//! and the values they read, those that read every request header by that alone (see
//! [`group_key`]; up to [`MAX_GROUP`] rules a group, whatever their transformation chains);
//! a group compiles its members' patterns into one multi-pattern regex, or their phrases into
//! one Aho-Corasick automaton, and reads its targets without exclusions. On the
//! first rule of a group a transaction evaluates, every value of that union goes through each
//! of the members' chains; each distinct output is scanned once (benign values mostly come out
//! of every chain unchanged, so one scan serves them all; where every member of a chain ignores
//! case, outputs that differ only in case are one), and a pattern or phrase found in an
//! output counts only for members whose own chain makes that output of the value. Phrases
//! ignore case; so does the set's copy of a pattern whose chain puts letters in one case
//! (`t:lowercase`, `t:cmdLine`): what it finds in a value holds what the pattern finds in the
//! value with the case of its letters changed, so the chain need not run for a value it would
//! only change in case, and an output that differs from its value only in case needs no scan
//! of its own (a pattern that keeps part of itself case-sensitive, `(?-i:…)`, stays as it
//! is). A chain is
//! not run on a value that holds none of the bytes its transformations rewrite, and what a
//! chain makes of a value goes to the transaction's transformation cache, where the other
//! groups and the rules find it. A regex set first answers whether any member matches (the
//! plain search, faster than the overlapping one) and only then which. A rule found
//! in none cannot match its own values (a subset of the union, transformed by the same chain):
//! it is skipped without reading its targets. A rule that was found is evaluated as usual, so
//! what a rule reports never depends on the prefilter. A `multiMatch` rule (checked on a value
//! and again after every transformation that changes it) is scanned on the values themselves
//! and on each of those transformations' outputs, which its own haystack joins. A pattern
//! found in any value (`^.*$`: it matches every probe in [`PROBES`]) would only make each scan
//! slower and report its rule everywhere: such a rule is evaluated as it is.
//!
//! A group scans its values (up to 16 KB of them) joined by line breaks: one haystack of the
//! values as they are, where a pattern found in a value counts for the members whose chain
//! leaves that value as it is, and one per chain of the outputs it changed (no copy of the
//! values it leaves alone, and no second scan of them). A pattern's assertions of the start
//! or end of the value are compiled in the set as those of a line (`\A` as
//! `^`, `\z` as `$` in multi-line mode, see [`relax`]), so that a member found in one value
//! is found in the joined haystack; `^`, `$` and word boundaries already mean the same there
//! (a line break is not a word byte). A match across two values, or one the weaker
//! assertions allow, only makes a member count as found.
//!
//! One set scan per group and chain output replaces one regex scan per rule and value; on CRS
//! at paranoia level 1 that is a few dozen scans instead of thousands for an ordinary request.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use regex_automata::meta;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet, nfa::thompson::WhichCaptures};
use regex_syntax::hir::{Class, Hir, HirKind};

use crate::operators::rx;
use crate::per_thread::PerThread;
use crate::rule::Rule;
use crate::state::TxData;
use crate::transforms::{Transform, folds_case};
use crate::variables::{self, Selector, Target, Var};

/// One group: rules of one phase that read the same values (or every request header),
/// whatever their transformation chains.
#[derive(Debug)]
pub(crate) struct Prefilter {
    /// The members' distinct transformation chains: cache id ([`Rule::tchain`]) and functions.
    pub chains: Vec<(u32, Vec<(usize, Transform)>)>,
    /// For each of `chains`, the features ([`crate::transforms::features`]) a value needs for
    /// the chain to possibly change it; `None` when it changes every value.
    pub chain_touch: Vec<Option<u32>>,
    /// For each of `chains`, the members (one bit each) whose rule has that chain.
    pub chain_members: Vec<u64>,
    /// How many rules the group answers for.
    pub len: usize,
    /// The group's targets (each once, without exclusions).
    pub targets: Vec<Target>,
    /// Finds which members' patterns occur in a value.
    pub matcher: Matcher,
    /// For each of `chains`, the features a value needs for the chain to change it in a way
    /// its members' patterns see: [`touch`] beyond case when every member of the chain is
    /// found in a value whatever the ASCII case of its letters (its pattern is caseless, or
    /// the set holds it caseless), else the same as `chain_touch`. A value without those
    /// features needs no run of the chain: the value itself serves.
    pub chain_touch_beyond_case: Vec<Option<u32>>,
    /// The members (one bit each) found in a value whatever the ASCII case of its letters:
    /// an output of their chain that differs from its value only in case needs no scan of its
    /// own (the value's serves).
    pub caseless_members: u64,
    /// The `multiMatch` members: bit, the features a value needs for the member's chain to
    /// possibly change it (`None`: it changes every value), and the chain. Such a member checks
    /// a value as it is (it is in the empty chain's `chains` entry) and after each step of its
    /// chain that changes it: those outputs are scanned for it alone.
    pub multi: Vec<MultiMember>,
}

/// A `multiMatch` member of a group: its bit, the features a value needs for its chain to
/// possibly change it, and the chain.
pub(crate) type MultiMember = (u64, Option<u32>, Vec<(usize, Transform)>);

/// What a group scans values with. Member `i` is the rule whose `prefilter` is `(group, i)`.
#[derive(Debug)]
pub(crate) enum Matcher {
    /// `@rx` members: pattern `i` is member `i`'s.
    Regex(PerThread<meta::Regex>),
    /// `@pm` / `@pmFromFile` members: every distinct phrase of their lists (ASCII
    /// case-insensitive, all occurrences reported) and the members (one bit each) whose
    /// lists hold it.
    Phrases {
        ac: AhoCorasick,
        members_of: Vec<u64>,
    },
}

impl Prefilter {
    /// How many rules the group answers for.
    pub(crate) fn members(&self) -> usize {
        self.len
    }

    /// Every member's bit.
    pub(crate) fn all_members(&self) -> u64 {
        u64::MAX >> (64 - self.members())
    }

    /// Whether `output`, what chain `c` or the `multiMatch` member(s) `members` made of
    /// `value`, is found by those members as the value is: it differs from the value only in
    /// case and they ignore case.
    #[inline]
    pub(crate) fn same_but_case(&self, members: u64, output: &[u8], value: &[u8]) -> bool {
        members & !self.caseless_members == 0 && output.eq_ignore_ascii_case(value)
    }

    /// Whether chain `c` may change a value with features `have` (where case does not
    /// matter, a chain that would only change case is not run).
    #[inline]
    pub(crate) fn rewrites(&self, c: usize, have: u32) -> bool {
        self.chain_touch[c].is_none_or(|t| t & have != 0)
            && self.chain_touch_beyond_case[c].is_none_or(|t| t & have != 0)
    }

    /// Which members' patterns occur in `hay`, values joined by line breaks whose ends (the
    /// offsets of those line breaks) are `ends`, leaving out for value `i` the members in
    /// `not_for[i]` (when `not_for` is not empty); a match across values may count too.
    ///
    /// Which patterns a long haystack holds costs an overlapping search to its end, so a set
    /// searches the haystack for the first end of any match, asks which patterns occur in the
    /// value it ends in, and goes on after that value: every value before it holds none.
    pub(crate) fn find_joined(
        &self,
        hay: &[u8],
        ends: &[usize],
        not_for: &[u64],
        found: &mut PatternSet,
    ) -> u64 {
        let set = match &self.matcher {
            Matcher::Regex(set) => set,
            Matcher::Phrases { ac, members_of } => {
                // (a phrase is found in the value its occurrence ends in)
                let mut seen = 0u64;
                for m in ac.find_overlapping_iter(hay) {
                    let i = ends.partition_point(|&e| e < m.end());
                    let skip = not_for.get(i).copied().unwrap_or(0);
                    seen |= members_of[m.pattern().as_usize()] & !skip;
                }
                return seen;
            }
        };
        let set = set.get();
        let all = self.all_members();
        let (mut seen, mut at, mut first) = (0u64, 0, 0);
        while at <= hay.len() && seen != all {
            let Some(m) = set.search_half(&Input::new(hay).range(at..).earliest(true)) else {
                break;
            };
            // the value whose end is at or after the match's end
            let i = first + ends[first..].partition_point(|&e| e < m.offset());
            let Some(&end) = ends.get(i) else {
                break;
            };
            let start = if i == 0 { 0 } else { ends[i - 1] + 1 };
            seen |= self.find(&hay[start..end], found) & !not_for.get(i).copied().unwrap_or(0);
            (at, first) = (end + 1, i + 1);
        }
        seen
    }

    /// The members whose pattern or phrase occurs in `hay` (`found` is scratch space).
    pub(crate) fn find(&self, hay: &[u8], found: &mut PatternSet) -> u64 {
        let mut seen = 0u64;
        match &self.matcher {
            Matcher::Regex(set) => {
                let set = set.get();
                // a benign value matches no member: the plain search, which stops at the
                // first match, is faster than the overlapping one
                if set.is_match(Input::new(hay)) {
                    found.clear();
                    set.which_overlapping_matches(&Input::new(hay), found);
                    for p in found.iter() {
                        seen |= 1 << p.as_usize();
                    }
                }
            }
            Matcher::Phrases { ac, members_of } => {
                for m in ac.find_overlapping_iter(hay) {
                    seen |= members_of[m.pattern().as_usize()];
                }
            }
        }
        seen
    }
}

/// The largest Aho-Corasick DFA a group of phrase lists keeps (bytes).
const PHRASE_DFA_MAX: usize = 8 << 20;

/// Larger groups are split: past a few dozen patterns a set's lazy DFA grows faster than
/// the scans it saves. (A member is one bit of a `u64` while scanning.)
pub(crate) const MAX_GROUP: usize = 64;
const _: () = assert!(MAX_GROUP <= 64);

/// Builds the groups and records each member's place in `rules[..].prefilter`.
/// Only rules marked in `reachable` (see [`crate::WafEngine::reachable`]) join a group.
pub(crate) fn build(rules: &mut [Rule], reachable: &[bool]) -> Vec<Prefilter> {
    let mut groups: HashMap<(u8, bool, String), Vec<usize>> = HashMap::new();
    let mut order = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        if !reachable[i] {
            continue;
        }
        if let Some(kind) = eligible(r) {
            let key = (r.phase, matches!(kind, Kind::Rx(_)), group_key(&r.targets));
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
            let mut chains: Vec<(u32, Vec<(usize, Transform)>)> = Vec::new();
            let mut chain_members: Vec<u64> = Vec::new();
            let mut multi: Vec<MultiMember> = Vec::new();
            for (slot, &i) in members.iter().enumerate() {
                let r = &rules[i];
                // a `multiMatch` member is scanned on the value itself (the empty chain, id 0)
                // and on what each step of its chain makes of it
                let (id, chain) = if r.multi_match {
                    let t = touch(&r.transforms, false);
                    multi.push((1 << slot, t, r.transforms.clone()));
                    (0, Vec::new())
                } else {
                    (r.tchain, r.transforms.clone())
                };
                let c = match chains.iter().position(|(cid, _)| *cid == id) {
                    Some(c) => c,
                    None => {
                        chains.push((id, chain));
                        chain_members.push(0);
                        chains.len() - 1
                    }
                };
                chain_members[c] |= 1 << slot;
            }
            let kinds: Vec<Kind> = members
                .iter()
                .filter_map(|&i| eligible(&rules[i]))
                .collect();
            // A member whose chain changes case (`t:lowercase`) is held in the set with its
            // pattern caseless: what that finds in a value is a superset of what the pattern
            // finds in the value with its letters' case changed, so the value as it is serves
            // the member wherever the chain would change no more than case.
            let folds: Vec<bool> = (members.iter().zip(&kinds))
                .map(|(&i, k)| match k {
                    Kind::Rx(p) => {
                        rules[i].transforms.iter().any(|&(t, _)| folds_case(t))
                            && !caseless(p)
                            && parse(p, true).is_some_and(|h| hir_caseless(&h))
                    }
                    Kind::Phrases(_) => false,
                })
                .collect();
            // a set that cannot be built (size limits) leaves its rules unfiltered
            let Some(matcher) = build_matcher(&kinds, &folds) else {
                continue;
            };
            // the members found whatever the case: held caseless, or caseless as written
            let caseless_members = (kinds.iter().zip(&folds).enumerate())
                .filter(|(_, (k, fold))| match k {
                    Kind::Rx(p) => **fold || caseless(p),
                    Kind::Phrases(_) => true,
                })
                .fold(0u64, |bits, (slot, _)| bits | 1 << slot);
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
                caseless_members,
                chain_touch: chains.iter().map(|(_, c)| touch(c, false)).collect(),
                chain_touch_beyond_case: (chains.iter().zip(&chain_members))
                    .map(|((_, c), &m)| touch(c, m & !caseless_members == 0))
                    .collect(),
                chains,
                chain_members,
                len: members.len(),
                targets,
                matcher,
                multi,
            });
        }
    }
    out
}

/// The features a value needs for `chain` to possibly change it (`None`: it changes every
/// value): a chain whose every transformation skips the value leaves it as it is. With
/// `beyond_case`, the features it needs to change more than the case of letters (the case
/// transformations left out, and any step that looks at case counted as always running, since
/// it may run once case changed).
fn touch(chain: &[(usize, Transform)], beyond_case: bool) -> Option<u32> {
    use crate::transforms::{CHANGES, changes_case_only, feature, identity_unless};
    let case = feature::UPPER | feature::LOWER;
    chain.iter().try_fold(0, |acc, &(i, _)| {
        if beyond_case && changes_case_only(i) {
            return Some(acc);
        }
        match identity_unless(i) {
            CHANGES => None,
            unless if beyond_case && unless & case != 0 => Some(u32::MAX),
            unless => Some(acc | unless),
        }
    })
}

/// What a rule contributes to a group.
enum Kind<'a> {
    Rx(&'a str),
    Phrases(&'a [Vec<u8>]),
}

/// One matcher for a group's members (all of one kind).
/// `folds[i]`: member `i`'s pattern is held caseless.
fn build_matcher(kinds: &[Kind], folds: &[bool]) -> Option<Matcher> {
    if let Some(patterns) = (kinds.iter().zip(folds))
        .map(|(k, &fold)| match k {
            Kind::Rx(p) => Some((*p, fold)),
            Kind::Phrases(_) => None,
        })
        .collect::<Option<Vec<(&str, bool)>>>()
    {
        return build_set(&patterns).map(|set| Matcher::Regex(PerThread::new(set)));
    }
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut phrases: Vec<Vec<u8>> = Vec::new();
    let mut members_of: Vec<u64> = Vec::new();
    for (slot, k) in kinds.iter().enumerate() {
        let Kind::Phrases(list) = k else {
            return None;
        };
        for p in *list {
            let i = *index.entry(p.to_ascii_lowercase()).or_insert_with(|| {
                phrases.push(p.clone());
                members_of.push(0);
                phrases.len() - 1
            });
            members_of[i] |= 1 << slot;
        }
    }
    // a DFA scans fastest, but grows with the phrases (tens of MB for CRS's largest lists):
    // it is kept where it stays small, else the automaton picks its own form
    let build = |kind| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::Standard)
            .kind(kind)
            .build(&phrases)
            .ok()
    };
    let ac = match build(Some(aho_corasick::AhoCorasickKind::DFA)) {
        Some(dfa) if dfa.memory_usage() <= PHRASE_DFA_MAX => dfa,
        _ => build(None)?,
    };
    Some(Matcher::Phrases { ac, members_of })
}

/// The group's patterns as one multi-pattern regex, compiled as `@rx` compiles each of them
/// (ModSecurity v3's flags, the same limits) with their assertions [relaxed](relax): every
/// pattern that matches anywhere is reported.
/// A pattern as `@rx` reads it, or caseless.
fn parse(pattern: &str, caseless: bool) -> Option<Hir> {
    syntax::parse_with(pattern, &rx::syntax_config().case_insensitive(caseless)).ok()
}

/// The set of `patterns`, each held caseless when its flag says so.
fn build_set(patterns: &[(&str, bool)]) -> Option<meta::Regex> {
    let (size_limit, dfa_size_limit) = crate::operators::rx::LIMITS;
    let hirs = patterns
        .iter()
        .map(|&(p, caseless)| parse(p, caseless).map(relax))
        .collect::<Option<Vec<Hir>>>()?;
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::All)
                .utf8_empty(false)
                // where a search ends first ([`Prefilter::find_joined`]) needs the implicit
                // groups, and an engine that reports the first end of any match when the
                // lazy DFA gives up: the PikeVM does, the bounded backtracker (which tries one
                // start after the other) need not
                .which_captures(WhichCaptures::Implicit)
                .backtrack(false)
                .nfa_size_limit(Some(size_limit))
                .hybrid_cache_capacity(dfa_size_limit),
        )
        .build_many_from_hir(&hirs)
        .ok()
}

/// Whether `pattern` matches regardless of ASCII case: no literal holds a letter and every
/// class holds both cases of each letter it holds (as `(?i)` makes them), assertions aside.
fn caseless(pattern: &str) -> bool {
    parse(pattern, false).is_some_and(|h| hir_caseless(&h))
}

/// [`caseless`] of a parsed pattern.
fn hir_caseless(h: &Hir) -> bool {
    let both =
        |has: &dyn Fn(u8) -> bool| (b'A'..=b'Z').all(|u| has(u) == has(u.to_ascii_lowercase()));
    every_leaf(h, &|h| match h {
        HirKind::Literal(l) => !l.0.iter().any(u8::is_ascii_alphabetic),
        HirKind::Class(Class::Bytes(c)) => both(&|b| {
            c.ranges()
                .iter()
                .any(|r| (r.start()..=r.end()).contains(&b))
        }),
        HirKind::Class(Class::Unicode(c)) => both(&|b| {
            c.ranges()
                .iter()
                .any(|r| (r.start()..=r.end()).contains(&char::from(b)))
        }),
        _ => true,
    })
}

/// Whether every match of `pattern` in a value is a match in values joined by line breaks:
/// its only assertions are word boundaries and line starts and ends (no start or end of the
/// whole haystack, and no CRLF mode, where a line may not end between a value's final `\r`
/// and the break).
/// `h` with its assertions of the haystack's start and end made those of a line's (`\A` →
/// `^`, `\z` → `$`, multi-line): it matches wherever `h` does, and in values joined by line
/// breaks it matches where `h` matches one of them. (`^`, `$`, their CRLF forms and word
/// boundaries see the same bytes around a value's edges there: a line break, not a word byte.)
fn relax(h: Hir) -> Hir {
    use regex_syntax::hir::Look;
    match h.into_kind() {
        HirKind::Look(Look::Start) => Hir::look(Look::StartLF),
        HirKind::Look(Look::End) => Hir::look(Look::EndLF),
        // (not before the `\n` after a value that ends in `\r`)
        HirKind::Look(Look::EndCRLF) => {
            Hir::alternation(vec![Hir::look(Look::EndCRLF), Hir::look(Look::EndLF)])
        }
        HirKind::Look(l) => Hir::look(l),
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(l) => Hir::literal(l.0),
        HirKind::Class(c) => Hir::class(c),
        HirKind::Repetition(mut r) => {
            r.sub = Box::new(relax(*r.sub));
            Hir::repetition(r)
        }
        HirKind::Capture(mut c) => {
            c.sub = Box::new(relax(*c.sub));
            Hir::capture(c)
        }
        HirKind::Concat(hs) => Hir::concat(hs.into_iter().map(relax).collect()),
        HirKind::Alternation(hs) => Hir::alternation(hs.into_iter().map(relax).collect()),
    }
}

/// Whether `leaf` holds for each leaf of a parsed pattern: the
/// empty string, literals, classes and assertions.
fn every_leaf(h: &Hir, leaf: &dyn Fn(&HirKind) -> bool) -> bool {
    match h.kind() {
        HirKind::Repetition(r) => every_leaf(&r.sub, leaf),
        HirKind::Capture(c) => every_leaf(&c.sub, leaf),
        HirKind::Concat(hs) | HirKind::Alternation(hs) => hs.iter().all(|h| every_leaf(h, leaf)),
        k => leaf(k),
    }
}

/// Which group a rule with these targets joins (with its phase and operator kind): rules that
/// read the same values share a group, so no set scans values most of its rules never read;
/// and rules that read every request header share one whatever else they read. The headers
/// are most of an ordinary request's bytes: each group that reads them would scan them again,
/// while a group of such rules adds to each member's values only the (usually few) others its
/// members read. (A member found in a value it does not read is evaluated as usual.)
fn group_key(targets: &[Target]) -> String {
    let all_headers = targets
        .iter()
        .any(|t| t.var == Var::RequestHeaders && matches!(t.sel, Selector::All));
    if all_headers {
        return "REQUEST_HEADERS".into();
    }
    signature(targets)
}

/// Which values a target list reads (exclusions aside).
fn signature(targets: &[Target]) -> String {
    let mut parts: Vec<String> = targets
        .iter()
        .map(|t| format!("{}:{:?}", t.name, t.sel))
        .collect();
    parts.sort();
    parts.dedup();
    parts.join("|")
}

/// Values unlike each other (empty, a letter, a digit, control and high bytes, a line break,
/// ordinary text): a pattern found in all of them is taken to match anything.
const PROBES: [&[u8]; 6] = [b"", b"q", b"7", b"\x00\xff", b"\n", b"plain text 42"];

/// The pattern of a rule the prefilter can answer for, if it can.
fn eligible(r: &Rule) -> Option<Kind<'_>> {
    let op = r.op.as_ref()?;
    if op.negated || r.targets.is_empty() {
        return None;
    }
    if !r
        .targets
        .iter()
        .all(|t| variables::is_stable(t.var) && !t.count && !t.exclude)
    {
        return None;
    }
    match (op.op.rx_pattern(), op.op.phrases()) {
        // a pattern found in any value (`^.*$`) would make every scan report it: such a rule
        // is evaluated as it is
        (Some(_), _)
            if PROBES
                .iter()
                .all(|v| op.op.eval(&TxData::default(), v, None)) =>
        {
            None
        }
        (Some(p), _) => Some(Kind::Rx(p)),
        (None, Some(list)) => Some(Kind::Phrases(list)),
        (None, None) => None,
    }
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

    /// The ids of the rules that belong to a group.
    fn grouped(e: &WafEngine) -> Vec<u32> {
        e.rules
            .iter()
            .filter(|r| r.prefilter.is_some())
            .map(|r| r.id)
            .collect()
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
        // 1, 3, 7 and 8 share phase 1 and their values (8 with another chain); 2 and 4 read
        // other values, 5 is alone in phase 2: groups of their own; 6 reads TX
        assert_eq!(e.prefilters.len(), 4);
        assert_eq!(e.prefilters[0].members(), 4);
        assert_eq!(e.prefilters[0].chains.len(), 2);
        assert_eq!(
            e.prefilters.iter().map(|p| p.members()).collect::<Vec<_>>(),
            [4, 1, 1, 1]
        );
        assert_eq!(grouped(&e), [1, 2, 3, 4, 5, 7, 8]);
    }

    const PM_RULES: &str = r#"
SecRule ARGS "@pm evil Wicked" "id:11,phase:1,pass,log,t:none,t:lowercase"
SecRule ARGS "@pm bad" "id:12,phase:1,pass,log,t:none"
SecRule ARGS "@pm EVIL" "id:13,phase:1,pass,log,t:none,t:urlDecodeUni"
SecRule ARGS "@rx evil" "id:14,phase:1,pass,log,t:none"
"#;

    #[test]
    fn phrase_lists_form_their_own_groups_across_chains() {
        let e = engine(PM_RULES);
        // 14, an `@rx` rule, has a group of its own
        assert_eq!(e.prefilters.len(), 2);
        assert_eq!(e.prefilters[0].members(), 3);
        assert_eq!(e.prefilters[1].members(), 1);
        assert!(matches!(
            e.prefilters[0].matcher,
            super::Matcher::Phrases { .. }
        ));
        assert_eq!(matched(&e, "/?q=xWICKEDx", &[]), [11]);
        assert_eq!(matched(&e, "/?q=BAD", &[]), [12]);
        // `%65vil` is `evil` only after rule 13's chain; rule 11 shares the phrase, not the chain
        assert_eq!(matched(&e, "/?q=%2565vil", &[]), [13]);
        assert_eq!(matched(&e, "/?q=eViL", &[]), [11, 13]);
        assert_eq!(matched(&e, "/?q=evil", &[]), [11, 13, 14]);
        assert_eq!(matched(&e, "/?q=fine", &[]), Vec::<u32>::new());
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

    const CHANGING_RULES: &str = r#"
SecRule ARGS "@rx ^3$" "id:21,phase:1,pass,log,t:none,t:length"
SecRule ARGS "@rx ^abc$" "id:22,phase:1,pass,log,t:none"
SecRule ARGS "@rx ^0$" "id:23,phase:1,pass,log,t:none,t:length"
SecRule ARGS "@rx ^abc$" "id:24,phase:1,pass,log,t:none,t:urlDecodeUni,t:lowercase"
"#;

    #[test]
    fn chains_run_unless_the_value_lacks_what_they_rewrite() {
        let e = engine(CHANGING_RULES);
        assert_eq!(e.prefilters.len(), 1);
        let touch: Vec<Option<u32>> = e.prefilters[0].chain_touch.clone();
        use crate::transforms::feature::*;
        // `length` changes every value, even an empty one
        assert_eq!(touch, [None, Some(0), Some(PERCENT | PLUS | UPPER)]);
        assert_eq!(matched(&e, "/?q=abc", &[]), [21, 22, 24]);
        assert_eq!(matched(&e, "/?q=", &[]), [23]);
        // (`%2542` is `%42` once the query is parsed, then `B`)
        assert_eq!(matched(&e, "/?q=A%2542c", &[]), [24]);
        assert_eq!(matched(&e, "/?q=ab", &[]), Vec::<u32>::new());
    }

    /// The rules their group found in some value (the others were skipped).
    fn found(e: &WafEngine, uri: &str) -> Vec<u32> {
        let mut tx = e.transaction(ConnInfo::default());
        tx.process_request_headers("GET", uri, "HTTP/1.1", &[]);
        tx.process_request_body();
        let hits = tx.prefilter_found();
        e.rules
            .iter()
            .filter(|r| {
                r.prefilter.is_some_and(|(g, slot)| {
                    hits.iter()
                        .any(|&(h, bits)| h == g as usize && bits & (1 << slot) != 0)
                })
            })
            .map(|r| r.id)
            .collect()
    }

    /// A value as it is answers only for the members whose chain leaves it so; what a chain
    /// changes is scanned for that chain's members.
    #[test]
    fn a_member_is_found_only_in_what_its_own_chain_makes_of_a_value() {
        let e = engine(
            r#"
SecRule ARGS "@rx a\+c" "id:61,phase:1,pass,log,t:none,t:urlDecodeUni"
SecRule ARGS "@rx a c" "id:62,phase:1,pass,log,t:none"
SecRule ARGS "@rx ^x$" "id:63,phase:1,pass,log,t:none,t:urlDecodeUni"
"#,
        );
        assert_eq!(grouped(&e), [61, 62, 63]);
        // (the query's `a%2Bc` is `a+c`, which the chain makes `a c`; `%2578` is `%78`, `x`)
        for uri in [
            "/?a=a%2Bc&b=%2578",
            "/?b=%2578&a=a%2Bc",
            "/?a=a%2Bc&b=%2578&c=d",
        ] {
            assert_eq!(found(&e, uri), [63], "{uri}");
            assert_eq!(matched(&e, uri, &[]), [63], "{uri}");
        }
        assert_eq!(found(&e, "/?a=a%20c&b=x"), [62, 63]);
        assert_eq!(found(&e, "/?a=a%2Bc"), Vec::<u32>::new());
        // phrases too
        let e = engine(
            r#"
SecRule ARGS "@pm x%79" "id:71,phase:1,pass,log,t:none,t:urlDecodeUni"
SecRule ARGS "@pm x%79 qq" "id:72,phase:1,pass,log,t:none"
SecRule ARGS "@pm xy" "id:73,phase:1,pass,log,t:none,t:urlDecodeUni"
"#,
        );
        assert_eq!(grouped(&e), [71, 72, 73]);
        assert_eq!(found(&e, "/?a=x%2579&b=q"), [72, 73]);
        assert_eq!(found(&e, "/?b=qq&a=x%2579"), [72, 73]);
        assert_eq!(found(&e, "/?b=x%2579&a=x%252579"), [71, 72, 73]);
    }

    /// Rules that read every request header share a group whatever else they read; one found
    /// in a value it does not read is evaluated, and does not match.
    #[test]
    fn rules_reading_every_header_share_a_group() {
        let e = engine(
            r#"
SecRule REQUEST_HEADERS|ARGS "@rx evil" "id:81,phase:1,pass,log,t:none"
SecRule REQUEST_HEADERS|REQUEST_COOKIES "@rx bad" "id:82,phase:1,pass,log,t:none,t:lowercase"
SecRule ARGS "@rx bad" "id:83,phase:1,pass,log,t:none"
SecRule REQUEST_HEADERS:User-Agent "@rx bad" "id:84,phase:1,pass,log,t:none"
"#,
        );
        let group_of = |id: u32| {
            e.rules
                .iter()
                .find(|r| r.id == id)
                .unwrap()
                .prefilter
                .unwrap()
                .0
        };
        assert_eq!(group_of(81), group_of(82));
        assert_ne!(group_of(81), group_of(83));
        assert_ne!(group_of(81), group_of(84));
        let h: &[(&[u8], &[u8])] = &[(b"X-Note", b"evil"), (b"User-Agent", b"ok")];
        assert_eq!(matched(&e, "/?a=bad", h), [81, 83]);
        let h: &[(&[u8], &[u8])] = &[(b"X-Note", b"BAD"), (b"Cookie", b"c=ok")];
        assert_eq!(matched(&e, "/?a=b", h), [82]);
    }

    const MULTI_RULES: &str = r#"
SecRule ARGS "@rx \.\./" "id:31,phase:1,pass,log,t:none,t:urlDecodeUni,multiMatch"
SecRule ARGS "@rx ^abc$" "id:32,phase:1,pass,log,t:none"
SecRule ARGS "@rx xyz|^1$" "id:33,phase:1,pass,log,t:none,t:length,multiMatch"
SecRule ARGS "@rx ^x%2e$" "id:34,phase:1,pass,log,t:none,t:urlDecodeUni,multiMatch"
SecRule ARGS "@rx \.\./X" "id:35,phase:1,pass,log,t:none,t:urlDecodeUni,t:lowercase,multiMatch"
"#;

    /// A `multiMatch` rule is found on a value as it is and on what each step of its chain
    /// that changes it makes of it, whether that is the chain's last output or not, and
    /// whether the group scans one value or several joined.
    #[test]
    fn multi_match_rules_are_found_on_every_step_of_their_chain() {
        let e = engine(MULTI_RULES);
        assert_eq!(e.prefilters.len(), 1);
        assert_eq!(e.prefilters[0].members(), 5);
        assert_eq!(grouped(&e), [31, 32, 33, 34, 35]);
        for first in ["", "a=bc&"] {
            let m = |q: &str| matched(&e, &format!("/?{first}q={q}"), &[]);
            assert_eq!(m("a/../b"), [31]);
            // `..%2F` is `../` only once decoded
            assert_eq!(m("..%252F"), [31]);
            // 34 matches the value before its chain decodes it
            assert_eq!(m("x%252e"), [34]);
            assert_eq!(m("abc"), [32]);
            assert_eq!(m("a/./b"), Vec::<u32>::new());
            // 35 matches only between its two steps: decoded, not yet lowercased
            assert_eq!(m("..%252FX"), [31, 35]);
            assert_eq!(m("..%252Fx"), [31]);
            // 33 matches the value, or its length (a chain that changes every value)
            assert_eq!(m("xyz"), [33]);
            assert_eq!(m("q"), [33]);
        }
        // joined, the members share one haystack, where an output their steps make alike
        // (31, 34 and 35 decode `..%2FX` to `../X`) is held once
        assert_eq!(matched(&e, "/?a=bc&q=..%252FX", &[]), [31, 35]);
        assert_eq!(
            crate::transaction::last_own_haystacks().concat(),
            b"2\n../X\n6\n../x\n"
        );
        // and a member counts only on the outputs of its own chain: `%31` decodes to `1`,
        // which 33's pattern finds, but 33's chain makes a length of it
        for first in ["", "a=bc&"] {
            assert_eq!(found(&e, &format!("/?{first}q=%2531")), Vec::<u32>::new());
            assert_eq!(found(&e, &format!("/?{first}q=x")), [33]);
        }
    }

    /// A pattern found in any value would be reported by every scan: its rule stays out.
    #[test]
    fn patterns_that_match_anything_stay_out() {
        let e = engine(
            r#"
SecRule REQUEST_HEADERS_NAMES "@rx ^.*$" "id:51,phase:1,pass,log,t:none,t:lowercase"
SecRule REQUEST_HEADERS_NAMES "@rx ^x-evil" "id:52,phase:1,pass,log,t:none,t:lowercase"
SecRule REQUEST_HEADERS_NAMES "@rx (?:)" "id:53,phase:1,pass,log,t:none"
SecRule REQUEST_HEADERS_NAMES "@rx ^x-bad" "id:54,phase:1,pass,log,t:none"
"#,
        );
        assert_eq!(grouped(&e), [52, 54]);
        let h: &[(&[u8], &[u8])] = &[(b"X-Bad", b"1")];
        assert_eq!(matched(&e, "/", h), [51, 53]);
        let h: &[(&[u8], &[u8])] = &[(b"x-bad", b"1")];
        assert_eq!(matched(&e, "/", h), [51, 53, 54]);
    }

    #[test]
    fn caseless_patterns_are_told_apart() {
        for (p, want) in [
            ("(?i)abc", true),
            ("(?i:select|union)\\s+[0-9]", true),
            ("(?i:select|union)\\s+all", false),
            ("[0-9]+\\.", true),
            ("(?i)[A-Z]{2}", true),
            ("(?i)\\bfoo\\b", true),
            ("abc", false),
            ("[A-Z]", false),
            ("(?i)a(?-i)b", false),
            ("(?i)a(?-i)[bB]", true),
            ("\\x41", false),
            ("(", false),
        ] {
            assert_eq!(super::caseless(p), want, "{p}");
        }
    }

    const CASELESS_RULES: &str = r#"
SecRule ARGS "@rx (?i)evil" "id:31,phase:1,pass,log,t:none,t:lowercase"
SecRule ARGS "@rx (?i)bad" "id:32,phase:1,pass,log,t:none"
SecRule ARGS "@rx (?i)worse" "id:33,phase:1,pass,log,t:none,t:lowercase,t:urlDecodeUni"
"#;

    /// `cmdLine` lowercases too: a value it changes only in case needs no scan of its own for
    /// members held caseless, `multiMatch` ones included; a member that keeps part of its
    /// pattern case-sensitive still gets one.
    #[test]
    fn outputs_that_differ_only_in_case_are_not_scanned_again() {
        let e = engine(
            r#"
SecRule ARGS "@rx evil" "id:81,phase:1,pass,log,t:none,t:cmdLine"
SecRule ARGS "@rx ^x y$" "id:82,phase:1,pass,log,t:none,t:cmdLine"
SecRule ARGS "@rx bad" "id:83,phase:1,pass,log,multiMatch,t:none,t:cmdLine"
"#,
        );
        assert_eq!(e.prefilters[0].caseless_members, 0b111);
        let own = |uri: &str| {
            let got = matched(&e, uri, &[]);
            let own = crate::transaction::last_own_haystacks();
            (got, own.concat())
        };
        // `EVIL` and `BAD` come out of cmdLine in lower case alone; `X;Y` becomes `x y`, in
        // the haystack of the chain and in that of the `multiMatch` member
        assert_eq!(own("/?q=EVIL&r=BAD"), (vec![81, 83], Vec::new()));
        assert_eq!(
            own("/?q=EVIL&r=X;Y"),
            (vec![81, 82], b"x y\nx y\n".to_vec())
        );
        let e = engine(
            r#"
SecRule ARGS "@rx evil" "id:84,phase:1,pass,log,t:none,t:cmdLine"
SecRule ARGS "@rx (?-i:b)ad" "id:85,phase:1,pass,log,multiMatch,t:none,t:cmdLine"
"#,
        );
        assert_eq!(e.prefilters[0].caseless_members, 0b01);
        let got = matched(&e, "/?q=EVIL&r=BAD", &[]);
        assert_eq!(got, [84, 85]);
        // (85's haystack holds both values lowercased; 84's chain has none of its own)
        assert_eq!(
            crate::transaction::last_own_haystacks().concat(),
            b"evil\nbad\n"
        );
    }

    #[test]
    fn caseless_groups_skip_chains_that_only_change_case() {
        use crate::transforms::feature::*;
        let e = engine(CASELESS_RULES);
        assert_eq!(e.prefilters.len(), 1);
        let beyond = e.prefilters[0].chain_touch_beyond_case.clone();
        assert_eq!(beyond, [Some(0), Some(0), Some(PERCENT | PLUS)]);
        let chain = |names: &[&str]| -> Vec<(usize, super::Transform)> {
            names
                .iter()
                .map(|n| crate::transforms::lookup(n).unwrap())
                .collect()
        };
        assert_eq!(super::touch(&chain(&["cmdLine"]), true), Some(u32::MAX));
        assert_eq!(super::touch(&chain(&["uppercase", "length"]), true), None);
        assert_eq!(matched(&e, "/?q=EVIL", &[]), [31]);
        assert_eq!(matched(&e, "/?q=BaD", &[]), [32]);
        assert_eq!(matched(&e, "/?q=WOR%2553E", &[]), [33]);
        assert_eq!(matched(&e, "/?q=Fine", &[]), Vec::<u32>::new());
        // a case-sensitive member whose chain changes case is held caseless in the set: its
        // chain is not run for a value it would only lowercase; one whose chain does not
        // change case keeps its pattern and its chain (the empty one here)
        let e = engine(
            "SecRule ARGS \"@rx evil\" \"id:41,phase:1,pass,log,t:none,t:lowercase\"\nSecRule ARGS \"@rx BAD\" \"id:42,phase:1,pass,log,t:none\"\nSecRule ARGS \"@rx (?-i:evil)x\" \"id:43,phase:1,pass,log,t:none,t:lowercase,t:removeNulls\"\n",
        );
        let beyond = e.prefilters[0].chain_touch_beyond_case.clone();
        assert_eq!(beyond, [Some(0), Some(0), Some(NUL | UPPER)]);
        assert_eq!(matched(&e, "/?q=EVIL", &[]), [41]);
        assert_eq!(matched(&e, "/?q=bad", &[]), Vec::<u32>::new());
        // 43's `(?-i:…)` stays case-sensitive even in a caseless set: its chain runs
        assert_eq!(matched(&e, "/?q=EVILX", &[]), [41, 43]);
        let found = |uri: &str| {
            let mut tx = e.transaction(crate::ConnInfo::default());
            tx.process_request_headers("GET", uri, "HTTP/1.1", &[]);
            tx.prefilter_found()
        };
        // a value with capitals: 41 is found in it as it is, held caseless (not in the
        // lowercased copy, which is not made for it); a value in lower case alone, the same
        assert_eq!(found("/?q=EVIL"), [(0, 0b001)]);
        assert_eq!(found("/?q=evilx"), [(0, 0b101)]);
    }

    /// Rules whose patterns hold line anchors, with different chains, each matching one value
    /// of several: the joined haystacks (the values as they are, and a chain's output that
    /// differs in a later or an earlier value) find them all, and nothing else.
    const JOINED_RULES: &str = r#"
SecRule ARGS "@rx ^abc$" "id:51,phase:1,pass,log,t:none,t:urlDecodeUni"
SecRule ARGS "@rx ^x\b" "id:52,phase:1,pass,log,t:none"
SecRule ARGS "@rx end$" "id:53,phase:1,pass,log,t:none,t:lowercase"
"#;

    #[test]
    fn values_joined_by_line_breaks_keep_each_match() {
        let e = engine(JOINED_RULES);
        assert_eq!(e.prefilters.len(), 1);
        // the second of three values, decoded by 51's chain only
        assert_eq!(matched(&e, "/?a=q&b=a%2562c&c=r", &[]), [51]);
        // the chain changes the first value, and 51's pattern is in the last one; or a value
        // before the first one it changes
        assert_eq!(matched(&e, "/?a=abc&b=%2571", &[]), [51]);
        assert_eq!(matched(&e, "/?a=%2571&b=r&c=abc", &[]), [51]);
        // line starts and ends at each value's edges; 53's chain changes the value it finds
        assert_eq!(matched(&e, "/?a=q&b=x-1&c=THE%20END", &[]), [52, 53]);
        // nothing across values: "ab" + "c", "x" as part of a word
        assert_eq!(
            matched(&e, "/?a=ab&b=c&c=xy&d=end1", &[]),
            Vec::<u32>::new()
        );
        // values too long to be copied joined are scanned one by one
        let long = format!("/?a={}&b=a%2562c&c=the%20END", "q".repeat(20_000));
        assert_eq!(matched(&e, &long, &[]), [51, 53]);
    }

    /// Assertions of a value's start and end, among several values: each rule is found in
    /// the joined haystack where it matches one value, and in no other.
    const BOUND_RULES: &str = r#"
SecRule ARGS "@rx \Aabc" "id:61,phase:1,pass,log,t:none"
SecRule ARGS "@rx xyz\z" "id:62,phase:1,pass,log,t:none,t:lowercase"
SecRule ARGS "@rx (?-m:^q$)" "id:63,phase:1,pass,log,t:none"
SecRule ARGS "@rx (?R)k\r$" "id:64,phase:1,pass,log,t:none"
"#;

    #[test]
    fn patterns_bound_to_the_whole_value_are_found_in_joined_values() {
        let e = engine(BOUND_RULES);
        assert_eq!(e.prefilters.len(), 1);
        assert_eq!(e.prefilters[0].len, 4);
        // each in a value between others (64's value ends in a CR, before the joining LF)
        assert_eq!(
            matched(&e, "/?a=1&b=abcd&c=2&d=wXYZ&e=3&f=q&g=4&h=k%0D&i=5", &[]),
            [61, 62, 63, 64]
        );
        // and nothing where a value only holds them away from its edges
        assert_eq!(
            matched(&e, "/?a=1&b=zabc&c=xyz1&d=qq&e=k%0D%0A1&f=5", &[]),
            Vec::<u32>::new()
        );
        assert_eq!(matched(&e, "/?a=abc", &[]), [61]);
    }
}
