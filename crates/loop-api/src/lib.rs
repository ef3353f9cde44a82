//! `loop-api`: the wire types of `loop server`, shared by the server and its clients.
//!
//! Everything here is plain data with serde derives: [`Problem`] (the problem+json error
//! body), the JSON API's requests and responses (tenants, users, tokens, vaults, sessions,
//! audit events), and the vault protocol's [`VaultOpenRequest`] / [`VaultOpenResponse`].
//! Fields that hold one of a fixed set of values are enums ([`Role`], [`TokenPermission`],
//! [`UserStatus`], ...) that travel as the plain strings they always were, so a client cannot
//! send, nor a server answer, a value outside the set. IDs in requests are newtypes
//! ([`TenantId`], [`UserId`], [`VaultId`], ...) that check their shape as they are read.
//! [`audit::chain_hash`] is here too, so that a client can verify an exported audit log
//! without trusting the server's word.
//!
//! With the `openapi` feature every type also derives an OpenAPI schema.

#[macro_use]
mod macros;
mod agent;
pub mod audit;
mod billing;
mod branding;
mod erasure;
mod ids;
mod items;
mod jobs;
mod notify;
mod page;
mod policies;
mod privacy;
mod recovery;
mod remotes;
mod replicas;
mod residency;
pub mod schedule;
mod signup;
mod types;
mod vault;

pub use agent::*;
pub use billing::*;
pub use branding::*;
pub use erasure::*;
pub use ids::*;
pub use items::*;
pub use jobs::*;
pub use notify::*;
pub use page::*;
pub use policies::*;
pub use privacy::*;
pub use recovery::*;
pub use remotes::*;
pub use replicas::*;
pub use residency::*;
pub use signup::*;
pub use types::*;
pub use vault::*;

/// The vault protocol's version segment: `/vaults/{id}/v1/...`.
pub const VAULT_PROTOCOL: &str = "v1";
/// The header that carries the BLAKE3 hash (hex) of an uploaded object's body.
pub const CONTENT_HASH_HEADER: &str = "x-loop-content-blake3";
/// Sent with a pack read by a client that can fetch from the store itself: a destination
/// with direct transfers answers `307` to a presigned URL instead of the bytes.
pub const DIRECT_HEADER: &str = "x-loop-direct";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "loop_session";
