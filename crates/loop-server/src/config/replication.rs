//! `[replication]`: how replicas of vaults are kept up and read from, and which addresses
//! the remotes that vaults sync with may have.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// Objects a replication copies at once.
    pub transfers: u32,
    /// Besides after each backup and prune, every replica is brought up to date this often.
    pub interval_minutes: u64,
    /// A replica that has not completed a replication for this long raises `replica-behind`.
    pub behind_hours: u64,
    /// A read the primary destination has not answered within this long is served from a
    /// healthy replica (only for vaults that have one).
    pub primary_timeout_secs: u64,
    /// At most this many bytes a second a replication copies to each replica (on average);
    /// none: as fast as the destinations take them.
    pub bytes_per_sec: Option<u64>,
    /// Let remotes (other servers that vaults sync with) be at loopback, private, link-local
    /// and shared addresses. Off: a tenant could otherwise make this server connect to
    /// internal services.
    pub allow_private_remotes: bool,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            transfers: 8,
            interval_minutes: 15,
            behind_hours: 24,
            primary_timeout_secs: 10,
            bytes_per_sec: None,
            allow_private_remotes: false,
        }
    }
}
