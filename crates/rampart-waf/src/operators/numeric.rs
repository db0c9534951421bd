//! Numeric comparisons `@eq @ge @gt @le @lt` (atoi semantics; the argument may hold macros).
use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::macros::Macro;
use crate::state::{TxData, parse_int};

/// The right-hand side: a number known at load, or text with macros read per evaluation.
#[derive(Debug)]
enum Operand {
    Const(i64),
    Expand(Macro),
}

impl Operand {
    fn parse(arg: &str) -> Operand {
        let m = Macro::parse(arg);
        match m.literal() {
            Some(lit) => Operand::Const(parse_int(lit)),
            None => Operand::Expand(m),
        }
    }

    fn value(&self, st: &TxData) -> i64 {
        match self {
            Operand::Const(n) => *n,
            Operand::Expand(m) => parse_int(&m.expand(st)),
        }
    }
}

macro_rules! num_op {
    ($name:ident, $op:tt) => {
        #[derive(Debug)]
        pub(crate) struct $name(Operand);
        impl Operator for $name {
            fn compile(arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
                Ok(Self(Operand::parse(arg)))
            }
            fn arg_macro(&self) -> Option<&Macro> {
                match &self.0 {
                    Operand::Expand(m) => Some(m),
                    Operand::Const(_) => None,
                }
            }
            fn eval(&self, st: &TxData, v: &[u8], _caps: Option<&mut Captures>) -> bool {
                parse_int(v) $op self.0.value(st)
            }
        }
    };
}
num_op!(Eq, ==);
num_op!(Ge, >=);
num_op!(Gt, >);
num_op!(Le, <=);
num_op!(Lt, <);

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn constants_and_macros_compare_as_integers() {
        let ctx = CompileCtx {
            dir: Path::new("."),
        };
        let mut st = TxData::default();
        let lt = Lt::compile("2", &ctx).unwrap();
        assert!(matches!(lt.0, Operand::Const(2)));
        assert!(lt.eval(&st, b"1", None));
        assert!(!lt.eval(&st, b" 2 ", None));
        // atoi: leading digits count, anything else is 0
        assert!(lt.eval(&st, b"abc", None));
        assert!(!Gt::compile("-1x", &ctx).unwrap().eval(&st, b"-1", None));
        let ge = Ge::compile("%{tx.threshold}", &ctx).unwrap();
        assert!(matches!(ge.0, Operand::Expand(_)));
        // an unset variable reads as 0; the operand is read at each evaluation
        assert!(ge.eval(&st, b"0", None));
        st.tx_insert("threshold", b"5");
        assert!(!ge.eval(&st, b"4", None));
        assert!(ge.eval(&st, b"5", None));
        assert!(Eq::compile("+7", &ctx).unwrap().eval(&st, b"7", None));
        assert!(
            Le::compile("%{tx.threshold}0", &ctx)
                .unwrap()
                .eval(&st, b"50", None)
        );
    }
}
