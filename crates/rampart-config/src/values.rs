//! Value types of the config file: durations as strings, CIDR blocks, origins.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// A duration written as a string: a whole number followed by a unit (`ms`, `s`, `m`, `h`, `d`),
/// several parts allowed (`"1h30m"`). Bare numbers are refused so that no one has to guess the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurationStr(pub Duration);

impl DurationStr {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for DurationStr {
    fn from(d: Duration) -> Self {
        DurationStr(d)
    }
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {why} (write it like \"500ms\", \"10s\", \"15m\", \"7d\")")]
pub struct DurationError {
    input: String,
    why: &'static str,
}

impl FromStr for DurationStr {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| DurationError {
            input: s.chars().take(64).collect(),
            why,
        };
        let text = s.trim();
        if text.is_empty() {
            return Err(err("empty"));
        }
        let bytes = text.as_bytes();
        let mut total: u128 = 0;
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(err("expected a number"));
            }
            let number: u128 = text[start..i]
                .parse()
                .map_err(|_| err("number too large"))?;
            let unit_start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let millis_per_unit: u128 = match &text[unit_start..i] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "" => return Err(err("missing unit")),
                _ => return Err(err("unknown unit")),
            };
            total = number
                .checked_mul(millis_per_unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| err("too large"))?;
        }
        // Ten years is far beyond any timeout or lifetime Rampart has.
        if total > 10 * 365 * 86_400_000 {
            return Err(err("too large"));
        }
        Ok(DurationStr(Duration::from_millis(total as u64)))
    }
}

impl fmt::Display for DurationStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (unit, size) in [
            ("d", 86_400_000u128),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms != 0 && ms % size == 0 {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl<'de> Deserialize<'de> for DurationStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl Serialize for DurationStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A CIDR block, or a single address (read as /32 or /128). IPv4-mapped IPv6 blocks are
/// normalized to IPv4 so that `::ffff:10.0.0.0/104` and `10.0.0.0/8` mean the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(pub IpNet);

impl Cidr {
    /// Whether the (normalized) address lies in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&normalize_ip(ip))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are the IPv4 address they carry.
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let net = if s.contains('/') {
            s.parse::<IpNet>().map_err(|_| {
                format!(
                    "invalid CIDR block {s:?} (write it like \"10.0.0.0/8\" or \"2001:db8::/32\")"
                )
            })?
        } else {
            let ip: IpAddr = s.parse().map_err(|_| {
                format!("invalid address {s:?} (write an IP address or a CIDR block)")
            })?;
            IpNet::from(ip)
        };
        let net = match net {
            IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                Some(v4) if v6.prefix_len() >= 96 => IpNet::V4(
                    ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_err(|e| e.to_string())?,
                ),
                _ => net,
            },
            v4 => v4,
        };
        if net.network() != net.addr() {
            return Err(format!(
                "{s:?} has host bits set; did you mean \"{}\"?",
                net.trunc()
            ));
        }
        Ok(Cidr(net))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A set of CIDR blocks. Lists in configs are short, so a scan is as fast as a trie here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CidrList(pub Vec<Cidr>);

impl CidrList {
    /// Whether any block holds the address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = normalize_ip(ip);
        self.0.iter().any(|c| c.0.contains(&ip))
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One or several values: `upstream = "http://a"` or `upstream = ["http://a", "http://b"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list of values.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            "15m".parse::<DurationStr>().unwrap().get(),
            Duration::from_secs(900)
        );
        assert_eq!(
            "1h30m".parse::<DurationStr>().unwrap().get(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            "250ms".parse::<DurationStr>().unwrap().get(),
            Duration::from_millis(250)
        );
        assert_eq!(
            "7d".parse::<DurationStr>().unwrap().get(),
            Duration::from_secs(7 * 86400)
        );
        for bad in [
            "",
            "10",
            "10x",
            "m",
            "-5s",
            "1.5s",
            "99999999999999999999999s",
            "4000d",
        ] {
            assert!(
                bad.parse::<DurationStr>().is_err(),
                "{bad} should be refused"
            );
        }
        assert_eq!(DurationStr(Duration::from_secs(900)).to_string(), "15m");
        assert_eq!(
            DurationStr(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
    }

    #[test]
    fn cidrs_normalize_and_refuse_host_bits() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let single: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(single.to_string(), "192.0.2.7/32");
        let mapped: Cidr = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(mapped.to_string(), "10.0.0.0/8");
        assert!(
            "10.0.0.1/8"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("10.0.0.0/8")
        );
        assert!("not-an-ip".parse::<Cidr>().is_err());
    }
}
