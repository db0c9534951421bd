//! Operators (`@name arg`): compiled once per rule (may fail), evaluated per value (cannot fail).
//!
//! One file per operator (trivial string/numeric comparisons share a file); this table is the
//! registry (sorted, case-insensitive lookup). A leading `!` negates; no `@` means `@rx`.

use std::path::Path;

use crate::error::CompileError;
use crate::macros::Macro;
use crate::state::TxData;

mod ip_match;
mod libinjection;
mod numeric;
mod pm;
pub(crate) mod rx;
pub(crate) mod sqli;
mod strings;
mod strmatch;
mod unconditional;
mod validate_byte_range;
mod validate_url_encoding;
mod validate_utf8_encoding;
mod verify_cc;

/// Capture groups written to `TX:0`…`TX:9` when the rule has `capture`.
pub(crate) type Captures = Vec<Vec<u8>>;

/// What an operator may look at while compiling.
pub(crate) struct CompileCtx<'a> {
    /// Directory of the rule file (data files are relative to it).
    pub dir: &'a Path,
}

/// A compiled operator.
pub(crate) trait Operator: Send + Sync + std::fmt::Debug {
    fn compile(arg: &str, ctx: &CompileCtx) -> Result<Self, CompileError>
    where
        Self: Sized;
    fn eval(&self, st: &TxData, value: &[u8], caps: Option<&mut Captures>) -> bool;
    /// The pattern as given to the regex engine, for `@rx` (prefilter sets).
    fn rx_pattern(&self) -> Option<&str> {
        None
    }
    /// The phrase list, for `@pm` and `@pmFromFile` (prefilter groups).
    fn phrases(&self) -> Option<&[Vec<u8>]> {
        None
    }
    /// The argument's macro, for operators that expand one per evaluation: the only
    /// transaction state an operator may read (what the engine's preamble checks).
    fn arg_macro(&self) -> Option<&Macro> {
        None
    }
}

type Factory = fn(&str, &CompileCtx) -> Result<Box<dyn Operator>, CompileError>;

fn op<T: Operator + 'static>(
    arg: &str,
    ctx: &CompileCtx,
) -> Result<Box<dyn Operator>, CompileError> {
    Ok(Box::new(T::compile(arg, ctx)?))
}

/// The registry, sorted by lowercase name.
pub(crate) const OPERATORS: &[(&str, Factory)] = &[
    ("beginsWith", op::<strings::BeginsWith>),
    ("contains", op::<strings::Contains>),
    ("containsWord", op::<strings::ContainsWord>),
    ("detectSQLi", op::<libinjection::DetectSqli>),
    ("detectXSS", op::<libinjection::DetectXss>),
    ("endsWith", op::<strings::EndsWith>),
    ("eq", op::<numeric::Eq>),
    ("ge", op::<numeric::Ge>),
    ("gt", op::<numeric::Gt>),
    ("ipMatch", op::<ip_match::IpMatch>),
    ("ipMatchF", op::<ip_match::IpMatchFromFile>),
    ("ipMatchFromFile", op::<ip_match::IpMatchFromFile>),
    ("le", op::<numeric::Le>),
    ("lt", op::<numeric::Lt>),
    ("noMatch", op::<unconditional::NoMatch>),
    ("pm", op::<pm::Pm>),
    ("pmf", op::<pm::PmFromFile>),
    ("pmFromFile", op::<pm::PmFromFile>),
    ("rx", op::<rx::Rx>),
    ("streq", op::<strings::Streq>),
    ("strmatch", op::<strmatch::StrMatch>),
    (
        "unconditionalMatch",
        op::<unconditional::UnconditionalMatch>,
    ),
    (
        "validateByteRange",
        op::<validate_byte_range::ValidateByteRange>,
    ),
    (
        "validateUrlEncoding",
        op::<validate_url_encoding::ValidateUrlEncoding>,
    ),
    (
        "validateUtf8Encoding",
        op::<validate_utf8_encoding::ValidateUtf8Encoding>,
    ),
    ("verifyCC", op::<verify_cc::VerifyCc>),
    ("within", op::<strings::Within>),
];

/// A rule's operator: the compiled operator, its negation and its source text.
#[derive(Debug)]
pub(crate) struct CompiledOp {
    /// Canonical operator name (shown in `Debug` output).
    #[allow(dead_code)]
    pub name: &'static str,
    pub negated: bool,
    pub op: Box<dyn Operator>,
}

/// Compiles the operator string of a `SecRule` (`"!@rx foo"`, `"@eq 0"`, `"^foo"`).
pub(crate) fn compile(spec: &str, ctx: &CompileCtx) -> Result<CompiledOp, CompileError> {
    let mut s = spec.trim_start();
    let mut negated = false;
    if let Some(r) = s.strip_prefix('!') {
        negated = true;
        s = r.trim_start();
    }
    let (name, arg) = match s.strip_prefix('@') {
        Some(r) => match r.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (&r[..i], r[i..].trim_start()),
            None => (r, ""),
        },
        None => ("rx", s),
    };
    let (cname, f) = OPERATORS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .ok_or_else(|| CompileError::new(format!("unknown operator @{name}")))?;
    let op = f(arg, ctx).map_err(|e| CompileError::new(format!("@{cname}: {}", e.0)))?;
    Ok(CompiledOp {
        name: cname,
        negated,
        op,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (operator spec, value, expected match)
    const VECTORS: &[(&str, &[u8], bool)] = &[
        ("@beginsWith abc", b"abcdef", true),
        ("@beginsWith abc", b"xabc", false),
        ("@contains bc", b"abcd", true),
        ("@contains zz", b"abcd", false),
        ("@containsWord foo", b"a foo b", true),
        ("@containsWord foo", b"afoob", false),
        ("@detectSQLi", b"1' OR '1'='1", true),
        ("@detectSQLi", b"hello world", false),
        ("@detectXSS", b"<script>alert(1)</script>", true),
        ("@detectXSS", b"hello", false),
        ("@endsWith .php", b"index.php", true),
        ("@endsWith .php", b"index.html", false),
        ("@eq 5", b"5", true),
        ("@eq 5", b"x", false),
        ("@ge 5", b"5", true),
        ("@ge 5", b"4", false),
        ("@gt 5", b"6", true),
        ("@gt 5", b"5", false),
        ("@ipMatch 10.0.0.0/8,::1", b"10.1.2.3", true),
        ("@ipMatch 10.0.0.0/8,::1", b"::1", true),
        ("@ipMatch 10.0.0.0/8,::1", b"11.0.0.1", false),
        ("@ipMatchF testdata/nets.data", b"192.168.1.7", true),
        ("@ipMatchFromFile testdata/nets.data", b"8.8.8.8", false),
        ("@le 5", b"5", true),
        ("@le 5", b"6", false),
        ("@lt 5", b"4", true),
        ("@lt 5", b"5", false),
        ("@noMatch", b"x", false),
        ("@pm foo bar", b"xxBARxx", true),
        ("@pm foo bar", b"baz", false),
        ("@pmf testdata/phrases.data", b"has EVIL inside", true),
        ("@pmFromFile testdata/phrases.data", b"fine", false),
        ("@rx ^a+b$", b"aab\n", true),
        ("@rx (?i)select", b"SeLeCt", true),
        ("@rx \\x{e2}\\x80[\\x98\\x99]", "‘".as_bytes(), true),
        ("@rx ^a$", b"b", false),
        ("@streq abc", b"abc", true),
        ("@streq abc", b"abcd", false),
        ("@strmatch WebZIP", b"x WebZIP y", true),
        ("@strmatch WebZIP", b"webzip", false),
        ("@unconditionalMatch", b"", true),
        ("@validateByteRange 32-126", b"abc", false),
        ("@validateByteRange 32-126", b"a\x01", true),
        ("@validateUrlEncoding", b"a%2", true),
        ("@validateUrlEncoding", b"a%20", false),
        ("@validateUtf8Encoding", b"\xc0\xaf", true),
        ("@validateUtf8Encoding", "ok é".as_bytes(), false),
        ("@verifyCC \\d{13,16}", b"card 4111111111111111 x", true),
        ("@verifyCC \\d{13,16}", b"card 4111111111111112 x", false),
        ("@within GET POST", b"GET", true),
        ("@within GET POST", b"PUT", false),
        ("!@streq abc", b"abc", false),
        ("abc", b"xabcx", true),
    ];

    #[test]
    fn registry_sorted_and_every_entry_has_vectors() {
        for w in OPERATORS.windows(2) {
            assert!(
                w[0].0.to_lowercase() < w[1].0.to_lowercase(),
                "{} not sorted",
                w[1].0
            );
        }
        for (name, _) in OPERATORS {
            let tag = format!("@{name} ");
            let tag2 = format!("@{name}");
            assert!(
                VECTORS
                    .iter()
                    .any(|(s, _, _)| s.starts_with(&tag) || *s == tag2),
                "no vectors for {name}"
            );
        }
    }

    #[test]
    fn vectors() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let ctx = CompileCtx { dir };
        let st = TxData::default();
        for (spec, v, want) in VECTORS {
            let c = compile(spec, &ctx).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(
                c.op.eval(&st, v, None) != c.negated,
                *want,
                "{spec} on {v:?}"
            );
        }
    }

    use proptest::prelude::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]
        #[test]
        fn never_panic(v in proptest::prop_oneof![
            proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            "(['\"`;()#/*-]|--|or|and|select|union|1|=|<|>|script|on[a-z]+=|&#|\\\\|\x00|%|\\s)*".prop_map(String::into_bytes),
        ]) {
            let v: Vec<u8> = v;
            let ctx = CompileCtx { dir: Path::new(env!("CARGO_MANIFEST_DIR")) };
            let st = TxData::default();
            for (spec, _, _) in VECTORS {
                let c = compile(spec, &ctx).unwrap();
                let mut caps = Vec::new();
                let _ = c.op.eval(&st, &v, Some(&mut caps));
            }
        }
    }

    #[test]
    fn bad_args_fail_to_compile() {
        let ctx = CompileCtx {
            dir: Path::new("."),
        };
        assert!(compile("@rx (", &ctx).is_err());
        assert!(compile("@nope x", &ctx).is_err());
        assert!(compile("@validateByteRange 9-x", &ctx).is_err());
        assert!(compile("@ipMatch 1.2.3.4/40", &ctx).is_err());
        assert!(compile("@pmFromFile /nonexistent/file", &ctx).is_err());
    }
}
