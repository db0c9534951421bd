//! String comparisons whose argument may hold macros: `@streq`, `@contains`, `@containsWord`,
//! `@beginsWith`, `@endsWith`, `@within` (trivial, so they share this file).
use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::macros::Macro;
use crate::state::TxData;

macro_rules! string_op {
    ($name:ident, |$p:ident, $v:ident| $body:expr) => {
        #[derive(Debug)]
        pub(crate) struct $name(Macro);
        impl Operator for $name {
            fn compile(arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
                Ok(Self(Macro::parse(arg)))
            }
            fn arg_macro(&self) -> Option<&Macro> {
                Some(&self.0)
            }
            fn eval(&self, st: &TxData, $v: &[u8], caps: Option<&mut Captures>) -> bool {
                let $p = self.0.expand(st);
                let $p: &[u8] = &$p;
                let m = $body;
                if m {
                    if let Some(c) = caps {
                        c.clear();
                        c.push($p.to_vec());
                    }
                }
                m
            }
        }
    };
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    if n.is_empty() {
        return Some(0);
    }
    memchr::memmem::find(h, n)
}

string_op!(Streq, |p, v| p == v);
string_op!(Contains, |p, v| find(v, p).is_some());
string_op!(BeginsWith, |p, v| v.starts_with(p));
string_op!(EndsWith, |p, v| v.ends_with(p));
string_op!(Within, |p, v| find(p, v).is_some());
string_op!(ContainsWord, |p, v| {
    let mut found = false;
    if p.is_empty() {
        found = true;
    }
    let mut start = 0;
    while !found && start + p.len() <= v.len() {
        match find(&v[start..], p) {
            None => break,
            Some(i) => {
                let at = start + i;
                let before = at == 0 || !v[at - 1].is_ascii_alphanumeric() && v[at - 1] != b'_';
                let end = at + p.len();
                let after = end >= v.len() || !v[end].is_ascii_alphanumeric() && v[end] != b'_';
                found = before && after;
                start = at + 1;
            }
        }
    }
    found
});
