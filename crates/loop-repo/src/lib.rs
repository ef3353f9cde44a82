//! `loop-repo`: the Loop Backup repository engine.
//!
//! A repository holds encrypted, deduplicated, compressed snapshots on any [`Storage`]
//! (local disk, S3, ...). Start with [`Repository::init`] or [`Repository::open`], then:
//!
//! - [`backup::run`] walks paths and writes a snapshot;
//! - [`restore::run`] writes a snapshot's files back;
//! - [`check::run`], [`forget::plan`] / [`forget::execute`] and [`prune::plan`] /
//!   [`prune::execute`] for maintenance.
//!
//! The on-storage format is described in `docs/FORMAT.md`; each module's doc comment sketches
//! the byte layout it owns. The engine has no global state: every setting arrives as a value.

pub mod backup;
pub mod browse;
pub mod cache;
pub mod check;
pub mod chunker;
pub mod crypto;
mod error;
pub mod exclude;
pub mod forget;
pub mod format;
pub mod fsmeta;
mod id;
pub mod index;
pub mod keys;
pub mod locks;
pub mod pack;
pub mod prune;
mod repo;
pub mod restore;
pub mod snapshot;
pub mod storage;
#[cfg(test)]
mod testutil;
pub mod tree;
pub mod util;

pub use error::{Error, Result};
pub use id::Id;
pub use repo::{InitOptions, KeyInfo, RepoConfig, Repository, SnapshotList};
pub use storage::{FileKind, ObjectStorage, RetryBudget, S3Options, Storage};
