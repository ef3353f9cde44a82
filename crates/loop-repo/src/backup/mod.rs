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
//! uploaded is in memory.
//!
//! The walker never waits for file contents: it hands each file to a hasher and each finished
//! directory listing to the finalizer, which receives directories in post-order and so always
//! has a directory's subdirectories done before the directory itself. Unchanged files (same
//! size, mtime, ctime and inode as in the parent snapshot) are not read at all.
//!
//! Crash safety: packs are uploaded before the index files that name them, and index files
//! before the snapshot. A killed backup leaves packs (and maybe index files) but no snapshot;
//! `check` accepts that, and the next backup reuses every indexed blob, so it resumes.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Local};
use crossbeam_channel::{Receiver, Sender, bounded};

use crate::chunker::{ChunkMode, Chunker};
use crate::error::{Error, Result};
use crate::exclude::Excluder;
use crate::fsmeta::{nanos, node_from_metadata};
use crate::id::Id;
use crate::index::{Index, IndexFile};
use crate::locks::{Lock, LockKind};
use crate::pack::{BlobKind, PackWriter, encode_payload};
use crate::repo::Repository;
use crate::snapshot::{Snapshot, SnapshotFilter, Summary};
use crate::storage::FileKind;
use crate::tree::{Name, Node, NodeKind, Tree};

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

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            paths: Vec::new(),
            excludes: Vec::new(),
            one_file_system: false,
            tags: Vec::new(),
            host: String::new(),
            user: String::new(),
            parent: ParentChoice::Auto,
            dry_run: false,
            chunk_mode: ChunkMode::ContentDefined,
            threads: 0,
            tree_fetchers: 0,
            index_flush: Duration::from_secs(30),
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

// ---------------------------------------------------------------------------------------

struct FileJob {
    path: PathBuf,
    node: Node,
    reply: Sender<FileOutcome>,
}

enum FileOutcome {
    Done { content: Vec<Id>, size: u64 },
    Failed,
}

struct BlobJob {
    kind: BlobKind,
    id: Id,
    data: Vec<u8>,
}

enum Child {
    Ready(Node),
    File(Node, Receiver<FileOutcome>),
    Dir(Node, Receiver<Option<Id>>),
}

struct PendingDir {
    children: Vec<Child>,
    reply: Sender<Option<Id>>,
}

#[derive(Default)]
struct Counters {
    files_new: AtomicU64,
    files_changed: AtomicU64,
    files_unmodified: AtomicU64,
    dirs: AtomicU64,
    data_blobs: AtomicU64,
    tree_blobs: AtomicU64,
    data_added: AtomicU64,
    data_added_packed: AtomicU64,
}

/// A request to load a tree, and where to send it (`None` when it cannot be read).
type TreeRequest = (Id, Sender<Option<Tree>>);
/// A subdirectory's name and where its parent-snapshot tree will arrive.
type Prefetched = (Vec<u8>, Receiver<Option<Tree>>);

struct IndexState {
    current: IndexFile,
    last_flush: Instant,
}

struct Run<'a> {
    repo: &'a Repository,
    index: &'a Index,
    chunker: Chunker,
    excluder: Excluder,
    one_file_system: bool,
    dry_run: bool,
    index_flush: Duration,
    progress: &'a BackupProgress,
    pending: Mutex<HashSet<Id>>,
    counters: Counters,
    failure: Mutex<Option<Error>>,
    failed: AtomicBool,
    unreadable: Mutex<Vec<String>>,
    changed: Mutex<Vec<String>>,
    index_state: Mutex<IndexState>,
    /// The open pack of each blob kind: `[data, tree]`.
    open_packs: [Mutex<Option<PackWriter>>; 2],
    prefetch: Mutex<Option<Sender<TreeRequest>>>,
    /// Chunk buffers handed from hashers to packers and back. Reusing them keeps the
    /// allocator from fragmenting under megabyte-sized buffers freed at a high rate, which
    /// otherwise costs tens of megabytes of peak memory.
    buffers: Mutex<Vec<Vec<u8>>>,
    /// Per pack of the index (by number): whether this snapshot uses a blob in it.
    relied: Vec<AtomicBool>,
    /// Packs this run stored.
    written: Mutex<Vec<Id>>,
}

impl Run<'_> {
    fn fail(&self, e: Error) {
        let mut f = self.failure.lock().expect("failure mutex");
        if f.is_none() {
            *f = Some(e);
        }
        self.failed.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.failed.load(Ordering::Relaxed) || self.progress.cancel.load(Ordering::Relaxed)
    }

    fn buffer_from(&self, data: &[u8]) -> Vec<u8> {
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

    fn recycle(&self, b: Vec<u8>) {
        let mut pool = self.buffers.lock().expect("buffer pool");
        if pool.len() < 8 {
            pool.push(b);
        }
    }

    /// True when this blob must be stored: not in the index and not already queued this run.
    fn want_blob(&self, id: &Id) -> bool {
        !self.in_index(id) && self.pending.lock().expect("pending mutex").insert(*id)
    }

    fn known(&self, id: &Id) -> bool {
        self.in_index(id) || self.pending.lock().expect("pending mutex").contains(id)
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

    /// Before the snapshot is saved: the backup's marker is still there (or a prune that did
    /// not see this backup may have deleted what it wrote), and every pack the snapshot
    /// relies on, old or written by this run, still exists. A backup never reports success
    /// for a snapshot that cannot be restored.
    fn verify_relied_on(&self, lock: &Lock) -> Result<()> {
        lock.verify_held(self.repo.master())?;
        let stored: HashSet<Id> = self
            .repo
            .storage()
            .list(FileKind::Pack)?
            .iter()
            .filter_map(|o| Id::parse(&o.name).ok())
            .collect();
        let written = self.written.lock().expect("written mutex");
        let relied = self
            .relied
            .iter()
            .zip(self.index.pack_ids())
            .filter(|(r, _)| r.load(Ordering::Relaxed))
            .map(|(_, id)| id);
        let missing: Vec<&Id> = relied
            .chain(written.iter())
            .filter(|id| !stored.contains(id))
            .collect();
        if let Some(first) = missing.first() {
            return Err(Error::Invalid(format!(
                "{} pack(s) this backup relies on disappeared while it ran (first: {}); \
                 the snapshot was not saved. Run the backup again, and `loop check`",
                missing.len(),
                first.to_hex()
            )));
        }
        Ok(())
    }

    fn warn_unreadable(&self, path: &Path, e: &dyn std::fmt::Display) {
        self.progress.errors.fetch_add(1, Ordering::Relaxed);
        self.unreadable
            .lock()
            .expect("warnings mutex")
            .push(format!("{}: {e}", path.display()));
    }

    // ---- walker ----

    /// Starts loading the parent snapshot's subtrees of one directory, so they are ready by
    /// the time the walker descends. A parent tree that cannot be read only costs re-reading
    /// the files below it.
    fn prefetch_subtrees(&self, parent: Option<&Tree>) -> Vec<Prefetched> {
        let Some(parent) = parent else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let guard = self.prefetch.lock().expect("prefetch mutex");
        let Some(prefetch) = guard.as_ref() else {
            return out;
        };
        for node in &parent.nodes {
            if let (NodeKind::Dir, Some(id)) = (node.kind, node.subtree) {
                let (tx, rx) = bounded(1);
                if prefetch.send((id, tx)).is_ok() {
                    out.push((node.name.0.clone(), rx));
                }
            }
        }
        out
    }

    fn file_child(
        &self,
        path: PathBuf,
        mut node: Node,
        parent: Option<&Tree>,
        files: &Sender<FileJob>,
    ) -> Child {
        if let Some(old) = parent.and_then(|t| t.find(&node.name.0))
            && old.same_content_state(&node)
            && old.content.iter().all(|id| self.known(id))
        {
            node.content = old.content.clone();
            self.counters
                .files_unmodified
                .fetch_add(1, Ordering::Relaxed);
            self.progress.files_done.fetch_add(1, Ordering::Relaxed);
            self.progress
                .bytes_done
                .fetch_add(node.size, Ordering::Relaxed);
            return Child::Ready(node);
        }
        let is_new = parent.and_then(|t| t.find(&node.name.0)).is_none();
        if is_new {
            self.counters.files_new.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.files_changed.fetch_add(1, Ordering::Relaxed);
        }
        let (tx, rx) = bounded(1);
        let job = FileJob {
            path,
            node: node.clone(),
            reply: tx,
        };
        if files.send(job).is_err() {
            self.fail(Error::Interrupted);
        }
        Child::File(node, rx)
    }

    /// Lists one directory, queues its files, recurses into subdirectories and queues the
    /// directory for the finalizer. Returns where its tree ID will arrive.
    fn walk_dir(
        &self,
        path: &Path,
        parent: Option<Tree>,
        root_dev: u64,
        files: &Sender<FileJob>,
        dirs: &Sender<PendingDir>,
    ) -> Receiver<Option<Id>> {
        let (tx, rx) = bounded(1);
        let mut children = Vec::new();
        self.counters.dirs.fetch_add(1, Ordering::Relaxed);
        let mut subtrees = self.prefetch_subtrees(parent.as_ref());
        match std::fs::read_dir(path) {
            Err(e) => self.warn_unreadable(path, &e),
            Ok(rd) => {
                let mut names: Vec<OsString> = Vec::new();
                for entry in rd {
                    match entry {
                        Ok(e) => names.push(e.file_name()),
                        Err(e) => {
                            self.warn_unreadable(path, &e);
                            break;
                        }
                    }
                }
                names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                for name in names {
                    if self.stopped() {
                        break;
                    }
                    let child_path = path.join(&name);
                    if self.excluder.is_excluded(&child_path) {
                        continue;
                    }
                    if let Some(c) = self.child(
                        &child_path,
                        &name,
                        parent.as_ref(),
                        &mut subtrees,
                        root_dev,
                        files,
                        dirs,
                    ) {
                        children.push(c);
                    }
                }
            }
        }
        if dirs
            .send(PendingDir {
                children,
                reply: tx,
            })
            .is_err()
        {
            self.fail(Error::Interrupted);
        }
        rx
    }

    #[allow(clippy::too_many_arguments)]
    fn child(
        &self,
        path: &Path,
        name: &std::ffi::OsStr,
        parent: Option<&Tree>,
        subtrees: &mut Vec<Prefetched>,
        root_dev: u64,
        files: &Sender<FileJob>,
        dirs: &Sender<PendingDir>,
    ) -> Option<Child> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.warn_unreadable(path, &e);
                return None;
            }
        };
        // Changing extended attributes changes ctime: with the same inode and ctime as in the
        // parent snapshot, the recorded attributes are still right.
        let old = parent.and_then(|t| t.find(name.as_bytes()));
        let ctime = crate::fsmeta::nanos(meta.ctime(), meta.ctime_nsec());
        let reuse = old.filter(|o| o.inode == meta.ino() && o.ctime_ns == ctime);
        let mut node = match node_from_metadata(name, &meta, path, reuse.is_none()) {
            Ok(n) => n,
            Err(e) => {
                self.warn_unreadable(path, &e);
                return None;
            }
        };
        if let Some(o) = reuse {
            node.xattrs = o.xattrs.clone();
        }
        Some(match node.kind {
            NodeKind::File => self.file_child(path.to_path_buf(), node, parent, files),
            NodeKind::Dir => {
                let rx = if self.one_file_system && meta.dev() != root_dev {
                    // A mount point: record the directory itself, not what is mounted there.
                    let (tx, rx) = bounded(1);
                    let _ = dirs.send(PendingDir {
                        children: Vec::new(),
                        reply: tx,
                    });
                    rx
                } else {
                    let sub = subtrees
                        .iter()
                        .position(|(n, _)| n.as_slice() == name.as_bytes())
                        .and_then(|i| subtrees.swap_remove(i).1.recv().ok().flatten());
                    self.walk_dir(path, sub, root_dev, files, dirs)
                };
                Child::Dir(node, rx)
            }
            _ => Child::Ready(node),
        })
    }

    // ---- hashers ----

    fn hash_file(&self, job: &FileJob, buf: &mut Vec<u8>, blobs: &Sender<BlobJob>) -> FileOutcome {
        let open = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOATIME.bits() as i32)
            .open(&job.path)
            .or_else(|_| File::open(&job.path));
        let file = match open {
            Ok(f) => f,
            Err(e) => {
                self.warn_unreadable(&job.path, &e);
                return FileOutcome::Failed;
            }
        };
        let mut content = Vec::new();
        let mut size = 0u64;
        let mut reader = self.chunker.reader(&file, buf, Some(job.node.size));
        loop {
            if self.stopped() {
                return FileOutcome::Failed;
            }
            match reader.next_chunk() {
                Ok(None) => break,
                Ok(Some(chunk)) => {
                    let id = self.repo.blob_id(chunk);
                    size += chunk.len() as u64;
                    self.progress
                        .bytes_done
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if self.want_blob(&id) {
                        let job = BlobJob {
                            kind: BlobKind::Data,
                            id,
                            data: self.buffer_from(chunk),
                        };
                        if blobs.send(job).is_err() {
                            return FileOutcome::Failed;
                        }
                    }
                    content.push(id);
                }
                Err(e) => {
                    self.warn_unreadable(&job.path, &e);
                    return FileOutcome::Failed;
                }
            }
        }
        if let Ok(after) = file.metadata() {
            let changed = after.size() != job.node.size
                || nanos(after.mtime(), after.mtime_nsec()) != job.node.mtime_ns
                || size != job.node.size;
            if changed {
                self.changed
                    .lock()
                    .expect("warnings mutex")
                    .push(job.path.display().to_string());
            }
        }
        self.progress.files_done.fetch_add(1, Ordering::Relaxed);
        FileOutcome::Done { content, size }
    }

    // ---- finalizer ----

    fn finalize(&self, dirs: Receiver<PendingDir>, blobs: Sender<BlobJob>) {
        for pd in dirs {
            let mut nodes = Vec::with_capacity(pd.children.len());
            for child in pd.children {
                match child {
                    Child::Ready(n) => nodes.push(n),
                    Child::File(mut n, rx) => {
                        if let Ok(FileOutcome::Done { content, size }) = rx.recv() {
                            n.content = content;
                            n.size = size;
                            nodes.push(n);
                        }
                    }
                    Child::Dir(mut n, rx) => {
                        if let Ok(Some(id)) = rx.recv() {
                            n.subtree = Some(id);
                            nodes.push(n);
                        }
                    }
                }
            }
            let tree = Tree { nodes };
            let id = match self.repo.encode_tree(&tree) {
                Ok((id, data)) => {
                    if self.want_blob(&id) {
                        let _ = blobs.send(BlobJob {
                            kind: BlobKind::Tree,
                            id,
                            data,
                        });
                    }
                    Some(id)
                }
                Err(e) => {
                    self.fail(e);
                    None
                }
            };
            let _ = pd.reply.send(id);
        }
    }

    // ---- packers ----

    fn pack_blobs(&self, blobs: Receiver<BlobJob>) {
        let target = self.repo.config().pack_size as usize;
        let mut compressor = match zstd::bulk::Compressor::new(self.repo.config().compression_level)
        {
            Ok(c) => c,
            Err(e) => {
                self.fail(Error::Invalid(format!("zstd: {e}")));
                return;
            }
        };
        let mut payload = Vec::new();
        for job in blobs {
            if self.failed.load(Ordering::Relaxed) {
                continue;
            }
            encode_payload(&mut compressor, &job.data, &mut payload);
            let slot = &self.open_packs[job.kind.byte() as usize];
            let full = {
                let mut open = slot.lock().expect("pack mutex");
                let w = open.get_or_insert_with(|| {
                    PackWriter::new(
                        self.repo.master(),
                        crate::pack::pack_buffer_capacity(target),
                    )
                });
                let e = w.add(job.kind, job.id, &payload, job.data.len() as u32);
                self.counters
                    .data_added
                    .fetch_add(job.data.len() as u64, Ordering::Relaxed);
                self.counters
                    .data_added_packed
                    .fetch_add(e.length as u64, Ordering::Relaxed);
                if w.len() >= target { open.take() } else { None }
            };
            match job.kind {
                BlobKind::Data => self.counters.data_blobs.fetch_add(1, Ordering::Relaxed),
                BlobKind::Tree => self.counters.tree_blobs.fetch_add(1, Ordering::Relaxed),
            };
            self.recycle(job.data);
            if let Some(w) = full {
                self.store_pack(w);
            }
        }
    }

    /// Uploads a finished pack, then records it for the next index file.
    fn store_pack(&self, writer: PackWriter) {
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        let (id, bytes, entries) = writer.finish();
        let len = bytes.len() as u64;
        if !self.dry_run {
            if let Err(e) = self.repo.storage().put(FileKind::Pack, &id.to_hex(), bytes) {
                self.fail(e);
                return;
            }
            self.written.lock().expect("written mutex").push(id);
        }
        self.progress
            .bytes_uploaded
            .fetch_add(len, Ordering::Relaxed);
        let flush = {
            let mut st = self.index_state.lock().expect("index mutex");
            st.current.packs.push((id, entries));
            if st.last_flush.elapsed() >= self.index_flush || st.current.packs.len() >= 256 {
                st.last_flush = Instant::now();
                Some(std::mem::take(&mut st.current))
            } else {
                None
            }
        };
        if let Some(file) = flush
            && let Err(e) = self.write_index(&file)
        {
            self.fail(e);
        }
    }

    fn write_index(&self, file: &IndexFile) -> Result<()> {
        if self.dry_run || file.packs.is_empty() {
            return Ok(());
        }
        self.repo.save_index_file(file).map(|_| ())
    }

    fn hash_stdin(&self, src: &mut StdinSource, blobs: &Sender<BlobJob>) -> Result<Node> {
        let mut buf = Vec::new();
        let mut reader = self.chunker.reader(&mut src.reader, &mut buf, None);
        let mut content = Vec::new();
        let mut size = 0;
        while let Some(chunk) = reader
            .next_chunk()
            .map_err(|e| Error::io("standard input", e))?
        {
            let id = self.repo.blob_id(chunk);
            size += chunk.len() as u64;
            self.progress
                .bytes_done
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if self.want_blob(&id) {
                blobs
                    .send(BlobJob {
                        kind: BlobKind::Data,
                        id,
                        data: chunk.to_vec(),
                    })
                    .map_err(|_| Error::Interrupted)?;
            }
            content.push(id);
        }
        self.counters.files_new.fetch_add(1, Ordering::Relaxed);
        let now = Local::now();
        let ns = now.timestamp_nanos_opt().unwrap_or(0);
        Ok(Node {
            name: Name(src.name.as_bytes().to_vec()),
            kind: NodeKind::File,
            mode: 0o600,
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            size,
            mtime_ns: ns,
            ctime_ns: ns,
            inode: 0,
            dev: 0,
            links: 1,
            rdev: 0,
            link_target: None,
            content,
            subtree: None,
            xattrs: Vec::new(),
        })
    }
}

/// Absolute, normalized form of a backup path (no symlink resolution of the last component).
fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

fn find_parent(
    repo: &Repository,
    opts: &BackupOptions,
    paths: &[String],
) -> Result<Option<(Id, Snapshot)>> {
    match &opts.parent {
        ParentChoice::None => Ok(None),
        ParentChoice::Id(id) => Ok(Some((*id, repo.load_snapshot(id)?))),
        ParentChoice::Auto => {
            let filter = SnapshotFilter {
                hosts: vec![opts.host.clone()],
                ..Default::default()
            };
            Ok(repo
                .list_snapshots()?
                .snapshots
                .into_iter()
                .rev()
                .find(|(_, s)| filter.matches(s) && s.paths == paths))
        }
    }
}

/// Counts files and bytes for progress, on its own thread, while the backup runs.
fn scan(paths: &[PathBuf], excluder: &Excluder, progress: &BackupProgress) {
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        if progress.cancel.load(Ordering::Relaxed) {
            break;
        }
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                for e in rd.flatten() {
                    let child = e.path();
                    if !excluder.is_excluded(&child) {
                        stack.push(child);
                    }
                }
            }
        } else if meta.is_file() {
            progress.files_total.fetch_add(1, Ordering::Relaxed);
            progress
                .bytes_total
                .fetch_add(meta.size(), Ordering::Relaxed);
        }
    }
    progress.scan_finished.store(true, Ordering::Relaxed);
}

/// Runs one backup. See the module documentation for the pipeline.
pub fn run(
    repo: &Repository,
    mut opts: BackupOptions,
    progress: &BackupProgress,
) -> Result<BackupResult> {
    let start = Local::now();
    if opts.paths.is_empty() && opts.stdin.is_none() {
        return Err(Error::Invalid(
            "nothing to back up: name at least one path".into(),
        ));
    }
    let abs_paths: Vec<PathBuf> = opts
        .paths
        .iter()
        .map(|p| absolute(p))
        .collect::<Result<_>>()?;
    let mut seen_names = HashSet::new();
    for p in &abs_paths {
        std::fs::symlink_metadata(p).map_err(|e| Error::io(p, e))?;
        let name = p
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_else(|| b"root".to_vec());
        if !seen_names.insert(name) {
            return Err(Error::Invalid(format!(
                "two paths have the same last component as {}; back them up separately",
                p.display()
            )));
        }
    }
    let path_strings: Vec<String> = match &opts.stdin {
        Some(s) => vec![format!("/{}", s.name)],
        None => abs_paths.iter().map(|p| p.display().to_string()).collect(),
    };
    if let Some(s) = &opts.stdin
        && !Name(s.name.as_bytes().to_vec()).is_safe_component()
    {
        return Err(Error::Invalid(format!(
            "--stdin-filename {:?} must be a plain file name",
            s.name
        )));
    }

    let _lock = if opts.dry_run {
        None
    } else {
        Some(Lock::acquire(repo, LockKind::Backup)?)
    };
    // Packs a pending prune will delete are not deduplicated against (see prune.rs).
    let condemned = crate::prune::condemned_packs(repo)?;
    let (index, index_warnings) = repo.load_index_lenient(&condemned)?;
    let parent = find_parent(repo, &opts, &path_strings)?;
    let parent_root = match &parent {
        Some((_, s)) => repo.load_tree(&index, &s.tree).ok(),
        None => None,
    };

    let (prefetch_tx, prefetch_rx) = crossbeam_channel::unbounded::<TreeRequest>();
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        opts.threads
    };
    let run = Run {
        repo,
        index: &index,
        chunker: Chunker::new(repo.config().chunker, opts.chunk_mode),
        excluder: Excluder::new(&opts.excludes)?,
        one_file_system: opts.one_file_system,
        dry_run: opts.dry_run,
        index_flush: opts.index_flush,
        progress,
        pending: Mutex::new(HashSet::new()),
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
        prefetch: Mutex::new(Some(prefetch_tx)),
        relied: index
            .pack_ids()
            .iter()
            .map(|_| AtomicBool::new(false))
            .collect(),
        written: Mutex::new(Vec::new()),
    };

    let (file_tx, file_rx) = bounded::<FileJob>(threads * 64);
    let (dir_tx, dir_rx) = bounded::<PendingDir>(4096);
    let (blob_tx, blob_rx) = bounded::<BlobJob>(threads * 2);

    let root_id = std::thread::scope(|s| -> Result<Option<Id>> {
        let run = &run;
        if opts.scan && opts.stdin.is_none() {
            let paths = abs_paths.clone();
            s.spawn(move || scan(&paths, &run.excluder, progress));
        }
        let fetchers = if opts.tree_fetchers == 0 {
            threads.max(2)
        } else {
            opts.tree_fetchers
        };
        for _ in 0..fetchers {
            let rx = prefetch_rx.clone();
            s.spawn(move || {
                for (id, reply) in rx {
                    let _ = reply.send(run.repo.load_tree(run.index, &id).ok());
                }
            });
        }
        drop(prefetch_rx);
        let mut packers = Vec::new();
        for _ in 0..threads {
            let rx = blob_rx.clone();
            packers.push(s.spawn(move || run.pack_blobs(rx)));
        }
        drop(blob_rx);
        for _ in 0..threads {
            let (rx, tx) = (file_rx.clone(), blob_tx.clone());
            s.spawn(move || {
                let mut buf = Vec::new();
                for job in rx {
                    let outcome = run.hash_file(&job, &mut buf, &tx);
                    let _ = job.reply.send(outcome);
                    // Most files are small: give back the room a large one needed.
                    if buf.capacity() > 1 << 20 {
                        buf = Vec::new();
                    }
                }
            });
        }
        drop(file_rx);
        {
            let tx = blob_tx.clone();
            s.spawn(move || run.finalize(dir_rx, tx));
        }

        // The walker: the root tree holds one entry per backed-up path.
        let walker = std::thread::Builder::new()
            .name("loop-walker".into())
            .stack_size(256 * 1024 * 1024)
            .spawn_scoped(s, move || -> Result<Receiver<Option<Id>>> {
                let (tx, rx) = bounded(1);
                let mut children = Vec::new();
                if let Some(src) = opts.stdin.as_mut() {
                    children.push(Child::Ready(run.hash_stdin(src, &blob_tx)?));
                } else {
                    let mut top: Vec<(Vec<u8>, PathBuf)> = abs_paths
                        .iter()
                        .map(|p| {
                            (
                                p.file_name()
                                    .map(|n| n.as_bytes().to_vec())
                                    .unwrap_or_else(|| b"root".to_vec()),
                                p.clone(),
                            )
                        })
                        .collect();
                    top.sort();
                    let mut subtrees = run.prefetch_subtrees(parent_root.as_ref());
                    for (name, p) in top {
                        let dev = std::fs::symlink_metadata(&p).map(|m| m.dev()).unwrap_or(0);
                        let name = std::ffi::OsStr::from_bytes(&name).to_os_string();
                        if let Some(c) = run.child(
                            &p,
                            &name,
                            parent_root.as_ref(),
                            &mut subtrees,
                            dev,
                            &file_tx,
                            &dir_tx,
                        ) {
                            children.push(c);
                        }
                    }
                }
                drop(file_tx);
                dir_tx
                    .send(PendingDir {
                        children,
                        reply: tx,
                    })
                    .map_err(|_| Error::Interrupted)?;
                Ok(rx)
            })
            .map_err(|e| Error::io("walker thread", e))?;
        let walked = walker.join().expect("the walker does not panic");
        let root = match walked {
            Ok(rx) => rx.recv().ok().flatten(),
            Err(e) => {
                run.fail(e);
                None
            }
        };
        // The walker is done: no more prefetches. Packers end when the last blob sender
        // (hashers, finalizer) is gone; then the partly filled packs are stored.
        run.prefetch.lock().expect("prefetch mutex").take();
        for p in packers {
            p.join().expect("packers do not panic");
        }
        for slot in &run.open_packs {
            if let Some(w) = slot.lock().expect("pack mutex").take()
                && !w.is_empty()
            {
                run.store_pack(w);
            }
        }
        Ok(root)
    })?;

    let failure = run.failure.lock().expect("failure mutex").take();
    let outcome = match failure {
        Some(e) => Err(e),
        None if progress.cancel.load(Ordering::Relaxed) => Err(Error::Interrupted),
        None => root_id.ok_or(Error::Interrupted),
    };
    // The packs stored so far are indexed even when the backup fails: the next backup reuses
    // them instead of uploading them again, and prune frees them at once instead of after
    // its grace period (a backup refused for quota must not hold its partial upload).
    let rest = std::mem::take(&mut run.index_state.lock().expect("index mutex").current);
    let flushed = run.write_index(&rest);
    let root_id = outcome?;
    flushed?;

    let c = &run.counters;
    let end = Local::now();
    let time = opts.time.unwrap_or_else(|| start.fixed_offset());
    let unreadable = std::mem::take(&mut *run.unreadable.lock().expect("warnings mutex"));
    let summary = Summary {
        backup_start: start.to_rfc3339(),
        backup_end: end.to_rfc3339(),
        files_new: c.files_new.load(Ordering::Relaxed),
        files_changed: c.files_changed.load(Ordering::Relaxed),
        files_unmodified: c.files_unmodified.load(Ordering::Relaxed),
        files_unreadable: unreadable.len() as u64,
        dirs: c.dirs.load(Ordering::Relaxed),
        data_blobs: c.data_blobs.load(Ordering::Relaxed),
        tree_blobs: c.tree_blobs.load(Ordering::Relaxed),
        data_added: c.data_added.load(Ordering::Relaxed),
        data_added_packed: c.data_added_packed.load(Ordering::Relaxed),
        total_files_processed: progress.files_done.load(Ordering::Relaxed),
        total_bytes_processed: progress.bytes_done.load(Ordering::Relaxed),
    };
    let snapshot = Snapshot {
        time,
        tree: root_id,
        paths: path_strings,
        hostname: opts.host.clone(),
        username: opts.user.clone(),
        tags: opts.tags.clone(),
        parent: parent.map(|(id, _)| id),
        excludes: opts.excludes.clone(),
        program_version: format!("loop {}", env!("CARGO_PKG_VERSION")),
        summary: Some(summary),
    };
    let snapshot_id = match &_lock {
        None => None,
        Some(lock) => {
            run.verify_relied_on(lock)?;
            Some(repo.save_snapshot(&snapshot)?)
        }
    };
    let changed_while_reading = std::mem::take(&mut *run.changed.lock().expect("warnings mutex"));
    Ok(BackupResult {
        snapshot_id,
        snapshot,
        unreadable,
        changed_while_reading,
        warnings: index_warnings,
    })
}
