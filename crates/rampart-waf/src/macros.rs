//! `%{COLLECTION.key}` macro expansion in operator arguments, msg, logdata and setvar.

use std::borrow::Cow;

use crate::state::TxData;
use crate::variables::{self, Selector, Target, Var};

#[derive(Debug, Clone)]
enum Part {
    Lit(Vec<u8>),
    Var(Target),
}

/// A string with `%{…}` references, parsed once at load.
#[derive(Debug, Clone, Default)]
pub(crate) struct Macro {
    parts: Vec<Part>,
}

impl Macro {
    /// Parses `s`; unknown variable names are kept as literal text (as ModSecurity does).
    pub(crate) fn parse(s: &str) -> Macro {
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && bytes.get(i + 1) == Some(&b'{')
                && let Some(end) = s[i + 2..].find('}')
            {
                let inner = &s[i + 2..i + 2 + end];
                if let Some(t) = parse_ref(inner) {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(t));
                    i += end + 3;
                    continue;
                }
            }
            lit.push(bytes[i]);
            i += 1;
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Macro { parts }
    }

    /// True when the text has no `%{…}` reference.
    #[cfg(test)]
    pub(crate) fn is_const(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// The text, when it holds no variable reference.
    pub(crate) fn literal(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [] => Some(b""),
            [Part::Lit(l)] => Some(l),
            _ => None,
        }
    }

    /// The text before the first variable reference: what every expansion starts with.
    pub(crate) fn literal_prefix(&self) -> &[u8] {
        match self.parts.first() {
            Some(Part::Lit(l)) => l,
            _ => b"",
        }
    }

    /// True when every reference is to a variable `ok` accepts.
    pub(crate) fn reads_only(&self, ok: impl Fn(Var) -> bool) -> bool {
        self.parts.iter().all(|p| match p {
            Part::Lit(_) => true,
            Part::Var(t) => ok(t.var),
        })
    }

    /// Appends the expansion against the transaction to `out`.
    pub(crate) fn expand_into(&self, st: &TxData, out: &mut Vec<u8>) {
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.extend_from_slice(l),
                Part::Var(t) => {
                    if let Some(v) = first_value(st, t) {
                        out.extend_from_slice(&v);
                    }
                }
            }
        }
    }

    /// Expands against the transaction.
    pub(crate) fn expand<'a>(&'a self, st: &'a TxData) -> Cow<'a, [u8]> {
        match self.parts.as_slice() {
            [] => Cow::Borrowed(b""),
            [Part::Lit(l)] => Cow::Borrowed(l),
            // a lone reference (`%{tx.restricted_headers}`): the value itself, not a copy
            [Part::Var(t)] => first_value(st, t).unwrap_or(Cow::Borrowed(b"")),
            parts => {
                // room for the literal text and a few short values: one allocation mostly
                let lits: usize = parts
                    .iter()
                    .map(|p| match p {
                        Part::Lit(l) => l.len(),
                        Part::Var(_) => 0,
                    })
                    .sum();
                let mut out = Vec::with_capacity(lits + 32);
                self.expand_into(st, &mut out);
                Cow::Owned(out)
            }
        }
    }
}

/// What a reference expands to: the first value of its target, if it has one.
fn first_value<'a>(st: &'a TxData, t: &Target) -> Option<Cow<'a, [u8]>> {
    // `%{tx.name}`, most references: one map lookup
    if let (Var::Tx, Selector::Key(k)) = (t.var, &t.sel) {
        return st.tx.get(k.as_str()).map(|v| Cow::Borrowed(&v[..]));
    }
    let mut vals = variables::Values::new();
    variables::collect(st, t, &[], &mut vals);
    // (the value list is large: taken apart in place, not moved)
    (!vals.is_empty()).then(|| vals.swap_remove(0).value)
}

fn parse_ref(inner: &str) -> Option<Target> {
    let (name, key) = match inner.find(['.', ':']) {
        Some(i) => (&inner[..i], Some(&inner[i + 1..])),
        None => (inner, None),
    };
    let (cname, var) = variables::lookup(name)?;
    let sel = match key {
        Some(k) if !k.is_empty() => Selector::Key(k.to_ascii_lowercase()),
        _ => Selector::All,
    };
    Some(Target {
        name: cname,
        var,
        sel,
        count: false,
        exclude: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_tx_and_scalars() {
        let mut st = TxData::default();
        st.tx_insert("score", b"5");
        st.matched_var = b"x".to_vec();
        let m = Macro::parse("s=%{tx.score} v=%{MATCHED_VAR} u=%{nope} %{tx.missing}!");
        assert_eq!(&*m.expand(&st), b"s=5 v=x u=%{nope} !");
        assert!(Macro::parse("plain").is_const());
    }
}
