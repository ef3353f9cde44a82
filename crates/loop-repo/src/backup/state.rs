//! The state every thread of one run shares, and the small operations on it.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::{BackupOptions, BackupProgress};
use crate::chunker::Chunker;
use crate::error::{Error, Result};
use crate::exclude::Excluder;
use crate::id::Id;
use crate::index::{Index, IndexFile};
use crate::pack::PackWriter;
use crate::repo::Repository;
use crate::tree::Tree;

/// A request to load a parent-snapshot tree, and where to send it (`None` when it cannot be
/// read). The walker sends these; the run holds the queue, so the type lives with the run.
pub(super) type TreeRequest = (Id, Sender<Option<Tree>>);

/// What the snapshot's summary counts.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) files_new: AtomicU64,
    pub(super) files_changed: AtomicU64,
    pub(super) files_unmodified: AtomicU64,
    pub(super) dirs: AtomicU64,
    pub(super) data_blobs: AtomicU64,
    pub(super) tree_blobs: AtomicU64,
    pub(super) data_added: AtomicU64,
    pub(super) data_added_packed: AtomicU64,
}

/// The packs stored since the last index file.
pub(super) struct IndexState {
    pub(super) current: IndexFile,
    pub(super) last_flush: Instant,
}

/// Shards of [`Run::pending`].
const PENDING_SHARDS: usize = 256;

/// One backup run, shared by reference between all its threads.
pub(super) struct Run<'a> {
    pub(super) repo: &'a Repository,
    pub(super) index: &'a Index,
    pub(super) chunker: Chunker,
    pub(super) excluder: Excluder,
    pub(super) one_file_system: bool,
    pub(super) dry_run: bool,
    pub(super) index_flush: Duration,
    pub(super) progress: &'a BackupProgress,
    /// Blobs queued this run, sharded by the first byte of their ID (IDs are uniformly
    /// distributed): a shard that grows reallocates 1/256 of the set, so a run that adds a
    /// million blobs never holds the whole set twice during a resize, and threads seldom
    /// wait on the same lock.
    pending: Box<[Mutex<HashSet<Id>>]>,
    pub(super) counters: Counters,
    pub(super) failure: Mutex<Option<Error>>,
    pub(super) failed: AtomicBool,
    pub(super) unreadable: Mutex<Vec<String>>,
    pub(super) changed: Mutex<Vec<String>>,
    pub(super) index_state: Mutex<IndexState>,
    /// The open pack of each blob kind: `[data, tree]`.
    pub(super) open_packs: [Mutex<Option<PackWriter>>; 2],
    pub(super) prefetch: Mutex<Option<Sender<TreeRequest>>>,
    /// Chunk buffers handed from hashers to packers and back. Reusing them keeps the
    /// allocator from fragmenting under megabyte-sized buffers freed at a high rate, which
    /// otherwise costs tens of megabytes of peak memory.
    buffers: Mutex<Vec<Vec<u8>>>,
    /// Per pack of the index (by number): whether this snapshot uses a blob in it.
    pub(super) relied: Vec<AtomicBool>,
    /// Packs this run stored.
    pub(super) written: Mutex<Vec<Id>>,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        repo: &'a Repository,
        index: &'a Index,
        opts: &BackupOptions,
        progress: &'a BackupProgress,
        prefetch: Sender<TreeRequest>,
    ) -> Result<Run<'a>> {
        Ok(Run {
            repo,
            index,
            chunker: Chunker::new(repo.config().chunker, opts.chunk_mode),
            excluder: Excluder::new(&opts.excludes)?.with_caches(opts.exclude_caches),
            one_file_system: opts.one_file_system,
            dry_run: opts.dry_run,
            index_flush: opts.index_flush,
            progress,
            pending: (0..PENDING_SHARDS)
                .map(|_| Mutex::new(HashSet::new()))
                .collect(),
            counters: Counters::default(),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
            unreadable: Mutex::new(Vec::new()),
            changed: Mutex::new(Vec::new()),
            index_state: Mutex::new(IndexState {
                current: IndexFile::default(),
                last_flush: Instant::now(),
            }),
            open_packs: [Mutex::new(None), Mutex::new(None)],
            buffers: Mutex::new(Vec::new()),
            prefetch: Mutex::new(Some(prefetch)),
            relied: index
                .pack_ids()
                .iter()
                .map(|_| AtomicBool::new(false))
                .collect(),
            written: Mutex::new(Vec::new()),
        })
    }
}

impl Run<'_> {
    /// Records the run's first failure; every thread then winds down.
    pub(super) fn fail(&self, e: Error) {
        let mut f = self.failure.lock().expect("failure mutex");
        if f.is_none() {
            *f = Some(e);
        }
        self.failed.store(true, Ordering::SeqCst);
    }

    pub(super) fn stopped(&self) -> bool {
        self.failed.load(Ordering::Relaxed) || self.progress.cancel.load(Ordering::Relaxed)
    }

    pub(super) fn buffer_from(&self, data: &[u8]) -> Vec<u8> {
        let mut b = self
            .buffers
            .lock()
            .expect("buffer pool")
            .pop()
            .unwrap_or_default();
        b.clear();
        b.extend_from_slice(data);
        b
    }

    pub(super) fn recycle(&self, b: Vec<u8>) {
        let mut pool = self.buffers.lock().expect("buffer pool");
        if pool.len() < 8 {
            pool.push(b);
        }
    }

    /// True when this blob must be stored: not in the index and not already queued this run.
    pub(super) fn want_blob(&self, id: &Id) -> bool {
        !self.in_index(id) && self.pending_shard(id).insert(*id)
    }

    pub(super) fn known(&self, id: &Id) -> bool {
        self.in_index(id) || self.pending_shard(id).contains(id)
    }

    fn pending_shard(&self, id: &Id) -> std::sync::MutexGuard<'_, HashSet<Id>> {
        self.pending[id.0[0] as usize % PENDING_SHARDS]
            .lock()
            .expect("pending mutex")
    }

    /// Whether the index holds `id`; if so, its pack is one this snapshot relies on.
    fn in_index(&self, id: &Id) -> bool {
        match self.index.pack_number(id) {
            Some(n) => {
                // Load first: most lookups hit a pack already marked, and a store would
                // bounce the cache line between threads.
                if !self.relied[n].load(Ordering::Relaxed) {
                    self.relied[n].store(true, Ordering::Relaxed);
                }
                true
            }
            None => false,
        }
    }

    pub(super) fn warn_unreadable(&self, path: &Path, e: &dyn std::fmt::Display) {
        self.progress.errors.fetch_add(1, Ordering::Relaxed);
        self.unreadable
            .lock()
            .expect("warnings mutex")
            .push(format!("{}: {e}", path.display()));
    }
}
