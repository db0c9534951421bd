//! Decisions and the response headers they produce.

use std::fmt::Write as _;

use crate::policy::Policy;

/// The outcome of one policy for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// The request fits the budget; one unit was taken.
    Allowed {
        /// The policy's burst (the `q` of `RateLimit-Policy`).
        limit: u32,
        /// Requests that could still arrive at this instant.
        remaining: u32,
        /// Seconds (rounded up) until the bucket is full again.
        reset: u64,
    },
    /// The request is over budget; nothing was taken. Answer 429.
    Limited {
        /// Seconds (rounded up, at least 1) until one request will be admitted again.
        retry_after: u64,
        /// The policy's burst.
        limit: u32,
        /// Seconds (rounded up) until the bucket is full again.
        reset: u64,
    },
    /// The shared store could not be asked. The policy's `fail_open` is copied here: `true`
    /// means let the request through (and count it in metrics), `false` means answer 503.
    Unavailable {
        /// Copy of the policy's `fail_open`.
        fail_open: bool,
    },
}

impl RateDecision {
    /// Whether the request may go on: `Allowed`, or `Unavailable` with `fail_open`.
    pub fn is_allowed(&self) -> bool {
        match self {
            RateDecision::Allowed { .. } => true,
            RateDecision::Limited { .. } => false,
            RateDecision::Unavailable { fail_open } => *fail_open,
        }
    }

    /// `Retry-After` seconds for a refusal (`None` when allowed). A fail-closed outage
    /// suggests 1 s.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            RateDecision::Allowed { .. } => None,
            RateDecision::Limited { retry_after, .. } => Some(*retry_after),
            RateDecision::Unavailable { fail_open } => (!fail_open).then_some(1),
        }
    }

    pub(crate) fn allowed(policy: &Policy, ahead: u64) -> Self {
        // `ahead` = new TAT - now <= tolerance, so the division is at most burst - 1.
        let room = policy.tolerance_nanos().saturating_sub(ahead) / policy.interval_nanos();
        RateDecision::Allowed {
            limit: policy.burst(),
            remaining: u32::try_from(room).unwrap_or(u32::MAX).min(policy.burst()),
            reset: ceil_secs(ahead),
        }
    }

    pub(crate) fn limited(policy: &Policy, wait: u64, drain: u64) -> Self {
        RateDecision::Limited {
            retry_after: ceil_secs(wait).max(1),
            limit: policy.burst(),
            reset: ceil_secs(drain).max(1),
        }
    }
}

pub(crate) fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

/// The outcome of all policies of one request phase ([`crate::Limiter::check_all`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateVerdict {
    /// Every policy admitted the request (or failed open); one decision per policy, in order.
    Allowed(Vec<RateDecision>),
    /// The policy at `index` refused: answer 429 with [`RateLimitHeaders`] of that policy.
    Limited {
        /// Index of the refusing policy in the list given to `check_all`.
        index: usize,
        /// Its decision (a `Limited`).
        decision: RateDecision,
    },
    /// The policy at `index` could not be checked and does not fail open: answer 503.
    Unavailable {
        /// Index of the policy in the list given to `check_all`.
        index: usize,
    },
}

impl RateVerdict {
    /// Whether the request may go on.
    pub fn is_allowed(&self) -> bool {
        matches!(self, RateVerdict::Allowed(_))
    }

    /// The headers to send: every policy's `RateLimit` on success, the refusing policy's
    /// with `Retry-After` on refusal, only `Retry-After: 1` on a fail-closed outage.
    /// `policies` is the list given to `check_all`.
    pub fn headers(&self, policies: &[&Policy]) -> RateLimitHeaders {
        match self {
            RateVerdict::Allowed(ds) => {
                RateLimitHeaders::render(policies.iter().copied().zip(ds.iter().copied()))
            }
            RateVerdict::Limited { index, decision } => match policies.get(*index) {
                Some(p) => RateLimitHeaders::render([(*p, *decision)]),
                None => RateLimitHeaders {
                    retry_after: decision.retry_after(),
                    ..RateLimitHeaders::default()
                },
            },
            RateVerdict::Unavailable { .. } => RateLimitHeaders {
                retry_after: Some(1),
                ..RateLimitHeaders::default()
            },
        }
    }
}

/// Header values per draft-ietf-httpapi-ratelimit-headers (structured-field lists).
///
/// `RateLimit-Policy: "name";q=<burst>;w=<seconds to refill>` and
/// `RateLimit: "name";r=<remaining>;t=<seconds until full>`; several policies are joined
/// with `, `. Empty strings mean "send no such header".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// Value of `RateLimit` (empty: omit the header).
    pub rate_limit: String,
    /// Value of `RateLimit-Policy` (empty: omit the header).
    pub rate_limit_policy: String,
    /// Value of `Retry-After` in seconds, when refused.
    pub retry_after: Option<u64>,
}

impl RateLimitHeaders {
    /// Renders the headers of several (policy, decision) pairs. `Unavailable` decisions add
    /// nothing; the largest `Retry-After` of the refusals wins.
    pub fn render<'a>(pairs: impl IntoIterator<Item = (&'a Policy, RateDecision)>) -> Self {
        let mut out = RateLimitHeaders::default();
        for (policy, decision) in pairs {
            let (remaining, reset) = match decision {
                RateDecision::Allowed {
                    remaining, reset, ..
                } => (remaining, reset),
                RateDecision::Limited { reset, .. } => (0, reset),
                RateDecision::Unavailable { .. } => {
                    out.retry_after = out.retry_after.max(decision.retry_after());
                    continue;
                }
            };
            out.retry_after = out.retry_after.max(decision.retry_after());
            if !out.rate_limit.is_empty() {
                out.rate_limit.push_str(", ");
                out.rate_limit_policy.push_str(", ");
            }
            push_sf_string(&mut out.rate_limit, policy.name());
            let _ = write!(out.rate_limit, ";r={remaining};t={reset}");
            push_sf_string(&mut out.rate_limit_policy, policy.name());
            let _ = write!(
                out.rate_limit_policy,
                ";q={};w={}",
                policy.burst(),
                policy.window_seconds()
            );
        }
        out
    }

    /// The `Retry-After` value as header text, if any.
    pub fn retry_after_value(&self) -> Option<String> {
        self.retry_after.map(|s| s.to_string())
    }
}

/// Writes an RFC 8941 sf-string: printable ASCII, `"` and `\` escaped, others replaced by `?`.
fn push_sf_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_structured_fields() {
        let a = Policy::parse("per-ip", "ip", "100/m", 100, true).unwrap();
        let b = Policy::parse("we\"ird\u{e9}", "user", "10/s", 20, true).unwrap();
        let h = RateLimitHeaders::render([
            (
                &a,
                RateDecision::Allowed {
                    limit: 100,
                    remaining: 42,
                    reset: 3,
                },
            ),
            (
                &b,
                RateDecision::Limited {
                    retry_after: 1,
                    limit: 20,
                    reset: 2,
                },
            ),
        ]);
        assert_eq!(h.rate_limit, "\"per-ip\";r=42;t=3, \"we\\\"ird?\";r=0;t=2");
        assert_eq!(
            h.rate_limit_policy,
            "\"per-ip\";q=100;w=60, \"we\\\"ird?\";q=20;w=2"
        );
        assert_eq!(h.retry_after_value().as_deref(), Some("1"));
    }

    #[test]
    fn verdict_headers() {
        let a = Policy::parse("a", "ip", "1/s", 1, false).unwrap();
        let v = RateVerdict::Unavailable { index: 0 };
        assert_eq!(v.headers(&[&a]).retry_after, Some(1));
        let v = RateVerdict::Limited {
            index: 5,
            decision: RateDecision::Limited {
                retry_after: 4,
                limit: 1,
                reset: 4,
            },
        };
        assert_eq!(v.headers(&[&a]).retry_after, Some(4));
        assert!(!v.is_allowed());
    }
}
