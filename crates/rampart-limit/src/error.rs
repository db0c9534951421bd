//! The crate's error type.

use std::net::IpAddr;

/// What went wrong in the rate-limit layer, and who caused it.
///
/// Configuration errors are caught at load time (the operator's fault); store errors happen at
/// run time (ours or the backing service's). Per-request decisions never return an error: a
/// store outage becomes [`crate::RateDecision::Unavailable`] so `fail_open` can decide.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// A `rate` value is not `N/s`, `N/m` or `N/h` with `N >= 1` (operator → config error).
    #[error("invalid rate {0:?}: expected N/s, N/m or N/h with N >= 1")]
    InvalidRate(String),
    /// A `key` value is not one of `ip`, `route`, `header:NAME`, `user`, `client`, `api_key`
    /// (operator → config error).
    #[error("invalid key {0:?}: expected ip, route, header:NAME, user, client or api_key")]
    InvalidKeyKind(String),
    /// A policy is unusable as configured, e.g. `burst = 0` (operator → config error).
    #[error("invalid rate-limit policy {name:?}: {reason}")]
    InvalidPolicy {
        /// The policy's name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A ban-policy setting is unusable, e.g. a zero half-life (operator → config error).
    #[error("invalid ban policy: {0}")]
    InvalidBanPolicy(&'static str),
    /// The shared-store URL is not `memory://`, `redis://...`, `rediss://...` or
    /// `redis+cluster://h1,h2,...` (operator → config error).
    #[error("invalid shared store url: {0}")]
    InvalidUrl(String),
    /// The shared store answered with an error or could not be reached (us → 503, or
    /// allowed through when the policy is `fail_open`).
    #[error("shared store unavailable: {0}")]
    Store(#[source] redis::RedisError),
    /// The shared store did not answer before the deadline (us → 503 / fail_open).
    #[error("shared store timed out")]
    StoreTimeout,
    /// The shared store answered something this crate did not write (us → 503 / fail_open).
    #[error("shared store replied unexpectedly: {0}")]
    StoreReply(&'static str),
    /// A Redis store was opened outside a Tokio runtime (programming error → 500).
    #[error("the shared store must be opened inside a Tokio runtime")]
    NoRuntime,
    /// A manual ban was asked for an address inside an exempt CIDR (operator → 400 / CLI error).
    #[error("{0} is inside an exempt network and cannot be banned")]
    Exempt(IpAddr),
}

impl LimitError {
    /// The HTTP status a gateway answers with when this error reaches a request.
    pub fn status(&self) -> u16 {
        match self {
            LimitError::InvalidRate(_)
            | LimitError::InvalidKeyKind(_)
            | LimitError::InvalidPolicy { .. }
            | LimitError::InvalidBanPolicy(_)
            | LimitError::InvalidUrl(_)
            | LimitError::NoRuntime => 500,
            LimitError::Store(_) | LimitError::StoreTimeout | LimitError::StoreReply(_) => 503,
            LimitError::Exempt(_) => 400,
        }
    }
}
