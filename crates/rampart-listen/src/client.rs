//! The client's address: the TCP peer, or, behind trusted proxies, the first untrusted hop of
//! `X-Forwarded-For` read from the right.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use http::HeaderMap;
use rampart_config::{CidrList, normalize_ip};

/// The address a request is attributed to (limits, bans, logs, `allow_from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The key per-IP limits and bans group by: the IPv4 address, or the IPv6 /64.
pub fn ip_group(ip: IpAddr) -> IpAddr {
    match normalize_ip(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// What the forwarding headers of a request say, judged against the listener's trusted proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedChain {
    /// The TCP peer.
    pub peer: IpAddr,
    /// Whether the peer is a trusted proxy (its forwarding headers are believed).
    pub peer_trusted: bool,
    /// The client address the request is attributed to.
    pub client: ClientAddr,
}

impl ForwardedChain {
    /// Resolves the client address of a request from `peer` and its `X-Forwarded-For` headers.
    pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &CidrList) -> ForwardedChain {
        let peer = normalize_ip(peer);
        if trusted.is_empty() || !trusted.contains(peer) {
            return ForwardedChain {
                peer,
                peer_trusted: false,
                client: ClientAddr(peer),
            };
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) => {
                    client = ip;
                    if !trusted.contains(ip) {
                        break;
                    }
                }
                // A hop we cannot read ends what we can believe; the last hop read stands.
                None => break,
            }
        }
        ForwardedChain {
            peer,
            peer_trusted: true,
            client: ClientAddr(client),
        }
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(normalize_ip(ip));
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let end = rest.find(']')?;
        return rest[..end].parse::<IpAddr>().ok().map(normalize_ip);
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn trusted(list: &[&str]) -> CidrList {
        CidrList(list.iter().map(|c| c.parse().unwrap()).collect())
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let c = ForwardedChain::resolve(
            "198.51.100.7".parse().unwrap(),
            &headers(&["1.1.1.1"]),
            &trusted(&["10.0.0.0/8"]),
        );
        assert_eq!(c.client.0, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert!(!c.peer_trusted);
    }

    #[test]
    fn first_untrusted_hop_from_the_right_is_the_client() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&["6.6.6.6, 203.0.113.5", "10.1.1.1"]);
        let c = ForwardedChain::resolve("10.0.0.2".parse().unwrap(), &h, &t);
        assert_eq!(c.client.0, "203.0.113.5".parse::<IpAddr>().unwrap());
        assert!(c.peer_trusted);
    }

    #[test]
    fn garbage_hop_stops_the_walk() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&["6.6.6.6, not-an-ip, 10.2.2.2"]);
        let c = ForwardedChain::resolve("10.0.0.2".parse().unwrap(), &h, &t);
        assert_eq!(c.client.0, "10.2.2.2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ports_and_brackets_and_mapped_addresses() {
        assert_eq!(
            parse_hop("[2001:db8::1]:443"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            parse_hop("192.0.2.1:8080"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            parse_hop("::ffff:192.0.2.1"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(parse_hop("unknown"), None);
    }

    #[test]
    fn ipv6_groups_by_64() {
        assert_eq!(
            ip_group("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            ip_group("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_forwarded_for_value_resolves_without_panic(value in "[ -~]{0,120}") {
            let mut h = HeaderMap::new();
            if let Ok(v) = value.parse() {
                h.insert("x-forwarded-for", v);
            }
            let trusted = CidrList(vec!["127.0.0.0/8".parse().unwrap()]);
            let c = ForwardedChain::resolve("127.0.0.1".parse().unwrap(), &h, &trusted);
            prop_assert!(c.peer_trusted);
        }
    }
}
