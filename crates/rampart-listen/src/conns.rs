//! Open-connection accounting: a total cap and a per-client cap (IPv6 grouped by /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::client::ip_group;

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener firewall refused the source (`deny`, or not in `allow`).
    Firewall,
    /// The source is banned.
    Banned,
    /// `limits.max_connections` reached.
    TooManyConnections,
    /// `limits.max_connections_per_ip` reached for this source.
    TooManyFromClient,
}

impl Refusal {
    /// The name used in events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Firewall => "firewall",
            Refusal::Banned => "banned",
            Refusal::TooManyConnections => "max_connections",
            Refusal::TooManyFromClient => "max_connections_per_ip",
        }
    }
}

/// Counts open connections, shared by every listener of the process.
#[derive(Debug, Default)]
pub struct ConnTracker {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Holds one connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct ConnGuard {
    tracker: Arc<ConnTracker>,
    group: IpAddr,
}

impl ConnTracker {
    /// Open connections now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Takes a place for a connection from `ip`, or says which cap refuses it.
    pub fn try_acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<ConnGuard, Refusal> {
        let group = ip_group(ip);
        if self.total.fetch_add(1, Ordering::AcqRel) >= max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::TooManyConnections);
        }
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(group).or_insert(0);
        if *n >= max_per_ip {
            drop(map);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::TooManyFromClient);
        }
        *n += 1;
        Ok(ConnGuard {
            tracker: Arc::clone(self),
            group,
        })
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut map = self
            .tracker
            .per_ip
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.group) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.group);
            }
        }
        drop(map);
        self.tracker.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_exact_and_places_come_back() {
        let t = Arc::new(ConnTracker::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let g1 = t.try_acquire(a, 3, 2).unwrap();
        let _g2 = t.try_acquire(a, 3, 2).unwrap();
        assert_eq!(
            t.try_acquire(a, 3, 2).unwrap_err(),
            Refusal::TooManyFromClient
        );
        let _g3 = t.try_acquire(b, 3, 2).unwrap();
        assert_eq!(
            t.try_acquire(b, 3, 2).unwrap_err(),
            Refusal::TooManyConnections
        );
        drop(g1);
        assert_eq!(t.open(), 2);
        assert!(t.try_acquire(a, 3, 2).is_ok());
    }

    #[test]
    fn ipv6_neighbours_share_a_place() {
        let t = Arc::new(ConnTracker::default());
        let _g = t
            .try_acquire("2001:db8::1".parse().unwrap(), 10, 1)
            .unwrap();
        assert_eq!(
            t.try_acquire("2001:db8::2".parse().unwrap(), 10, 1)
                .unwrap_err(),
            Refusal::TooManyFromClient
        );
        assert!(
            t.try_acquire("2001:db8:0:1::1".parse().unwrap(), 10, 1)
                .is_ok()
        );
    }
}
