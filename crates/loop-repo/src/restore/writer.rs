//! The writer: state shared by the walker and the readers, the positioned writes of chunk
//! data, and the metadata of finished files and directories.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use rustix::fs::{Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use super::dirs::{DirChain, DirRecord, record_path};
use super::nofollow;
use super::{RestoreOptions, RestoreProgress, RestoreReport};
use crate::id::Id;
use crate::index::{BlobLocation, Index};
use crate::repo::Repository;
use crate::tree::{Name, Node, Xattr};

/// Zero runs of this size inside a chunk are skipped, so they stay holes.
const SPARSE_BLOCK: usize = 64 * 1024;
static ZEROS: [u8; SPARSE_BLOCK] = [0; SPARSE_BLOCK];

#[derive(Default)]
pub(super) struct Counts {
    pub(super) files: AtomicU64,
    pub(super) dirs: AtomicU64,
    pub(super) symlinks: AtomicU64,
    pub(super) special: AtomicU64,
    bytes: AtomicU64,
    pub(super) hardlinks: AtomicU64,
    verified: AtomicU64,
}

/// State shared by the walker and the readers.
pub(super) struct Restorer<'a> {
    pub(super) repo: &'a Repository,
    pub(super) index: &'a Index,
    pub(super) target: &'a Path,
    verify: bool,
    owner: bool,
    pub(super) progress: &'a RestoreProgress,
    pub(super) counts: Counts,
    errors: Mutex<Vec<String>>,
    pub(super) open_files: Mutex<usize>,
    pub(super) file_closed: Condvar,
    /// Files opened for writing at most at once (three batches' worth).
    pub(super) max_open_files: usize,
    pub(super) files_per_batch: usize,
    /// The index listed again, for blobs a prune moved while the restore ran.
    pub(super) relisted: super::relisted::Relisted,
    /// A cancel left an entry out or a read undone.
    pub(super) cut: std::sync::atomic::AtomicBool,
    /// Where blobs whose copies disagree on their length are read from (see
    /// [`Restorer::locate`]), so that planning and `verify` agree.
    settled: Mutex<std::collections::HashMap<Id, BlobLocation>>,
}

/// A file written under a temporary name beside the one it replaces (see
/// [`nofollow::create_file_beside`]).
pub(super) struct Beside {
    pub(super) dir: Arc<OwnedFd>,
    pub(super) temporary: Name,
    pub(super) name: Name,
}

/// A file being written: its chunks may span several batches and readers.
pub(super) struct PendingFile {
    path: PathBuf,
    pub(super) node: Node,
    pub(super) file: RwLock<Option<File>>,
    /// Where it goes once complete, when it is written beside a file it replaces.
    beside: Option<Beside>,
    /// Chunk writes still to do, plus one while the walker is still planning.
    pub(super) remaining: AtomicUsize,
    /// The smallest offset of a chunk that could not be restored; `u64::MAX` when none.
    damaged_at: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl PendingFile {
    pub(super) fn new(
        path: PathBuf,
        node: Node,
        file: File,
        beside: Option<Beside>,
    ) -> PendingFile {
        PendingFile {
            path,
            node,
            file: RwLock::new(Some(file)),
            beside,
            remaining: AtomicUsize::new(1),
            damaged_at: AtomicU64::new(u64::MAX),
            first_error: Mutex::new(None),
        }
    }

    pub(super) fn fail(&self, offset: u64, message: String) {
        self.damaged_at.fetch_min(offset, Ordering::Relaxed);
        let mut first = self.first_error.lock().expect("error mutex");
        if first.is_none() {
            *first = Some(message);
        }
    }
}

/// Files planned per batch of reads by default: fastest on local disk.
pub(super) const FILES_PER_BATCH: usize = 128;

/// Descriptors kept aside for directories, the repository and the runtime.
const RESERVED_DESCRIPTORS: u64 = 256;

/// How many files a restore may hold open: `wanted` when the open-file limit has room for
/// it beside [`RESERVED_DESCRIPTORS`], raising the soft limit toward the hard one if needed
/// (as most runtimes do at start); otherwise what the limit allows.
fn open_file_budget(wanted: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let need = wanted as u64 + RESERVED_DESCRIPTORS;
    let limit = getrlimit(Resource::Nofile);
    let soft = match limit.current {
        Some(current) if current < need => {
            let raised = limit.maximum.map_or(need, |hard| hard.min(need));
            let set = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(raised),
                    maximum: limit.maximum,
                },
            );
            if set.is_ok() { raised } else { current }
        }
        Some(current) => current,
        None => need,
    };
    (soft.saturating_sub(RESERVED_DESCRIPTORS) as usize).clamp(3, wanted.max(3))
}

impl<'a> Restorer<'a> {
    pub(super) fn new(
        repo: &'a Repository,
        index: &'a Index,
        opts: &'a RestoreOptions,
        progress: &'a RestoreProgress,
    ) -> Restorer<'a> {
        let per_batch = match opts.files_per_batch {
            0 => FILES_PER_BATCH,
            n => n,
        };
        // A file that replaces one holds its directory open too, until it is renamed.
        let max_open_files = open_file_budget(6 * per_batch) / 2;
        Restorer {
            repo,
            index,
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
            max_open_files,
            files_per_batch: (max_open_files / 3).max(1),
            relisted: Default::default(),
            cut: Default::default(),
            settled: Default::default(),
        }
    }

    /// Where blob `id` is read from, as planned (and verified): the index's first copy,
    /// unless its copies disagree on its length. Then one lies (a key holder can index a
    /// blob with any length, first): the blob is read once (authenticated, its ID checked)
    /// and the copy of its true length is taken, so a file is not sized, placed or verified
    /// by a lie.
    pub(super) fn locate(&self, id: &Id) -> Option<BlobLocation> {
        let first = self.index.get(id)?;
        let others = self.index.alternates(id);
        if others
            .iter()
            .all(|l| l.entry.raw_len == first.entry.raw_len)
        {
            return Some(first);
        }
        let known = self
            .settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied();
        if known.is_some() {
            return known;
        }
        let Ok(blob) = self.repo.read_blob(self.index, id) else {
            return Some(first);
        };
        let true_len = std::iter::once(first)
            .chain(others)
            .find(|l| l.entry.raw_len as usize == blob.len())
            .unwrap_or(first);
        self.settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*id, true_len);
        Some(true_len)
    }

    /// Tree `id`; when its pack is gone, from where a prune moved it.
    pub(super) fn load_tree(&self, id: &crate::id::Id) -> crate::error::Result<crate::tree::Tree> {
        match self.repo.load_tree(self.index, id) {
            Err(e) if e.is_not_found() => {
                match self
                    .relisted
                    .read(self.repo, |index| self.repo.load_tree(index, id))
                {
                    Some(Ok(tree)) => Ok(tree),
                    _ => Err(e),
                }
            }
            loaded => loaded,
        }
    }

    /// What was restored, once the walker and the readers are done.
    pub(super) fn into_report(self, warnings: Vec<String>) -> RestoreReport {
        // Readers finish in any order; sorted lines read (and compare) better.
        let mut errors = self.errors.into_inner().expect("errors mutex");
        errors.sort();
        let c = &self.counts;
        RestoreReport {
            files: c.files.load(Ordering::Relaxed),
            dirs: c.dirs.load(Ordering::Relaxed),
            symlinks: c.symlinks.load(Ordering::Relaxed),
            special: c.special.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            hardlinks: c.hardlinks.load(Ordering::Relaxed),
            verified_files: c.verified.load(Ordering::Relaxed),
            errors,
            warnings,
        }
    }

    pub(super) fn error(&self, path: &Path, what: impl std::fmt::Display) {
        self.errors
            .lock()
            .expect("errors mutex")
            .push(format!("{}: {what}", path.display()));
    }

    pub(super) fn release_file_slot(&self) {
        *self.open_files.lock().expect("open files mutex") -= 1;
        self.file_closed.notify_all();
    }

    // ---- file data ----

    /// Writes one chunk of `file` at `offset`, or records why it could not be read; the last
    /// chunk finishes the file.
    pub(super) fn write_chunk(
        &self,
        file: &PendingFile,
        offset: u64,
        data: &std::result::Result<Vec<u8>, String>,
    ) {
        match data {
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
            self.finish_file(file);
        }
    }

    /// Runs once per file, after its last chunk: truncate at damage or verify, then
    /// metadata, then close.
    pub(super) fn finish_file(&self, pf: &PendingFile) {
        let Some(file) = pf.file.write().expect("file lock").take() else {
            return;
        };
        let damaged_at = pf.damaged_at.load(Ordering::Relaxed);
        if damaged_at != u64::MAX
            && let Some(b) = &pf.beside
        {
            // What the name held stays; the incomplete copy goes.
            drop(file);
            let first = pf.first_error.lock().expect("error mutex").take();
            let _ = nofollow::remove_temporary(b.dir.as_fd(), &b.temporary);
            self.error(
                &pf.path,
                format!(
                    "{}; not restored, and the file already there left as it was",
                    first.unwrap_or_default()
                ),
            );
            self.progress.files_done.fetch_add(1, Ordering::Relaxed);
            self.release_file_slot();
            return;
        }
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
        if let Some(b) = &pf.beside
            && let Err(e) = nofollow::put_in_place(b.dir.as_fd(), &b.temporary, &b.name)
        {
            let _ = nofollow::remove_temporary(b.dir.as_fd(), &b.temporary);
            self.error(&pf.path, format!("not restored: {e}"));
        }
        self.progress.files_done.fetch_add(1, Ordering::Relaxed);
        self.release_file_slot();
    }

    fn verify_file(&self, file: &File, node: &Node) -> std::result::Result<(), String> {
        let mut buf = Vec::new();
        let mut offset = 0u64;
        for id in &node.content {
            let loc = self
                .locate(id)
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
        let mut owned = self.owner || ours(node);
        if self.owner
            && let Err(e) = rustix::fs::fchown(fd, Some(uid(node)), Some(gid(node)))
        {
            owned = false;
            self.error(path, format!("chown: {e}"));
        }
        if let Err(e) = rustix::fs::fchmod(fd, restored_mode(node.mode, owned)) {
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

    /// The same for a symlink, FIFO or device just made, through its `O_PATH` descriptor.
    pub(super) fn apply_made_meta(&self, made: &nofollow::Made<'_>, node: &Node, path: &Path) {
        let mut owned = self.owner || ours(node);
        if self.owner
            && let Err(e) = made.chown(uid(node), gid(node))
        {
            owned = false;
            self.error(path, format!("chown: {e}"));
        }
        if let Err(e) = made.chmod(restored_mode(node.mode, owned)) {
            self.error(path, format!("chmod: {e}"));
        }
        if !node.xattrs.is_empty() && made.is_symlink() && !made.only_we_rename() {
            self.error(
                path,
                "xattrs not restored: a symlink's are set by its name, and others may rename \
                 names in its directory",
            );
        } else {
            for x in &node.xattrs {
                self.xattr_result(path, x, made.set_xattr(x));
            }
        }
        if let Err(e) = made.set_times(&timestamps(node.mtime_ns)) {
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
    pub(super) fn finish_dirs(&self, root: &OwnedFd, records: &[DirRecord]) {
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

/// The permission bits a node gets: its own, without setuid and setgid when its owner could
/// not be restored (as tar does), so a file never runs with the rights of whoever restored
/// it instead of its owner's.
pub(super) fn restored_mode(mode: u32, owned: bool) -> Mode {
    let bits = if owned { mode & 0o7777 } else { mode & 0o1777 };
    Mode::from_raw_mode(bits)
}

/// Whether the node's owner and group are this process's: what it makes is theirs without a
/// chown.
fn ours(node: &Node) -> bool {
    node.uid == rustix::process::geteuid().as_raw()
        && node.gid == rustix::process::getegid().as_raw()
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
