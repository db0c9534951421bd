//! Numeric comparisons `@eq @ge @gt @le @lt` (atoi semantics; the argument may hold macros).
use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::macros::Macro;
use crate::state::{TxData, parse_int};

macro_rules! num_op {
    ($name:ident, $op:tt) => {
        #[derive(Debug)]
        pub(crate) struct $name(Macro);
        impl Operator for $name {
            fn compile(arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
                Ok(Self(Macro::parse(arg)))
            }
            fn eval(&self, st: &TxData, v: &[u8], _caps: Option<&mut Captures>) -> bool {
                parse_int(v) $op parse_int(&self.0.expand(st))
            }
        }
    };
}
num_op!(Eq, ==);
num_op!(Ge, >=);
num_op!(Gt, >);
num_op!(Le, <=);
num_op!(Lt, <);
