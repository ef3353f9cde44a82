//! `loop-server`: the multi-tenant Loop Backup service.
//!
//! [`Application::build`] takes a [`Config`] and returns a bound, ready service (tests start
//! it on port 0); [`Application::run`] serves HTTPS until a signal. Inside:
//!
//! - `routes/`: the JSON API (`/api/v1`, with its generated OpenAPI document) and the vault
//!   protocol (`/vaults/{id}/v1`), which `loop` uses as a repository backend;
//! - `auth`: sessions, tokens and the one authorization check ([`auth::Caller`]);
//! - `db/`: all SQL, with the audit log's hash chain appended in the same transaction as
//!   each change;
//! - `erasure`: crypto-shredding of a tenant ([`erasure::erase_tenant`]);
//! - `keys`: the server master key → tenant key → vault key chain of managed vaults;
//! - `destinations`: where vaults live (local disk, S3);
//! - `mail`: the outbox of e-mail (invitations, address confirmations) and its SMTP sender;
//! - `vault_objects`: every change of a vault object claims its row first, for the vault
//!   protocol and the server's own jobs alike;
//! - `metrics`: `/metrics` for Prometheus;
//! - `usage`: recomputing vaults' usage from their destinations (`loop server reconcile`).

mod access_log;
pub mod accounts;
pub mod auth;
pub mod billing;
pub mod branding;
pub mod codes;
pub mod config;
pub mod db;
pub mod destinations;
pub mod directory;
pub mod domain;
pub mod enrolment;
pub mod erasure;
pub mod error;
pub mod exports;
mod fsutil;
pub mod items;
pub mod jobs;
pub mod keys;
mod listener;
pub mod logging;
pub mod mail;
pub mod managed_keys;
pub mod metrics;
pub mod notify;
pub mod pages;
pub mod person;
pub mod placement;
pub mod policies;
pub mod privacy;
mod probes;
pub mod records;
pub mod replication;
pub mod residency;
pub mod rewrap;
mod routes;
pub mod signup;
mod startup;
pub mod state;
pub mod tenancy;
pub mod tls;
pub mod tokens;
pub mod usage;
pub mod vault_objects;
pub mod vaults;
pub mod zone;

pub use config::Config;
pub use logging::init_logging;
pub use routes::api as api_routes;
pub use startup::{Application, StartError};
