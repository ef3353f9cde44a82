//! Restore: write a snapshot's files back to disk, plus `dump` of one file and `find_node`.
//!
//! ```text
//! walker (this thread) ──range jobs──▶ readers (get_range, decrypt, check ID, pwrite)
//!   creates dirs, links, specials;        └─ the last chunk of a file: verify, metadata, close
//!   opens files, plans their chunks
//! then: directory metadata, deepest first
//! ```
//!
//! Reads are planned per pack, not per file: the walker collects the chunks of up to 128
//! newly opened files or 100k chunks, sorts them by pack and offset, and merges neighbours less
//! than 1 MiB apart into one ranged read of at most 16 MiB. A chunk needed several times (hard
//! copies, the zero chunks of a sparse image) is read and decrypted once. Files are opened by
//! the walker and written with positioned writes, so readers never resolve a path. Memory stays
//! bounded: each reader holds one range and one blob, a batch about 100 bytes per chunk, at
//! most 384 files are open at a time, and directories are remembered (about 200 bytes each)
//! until their metadata is set at the end.
//!
//! Security: names come from the repository, which may be hostile. Every entry is created
//! relative to its parent's directory descriptor, from one validated name component, and no
//! symlink is ever followed: directories are opened with `O_NOFOLLOW`, files are created with
//! `O_CREAT | O_EXCL`, and whatever non-directory is in the way (a planted symlink, a FIFO, an
//! old file) is unlinked first, never opened. Only the target path itself, which the user
//! names, is resolved normally.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use crossbeam_channel::{Sender, bounded};
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::exclude::Excluder;
use crate::id::Id;
use crate::index::Index;
use crate::pack::{self, PackEntry};
use crate::repo::Repository;
use crate::storage::FileKind;
use crate::tree::{Name, Node, NodeKind, Tree, Xattr};

/// A batch of planned reads ends after this many newly opened files...
const FILES_PER_BATCH: usize = 128;
/// ...or this many chunks (about 100 bytes of plan each).
const CHUNKS_PER_BATCH: usize = 100_000;
/// Files open at once, well below the usual soft limit of 1024 descriptors.
const MAX_OPEN_FILES: usize = 384;
/// Blobs of one pack closer than this are fetched in one read (the gap is read and dropped).
const RANGE_GAP: u64 = 1 << 20;
/// Largest merged read; a single larger blob is still read whole.
const MAX_RANGE: u64 = 16 << 20;
/// Zero runs of this size inside a chunk are skipped, so they stay holes.
const SPARSE_BLOCK: usize = 64 * 1024;
static ZEROS: [u8; SPARSE_BLOCK] = [0; SPARSE_BLOCK];

/// What to restore and where.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    pub target: PathBuf,
    /// Globs (as for `--exclude`); when non-empty, only matching paths and the directories
    /// leading to them are restored. A matching directory is restored with everything below.
    pub includes: Vec<String>,
    /// Globs; a matching path is skipped with everything below it.
    pub excludes: Vec<String>,
    /// Re-read every restored file and compare each chunk's ID with the snapshot.
    pub verify: bool,
    /// Reader threads; 0 means one per core plus a few to hide storage latency.
    pub threads: usize,
    /// Threads that load directory trees ahead of the walker; 0 loads each tree when the
    /// walker reaches it, which is fastest on local disk. Use several for a store with
    /// per-request latency (a server).
    pub tree_fetchers: usize,
    /// Restore owners; `None` means only when running as root.
    pub owner: Option<bool>,
}

/// Live counters a progress display can poll. Totals grow as the walker plans.
#[derive(Default)]
pub struct RestoreProgress {
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_total: AtomicU64,
    pub bytes_total: AtomicU64,
}

/// What a restore did. `files` counts files written; `hardlinks` the further names linked to
/// them; `special` FIFOs and devices. Entries that failed are in `errors`, one line each.
#[derive(Debug, Default, serde::Serialize)]
pub struct RestoreReport {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub special: u64,
    pub bytes: u64,
    pub hardlinks: u64,
    pub verified_files: u64,
    pub errors: Vec<String>,
    /// Problems that cost nothing restored, such as a damaged index file whose blobs are
    /// also named elsewhere.
    pub warnings: Vec<String>,
}

/// Restores the snapshot tree `tree` into `opts.target`. Failures of single entries (and
/// damaged packs) are collected in the report; only an unreadable index or root tree, bad
/// patterns, or an unusable target return `Err`.
pub fn run(
    repo: &Repository,
    tree: &Id,
    opts: &RestoreOptions,
    progress: &RestoreProgress,
) -> Result<RestoreReport> {
    let includes = Excluder::new(&opts.includes)?;
    let excludes = Excluder::new(&opts.excludes)?;
    // Announce the reader, so a concurrent prune keeps the packs it reads (see prune.rs).
    // Best effort: a read-only or full repository can still be read, just without telling a
    // concurrent prune to wait.
    let _lock = crate::locks::Lock::acquire(repo, crate::locks::LockKind::Read).ok();
    // A damaged index file must not make the rest of the repository unreachable: restore
    // what the other index files name, and report files whose data is lost.
    let (index, warnings) = repo.load_index_lenient(&Default::default())?;
    let root_tree = repo.load_tree(&index, tree).map_err(|e| {
        if warnings.is_empty() {
            e
        } else {
            Error::Invalid(format!("{e}; {}", warnings.join("; ")))
        }
    })?;
    std::fs::create_dir_all(&opts.target).map_err(|e| Error::io(&opts.target, e))?;
    let root = rustix::fs::openat(
        rustix::fs::CWD,
        &opts.target,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(&opts.target, e.into()))?;
    let root_copy = root.try_clone().map_err(|e| Error::io(&opts.target, e))?;
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let ctx = Restorer {
        repo,
        index: &index,
        target: &opts.target,
        verify: opts.verify,
        owner: opts
            .owner
            .unwrap_or_else(|| rustix::process::geteuid().is_root()),
        progress,
        counts: Counts::default(),
        errors: Mutex::new(Vec::new()),
        open_files: Mutex::new(0),
        file_closed: Condvar::new(),
    };
    let records = std::thread::scope(|s| {
        let (tx, rx) = bounded::<RangeJob>(threads * 2);
        for _ in 0..threads {
            let rx = rx.clone();
            let ctx = &ctx;
            s.spawn(move || {
                for job in rx {
                    ctx.read_range(job);
                }
            });
        }
        drop(rx);
        // Tree loaders: a directory's subtrees are fetched while the walker is still busy
        // with the directory, so a store with per-request latency is not paid per tree.
        let (tree_tx, tree_rx) = crossbeam_channel::unbounded::<TreeFetch>();
        for _ in 0..opts.tree_fetchers {
            let rx = tree_rx.clone();
            let ctx = &ctx;
            s.spawn(move || {
                for (id, reply) in rx {
                    let _ = reply.send(ctx.repo.load_tree(ctx.index, &id));
                }
            });
        }
        drop(tree_rx);
        let mut trees = TreeAhead {
            tx: (opts.tree_fetchers > 0).then_some(tree_tx),
            pending: HashMap::new(),
        };
        trees.request_children(&root_tree);
        let mut walker = Walker {
            ctx: &ctx,
            trees,
            includes: &includes,
            excludes: &excludes,
            root: &root,
            frames: vec![Frame {
                nodes: root_tree.nodes.into_iter(),
                rel: PathBuf::new(),
                node: None,
                record: None,
                dir: DirState::Ready(root_copy),
                included: opts.includes.is_empty(),
            }],
            records: Vec::new(),
            hardlinks: HashMap::new(),
            chain: DirChain::default(),
            refs: Vec::new(),
            batch_files: 0,
            tx,
        };
        walker.walk();
        walker.flush();
        // No more tree requests: the loaders end with the channel.
        walker.trees.tx.take();
        walker.records
        // The walker's sender drops here; the readers drain the queue and the scope joins them.
    });
    ctx.finish_dirs(&root, &records);
    // Readers finish in any order; sorted lines read (and compare) better.
    let mut errors = ctx.errors.into_inner().expect("errors mutex");
    errors.sort();
    let c = &ctx.counts;
    Ok(RestoreReport {
        files: c.files.load(Ordering::Relaxed),
        dirs: c.dirs.load(Ordering::Relaxed),
        symlinks: c.symlinks.load(Ordering::Relaxed),
        special: c.special.load(Ordering::Relaxed),
        bytes: c.bytes.load(Ordering::Relaxed),
        hardlinks: c.hardlinks.load(Ordering::Relaxed),
        verified_files: c.verified.load(Ordering::Relaxed),
        errors,
        warnings,
    })
}

/// Writes one file of a snapshot (`path` relative to the snapshot root, like
/// `linux/Makefile`) to `out`, chunk by chunk. Returns the bytes written.
pub fn dump(repo: &Repository, tree: &Id, path: &str, out: &mut dyn io::Write) -> Result<u64> {
    let index = repo.load_index()?;
    let node = find_node(repo, &index, tree, path)?
        .ok_or_else(|| Error::NotFound(format!("{path:?} in the snapshot")))?;
    if node.kind != NodeKind::File {
        return Err(Error::Invalid(format!(
            "{path:?} is a {:?}, not a file",
            node.kind
        )));
    }
    let mut written = 0u64;
    for id in &node.content {
        let data = repo.read_blob(&index, id)?;
        out.write_all(&data)
            .map_err(|e| Error::io(format!("output of {path}"), e))?;
        written += data.len() as u64;
    }
    out.flush()
        .map_err(|e| Error::io(format!("output of {path}"), e))?;
    Ok(written)
}

/// Finds the node at a path relative to the snapshot root. Empty components are ignored, so
/// `""` and `"/"` give the root directory: a node named `""` of kind `Dir` whose `subtree` is
/// `tree` (the root has no recorded metadata, so its mode is 0o755 and its times are zero).
/// A path through something that is not a directory gives `None`.
pub fn find_node(repo: &Repository, index: &Index, tree: &Id, path: &str) -> Result<Option<Node>> {
    let mut current = Node {
        name: Name::default(),
        kind: NodeKind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        size: 0,
        mtime_ns: 0,
        ctime_ns: 0,
        inode: 0,
        dev: 0,
        links: 0,
        rdev: 0,
        link_target: None,
        content: Vec::new(),
        subtree: Some(*tree),
        xattrs: Vec::new(),
    };
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let Some(subtree) = current.subtree.filter(|_| current.kind == NodeKind::Dir) else {
            return Ok(None);
        };
        let t = repo.load_tree(index, &subtree)?;
        match t.find(part.as_bytes()) {
            Some(n) => current = n.clone(),
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Counts {
    files: AtomicU64,
    dirs: AtomicU64,
    symlinks: AtomicU64,
    special: AtomicU64,
    bytes: AtomicU64,
    hardlinks: AtomicU64,
    verified: AtomicU64,
}

/// State shared by the walker and the readers.
struct Restorer<'a> {
    repo: &'a Repository,
    index: &'a Index,
    target: &'a Path,
    verify: bool,
    owner: bool,
    progress: &'a RestoreProgress,
    counts: Counts,
    errors: Mutex<Vec<String>>,
    open_files: Mutex<usize>,
    file_closed: Condvar,
}

/// A file being written: its chunks may span several batches and readers.
struct PendingFile {
    path: PathBuf,
    node: Node,
    file: RwLock<Option<File>>,
    /// Chunk writes still to do, plus one while the walker is still planning.
    remaining: AtomicUsize,
    /// The smallest offset of a chunk that could not be restored; `u64::MAX` when none.
    damaged_at: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl PendingFile {
    fn fail(&self, offset: u64, message: String) {
        self.damaged_at.fetch_min(offset, Ordering::Relaxed);
        let mut first = self.first_error.lock().expect("error mutex");
        if first.is_none() {
            *first = Some(message);
        }
    }
}

struct ChunkRef {
    pack: Id,
    entry: PackEntry,
    file: Arc<PendingFile>,
    offset: u64,
}

/// One blob and every place it goes.
struct BlobWrites {
    entry: PackEntry,
    targets: Vec<(Arc<PendingFile>, u64)>,
}

/// One ranged read of a pack.
struct RangeJob {
    pack: Id,
    start: u64,
    len: u64,
    blobs: Vec<BlobWrites>,
}

/// A directory that was created (or found) and gets its metadata at the end.
struct DirRecord {
    /// `None`: directly in the target.
    parent: Option<usize>,
    node: Node,
}

impl Restorer<'_> {
    fn error(&self, path: &Path, what: impl std::fmt::Display) {
        self.errors
            .lock()
            .expect("errors mutex")
            .push(format!("{}: {what}", path.display()));
    }

    fn release_file_slot(&self) {
        *self.open_files.lock().expect("open files mutex") -= 1;
        self.file_closed.notify_all();
    }

    // ---- readers ----

    fn read_range(&self, job: RangeJob) {
        let name = job.pack.to_hex();
        let object = FileKind::Pack.path(&name);
        let stored = self
            .repo
            .storage()
            .get_range(FileKind::Pack, &name, job.start, job.len);
        let cipher = pack::pack_cipher(self.repo.master(), &job.pack);
        for blob in job.blobs {
            let e = &blob.entry;
            let data = match &stored {
                Err(err) => Err(err.to_string()),
                Ok(buf) => {
                    let from = (e.offset as u64 - job.start) as usize;
                    let bytes = buf[from..from + e.length as usize].to_vec();
                    // AES-GCM proves a key holder stored these bytes; the keyed hash proves
                    // they are the content the snapshot names. Both are checked: a holder
                    // of a backup-only token has the key, and must not be able to slip
                    // other content under an existing blob's ID.
                    pack::decode_blob(&cipher, e, bytes, &object)
                        .map_err(|err| err.to_string())
                        .and_then(|d| {
                            if self.repo.blob_id(&d) == e.id {
                                Ok(d)
                            } else {
                                Err(format!(
                                    "{object}: blob {} does not match its ID",
                                    e.id.short()
                                ))
                            }
                        })
                }
            };
            // A damaged or wrongly indexed copy: try the blob's other copies.
            let data = data.or_else(|msg| {
                self.repo
                    .read_blob_alternate(self.index, &e.id)
                    .map_err(|_| msg)
            });
            for (file, offset) in blob.targets {
                match &data {
                    Err(msg) => file.fail(offset, msg.clone()),
                    Ok(d) => {
                        let guard = file.file.read().expect("file lock");
                        let f = guard.as_ref().expect("open until its last chunk");
                        match write_sparse(f, d, offset) {
                            Ok(()) => {
                                let n = d.len() as u64;
                                self.counts.bytes.fetch_add(n, Ordering::Relaxed);
                                self.progress.bytes_done.fetch_add(n, Ordering::Relaxed);
                            }
                            Err(err) => file.fail(offset, format!("write: {err}")),
                        }
                    }
                }
                if file.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    self.finish_file(&file);
                }
            }
        }
    }

    /// Runs once per file, after its last chunk: truncate at damage or verify, then
    /// metadata, then close.
    fn finish_file(&self, pf: &PendingFile) {
        let Some(file) = pf.file.write().expect("file lock").take() else {
            return;
        };
        let damaged_at = pf.damaged_at.load(Ordering::Relaxed);
        if damaged_at != u64::MAX {
            let first = pf.first_error.lock().expect("error mutex").take();
            let _ = file.set_len(damaged_at);
            self.error(
                &pf.path,
                format!(
                    "{}; left truncated at {damaged_at} bytes",
                    first.unwrap_or_default()
                ),
            );
        } else if self.verify {
            match self.verify_file(&file, &pf.node) {
                Ok(()) => {
                    self.counts.verified.fetch_add(1, Ordering::Relaxed);
                }
                Err(why) => self.error(&pf.path, format!("verify: {why}")),
            }
        }
        // A damaged file keeps the time of the restore, so it never looks like the original.
        self.apply_fd_meta(file.as_fd(), &pf.node, &pf.path, damaged_at == u64::MAX);
        drop(file);
        self.progress.files_done.fetch_add(1, Ordering::Relaxed);
        self.release_file_slot();
    }

    fn verify_file(&self, file: &File, node: &Node) -> std::result::Result<(), String> {
        let mut buf = Vec::new();
        let mut offset = 0u64;
        for id in &node.content {
            let loc = self
                .index
                .get(id)
                .ok_or_else(|| format!("blob {} is not in any index", id.short()))?;
            buf.resize(loc.entry.raw_len as usize, 0);
            file.read_exact_at(&mut buf, offset)
                .map_err(|e| format!("reading at {offset}: {e}"))?;
            if self.repo.blob_id(&buf) != *id {
                return Err(format!(
                    "bytes {offset}..{} differ from the snapshot",
                    offset + buf.len() as u64
                ));
            }
            offset += buf.len() as u64;
        }
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        if len != offset {
            return Err(format!("size is {len}, the snapshot says {offset}"));
        }
        Ok(())
    }

    // ---- metadata ----

    /// Owner, then mode (chown clears setuid), then xattrs, then times (last, as the other
    /// steps may touch them) on an open file or directory.
    fn apply_fd_meta(&self, fd: BorrowedFd<'_>, node: &Node, path: &Path, times: bool) {
        if self.owner
            && let Err(e) = rustix::fs::fchown(fd, Some(uid(node)), Some(gid(node)))
        {
            self.error(path, format!("chown: {e}"));
        }
        if let Err(e) = rustix::fs::fchmod(fd, Mode::from_raw_mode(node.mode & 0o7777)) {
            self.error(path, format!("chmod: {e}"));
        }
        for x in &node.xattrs {
            let r = rustix::fs::fsetxattr(fd, x.name.to_os(), &x.value, XattrFlags::empty());
            self.xattr_result(path, x, r);
        }
        if times && let Err(e) = rustix::fs::futimens(fd, &timestamps(node.mtime_ns)) {
            self.error(path, format!("set times: {e}"));
        }
    }

    /// The same for a symlink, FIFO or device, which are not opened.
    fn apply_meta_at(&self, dir: BorrowedFd<'_>, node: &Node, path: &Path) {
        let name = node.name.to_os();
        if self.owner
            && let Err(e) = rustix::fs::chownat(
                dir,
                name,
                Some(uid(node)),
                Some(gid(node)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
        {
            self.error(path, format!("chown: {e}"));
        }
        if node.kind != NodeKind::Symlink
            && let Err(e) = chmod_nofollow(dir, name, Mode::from_raw_mode(node.mode & 0o7777))
        {
            self.error(path, format!("chmod: {e}"));
        }
        if !node.xattrs.is_empty() {
            // lsetxattr through the directory descriptor's /proc entry: the directory is the
            // one we hold, and the last component is not followed.
            let mut at = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
            at.push(name);
            for x in &node.xattrs {
                let r = rustix::fs::lsetxattr(&at, x.name.to_os(), &x.value, XattrFlags::empty());
                self.xattr_result(path, x, r);
            }
        }
        let ts = timestamps(node.mtime_ns);
        if let Err(e) = rustix::fs::utimensat(dir, name, &ts, AtFlags::SYMLINK_NOFOLLOW) {
            self.error(path, format!("set times: {e}"));
        }
    }

    /// Filesystems without xattrs, and namespaces we may not write (`trusted.*` as a user),
    /// are silent; a `user.*` attribute that did not come back is worth a line.
    fn xattr_result(&self, path: &Path, x: &Xattr, r: rustix::io::Result<()>) {
        match r {
            Ok(()) => {}
            Err(Errno::PERM | Errno::NOTSUP) if !x.name.as_bytes().starts_with(b"user.") => {}
            Err(e) => self.error(path, format!("xattr {}: {e}", x.name)),
        }
    }

    /// Directory metadata, children before parents (reverse creation order), so creating
    /// entries cannot change a finished directory's times and a read-only one is filled first.
    fn finish_dirs(&self, root: &OwnedFd, records: &[DirRecord]) {
        let mut chain = DirChain::default();
        for i in (0..records.len()).rev() {
            let path = self.target.join(record_path(records, i));
            match chain.open(root, records, Some(i)) {
                Ok(fd) => self.apply_fd_meta(fd, &records[i].node, &path, true),
                Err(e) => self.error(&path, format!("cannot reopen directory: {e}")),
            }
        }
    }
}

fn uid(node: &Node) -> Uid {
    Uid::from_raw_unchecked(node.uid)
}

fn gid(node: &Node) -> Gid {
    Gid::from_raw_unchecked(node.gid)
}

/// Access time := modification time (atime is not recorded).
fn timestamps(ns: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: ns.div_euclid(1_000_000_000),
        tv_nsec: ns.rem_euclid(1_000_000_000) as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn is_zero(data: &[u8]) -> bool {
    data.chunks(SPARSE_BLOCK).all(|c| c == &ZEROS[..c.len()])
}

/// Writes `data` at `offset`, skipping zero blocks so they stay holes in the pre-sized file.
fn write_sparse(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    let block = |i: usize| &data[i..(i + SPARSE_BLOCK).min(data.len())];
    let mut i = 0;
    while i < data.len() {
        if is_zero(block(i)) {
            i += block(i).len();
            continue;
        }
        let start = i;
        while i < data.len() && !is_zero(block(i)) {
            i += block(i).len();
        }
        file.write_all_at(&data[start..i], offset + start as u64)?;
    }
    Ok(())
}

/// chmod without following a symlink: Linux's `fchmodat` cannot, so go through an `O_PATH`
/// descriptor of the entry itself (what glibc does for `AT_SYMLINK_NOFOLLOW`).
fn chmod_nofollow(dir: BorrowedFd<'_>, name: &std::ffi::OsStr, mode: Mode) -> io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        return Ok(());
    }
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    rustix::fs::chmodat(rustix::fs::CWD, proc_path.as_str(), mode, AtFlags::empty())?;
    Ok(())
}

fn open_dir(parent: BorrowedFd<'_>, name: &Name) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        parent,
        name.to_os(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Creates (or reuses) a directory. Anything else in the way, a planted symlink included, is
/// unlinked, never followed. The directory stays writable for us until `finish_dirs`.
fn make_dir(parent: BorrowedFd<'_>, name: &Name) -> io::Result<OwnedFd> {
    let os = name.to_os();
    match rustix::fs::mkdirat(parent, os, Mode::RWXU) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = match open_dir(parent, name) {
        Ok(fd) => fd,
        Err(e) if matches!(Errno::from_io_error(&e), Some(Errno::LOOP | Errno::NOTDIR)) => {
            rustix::fs::unlinkat(parent, os, AtFlags::empty())?;
            rustix::fs::mkdirat(parent, os, Mode::RWXU)?;
            open_dir(parent, name)?
        }
        Err(e) => return Err(e),
    };
    let st = rustix::fs::fstat(&fd)?;
    if st.st_mode & 0o700 != 0o700 {
        let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(st.st_mode | 0o700));
    }
    Ok(fd)
}

/// Runs `create`; when the name is taken, unlinks what is there (not a directory: unlinkat
/// refuses those) and tries once more.
fn replacing(
    dir: BorrowedFd<'_>,
    name: &Name,
    mut create: impl FnMut() -> rustix::io::Result<()>,
) -> io::Result<()> {
    match create() {
        Err(Errno::EXIST) => {
            rustix::fs::unlinkat(dir, name.to_os(), AtFlags::empty())?;
            Ok(create()?)
        }
        r => Ok(r?),
    }
}

fn create_file(dir: BorrowedFd<'_>, name: &Name) -> io::Result<File> {
    let mut fd = None;
    replacing(dir, name, || {
        fd = Some(rustix::fs::openat(
            dir,
            name.to_os(),
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::RUSR | Mode::WUSR,
        )?);
        Ok(())
    })?;
    Ok(File::from(fd.expect("created")))
}

/// Path of a directory record relative to the target.
fn record_path(records: &[DirRecord], mut i: usize) -> PathBuf {
    let mut names = vec![records[i].node.name.to_os()];
    while let Some(p) = records[i].parent {
        names.push(records[p].node.name.to_os());
        i = p;
    }
    names.iter().rev().collect()
}

/// Reopens recorded directories from the target down, one `O_NOFOLLOW` component at a time,
/// keeping the last chain open (consecutive lookups are usually siblings).
#[derive(Default)]
struct DirChain {
    open: Vec<(usize, OwnedFd)>,
}

impl DirChain {
    fn open<'a>(
        &'a mut self,
        root: &'a OwnedFd,
        records: &[DirRecord],
        record: Option<usize>,
    ) -> io::Result<BorrowedFd<'a>> {
        let Some(record) = record else {
            return Ok(root.as_fd());
        };
        let mut path = vec![record];
        while let Some(p) = records[*path.last().expect("non-empty")].parent {
            path.push(p);
        }
        path.reverse();
        let keep = self
            .open
            .iter()
            .zip(&path)
            .take_while(|((a, _), b)| a == *b)
            .count();
        self.open.truncate(keep);
        for &i in &path[keep..] {
            let fd = {
                let parent = self.open.last().map_or(root.as_fd(), |(_, fd)| fd.as_fd());
                open_dir(parent, &records[i].node.name)?
            };
            self.open.push((i, fd));
        }
        Ok(self.open.last().expect("non-empty").1.as_fd())
    }
}

// ---- walker ----

enum DirState {
    /// Not created yet: with include patterns, a directory appears only when something
    /// below it is restored.
    Pending,
    Ready(OwnedFd),
    Failed,
}

struct Frame {
    nodes: std::vec::IntoIter<Node>,
    /// Path relative to the target (and, with a leading `/`, inside the snapshot).
    rel: PathBuf,
    /// The directory's node until it is created.
    node: Option<Node>,
    record: Option<usize>,
    dir: DirState,
    /// The directory matched the includes (or there are none): restore everything below.
    included: bool,
}

/// A tree to load, and where to send it.
type TreeFetch = (Id, crossbeam_channel::Sender<Result<Tree>>);

/// Trees requested ahead of the walker, by ID.
struct TreeAhead {
    tx: Option<crossbeam_channel::Sender<TreeFetch>>,
    pending: HashMap<Id, crossbeam_channel::Receiver<Result<Tree>>>,
}

/// At most this many trees are requested ahead, which bounds their memory.
const TREES_AHEAD: usize = 256;

impl TreeAhead {
    /// Asks the loaders for the subtrees of `tree`'s directories, up to the bound.
    fn request_children(&mut self, tree: &Tree) {
        let Some(tx) = &self.tx else { return };
        for n in &tree.nodes {
            if self.pending.len() >= TREES_AHEAD {
                return;
            }
            if let (NodeKind::Dir, Some(id)) = (n.kind, n.subtree)
                && !self.pending.contains_key(&id)
            {
                let (reply, rx) = crossbeam_channel::bounded(1);
                if tx.send((id, reply)).is_ok() {
                    self.pending.insert(id, rx);
                }
            }
        }
    }

    /// The tree `id`: from a request made earlier, else loaded now.
    fn get(&mut self, ctx: &Restorer<'_>, id: &Id) -> Result<Tree> {
        if let Some(rx) = self.pending.remove(id)
            && let Ok(r) = rx.recv()
        {
            return r;
        }
        ctx.repo.load_tree(ctx.index, id)
    }
}

struct Walker<'a, 'r> {
    ctx: &'a Restorer<'r>,
    trees: TreeAhead,
    includes: &'a Excluder,
    excludes: &'a Excluder,
    root: &'a OwnedFd,
    frames: Vec<Frame>,
    records: Vec<DirRecord>,
    /// (dev, inode) of files with several links → where the first one was restored.
    hardlinks: HashMap<(u64, u64), (Option<usize>, Name)>,
    chain: DirChain,
    refs: Vec<ChunkRef>,
    batch_files: usize,
    tx: Sender<RangeJob>,
}

impl Walker<'_, '_> {
    /// Depth first with an explicit stack, so a hostile deep tree cannot overflow ours.
    fn walk(&mut self) {
        while let Some(top) = self.frames.last_mut() {
            let Some(node) = top.nodes.next() else {
                self.frames.pop();
                continue;
            };
            let rel = top.rel.join(node.name.to_os());
            let parent_included = top.included;
            // Trees are validated on load; this keeps the walker safe on its own.
            if !node.name.is_safe_component() {
                let path = self.ctx.target.join(&rel);
                self.ctx.error(&path, "unsafe name in the snapshot");
                continue;
            }
            let in_snapshot = Path::new("/").join(&rel);
            if self.excludes.is_excluded(&in_snapshot) {
                // A tree fetched ahead for a skipped directory would hold its slot forever.
                if let Some(id) = node.subtree {
                    self.trees.pending.remove(&id);
                }
                continue;
            }
            // `is_excluded` of the include set means "matches an include pattern".
            let included = parent_included || self.includes.is_excluded(&in_snapshot);
            let k = self.frames.len() - 1;
            match node.kind {
                NodeKind::Dir => self.enter_dir(node, rel, included),
                _ if !included => {}
                NodeKind::File => self.restore_file(k, node, rel),
                NodeKind::Symlink | NodeKind::Fifo | NodeKind::Chardev | NodeKind::Blockdev => {
                    self.restore_other(k, node, rel)
                }
                NodeKind::Socket => {}
            }
        }
    }

    fn enter_dir(&mut self, node: Node, rel: PathBuf, included: bool) {
        let path = self.ctx.target.join(&rel);
        let ctx = self.ctx;
        let tree = match node.subtree.map(|id| self.trees.get(ctx, &id)) {
            Some(Ok(t)) => {
                self.trees.request_children(&t);
                t
            }
            Some(Err(e)) => {
                self.ctx.error(&path, format!("directory skipped: {e}"));
                return;
            }
            None => Tree::default(),
        };
        self.frames.push(Frame {
            nodes: tree.nodes.into_iter(),
            rel,
            node: Some(node),
            record: None,
            dir: DirState::Pending,
            included,
        });
        if included {
            self.ensure_dir(self.frames.len() - 1);
        }
    }

    /// Creates frame `k`'s directory and any pending ones above it. False when one failed
    /// (that subtree is then skipped).
    fn ensure_dir(&mut self, k: usize) -> bool {
        for j in 0..=k {
            match self.frames[j].dir {
                DirState::Ready(_) => continue,
                DirState::Failed => return false,
                DirState::Pending => {}
            }
            let (below, above) = self.frames.split_at_mut(j);
            let parent = below.last().expect("the target frame is always ready");
            let DirState::Ready(parent_fd) = &parent.dir else {
                unreachable!("frames below j are ready")
            };
            let frame = &mut above[0];
            let node = frame.node.take().expect("a pending directory has its node");
            match make_dir(parent_fd.as_fd(), &node.name) {
                Ok(fd) => {
                    frame.dir = DirState::Ready(fd);
                    frame.record = Some(self.records.len());
                    self.records.push(DirRecord {
                        parent: parent.record,
                        node,
                    });
                    self.ctx.counts.dirs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    let path = self.ctx.target.join(&frame.rel);
                    self.ctx
                        .error(&path, format!("cannot create directory: {e}"));
                    for f in &mut self.frames[j..] {
                        f.dir = DirState::Failed;
                        f.nodes = Vec::new().into_iter();
                    }
                    return false;
                }
            }
        }
        true
    }

    fn dir_fd(&self, k: usize) -> BorrowedFd<'_> {
        match &self.frames[k].dir {
            DirState::Ready(fd) => fd.as_fd(),
            _ => unreachable!("ensure_dir succeeded"),
        }
    }

    fn restore_other(&mut self, k: usize, node: Node, rel: PathBuf) {
        let path = self.ctx.target.join(&rel);
        if !self.ensure_dir(k) {
            return;
        }
        let dir = self.dir_fd(k);
        let name = node.name.to_os();
        let mode = Mode::from_raw_mode(node.mode & 0o7777);
        let made = match node.kind {
            NodeKind::Symlink => match &node.link_target {
                Some(t) => replacing(dir, &node.name, || {
                    rustix::fs::symlinkat(t.to_os(), dir, name)
                }),
                None => Err(io::Error::other("symlink without a target")),
            },
            NodeKind::Fifo => replacing(dir, &node.name, || {
                rustix::fs::mknodat(dir, name, FileType::Fifo, mode, 0)
            }),
            _ if !rustix::process::geteuid().is_root() => {
                Err(io::Error::other("device files are restored only as root"))
            }
            kind => {
                let ft = if kind == NodeKind::Chardev {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                replacing(dir, &node.name, || {
                    rustix::fs::mknodat(dir, name, ft, mode, node.rdev)
                })
            }
        };
        match made {
            Ok(()) => {
                let counter = if node.kind == NodeKind::Symlink {
                    &self.ctx.counts.symlinks
                } else {
                    &self.ctx.counts.special
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.ctx.apply_meta_at(dir, &node, &path);
            }
            Err(e) => self.ctx.error(&path, format!("not restored: {e}")),
        }
    }

    fn restore_file(&mut self, k: usize, node: Node, rel: PathBuf) {
        let path = self.ctx.target.join(&rel);
        if !self.ensure_dir(k) {
            return;
        }
        let key = (node.links > 1 && node.inode != 0).then_some((node.dev, node.inode));
        if let Some(first) = key.and_then(|key| self.hardlinks.get(&key)) {
            let (old_record, old_name) = first.clone();
            self.link(k, &node.name, old_record, &old_name, &path);
            return;
        }
        self.wait_for_file_slot();
        let file = match create_file(self.dir_fd(k), &node.name) {
            Ok(f) => f,
            Err(e) => {
                self.ctx.error(&path, format!("not restored: {e}"));
                self.ctx.release_file_slot();
                return;
            }
        };
        self.ctx.counts.files.fetch_add(1, Ordering::Relaxed);
        let p = self.ctx.progress;
        p.files_total.fetch_add(1, Ordering::Relaxed);
        p.bytes_total.fetch_add(node.size, Ordering::Relaxed);
        if let Some(key) = key {
            self.hardlinks
                .insert(key, (self.frames[k].record, node.name.clone()));
        }
        self.batch_files += 1;
        let pf = Arc::new(PendingFile {
            path,
            node,
            file: RwLock::new(Some(file)),
            remaining: AtomicUsize::new(1),
            damaged_at: AtomicU64::new(u64::MAX),
            first_error: Mutex::new(None),
        });
        // Size the file first: chunks are written at their offsets and zeros stay holes. Two
        // passes over the chunk list, so planning a huge file needs no copy of it.
        let mut size = 0u64;
        let mut usable = 0;
        for id in &pf.node.content {
            let Some(loc) = self.ctx.index.get(id) else {
                pf.fail(size, format!("blob {} is not in any index", id.short()));
                break;
            };
            size += loc.entry.raw_len as u64;
            usable += 1;
        }
        let sized = pf
            .file
            .read()
            .expect("file lock")
            .as_ref()
            .expect("open")
            .set_len(size);
        if let Err(e) = sized {
            pf.fail(0, format!("cannot size the file: {e}"));
            usable = 0;
        }
        let mut offset = 0u64;
        for id in &pf.node.content[..usable] {
            let loc = self.ctx.index.get(id).expect("looked up above");
            pf.remaining.fetch_add(1, Ordering::Relaxed);
            self.refs.push(ChunkRef {
                pack: loc.pack,
                entry: loc.entry,
                file: pf.clone(),
                offset,
            });
            offset += loc.entry.raw_len as u64;
            if self.refs.len() >= CHUNKS_PER_BATCH {
                self.flush();
            }
        }
        // Drop the planning hold; with no chunk in flight the file is finished here.
        if pf.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ctx.finish_file(&pf);
        }
        if self.batch_files >= FILES_PER_BATCH {
            self.flush();
        }
    }

    fn link(
        &mut self,
        k: usize,
        name: &Name,
        old_record: Option<usize>,
        old_name: &Name,
        path: &Path,
    ) {
        let DirState::Ready(new_dir) = &self.frames[k].dir else {
            unreachable!("ensure_dir succeeded")
        };
        let linked = self
            .chain
            .open(self.root, &self.records, old_record)
            .and_then(|old_dir| {
                replacing(new_dir.as_fd(), name, || {
                    rustix::fs::linkat(
                        old_dir,
                        old_name.to_os(),
                        new_dir,
                        name.to_os(),
                        AtFlags::empty(),
                    )
                })
            });
        match linked {
            Ok(()) => {
                self.ctx.counts.hardlinks.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.ctx.error(path, format!("hard link not restored: {e}")),
        }
    }

    /// Blocks while too many files are open; what is planned goes out first, so the files
    /// we wait for can finish.
    fn wait_for_file_slot(&mut self) {
        let full = *self.ctx.open_files.lock().expect("open files mutex") >= MAX_OPEN_FILES;
        if full {
            self.flush();
        }
        let mut open = self.ctx.open_files.lock().expect("open files mutex");
        while *open >= MAX_OPEN_FILES {
            open = self.ctx.file_closed.wait(open).expect("open files mutex");
        }
        *open += 1;
    }

    /// Sends the planned chunks as merged per-pack reads.
    fn flush(&mut self) {
        self.batch_files = 0;
        let mut refs = std::mem::take(&mut self.refs);
        refs.sort_unstable_by_key(|r| (r.pack, r.entry.offset));
        let mut job: Option<RangeJob> = None;
        for r in refs {
            let start = r.entry.offset as u64;
            let end = start + r.entry.length as u64;
            if let Some(j) = job.as_mut() {
                let last = j.blobs.last_mut().expect("a job holds a blob");
                if j.pack == r.pack && last.entry.offset == r.entry.offset {
                    last.targets.push((r.file, r.offset));
                    continue;
                }
                let j_end = j.start + j.len;
                if j.pack == r.pack
                    && start >= j_end
                    && start - j_end < RANGE_GAP
                    && end - j.start <= MAX_RANGE
                {
                    j.len = end - j.start;
                    j.blobs.push(BlobWrites {
                        entry: r.entry,
                        targets: vec![(r.file, r.offset)],
                    });
                    continue;
                }
                let full = job.take().expect("checked");
                if self.tx.send(full).is_err() {
                    return;
                }
            }
            job = Some(RangeJob {
                pack: r.pack,
                start,
                len: end - start,
                blobs: vec![BlobWrites {
                    entry: r.entry,
                    targets: vec![(r.file, r.offset)],
                }],
            });
        }
        if let Some(j) = job {
            let _ = self.tx.send(j);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    use super::*;
    use crate::backup::{self, BackupOptions, BackupProgress};

    fn new_repo(dir: &Path) -> Repository {
        crate::testutil::local_repo(&dir.join("repo"))
    }

    /// A test that this machine cannot run: a failure in CI (which runs as root on a file
    /// system with xattrs and holes), a loud skip elsewhere.
    fn cannot_run_here(why: &str) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to run this test: {why}"
        );
        eprintln!("SKIPPED: {why}");
    }

    /// Backs up `src` and returns the snapshot's root tree.
    fn backup(repo: &Repository, src: &Path) -> Id {
        let opts = BackupOptions {
            paths: vec![src.to_path_buf()],
            host: "h".into(),
            threads: 1,
            ..Default::default()
        };
        let result = backup::run(repo, opts, &BackupProgress::default()).unwrap();
        assert!(result.unreadable.is_empty(), "{:?}", result.unreadable);
        result.snapshot.tree
    }

    fn restore(
        repo: &Repository,
        tree: &Id,
        target: &Path,
        adjust: impl FnOnce(&mut RestoreOptions),
    ) -> RestoreReport {
        let mut opts = RestoreOptions {
            target: target.to_path_buf(),
            threads: 2,
            ..Default::default()
        };
        adjust(&mut opts);
        run(repo, tree, &opts, &RestoreProgress::default()).unwrap()
    }

    fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            out.extend_from_slice(&seed.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn write(path: &Path, data: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }

    /// Names in a directory, sorted.
    fn names(dir: &Path) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect();
        v.sort();
        v
    }

    /// Asserts that `copy` has the same type, mode, owner, mtime (to the nanosecond), link
    /// count, content and symlink target as `orig`, recursively.
    fn assert_same(orig: &Path, copy: &Path) {
        let a = fs::symlink_metadata(orig).unwrap();
        let b = fs::symlink_metadata(copy).unwrap_or_else(|e| panic!("{}: {e}", copy.display()));
        let what = copy.display();
        assert_eq!(a.file_type(), b.file_type(), "type of {what}");
        assert_eq!(
            (a.mtime(), a.mtime_nsec()),
            (b.mtime(), b.mtime_nsec()),
            "mtime of {what}"
        );
        assert_eq!((a.uid(), a.gid()), (b.uid(), b.gid()), "owner of {what}");
        if !a.file_type().is_symlink() {
            assert_eq!(a.mode() & 0o7777, b.mode() & 0o7777, "mode of {what}");
        }
        if a.is_file() {
            assert_eq!(a.nlink(), b.nlink(), "link count of {what}");
            assert!(
                fs::read(orig).unwrap() == fs::read(copy).unwrap(),
                "content of {what}"
            );
        } else if a.file_type().is_symlink() {
            assert_eq!(fs::read_link(orig).unwrap(), fs::read_link(copy).unwrap());
        } else if a.is_dir() {
            assert_eq!(names(orig), names(copy), "entries of {what}");
            for name in names(orig) {
                let name = std::ffi::OsStr::from_bytes(&name);
                assert_same(&orig.join(name), &copy.join(name));
            }
        }
    }

    fn mkfifo(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            FileType::Fifo,
            Mode::from_raw_mode(0o640),
            0,
        )
        .unwrap();
    }

    #[test]
    fn a_restored_tree_matches_the_original() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        write(&src.join("empty"), b"");
        write(&src.join("small.txt"), b"hello\n");
        write(&src.join("big.bin"), &pseudo_random(5 << 20, 7));
        write(&src.join("sub/deeper/x.txt"), b"deep");
        std::os::unix::fs::symlink("small.txt", src.join("link")).unwrap();
        write(&src.join("hard1"), b"linked twice");
        fs::hard_link(src.join("hard1"), src.join("hard2")).unwrap();
        fs::hard_link(src.join("hard1"), src.join("sub/hard3")).unwrap();
        write(&src.join("readonly/file"), b"in a read-only dir");
        fs::set_permissions(src.join("readonly"), fs::Permissions::from_mode(0o555)).unwrap();
        mkfifo(&src.join("fifo"));
        write(&src.join("suid"), b"#!/bin/sh\n");
        fs::set_permissions(src.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
        write(&src.join("private/inner"), b"secret");
        fs::set_permissions(src.join("private"), fs::Permissions::from_mode(0o700)).unwrap();
        write(
            &src.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")),
            b"latin-1 name",
        );
        let xattrs = rustix::fs::setxattr(
            src.join("small.txt"),
            "user.test",
            b"value",
            XattrFlags::empty(),
        );
        let repo = new_repo(tmp.path());
        let tree = backup(&repo, &src);

        let out = tmp.path().join("out");
        let report = restore(&repo, &tree, &out, |o| o.verify = true);

        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.files, 9, "{report:?}");
        assert_eq!(report.verified_files, 9);
        assert_eq!(
            (report.hardlinks, report.symlinks, report.special),
            (2, 1, 1)
        );
        assert_eq!(report.bytes, (5 << 20) + 6 + 4 + 12 + 10 + 6 + 12 + 18);
        assert_same(&src, &out.join("src"));
        let (h1, h2) = (
            fs::metadata(out.join("src/hard1")).unwrap(),
            fs::metadata(out.join("src/hard2")).unwrap(),
        );
        assert_eq!(
            (h1.ino(), h1.nlink()),
            (h2.ino(), 3),
            "hard links share one inode"
        );
        assert!(
            fs::symlink_metadata(out.join("src/fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        match xattrs {
            Ok(()) => {
                let got = crate::fsmeta::read_xattrs(&out.join("src/small.txt"));
                assert_eq!(got.len(), 1, "{got:?}");
                assert_eq!(got[0].name.as_bytes(), b"user.test");
                assert_eq!(got[0].value, b"value");
            }
            Err(e) => cannot_run_here(&format!("the temp filesystem refuses xattrs ({e})")),
        }
    }

    /// Trees loaded ahead by fetcher threads: more directories than may be requested at once,
    /// and identical directories (one tree ID, entered twice).
    #[test]
    fn trees_loaded_ahead_restore_the_same_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        for i in 0..TREES_AHEAD + 40 {
            write(
                &src.join(format!("d{}/sub{i}/f", i % 9)),
                format!("{i}").as_bytes(),
            );
        }
        for twin in ["twin-a", "twin-b"] {
            write(&src.join(format!("{twin}/same/file")), b"identical");
        }
        let repo = new_repo(tmp.path());
        let tree = backup(&repo, &src);
        let out = tmp.path().join("out");
        let report = restore(&repo, &tree, &out, |o| o.tree_fetchers = 4);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.files as usize, TREES_AHEAD + 40 + 2);
        assert_same(&src, &out.join("src"));
    }

    /// A holder of the key (a backup-only token on a managed vault) stores a second copy of
    /// an existing blob with other content, validly encrypted, and indexes it: a restore must
    /// still write the original content, whichever copy the index lists first.
    #[test]
    fn a_forged_copy_of_a_blob_cannot_change_what_is_restored() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let original = pseudo_random(200_000, 11);
        write(&src.join("file"), &original);
        let repo = new_repo(tmp.path());
        let tree = backup(&repo, &src);
        let index = repo.load_index().unwrap();
        let file_tree = repo.load_tree(&index, &tree).unwrap();
        let sub = repo
            .load_tree(&index, &file_tree.nodes[0].subtree.unwrap())
            .unwrap();
        let blob = sub.nodes[0].content[0];
        let loc = index.get(&blob).unwrap();
        let e = loc.entry;
        let stored = repo
            .storage()
            .get_range(
                FileKind::Pack,
                &loc.pack.to_hex(),
                e.offset as u64,
                e.length as u64,
            )
            .unwrap();
        let mut payload = pack::decrypt_payload(
            &pack::pack_cipher(repo.master(), &loc.pack),
            &e,
            stored,
            "p",
        )
        .unwrap();
        let last = payload.len() - 1;
        payload[last] ^= 0xff;
        let mut w = pack::PackWriter::new(repo.master(), 1 << 20);
        w.add(e.kind, e.id, &payload, e.raw_len);
        let (forged, data, entries) = w.finish();
        repo.storage()
            .put(FileKind::Pack, &forged.to_hex(), data)
            .unwrap();
        repo.save_index_file(&crate::index::IndexFile {
            packs: vec![(forged, entries.clone())],
        })
        .unwrap();

        // read_blob, with the forged copy first in the index.
        let mut poisoned = crate::index::Index::new();
        poisoned.add_pack(forged, &entries);
        for f in repo.storage().list(FileKind::Index).unwrap() {
            poisoned.add_file(&repo.load_index_file(&f.name).unwrap());
        }
        poisoned.finish();
        assert_eq!(poisoned.get(&blob).unwrap().pack, forged);
        assert_eq!(repo.read_blob(&poisoned, &blob).unwrap(), original);

        // A whole restore, with the index as storage lists it.
        let out = tmp.path().join("out");
        let report = restore(&repo, &tree, &out, |_| {});
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(fs::read(out.join("src/file")).unwrap(), original);
    }

    /// More files than may be open at once, so the walker has to wait for readers.
    #[test]
    fn many_small_files_all_come_back() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        for i in 0..MAX_OPEN_FILES + 150 {
            write(
                &src.join(format!("d{}/f{i}", i % 7)),
                format!("file {i}").as_bytes(),
            );
        }
        let repo = new_repo(tmp.path());
        let tree = backup(&repo, &src);
        let out = tmp.path().join("out");
        let progress = RestoreProgress::default();
        let opts = RestoreOptions {
            target: out.clone(),
            threads: 3,
            ..Default::default()
        };
        let report = run(&repo, &tree, &opts, &progress).unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.files as usize, MAX_OPEN_FILES + 150);
        assert_eq!(progress.files_done.load(Ordering::Relaxed), report.files);
        assert_eq!(progress.bytes_done.load(Ordering::Relaxed), report.bytes);
        assert_same(&src, &out.join("src"));
    }

    #[test]
    fn includes_and_excludes_pick_what_comes_back() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        for f in ["a.txt", "b.log", "sub/c.txt", "sub/d.log", "other/e.log"] {
            write(&src.join(f), f.as_bytes());
        }
        fs::create_dir(src.join("empty_dir")).unwrap();
        let repo = new_repo(tmp.path());
        let tree = backup(&repo, &src);

        let out = tmp.path().join("txt");
        let report = restore(&repo, &tree, &out, |o| o.includes = vec!["*.txt".into()]);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(
            names(&out.join("src")),
            [b"a.txt".to_vec(), b"sub".to_vec()]
        );
        assert_eq!(names(&out.join("src/sub")), [b"c.txt".to_vec()]);
        // Directories leading to a match get their recorded metadata too.
        let (a, b) = (
            fs::metadata(src.join("sub")).unwrap(),
            fs::metadata(out.join("src/sub")).unwrap(),
        );
        assert_eq!((a.mtime(), a.mtime_nsec()), (b.mtime(), b.mtime_nsec()));

        let out = tmp.path().join("sub");
        restore(&repo, &tree, &out, |o| o.includes = vec!["/src/sub".into()]);
        assert_eq!(names(&out.join("src")), [b"sub".to_vec()]);
        assert_same(&src.join("sub"), &out.join("src/sub"));

        let out = tmp.path().join("excl");
        let report = restore(&repo, &tree, &out, |o| {
            o.excludes = vec!["sub".into(), "*.log".into()]
        });
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(
            names(&out.join("src")),
            [b"a.txt".to_vec(), b"empty_dir".to_vec(), b"other".to_vec()]
        );
        assert!(names(&out.join("src/other")).is_empty());
    }

    /// Names inside a target can be planted by whoever else writes there; restore must
    /// replace them, never write through them.
    #[test]
    fn planted_symlinks_are_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        write(&src.join("top.txt"), b"restored");
        write(&src.join("dir/file.txt"), b"restored too");
        let repo = new_repo(tmp.path());
        let tree = backup(&repo, &src);
        let outside = tmp.path().join("outside");
        write(&outside.join("victim.txt"), b"original");

        // A symlink where the snapshot has a directory.
        let t1 = tmp.path().join("t1");
        fs::create_dir(&t1).unwrap();
        std::os::unix::fs::symlink(&outside, t1.join("src")).unwrap();
        let report = restore(&repo, &tree, &t1, |_| {});
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(fs::symlink_metadata(t1.join("src")).unwrap().is_dir());
        assert_same(&src, &t1.join("src"));

        // Symlinks where the snapshot has a file, and a directory one level down.
        let t2 = tmp.path().join("t2");
        fs::create_dir_all(t2.join("src")).unwrap();
        std::os::unix::fs::symlink(outside.join("victim.txt"), t2.join("src/top.txt")).unwrap();
        std::os::unix::fs::symlink(&outside, t2.join("src/dir")).unwrap();
        let report = restore(&repo, &tree, &t2, |_| {});
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_same(&src, &t2.join("src"));

        assert_eq!(names(&outside), [b"victim.txt".to_vec()]);
        assert_eq!(fs::read(outside.join("victim.txt")).unwrap(), b"original");
    }

    #[test]
    fn sparse_files_come_back_sparse() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let path = src.join("disk.img");
        write(&path, b"head");
        let size = (64 << 20) + 8;
        {
            let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(size).unwrap();
            f.write_all_at(b"tail", size - 4).unwrap();
        }
        let allocated = |p: &Path| fs::metadata(p).unwrap().blocks() * 512;
        if allocated(&path) >= size / 4 {
            return cannot_run_here("the temp filesystem does not keep holes");
        }
        let repo = new_repo(tmp.path());
        let tree = backup(&repo, &src);
        let out = tmp.path().join("out");
        let report = restore(&repo, &tree, &out, |o| o.verify = true);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let copy = out.join("src/disk.img");
        assert!(fs::read(&path).unwrap() == fs::read(&copy).unwrap());
        assert!(
            allocated(&copy) < size / 4,
            "{} bytes allocated for a {size}-byte file with a 64 MiB hole",
            allocated(&copy)
        );
    }

    fn pack_files(repo_dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for fan in fs::read_dir(repo_dir.join("data")).unwrap() {
            for p in fs::read_dir(fan.unwrap().path()).unwrap() {
                out.push(p.unwrap().path());
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_damaged_pack_costs_only_the_files_in_it() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let damaged = pseudo_random(3 << 20, 11);
        write(&src.join("damaged.bin"), &damaged);
        let repo = new_repo(tmp.path());
        backup(&repo, &src);
        // The first backup wrote one data pack (the file's chunks) and one tree pack; damage
        // the data pack, the larger one.
        let mut first_packs = pack_files(&tmp.path().join("repo"));
        assert_eq!(first_packs.len(), 2, "{first_packs:?}");
        first_packs.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).unwrap().len()));
        write(&src.join("good.txt"), b"still fine");
        write(&src.join("more/good.bin"), &pseudo_random(1 << 20, 12));
        let tree = backup(&repo, &src);
        let mut bytes = fs::read(&first_packs[0]).unwrap();
        bytes[pack::PACK_HEADER_LEN + 10] ^= 0x01;
        fs::write(&first_packs[0], bytes).unwrap();

        let out = tmp.path().join("out");
        let report = restore(&repo, &tree, &out, |o| o.verify = true);

        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        let err = &report.errors[0];
        assert!(
            err.contains("damaged.bin") && err.contains("data/"),
            "{err}"
        );
        let left = fs::metadata(out.join("src/damaged.bin")).unwrap().len();
        assert!(left < damaged.len() as u64, "left {left} bytes");
        assert_eq!(fs::read(out.join("src/good.txt")).unwrap(), b"still fine");
        assert_same(&src.join("more"), &out.join("src/more"));
        assert_eq!(report.verified_files, 2);
    }

    #[test]
    fn an_entry_that_cannot_be_written_does_not_stop_the_restore() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        write(&src.join("a.txt"), b"a");
        write(&src.join("b.txt"), b"b");
        write(&src.join("c.txt"), b"c");
        let repo = new_repo(tmp.path());
        let tree = backup(&repo, &src);
        let out = tmp.path().join("out");
        // A non-empty directory where the snapshot has a file is not deleted.
        write(&out.join("src/b.txt/keep"), b"user data");

        let report = restore(&repo, &tree, &out, |_| {});

        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert!(report.errors[0].contains("b.txt"), "{}", report.errors[0]);
        assert_eq!(fs::read(out.join("src/b.txt/keep")).unwrap(), b"user data");
        assert_eq!(fs::read(out.join("src/a.txt")).unwrap(), b"a");
        assert_eq!(fs::read(out.join("src/c.txt")).unwrap(), b"c");
    }

    /// Owners are restored as root, including other users' files and uid/gid 0.
    #[test]
    fn owners_come_back_as_root() {
        if !rustix::process::geteuid().is_root() {
            return cannot_run_here("owners are restored only as root");
        }
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let owners = [
            ("alice", 1234, 5678),
            ("root-owned", 0, 0),
            ("dir", 4321, 0),
        ];
        for (name, uid, gid) in owners {
            let path = src.join(name);
            if name == "dir" {
                fs::create_dir_all(&path).unwrap();
            } else {
                write(&path, name.as_bytes());
            }
            rustix::fs::chown(
                &path,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )
            .unwrap();
        }
        std::os::unix::fs::symlink("alice", src.join("link")).unwrap();
        rustix::fs::chownat(
            rustix::fs::CWD,
            src.join("link"),
            Some(rustix::fs::Uid::from_raw(777)),
            Some(rustix::fs::Gid::from_raw(888)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
        let repo = new_repo(tmp.path());
        let tree = backup(&repo, &src);
        let out = tmp.path().join("out");
        let report = restore(&repo, &tree, &out, |_| {});
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        for (name, uid, gid) in owners {
            let m = fs::symlink_metadata(out.join("src").join(name)).unwrap();
            assert_eq!((m.uid(), m.gid()), (uid, gid), "owner of {name}");
        }
        let link = fs::symlink_metadata(out.join("src/link")).unwrap();
        assert_eq!(
            (link.uid(), link.gid()),
            (777, 888),
            "owner of the symlink itself"
        );
        assert_same(&src, &out.join("src"));
    }

    #[test]
    fn device_files_come_back_as_root() {
        if !rustix::process::geteuid().is_root() {
            return cannot_run_here("device files are restored only as root");
        }
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir(&src).unwrap();
        let dev = rustix::fs::makedev(1, 3);
        let made = rustix::fs::mknodat(
            rustix::fs::CWD,
            src.join("null"),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o640),
            dev,
        );
        if let Err(e) = made {
            return cannot_run_here(&format!("cannot create a device node here ({e})"));
        }
        let repo = new_repo(tmp.path());
        let tree = backup(&repo, &src);
        let out = tmp.path().join("out");
        let report = restore(&repo, &tree, &out, |_| {});
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.special, 1);
        let m = fs::symlink_metadata(out.join("src/null")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), dev);
        assert_same(&src, &out.join("src"));
    }

    #[test]
    fn dump_streams_a_file_and_find_node_resolves_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let big = pseudo_random(5 << 20, 3);
        write(&src.join("dir/big.bin"), &big);
        let repo = new_repo(tmp.path());
        let tree = backup(&repo, &src);
        let index = repo.load_index().unwrap();

        let node = find_node(&repo, &index, &tree, "src/dir/big.bin")
            .unwrap()
            .unwrap();
        assert!(node.content.len() > 1, "a multi-chunk file");
        let mut out = Vec::new();
        assert_eq!(
            dump(&repo, &tree, "src/dir/big.bin", &mut out).unwrap(),
            big.len() as u64
        );
        assert!(out == big);

        let root = find_node(&repo, &index, &tree, "").unwrap().unwrap();
        assert_eq!((root.kind, root.subtree), (NodeKind::Dir, Some(tree)));
        assert_eq!(
            find_node(&repo, &index, &tree, "/src/dir/")
                .unwrap()
                .unwrap()
                .kind,
            NodeKind::Dir
        );
        assert!(
            find_node(&repo, &index, &tree, "src/nothing")
                .unwrap()
                .is_none()
        );
        assert!(
            find_node(&repo, &index, &tree, "src/dir/big.bin/x")
                .unwrap()
                .is_none()
        );
        assert!(
            dump(&repo, &tree, "src/nothing", &mut Vec::new())
                .unwrap_err()
                .is_not_found()
        );
        assert!(dump(&repo, &tree, "src/dir", &mut Vec::new()).is_err());
    }

    #[test]
    fn a_root_tree_that_cannot_be_loaded_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = new_repo(tmp.path());
        let opts = RestoreOptions {
            target: tmp.path().join("out"),
            ..Default::default()
        };
        let err = run(&repo, &Id([9; 32]), &opts, &RestoreProgress::default()).unwrap_err();
        assert!(err.to_string().contains("not in any index"), "{err}");
    }
}
