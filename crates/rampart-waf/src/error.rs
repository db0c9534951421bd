//! Load-time errors. Request-time evaluation cannot fail.

use std::fmt;

/// A problem found while loading a rule set (caused by the operator's config, never a client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct LoadError {
    /// The file (or `origin` given to [`crate::WafEngine::from_str`]).
    pub file: String,
    /// 1-based line where the directive starts (0 when unknown).
    pub line: usize,
    /// The rule id, when the directive had one.
    pub rule_id: Option<u32>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(id) = self.rule_id {
            write!(f, ": rule {id}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A rule element (operator, transformation, action, variable) that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CompileError(pub String);

impl CompileError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl From<String> for CompileError {
    fn from(s: String) -> Self {
        Self(s)
    }
}
impl From<&str> for CompileError {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}
