//! Backup: walk paths, chunk, deduplicate, compress, encrypt, upload, and record a snapshot.
//!
//! The pipeline is a set of threads joined by bounded channels, so every stage overlaps and
//! memory stays bounded:
//!
//! ```text
//! walker ──files──▶ hashers (read, chunk, keyed BLAKE3, dedup) ──new blobs──▶ packers
//!    │  ▲               │ chunk IDs                                (zstd, AES-GCM)
//!    │  └─ prefetchers (parent snapshot's trees, loaded ahead of the walker)   │
//!    └──directories──▶ finalizer (waits for children, writes trees) ──tree blobs──┘
//!                                         packers ──full pack──▶ storage, then index
//! ```
//!
//! Packers compress in parallel and append to one shared open pack per blob kind (trees and
//! data go to separate packs, so the small tree packs stay cheap to read); the packer that
//! fills a pack uploads it. At most one open pack per kind plus one pack per packer being
//! uploaded is in memory. Chunks of at most 64 KiB (most files of a typical tree) skip the
//! hand-over: the hasher that cut one compresses and packs it itself.
//!
//! The walker never waits for file contents: it hands files to the hashers (a run of small
//! files of one directory as one job, a large file alone) and each finished directory
//! listing to the finalizer, which receives directories in post-order and so always
//! has a directory's subdirectories done before the directory itself. Unchanged files (same
//! size, mtime, ctime and inode as in the parent snapshot) are not read at all.
//!
//! Crash safety: packs are uploaded before the index files that name them, and index files
//! before the snapshot. A killed backup leaves packs (and maybe index files) but no snapshot;
//! `check` accepts that, and the next backup reuses every indexed blob, so it resumes.
//!
//! # Stages
//!
//! [`run`] hands each stage's output to the next:
//!
//! ```text
//! setup ──roots, lock, index, parent tree──▶ pipeline ──root tree ID──▶ finish ──▶ snapshot
//! ```
//!
//! - `setup.rs` checks the options, takes the backup lock, loads the index and picks the
//!   parent snapshot.
//! - `state.rs` holds what every thread of one run shares: counters, the deduplication set,
//!   the first failure, the open packs.
//! - `pipeline.rs` starts the threads above and wires their channels.
//! - `walk.rs` is the walker (and `scan.rs` the optional count ahead of it, for an ETA).
//! - `hasher.rs` reads files and standard input through one chunk loop: read, cut, hash,
//!   deduplicate.
//! - `finalizer.rs` turns finished directories into trees.
//! - `packer.rs` compresses blobs into packs, uploads them and writes index files.
//! - `finish.rs` flushes the last index file, checks that the lock marker and every pack the
//!   snapshot relies on are still there, and saves the snapshot.

mod finalizer;
mod finish;
mod hasher;
mod packer;
mod pipeline;
mod scan;
mod setup;
mod state;
#[cfg(test)]
mod tests;
mod walk;

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Local};

use crate::chunker::ChunkMode;
use crate::error::Result;
use crate::id::Id;
use crate::repo::Repository;
use crate::snapshot::Snapshot;

use self::setup::Setup;
use self::state::Run;

/// Which snapshot to compare against.
#[derive(Clone, Debug, Default)]
pub enum ParentChoice {
    /// The newest snapshot with the same host and paths.
    #[default]
    Auto,
    None,
    Id(Id),
}

/// A stream to back up as one file (`--stdin`).
pub struct StdinSource {
    pub name: String,
    pub reader: Box<dyn Read + Send>,
}

/// Everything a backup run needs to know.
pub struct BackupOptions {
    pub paths: Vec<PathBuf>,
    pub excludes: Vec<String>,
    /// Skip the contents of directories tagged as caches (`CACHEDIR.TAG`), all but the tag.
    pub exclude_caches: bool,
    pub one_file_system: bool,
    pub tags: Vec<String>,
    pub host: String,
    pub user: String,
    pub parent: ParentChoice,
    pub dry_run: bool,
    pub chunk_mode: ChunkMode,
    /// Hashing and packing threads each; 0 means one per core.
    pub threads: usize,
    /// Threads that load the parent snapshot's trees ahead of the walker; 0 means as many as
    /// `threads` (at least 2). Raise it for a store with per-request latency (a server).
    pub tree_fetchers: usize,
    /// Write an index file at least this often, so an interrupted run can resume.
    pub index_flush: Duration,
    pub stdin: Option<StdinSource>,
    /// The snapshot time; now when unset.
    pub time: Option<DateTime<FixedOffset>>,
    /// Count files and bytes up front so progress can show an ETA.
    pub scan: bool,
}

/// How often a backup writes an index file of the packs stored since the last one, by
/// default: what an interrupted backup loses at most (docs/FORMAT.md, docs/OPERATIONS.md).
pub const INDEX_FLUSH: Duration = Duration::from_secs(30);

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            paths: Vec::new(),
            excludes: Vec::new(),
            exclude_caches: false,
            one_file_system: false,
            tags: Vec::new(),
            host: String::new(),
            user: String::new(),
            parent: ParentChoice::Auto,
            dry_run: false,
            chunk_mode: ChunkMode::ContentDefined,
            threads: 0,
            tree_fetchers: 0,
            index_flush: INDEX_FLUSH,
            stdin: None,
            time: None,
            scan: false,
        }
    }
}

/// Live counters a progress display can poll.
#[derive(Default)]
pub struct BackupProgress {
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_total: AtomicU64,
    pub bytes_total: AtomicU64,
    pub scan_finished: AtomicBool,
    pub bytes_uploaded: AtomicU64,
    pub errors: AtomicU64,
    /// Set by the caller (for example on Ctrl-C) to stop the run early.
    pub cancel: AtomicBool,
}

/// What a run produced.
#[derive(Debug)]
pub struct BackupResult {
    /// None for a dry run.
    pub snapshot_id: Option<Id>,
    pub snapshot: Snapshot,
    /// Files that could not be read (the run still completed: exit code 3).
    pub unreadable: Vec<String>,
    /// Files that changed while they were read (what was read is stored).
    pub changed_while_reading: Vec<String>,
    /// Problems that did not stop the run (for example a damaged index file).
    pub warnings: Vec<String>,
}

/// Runs one backup. See the module documentation for the pipeline.
pub fn run(
    repo: &Repository,
    mut opts: BackupOptions,
    progress: &BackupProgress,
) -> Result<BackupResult> {
    let start = Local::now();
    let (setup, index) = Setup::prepare(repo, &opts)?;
    let (prefetch_tx, prefetch_rx) = crossbeam_channel::unbounded();
    let run = Run::new(repo, &index, &opts, progress, prefetch_tx)?;
    let stdin = opts.stdin.take();
    let root = pipeline::run(
        &run,
        &setup.roots,
        setup.parent_root.as_ref(),
        stdin,
        &opts,
        prefetch_rx,
    )?;
    finish::finish(&run, root, setup, opts, start)
}
