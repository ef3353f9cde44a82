//! `loop-repo`: the Loop Backup repository engine.
//!
//! A repository holds encrypted, deduplicated, compressed snapshots on any [`Storage`]
//! (local disk, S3, ...). Start with [`Repository::init`] or [`Repository::open`], then:
//!
//! - [`backup::run`] walks paths and writes a snapshot;
//! - [`restore::run`] writes a snapshot's files back;
//! - [`check::run`], [`forget::plan`] / [`forget::execute`] and [`prune::plan`] /
//!   [`prune::execute`] for maintenance, and [`repair::index`] for an index file that was lost
//!   or damaged.
//!
//! The on-storage format is described in `docs/FORMAT.md`; each module's doc comment sketches
//! the byte layout it owns. The engine has no global state: every setting arrives as a value.

#![warn(unreachable_pub)]

// Operations: what a client runs against a repository.
pub mod backup;
pub mod browse;
pub mod check;
pub mod forget;
pub mod prune;
pub mod repair;
pub mod restore;

// The on-storage format, public so that servers can check uploads, and so that the
// known-answer tests and benchmarks can reach each layer.
pub mod chunker;
pub mod crypto;
pub mod format;
pub mod index;
pub mod keys;
pub mod pack;
pub mod snapshot;
pub mod tree;

// Bandwidth limits, which any storage can be wrapped in.
pub mod pace;

// Everything else is the engine's own.
mod cache;
mod error;
mod exclude;
mod fsmeta;
mod id;
mod locks;
mod repo;
mod storage;
#[cfg(test)]
#[allow(unreachable_pub)]
mod testutil;
mod util;

pub use cache::{CacheDir, UNUSED_CACHE_DAYS, caches, remove_unused_caches};
pub use error::{Error, Result, one_line};
pub use exclude::literal_pattern;
pub use id::Id;
pub use repo::{InitOptions, KeyInfo, RepoConfig, Repository, SnapshotList};
pub use storage::{FileKind, ObjectInfo, ObjectStorage, RetryBudget, S3Options, Storage};
pub use util::human_bytes;
