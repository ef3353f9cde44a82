//! `[database]`: the metadata database every node of the service shares.

use serde::Deserialize;

use super::SecretString;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (default: `sqlite://DATA_DIR/loop.db`, one node only) or
    /// `postgres://USER:PASSWORD@HOST:PORT/NAME` (any number of nodes). Secret: it may carry
    /// a password, so it never prints.
    pub url: Option<SecretString>,
    /// Connections this node keeps open at most.
    pub max_connections: u32,
    /// Connections this node keeps open at least (PostgreSQL; opened as they are needed).
    pub min_connections: u32,
    /// How long a request waits for a free connection before it fails (503).
    pub acquire_timeout_seconds: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 16,
            min_connections: 0,
            acquire_timeout_seconds: 30,
        }
    }
}
