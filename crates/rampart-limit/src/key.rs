//! Limit keys: which bucket a request draws from.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use sha2::{Digest, Sha256};

use crate::policy::{KeyKind, Policy};

/// The network a client address is counted as: its IPv4 address, or its IPv6 /64.
///
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as the IPv4 address, so a dual-stack
/// listener cannot be used to get two budgets. Every address of one IPv6 /64 shares a budget
/// and a ban, since one host usually owns a whole /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientNet(u128);

const V4_TAG: u128 = 0xffff_0000_0000;

impl ClientNet {
    /// The network that `ip` is counted as.
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientNet(V4_TAG | u128::from(u32::from(v4))),
            IpAddr::V6(v6) => ClientNet(u128::from(v6) & !u128::from(u64::MAX)),
        }
    }

    /// The network as a CIDR: `a.b.c.d/32` or `xxxx:xxxx:xxxx:xxxx::/64`.
    pub fn to_ipnet(self) -> IpNet {
        if self.is_v4() {
            // The low 32 bits hold the address; truncation is the intent.
            let v4 = Ipv4Addr::from((self.0 & u128::from(u32::MAX)) as u32);
            IpNet::V4(Ipv4Net::from(v4))
        } else {
            match Ipv6Net::new(Ipv6Addr::from(self.0), 64) {
                Ok(n) => IpNet::V6(n),
                // 64 <= 128, so new() cannot fail; fall back to a /128 rather than panic.
                Err(_) => IpNet::V6(Ipv6Net::from(Ipv6Addr::from(self.0))),
            }
        }
    }

    /// The first address of the network (the IPv4 address itself for IPv4).
    pub fn addr(self) -> IpAddr {
        self.to_ipnet().network()
    }

    fn is_v4(self) -> bool {
        // IPv6 keys have their low 64 bits cleared; IPv4 keys carry the 0xffff tag there.
        self.0 >> 32 == 0xffff
    }
}

impl From<IpAddr> for ClientNet {
    fn from(ip: IpAddr) -> Self {
        ClientNet::from_ip(ip)
    }
}

impl fmt::Display for ClientNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_v4() {
            write!(f, "{}", self.addr())
        } else {
            write!(f, "{}", self.to_ipnet())
        }
    }
}

/// A keyed SipHash state drawn once per process.
fn hasher() -> &'static std::collections::hash_map::RandomState {
    static STATE: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    STATE.get_or_init(std::collections::hash_map::RandomState::new)
}

/// Longest key value kept verbatim; longer ones are replaced by a hash.
const MAX_PLAIN_VALUE: usize = 96;

/// The bucket a request draws from: policy name + key kind + normalized value.
///
/// Built once per request and policy. The text form is safe to use inside a Redis hash tag
/// (no `{`, `}`, control characters or spaces): values that are long, unusual or secret
/// (`api_key`) are replaced by `#` and 128 bits of their SHA-256. A keyed SipHash of the text
/// (key drawn per process) is computed once here, so map lookups do not hash again and
/// attacker-chosen values cannot aim at one hash bucket.
#[derive(Clone)]
pub struct LimitKey {
    hash: u64,
    text: Arc<str>,
}

impl LimitKey {
    /// The key for `policy` with `value`, counted by the policy's own key kind.
    ///
    /// For an `ip` policy, a value that parses as an IP address is normalized like
    /// [`LimitKey::ip`]; use [`LimitKey::ip`] when the address is at hand.
    pub fn new(policy: &Policy, value: &str) -> Self {
        Self::with_kind(policy, policy.key(), value)
    }

    /// The key for `policy` counted by `kind` (normally the policy's own kind) with `value`.
    pub fn with_kind(policy: &Policy, kind: &KeyKind, value: &str) -> Self {
        if *kind == KeyKind::Ip
            && let Ok(ip) = value.trim().parse::<IpAddr>()
        {
            return Self::build(
                policy.name(),
                kind,
                &ClientNet::from_ip(ip).to_string(),
                false,
            );
        }
        Self::build(policy.name(), kind, value, *kind == KeyKind::ApiKey)
    }

    /// The `ip` key of `policy` for client address `ip` (IPv6 grouped by /64).
    pub fn ip(policy: &Policy, ip: IpAddr) -> Self {
        Self::build(
            policy.name(),
            &KeyKind::Ip,
            &ClientNet::from_ip(ip).to_string(),
            false,
        )
    }

    fn build(policy: &str, kind: &KeyKind, value: &str, secret: bool) -> Self {
        let mut text = String::with_capacity(policy.len() + value.len().min(40) + 16);
        push_part(&mut text, policy, false);
        text.push('|');
        kind.push_tag(&mut text);
        text.push('|');
        push_part(&mut text, value, secret);
        let hash = hasher().hash_one(&text);
        Self {
            hash,
            text: Arc::from(text),
        }
    }

    /// The bucket shared by keys that find the in-memory map full. Its value part is empty,
    /// which no other key has (an empty value is hashed).
    pub(crate) fn overflow(policy: &Policy) -> Self {
        let mut text = String::with_capacity(policy.name().len() + 16);
        push_part(&mut text, policy.name(), false);
        text.push('|');
        policy.key().push_tag(&mut text);
        text.push('|');
        let hash = hasher().hash_one(&text);
        Self {
            hash,
            text: Arc::from(text),
        }
    }

    pub(crate) fn is_overflow(&self) -> bool {
        self.text.ends_with('|')
    }

    /// The key's text: `policy|kind|value`, hash-tag safe.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn plain(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '{' | '}' | '|' | '#')
}

fn push_part(out: &mut String, value: &str, secret: bool) {
    if !secret && !value.is_empty() && value.len() <= MAX_PLAIN_VALUE && value.chars().all(plain) {
        out.push_str(value);
        return;
    }
    let digest = Sha256::digest(value.as_bytes());
    out.push('#');
    for b in &digest[..16] {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
}

impl PartialEq for LimitKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.text == other.text
    }
}

impl Eq for LimitKey {}

impl Hash for LimitKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl fmt::Debug for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LimitKey").field(&self.text).finish()
    }
}

impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A `BuildHasher` for maps keyed by [`LimitKey`] or [`ClientNet`]: passes a precomputed
/// `u64` through and mixes anything else with a fixed-key FNV-1a (only used by keys that
/// already carry a keyed hash).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PrehashedState;

impl BuildHasher for PrehashedState {
    type Hasher = Prehashed;
    fn build_hasher(&self) -> Prehashed {
        Prehashed(0xcbf2_9ce4_8422_2325)
    }
}

/// See [`PrehashedState`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(kind: &str) -> Policy {
        Policy::parse("p", kind, "1/s", 1, true).unwrap()
    }

    #[test]
    fn ipv6_grouped_by_64_and_mapped_v4_normalized() {
        let p = pol("ip");
        let a = LimitKey::ip(&p, "2001:db8:1:2::1".parse().unwrap());
        let b = LimitKey::ip(&p, "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap());
        let c = LimitKey::ip(&p, "2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str(), "p|ip|2001:db8:1:2::/64");
        let v4 = LimitKey::ip(&p, "192.0.2.7".parse().unwrap());
        let mapped = LimitKey::ip(&p, "::ffff:192.0.2.7".parse().unwrap());
        assert_eq!(v4, mapped);
        assert_eq!(v4.as_str(), "p|ip|192.0.2.7");
        assert_eq!(LimitKey::new(&p, " ::ffff:192.0.2.7"), v4);
        assert_eq!(
            ClientNet::from_ip("::1".parse().unwrap()).to_string(),
            "::/64"
        );
        assert_ne!(
            ClientNet::from_ip("::".parse().unwrap()),
            ClientNet::from_ip("0.0.0.0".parse().unwrap())
        );
    }

    #[test]
    fn policies_and_kinds_separate_buckets() {
        let p = pol("user");
        let q = Policy::parse("q", "user", "1/s", 1, true).unwrap();
        assert_ne!(LimitKey::new(&p, "alice"), LimitKey::new(&q, "alice"));
        assert_ne!(
            LimitKey::new(&p, "alice"),
            LimitKey::with_kind(&p, &KeyKind::Client, "alice")
        );
    }

    proptest::proptest! {
        // Any value, of any kind, builds a key whose text stays hash-tag safe and bounded.
        #[test]
        fn any_value_builds_a_safe_key(value in ".{0,300}", kind in 0usize..6) {
            let kinds = ["ip", "route", "header:x-a", "user", "client", "api_key"];
            let p = pol(kinds[kind]);
            let k = LimitKey::new(&p, &value);
            let safe = !k.as_str().contains(['{', '}', ' ', '\n']);
            proptest::prop_assert!(safe, "unsafe key text: {:?}", k);
            proptest::prop_assert!(k.as_str().len() <= 120);
            proptest::prop_assert_eq!(k.clone(), LimitKey::new(&p, &value));
        }

        #[test]
        fn parsers_never_panic(s in ".{0,40}") {
            let _ = s.parse::<crate::Rate>();
            let _ = s.parse::<KeyKind>();
            let _ = crate::StoreUrl::parse(&s);
        }
    }

    #[test]
    fn unusual_and_secret_values_are_hashed() {
        let p = pol("header:x-k");
        for v in ["a}b", "{x}", "a b", "", "é", &"x".repeat(200), "a|b"] {
            let k = LimitKey::new(&p, v);
            let tail = k.as_str().rsplit('|').next().unwrap();
            assert!(tail.starts_with('#') && tail.len() == 33, "{k:?}");
            assert!(!k.as_str().contains(['{', '}', ' ']));
        }
        let secret = "rk_live_0123456789";
        let k = LimitKey::new(&pol("api_key"), secret);
        assert!(!k.as_str().contains(secret));
    }
}
