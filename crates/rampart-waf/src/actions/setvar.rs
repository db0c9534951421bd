//! `setvar:[!]tx.key[=[+|-]value]` with macros in key and value. Only `TX` is kept per
//! transaction; persistent collections (`ip.`, `global.` …) are accepted and ignored.
use std::sync::Arc;

use crate::error::CompileError;
use crate::macros::Macro;
use crate::state::{TxData, parse_int, set_tx_value};

thread_local! {
    /// Expanded keys and values of `setvar`, kept by each thread from one to the next (the
    /// map keeps its own copy of what it stores).
    static EXPANDED_KEY: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::default();
    static EXPANDED_VALUE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::default();
}

#[derive(Debug, Clone)]
pub(crate) enum SetOp {
    Set(Macro),
    Add(Macro),
    Sub(Macro),
    Delete,
}

#[derive(Debug, Clone)]
pub(crate) struct SetVar {
    /// `false` for collections that are not kept (persistent ones).
    pub tx: bool,
    pub key: Macro,
    /// The key lowercased when it holds no macro (most do): no expansion per match.
    pub literal_key: Option<String>,
    pub op: SetOp,
}

impl SetVar {
    pub(crate) fn compile(arg: &str) -> Result<SetVar, CompileError> {
        let arg = arg.trim();
        let (delete, arg) = match arg.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, arg),
        };
        let (lhs, rhs) = match arg.find('=') {
            Some(i) => (&arg[..i], Some(&arg[i + 1..])),
            None => (arg, None),
        };
        let (coll, key) = lhs
            .split_once('.')
            .ok_or_else(|| CompileError::new(format!("setvar needs collection.key: {arg:?}")))?;
        let tx = coll.trim().eq_ignore_ascii_case("tx");
        if !tx
            && !["ip", "global", "session", "user", "resource", "geo"]
                .iter()
                .any(|c| c.eq_ignore_ascii_case(coll.trim()))
        {
            return Err(CompileError::new(format!(
                "setvar: unknown collection {coll:?}"
            )));
        }
        let op = if delete {
            SetOp::Delete
        } else {
            match rhs {
                None => SetOp::Set(Macro::parse("1")),
                Some(r) => {
                    if let Some(v) = r.strip_prefix('+') {
                        SetOp::Add(Macro::parse(v))
                    } else if let Some(v) = r.strip_prefix('-') {
                        SetOp::Sub(Macro::parse(v))
                    } else {
                        SetOp::Set(Macro::parse(r))
                    }
                }
            }
        };
        let key = Macro::parse(key.trim());
        Ok(SetVar {
            tx,
            literal_key: key
                .literal()
                .map(|k| String::from_utf8_lossy(k).to_ascii_lowercase()),
            key,
            op,
        })
    }

    /// True when the key and the value refer only to variables `ok` accepts.
    pub(crate) fn reads_only(&self, ok: impl Fn(crate::variables::Var) -> bool + Copy) -> bool {
        self.key.reads_only(ok)
            && match &self.op {
                SetOp::Set(m) | SetOp::Add(m) | SetOp::Sub(m) => m.reads_only(ok),
                SetOp::Delete => true,
            }
    }

    /// Applies to `st` unless the key is pinned by the engine options.
    pub(crate) fn eval(&self, st: &mut TxData, pinned: &[(Arc<str>, Arc<[u8]>)]) {
        if !self.tx {
            return;
        }
        match &self.literal_key {
            Some(k) => self.apply(st, pinned, k),
            // an expanded key (CRS 920450's `tx.header_name_920450_%{tx.0}`, once per header)
            // is built in the thread's buffer: the map makes the one copy it keeps
            None => EXPANDED_KEY.with_borrow_mut(|k| {
                k.clear();
                self.key.expand_into(st, k);
                k.make_ascii_lowercase();
                self.apply(st, pinned, &String::from_utf8_lossy(k))
            }),
        }
    }

    fn apply(&self, st: &mut TxData, pinned: &[(Arc<str>, Arc<[u8]>)], key: &str) {
        if pinned.iter().any(|(k, _)| **k == *key) {
            return;
        }
        match &self.op {
            SetOp::Delete => {
                st.tx.remove(key);
            }
            SetOp::Set(v) => match v.literal() {
                // a constant is copied into the variable's buffer when it exists
                Some(lit) => match st.tx.get_mut(key) {
                    Some(slot) => set_tx_value(slot, lit),
                    None => st.tx_insert(key, lit),
                },
                // (the expansion may read TX: it becomes the new value before TX changes)
                None => {
                    let v: Arc<[u8]> = EXPANDED_VALUE.with_borrow_mut(|b| {
                        b.clear();
                        v.expand_into(st, b);
                        Arc::from(&b[..])
                    });
                    match st.tx.get_mut(key) {
                        Some(slot) => *slot = v,
                        None => st.tx_insert_shared(key, v),
                    }
                }
            },
            SetOp::Add(v) | SetOp::Sub(v) => {
                let d = parse_int(&v.expand(st));
                let add = matches!(self.op, SetOp::Add(_));
                let apply = |cur: i64| {
                    if add {
                        cur.saturating_add(d)
                    } else {
                        cur.saturating_sub(d)
                    }
                };
                let mut digits = itoa::Buffer::new();
                match st.tx.get_mut(key) {
                    Some(slot) => {
                        let n = digits.format(apply(parse_int(slot))).as_bytes();
                        set_tx_value(slot, n);
                    }
                    None => {
                        let n = digits.format(apply(0)).as_bytes();
                        st.tx_insert(key, n);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn forms() {
        let mut st = TxData::default();
        st.tx_insert("crit", b"5");
        for s in [
            "tx.a=+%{tx.crit}",
            "tx.a=+%{tx.crit}",
            "tx.b=x-%{tx.crit}",
            "tx.c",
            "tx.a=-1",
            "tx.Key_%{tx.crit}=v",
            "tx.key_5=w",
            "tx.New=+3",
            "!tx.crit",
            "ip.x=1",
        ] {
            SetVar::compile(s).unwrap().eval(&mut st, &[]);
        }
        assert_eq!(st.tx_get("a"), Some(&b"9"[..]));
        assert_eq!(st.tx_get("b"), Some(&b"x-5"[..]));
        assert_eq!(st.tx_get("c"), Some(&b"1"[..]));
        assert_eq!(st.tx_get("crit"), None);
        // keys from macros are lowercased like literal ones; a set replaces, an add creates
        assert_eq!(st.tx_get("key_5"), Some(&b"w"[..]));
        assert_eq!(st.tx_get("new"), Some(&b"3"[..]));
        assert!(SetVar::compile("nodot").is_err());
    }
}
