//! `@rx`: PCRE-compatible regex on bytes, Unicode off (the `regex` crate's `bytes` API).
use regex::bytes::{Regex, RegexBuilder};

use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::per_thread::PerThread;
use crate::state::TxData;

#[derive(Debug)]
pub(crate) struct Rx {
    re: PerThread<Regex>,
    /// The pattern matches every value, and the match is the whole value
    /// ([`matches_whole_value`]): nothing to search.
    whole: bool,
}

/// Compiled-size and lazy-DFA cache limits of every `@rx` pattern (bytes).
pub(crate) const LIMITS: (usize, usize) = (256 << 20, 16 << 20);

/// Rewrites the PCRE dialect CRS uses into Rust `regex` syntax: `\x{HH}` → `\xHH`, a leading
/// `]` in a class is escaped, and — unless `multiline` (where `$` already matches before every
/// newline) — a `$` outside a class also matches before a final newline, as PCRE's `$` does.
pub(crate) fn pcre_to_rust(p: &str) -> String {
    let multiline =
        p.contains("(?m") || p.contains("(?sm") || p.contains("(?im") || p.contains("(?ism");
    rewrite(p, multiline)
}

fn rewrite(p: &str, multiline: bool) -> String {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len() + 16);
    let mut i = 0;
    let mut in_class = false;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && i + 1 < b.len() {
            if b[i + 1] == b'x'
                && b.get(i + 2) == Some(&b'{')
                && let Some(end) = p[i + 3..].find('}')
            {
                let hex = &p[i + 3..i + 3 + end];
                if !hex.is_empty() && hex.len() <= 2 && hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    out.push_str(&format!("\\x{hex:0>2}"));
                    i += end + 4;
                    continue;
                }
            }
            // push the escape and the escaped char (which may be multi-byte UTF-8)
            out.push('\\');
            let ch = p[i + 1..].chars().next().unwrap_or('\\');
            out.push(ch);
            i += 1 + ch.len_utf8();
            continue;
        }
        if in_class {
            if c == b']' {
                in_class = false;
            }
        } else if c == b'[' {
            in_class = true;
            // a leading `]` or `^]` is a literal
            let ch = p[i..].chars().next().unwrap_or('[');
            out.push(ch);
            i += 1;
            if b.get(i) == Some(&b'^') {
                out.push('^');
                i += 1;
            }
            if b.get(i) == Some(&b']') {
                out.push_str("\\]");
                i += 1;
            }
            continue;
        } else if c == b'$' && !multiline {
            out.push_str("(?:\\n?\\z)");
            i += 1;
            continue;
        }
        let ch = p[i..].chars().next().unwrap_or('?');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// An `@rx` pattern in the regex crate's syntax (with `multi_line` on, as [`build`] sets).
pub(crate) fn rust_pattern(pattern: &str) -> String {
    rewrite(pattern, true)
}

/// Compiles an `@rx` pattern with ModSecurity v3's PCRE flags: `PCRE_DOTALL | PCRE_MULTILINE`
/// (`.` matches a newline, `^`/`$` match at line boundaries), bytes, Unicode off.
pub(crate) fn build(pattern: &str) -> Result<Regex, CompileError> {
    RegexBuilder::new(&rust_pattern(pattern))
        .unicode(false)
        .dot_matches_new_line(true)
        .multi_line(true)
        .size_limit(LIMITS.0)
        .dfa_size_limit(LIMITS.1)
        .build()
        .map_err(|e| CompileError::new(format!("bad regex: {e}")))
}

/// How [`build`] reads a pattern in the regex crate's syntax ([`rust_pattern`]), for the
/// places that look at its syntax tree (ModSecurity v3's flags, bytes, Unicode off).
pub(crate) fn syntax_config() -> regex_automata::util::syntax::Config {
    regex_automata::util::syntax::Config::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true)
        .multi_line(true)
}

/// Whether `pattern` (as [`build`] compiles it) matches every value, the leftmost-first match
/// being the whole value, as `^.*$` does: start-of-line assertions (true at the start), a
/// greedy `.*` (every byte: `.` matches a newline), then only parts that match the empty string
/// at the end (end-of-line assertions, optional parts); no groups.
fn matches_whole_value(pattern: &str) -> bool {
    use regex_syntax::hir::{Class, ClassBytesRange, Hir, HirKind, Look};
    fn empty_at_end(h: &Hir) -> bool {
        match h.kind() {
            HirKind::Empty => true,
            HirKind::Look(l) => matches!(l, Look::End | Look::EndLF | Look::EndCRLF),
            HirKind::Repetition(r) => r.min == 0 && !has_group(&r.sub),
            HirKind::Concat(hs) => hs.iter().all(empty_at_end),
            HirKind::Alternation(hs) => !hs.iter().any(has_group) && hs.iter().any(empty_at_end),
            HirKind::Literal(_) | HirKind::Class(_) | HirKind::Capture(_) => false,
        }
    }
    fn has_group(h: &Hir) -> bool {
        match h.kind() {
            HirKind::Capture(_) => true,
            HirKind::Repetition(r) => has_group(&r.sub),
            HirKind::Concat(hs) | HirKind::Alternation(hs) => hs.iter().any(has_group),
            _ => false,
        }
    }
    let any_star = |h: &Hir| {
        matches!(h.kind(), HirKind::Repetition(r)
            if r.min == 0 && r.max.is_none() && r.greedy
                && matches!(r.sub.kind(), HirKind::Class(Class::Bytes(c))
                    if c.ranges() == [ClassBytesRange::new(0, 255)]))
    };
    let Ok(hir) =
        regex_automata::util::syntax::parse_with(&rust_pattern(pattern), &syntax_config())
    else {
        return false;
    };
    let items = match hir.kind() {
        HirKind::Concat(hs) => hs.as_slice(),
        _ => std::slice::from_ref(&hir),
    };
    let Some(star) = items.iter().position(any_star) else {
        return false;
    };
    items[..star].iter().all(|h| {
        matches!(
            h.kind(),
            HirKind::Look(Look::Start | Look::StartLF | Look::StartCRLF)
        )
    }) && items[star + 1..].iter().all(empty_at_end)
}

impl Operator for Rx {
    fn compile(arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        Ok(Rx {
            re: PerThread::new(build(arg)?),
            whole: matches_whole_value(arg),
        })
    }
    fn rx_pattern(&self) -> Option<&str> {
        Some(self.re.get().as_str())
    }
    fn eval(&self, _st: &TxData, value: &[u8], caps: Option<&mut Captures>) -> bool {
        if self.whole {
            if let Some(caps) = caps {
                caps.clear();
                caps.push(value.to_vec());
            }
            return true;
        }
        let re = self.re.get();
        match caps {
            None => re.is_match(value),
            // without groups, `TX:0` is the match: the DFAs find it, no capture engine
            Some(caps) if re.captures_len() == 1 => match re.find(value) {
                None => false,
                Some(m) => {
                    caps.clear();
                    caps.push(m.as_bytes().to_vec());
                    true
                }
            },
            // the lazy DFA answers most values; captures only for the few that match
            Some(_) if !re.is_match(value) => false,
            Some(caps) => match re.captures(value) {
                None => false,
                Some(c) => {
                    caps.clear();
                    for i in 0..c.len().min(10) {
                        caps.push(c.get(i).map_or_else(Vec::new, |m| m.as_bytes().to_vec()));
                    }
                    true
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn patterns_that_match_the_whole_value_need_no_search() {
        for p in ["^.*$", ".*", r"\A.*\z", "(?:^).*$", "^.*(?:$|x)", "^.*a?$"] {
            assert!(matches_whole_value(p), "{p}");
        }
        for p in [
            "^.+$", "^.*?$", "^(.*)$", "^.*x$", "a.*", r"^.*\b", "[^a]*", ".*(a)?",
        ] {
            assert!(!matches_whole_value(p), "{p}");
        }
        let ctx = CompileCtx {
            dir: std::path::Path::new("."),
        };
        let st = TxData::default();
        // what the regex finds, and the operator answers without searching
        for p in ["^.*$", ".*", "^.*(?:$|x)"] {
            let rx = Rx::compile(p, &ctx).unwrap();
            assert!(rx.whole);
            let re = build(p).unwrap();
            for v in [&b""[..], b"a", b"two\nlines\n", b"\n", b"\xff\x00"] {
                let mut caps = Vec::new();
                assert!(rx.eval(&st, v, Some(&mut caps)));
                assert_eq!(caps, [re.find(v).unwrap().as_bytes()], "{p} {v:?}");
                assert_eq!(caps, [v]);
            }
        }
    }

    #[test]
    fn rewrites() {
        assert_eq!(pcre_to_rust(r"\x{e2}\x80[\x98]"), r"\xe2\x80[\x98]");
        assert_eq!(pcre_to_rust("a$"), "a(?:\\n?\\z)");
        assert_eq!(pcre_to_rust("[$]"), "[$]");
        assert_eq!(pcre_to_rust("[]a]"), "[\\]a]");
        // ModSecurity v3 flags: DOTALL | MULTILINE
        assert!(build("^a$").unwrap().is_match(b"a\n"));
        assert!(build("^a$").unwrap().is_match(b"x\na\nb"));
        assert!(build("a.b").unwrap().is_match(b"a\nb"));
    }

    /// `TX:0` is the leftmost-first match whether or not the pattern has groups.
    #[test]
    fn captures_with_and_without_groups() {
        let ctx = CompileCtx {
            dir: std::path::Path::new("."),
        };
        let st = TxData::default();
        for (pattern, value, want) in [
            (
                "^.*$",
                &b"x-forwarded-for"[..],
                &[&b"x-forwarded-for"[..]][..],
            ),
            ("b+", b"abbbc", &[b"bbb"]),
            ("(b+)(c)", b"abbbc", &[b"bbbc", b"bbb", b"c"]),
            ("z", b"abc", &[]),
        ] {
            let rx = Rx::compile(pattern, &ctx).unwrap();
            let mut caps = Vec::new();
            let hit = rx.eval(&st, value, Some(&mut caps));
            assert_eq!(hit, !want.is_empty(), "{pattern}");
            if hit {
                assert_eq!(caps, want.iter().map(|c| c.to_vec()).collect::<Vec<_>>());
            }
        }
    }
}
