//! `loop-agent`: the client side of `loop server`.
//!
//! - [`Connection`]: an HTTPS client that trusts the server by certificate fingerprint
//!   (`--server-fingerprint`), by a CA file (`--cacert`), or by the system's roots.
//! - [`ApiClient`]: the JSON API with a session token, one typed method per operation.
//! - [`VaultStorage`]: a [`loop_repo::Storage`] over the vault protocol, so every engine
//!   command works against `https://HOST:PORT/vaults/ID` with a token.
//! - The agent protocol (`protocol.rs`): enrolment, heartbeats, job claims and reports.

mod api;
mod billing;
mod connection;
mod endpoints;
mod privacy;
mod protocol;
mod retry;
mod vault;
mod vault_direct;

pub use api::{ApiClient, ApiError};
pub use connection::{ConnectError, Connection, Trust};
pub use endpoints::{AuditQuery, ExportFormat};
pub use vault::{SERVER_RETRY, VaultSession, VaultStorage, list_vaults, parse_vault_url};
