//! Policies: `[[rate_limit]]` entries turned into GCRA parameters.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use crate::LimitError;

/// The period of a [`Rate`]: per second, minute or hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// `N/s`
    Second,
    /// `N/m`
    Minute,
    /// `N/h`
    Hour,
}

impl Period {
    /// The period's length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Period::Second => 1,
            Period::Minute => 60,
            Period::Hour => 3600,
        }
    }

    fn suffix(self) -> char {
        match self {
            Period::Second => 's',
            Period::Minute => 'm',
            Period::Hour => 'h',
        }
    }
}

/// A sustained rate: `count` requests per `period` (`"100/s"`, `"5/m"`, `"1000/h"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Requests allowed per period, at least 1.
    pub count: NonZeroU32,
    /// The period.
    pub period: Period,
}

impl Rate {
    /// `count` requests per `period`.
    pub fn new(count: NonZeroU32, period: Period) -> Self {
        Self { count, period }
    }

    /// Nanoseconds between two requests at the sustained rate (the GCRA emission interval),
    /// at least 1.
    pub fn interval_nanos(&self) -> u64 {
        (self.period.seconds() * 1_000_000_000 / u64::from(self.count.get())).max(1)
    }
}

impl FromStr for Rate {
    type Err = LimitError;

    /// Parses `N/s`, `N/m` or `N/h` (also `N/sec`, `N/min`, `N/hour`), surrounding spaces allowed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LimitError::InvalidRate(s.chars().take(64).collect());
        let (n, p) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        let count = NonZeroU32::new(count).ok_or_else(bad)?;
        let period = match p.trim() {
            "s" | "sec" | "second" => Period::Second,
            "m" | "min" | "minute" => Period::Minute,
            "h" | "hour" => Period::Hour,
            _ => return Err(bad()),
        };
        Ok(Self { count, period })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.period.suffix())
    }
}

/// What a policy counts by (`key = "..."` in `[[rate_limit]]`).
///
/// `ip`, `route` and `header:NAME` are known before authentication; `user`, `client` and
/// `api_key` only after it, from the verified identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The client address; IPv6 grouped by /64, IPv4-mapped IPv6 normalized to IPv4.
    Ip,
    /// The matched route's name (one budget shared by every client of the route).
    Route,
    /// The value of a request header; holds the header name, lower-case
    /// (`header:X-Tenant` → `Header("x-tenant")`).
    Header(String),
    /// The verified user id (`sub`).
    User,
    /// The verified OAuth2 client id.
    Client,
    /// The verified API key's public id (never its secret; values are hashed anyway).
    ApiKey,
}

impl KeyKind {
    /// True for kinds that are only known after authentication (`user`, `client`, `api_key`):
    /// the gateway checks these in its identity phase.
    pub fn is_identity(&self) -> bool {
        matches!(self, KeyKind::User | KeyKind::Client | KeyKind::ApiKey)
    }

    /// For `header:NAME`, the header name (lower-case) the gateway reads the value from.
    pub fn header_name(&self) -> Option<&str> {
        match self {
            KeyKind::Header(name) => Some(name),
            _ => None,
        }
    }

    /// Appends the kind as written in config (`header:NAME` with NAME as stored).
    pub(crate) fn push_tag(&self, out: &mut String) {
        let tag = match self {
            KeyKind::Ip => "ip",
            KeyKind::Route => "route",
            KeyKind::Header(name) => {
                out.push_str("header:");
                name
            }
            KeyKind::User => "user",
            KeyKind::Client => "client",
            KeyKind::ApiKey => "api_key",
        };
        out.push_str(tag);
    }
}

impl FromStr for KeyKind {
    type Err = LimitError;

    /// Parses `ip`, `route`, `header:NAME`, `user`, `client` or `api_key`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LimitError::InvalidKeyKind(s.chars().take(64).collect());
        Ok(match s {
            "ip" => KeyKind::Ip,
            "route" => KeyKind::Route,
            "user" => KeyKind::User,
            "client" => KeyKind::Client,
            "api_key" => KeyKind::ApiKey,
            _ => {
                let name = s.strip_prefix("header:").ok_or_else(bad)?;
                // RFC 9110 token characters only.
                let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
                if name.is_empty() || name.len() > 128 || !name.chars().all(token) {
                    return Err(bad());
                }
                KeyKind::Header(name.to_ascii_lowercase())
            }
        })
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.push_tag(&mut s);
        f.write_str(&s)
    }
}

/// One `[[rate_limit]]` policy, validated, with its GCRA parameters precomputed.
///
/// GCRA semantics: the emission interval is `T = period / count` and the tolerance is
/// `burst × T`. A request is admitted when, after adding `T` to the key's theoretical arrival
/// time, that time is at most `burst × T` ahead of now. So a fresh key admits exactly `burst`
/// requests at one instant and refuses the next; after that one request is admitted every `T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    name: String,
    key: KeyKind,
    rate: Rate,
    burst: u32,
    fail_open: bool,
    interval: u64,
    tolerance: u64,
}

impl Policy {
    /// Builds a policy; refuses an empty or over-long name and `burst = 0`.
    pub fn new(
        name: impl Into<String>,
        key: KeyKind,
        rate: Rate,
        burst: u32,
        fail_open: bool,
    ) -> Result<Self, LimitError> {
        let name = name.into();
        if name.is_empty() || name.len() > 128 {
            return Err(LimitError::InvalidPolicy {
                name,
                reason: "name must be 1 to 128 bytes",
            });
        }
        if name.chars().any(|c| c.is_control()) {
            return Err(LimitError::InvalidPolicy {
                name,
                reason: "name has control characters",
            });
        }
        if burst == 0 {
            return Err(LimitError::InvalidPolicy {
                name,
                reason: "burst must be at least 1",
            });
        }
        let interval = rate.interval_nanos();
        let tolerance = interval.saturating_mul(u64::from(burst));
        Ok(Self {
            name,
            key,
            rate,
            burst,
            fail_open,
            interval,
            tolerance,
        })
    }

    /// Parses the config strings of a `[[rate_limit]]` entry (`rate = "100/s"`, `key = "ip"`).
    pub fn parse(
        name: &str,
        key: &str,
        rate: &str,
        burst: u32,
        fail_open: bool,
    ) -> Result<Self, LimitError> {
        Self::new(name, key.parse()?, rate.parse()?, burst, fail_open)
    }

    /// The policy's name (`name = "..."`), shown in `RateLimit-Policy`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the policy counts by.
    pub fn key(&self) -> &KeyKind {
        &self.key
    }

    /// The sustained rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// How many requests may arrive at one instant on a fresh key.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Whether requests pass while the shared store is unreachable.
    pub fn fail_open(&self) -> bool {
        self.fail_open
    }

    /// GCRA emission interval in nanoseconds.
    pub fn interval_nanos(&self) -> u64 {
        self.interval
    }

    /// GCRA tolerance (`burst × interval`) in nanoseconds: how far the theoretical arrival time
    /// may run ahead of now.
    pub fn tolerance_nanos(&self) -> u64 {
        self.tolerance
    }

    /// The window advertised in `RateLimit-Policy` (`w`): seconds for an empty bucket to refill
    /// completely, rounded up, at least 1.
    pub fn window_seconds(&self) -> u64 {
        self.tolerance.div_ceil(1_000_000_000).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        let r: Rate = "100/s".parse().unwrap();
        assert_eq!(r.count.get(), 100);
        assert_eq!(r.period, Period::Second);
        assert_eq!(r.interval_nanos(), 10_000_000);
        assert_eq!(" 5 / m ".parse::<Rate>().unwrap().period, Period::Minute);
        assert_eq!("7/h".parse::<Rate>().unwrap().to_string(), "7/h");
        for bad in [
            "",
            "0/s",
            "-1/s",
            "10",
            "10/d",
            "x/s",
            "99999999999/s",
            "/s",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn key_kinds_parse() {
        assert_eq!("ip".parse::<KeyKind>().unwrap(), KeyKind::Ip);
        assert_eq!("api_key".parse::<KeyKind>().unwrap(), KeyKind::ApiKey);
        let h = "header:X-Tenant".parse::<KeyKind>().unwrap();
        assert_eq!(h.to_string(), "header:x-tenant");
        assert_eq!(h.header_name(), Some("x-tenant"));
        assert!(!h.is_identity());
        assert!(KeyKind::User.is_identity());
        for bad in ["", "IP", "header:", "header:a b", "header:é", "cookie"] {
            assert!(bad.parse::<KeyKind>().is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_validation() {
        assert!(Policy::parse("p", "ip", "1/s", 0, true).is_err());
        assert!(Policy::parse("", "ip", "1/s", 1, true).is_err());
        let p = Policy::parse("p", "ip", "100/m", 100, false).unwrap();
        assert_eq!(p.window_seconds(), 60);
        assert_eq!(p.tolerance_nanos(), 60_000_000_000);
    }
}
