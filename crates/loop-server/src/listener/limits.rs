//! How many connections the server holds: all clients together and per client address.
//!
//! A connection over a limit is closed right after `accept`, before any TLS work, so a
//! client that opens many connections and sends nothing cannot take every file descriptor.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Open connections, counted in total and per client.
pub(crate) struct ConnectionLimits {
    max: usize,
    max_per_client: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// A connection's place in the counts, given back when dropped.
pub(crate) struct Admission {
    limits: Arc<ConnectionLimits>,
    client: IpAddr,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Total,
    PerClient,
}

impl ConnectionLimits {
    pub(crate) fn new(max: usize, max_per_client: usize) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            max,
            max_per_client,
            open: Mutex::new(Open::default()),
        })
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Counts a new connection from `ip`, unless a limit is reached.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refusal> {
        let client = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.max {
            return Err(Refusal::Total);
        }
        let mine = open.per_client.entry(client).or_insert(0);
        if *mine >= self.max_per_client {
            return Err(Refusal::PerClient);
        }
        *mine += 1;
        open.total += 1;
        Ok(Admission {
            limits: self.clone(),
            client,
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_client.remove(&self.client);
            }
        }
    }
}

/// One client is one IPv4 address or one IPv6 /64: a single IPv6 host usually holds a
/// whole /64 and could otherwise open connections from as many addresses as it likes.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// The connection limit that fits the process's open-file limit, raising the soft limit to
/// the hard one first (the server never uses `select`, so a high limit costs nothing). A
/// quarter of the descriptors (at least 64) stay free for the database, stored objects and
/// the log, so requests on admitted connections keep working when the limit is reached.
pub(crate) fn fit_to_file_limit(wanted: usize) -> (usize, Option<u64>) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (limit.current, limit.maximum)
        && cur < max
    {
        limit.current = Some(max);
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit.current = Some(cur);
        }
    }
    let Some(files) = limit.current else {
        return (wanted, None);
    };
    let reserve = (files / 4).max(64);
    let fits = usize::try_from(files.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(1);
    (wanted.min(fits), Some(files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_client_cannot_take_more_than_its_share() {
        let limits = ConnectionLimits::new(10, 2);
        let _a = limits.admit(ip("192.0.2.1")).unwrap();
        let _b = limits.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            limits.admit(ip("192.0.2.1")).err(),
            Some(Refusal::PerClient)
        );
        assert!(
            limits.admit(ip("192.0.2.2")).is_ok(),
            "another client still gets in"
        );
    }

    #[test]
    fn the_total_holds_across_clients_and_a_closed_connection_frees_its_place() {
        let limits = ConnectionLimits::new(2, 2);
        let a = limits.admit(ip("192.0.2.1")).unwrap();
        let _b = limits.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(limits.admit(ip("192.0.2.3")).err(), Some(Refusal::Total));
        drop(a);
        assert!(limits.admit(ip("192.0.2.3")).is_ok());
    }

    #[test]
    fn addresses_of_one_ipv6_network_count_as_one_client() {
        let limits = ConnectionLimits::new(10, 1);
        let _a = limits.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            limits.admit(ip("2001:db8:1:2:ffff::9")).err(),
            Some(Refusal::PerClient)
        );
        assert!(limits.admit(ip("2001:db8:1:3::1")).is_ok());
        // An IPv4 client on a dual-stack socket is still its own IPv4 address.
        let _c = limits.admit(ip("::ffff:192.0.2.7")).unwrap();
        assert_eq!(
            limits.admit(ip("192.0.2.7")).err(),
            Some(Refusal::PerClient)
        );
    }
}
