//! Restore: write a snapshot's files back to disk, plus `dump` of one file and `find_node`.
//!
//! ```text
//! run (mod.rs): open the target, start the threads, walk
//!  ├─ walker.rs (this thread): walks the trees; creates dirs, links, symlinks, specials;
//!  │    opens files and plans their chunks as per-pack reads
//!  │        ▲ subtrees, loaded ahead       │ RangeJob
//!  │    readers.rs: tree loaders           ▼
//!  │                         readers.rs: reader pool: get_range, decrypt, check each ID
//!  │                                       │ blob data
//!  │                                       ▼
//!  │                         writer.rs: pwrite into the open file; after its last chunk:
//!  │                           verify, metadata, close
//!  └─ writer.rs, at the end: directory metadata, children before parents
//!
//! nofollow.rs: every call that touches a name under the target, for walker and writer
//! ```
//!
//! Memory stays bounded: each reader holds one range and one blob, a batch about 100 bytes per
//! chunk, at most 384 files are open at a time, at most 256 trees are loaded ahead, and
//! directories are remembered (about 200 bytes each) until their metadata is set at the end.
//!
//! Security: names come from the repository, which may be hostile, and nothing is written
//! outside the target; `nofollow.rs` states the rule and holds every call it covers.

mod dirs;
mod nofollow;
mod readers;
mod relisted;
#[cfg(test)]
mod tests;
mod walker;
mod writer;

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use self::readers::{spawn_readers, spawn_tree_loaders};
use self::walker::{Selection, Walker};
use self::writer::Restorer;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::Index;
use crate::repo::Repository;
use crate::tree::{Name, Node, NodeKind};

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
    /// Reader threads; 0 means one per core.
    pub threads: usize,
    /// Threads that load directory trees ahead of the walker; 0 loads each tree when the
    /// walker reaches it, which is fastest on local disk. Use several for a store with
    /// per-request latency (a server).
    pub tree_fetchers: usize,
    /// Files planned before their reads go out; 0 means 128, fastest on local disk. A store
    /// with per-request latency (a server) gains from larger batches: the blobs of more
    /// files merge into fewer, longer reads. Three batches' files are open at once, so the
    /// open-file limit is raised toward its hard limit when a batch needs it.
    pub files_per_batch: usize,
    /// Restore owners; `None` means only when running as root.
    pub owner: Option<bool>,
    /// When not empty, the directories the target must be under, as the opened target
    /// directory's own path tells (checked on its descriptor, after every link on the way
    /// was followed): a link swapped into the target's path after the caller checked it
    /// cannot send the restore elsewhere. Resolved paths, as `canonicalize` gives.
    pub within: Vec<PathBuf>,
}

/// Live counters a progress display can poll. Totals grow as the walker plans.
#[derive(Default)]
pub struct RestoreProgress {
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_total: AtomicU64,
    pub bytes_total: AtomicU64,
    /// Set to stop (a cancelled job): no further file is planned, reads not yet made are
    /// dropped, and [`run`] answers [`Error::Interrupted`] when that may have left anything
    /// out (an entry not reached yet, even one the includes would skip, or a read not made;
    /// a cancel that came after the last entry and read changes nothing). Files already
    /// written stay.
    pub cancel: AtomicBool,
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
    let selection = Selection::new(opts)?;
    // Announce the reader, so a concurrent prune keeps the packs it reads (see prune.rs).
    // Best effort: a read-only or full repository can still be read, just without telling a
    // concurrent prune to wait.
    let _lock = crate::locks::Lock::acquire(repo, crate::locks::LockKind::Read).ok();
    // A damaged index file must not make the rest of the repository unreachable: restore
    // what the other index files name, and report files whose data is lost.
    let (index, warnings) = repo.load_index_lenient(&Default::default())?;
    let ctx = Restorer::new(repo, &index, opts, progress);
    let root_tree = ctx.load_tree(tree).map_err(|e| {
        if warnings.is_empty() {
            e
        } else {
            Error::Invalid(format!("{e}; {}", warnings.join("; ")))
        }
    })?;
    let root = nofollow::open_target(&opts.target).map_err(|e| Error::io(&opts.target, e))?;
    if !opts.within.is_empty() {
        nofollow::check_within(&root, &opts.within).map_err(|e| {
            Error::Invalid(format!("restore target {}: {e}", opts.target.display()))
        })?;
    }
    let root_dir = root.try_clone().map_err(|e| Error::io(&opts.target, e))?;
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let records = std::thread::scope(|s| {
        let jobs = spawn_readers(s, &ctx, threads);
        // Tree loaders: a directory's subtrees are fetched while the walker is still busy
        // with the directory, so a store with per-request latency is not paid per tree.
        let trees = spawn_tree_loaders(s, &ctx, opts.tree_fetchers);
        Walker::new(&ctx, &selection, &root, root_dir, root_tree, trees, jobs).run()
        // The readers drain the queue and the scope joins them.
    });
    ctx.finish_dirs(&root, &records);
    if ctx.cut.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
    Ok(ctx.into_report(warnings))
}

/// Writes one file of a snapshot (`path` relative to the snapshot root, like
/// `linux/Makefile`) to `out`, chunk by chunk. Returns the bytes written.
pub fn dump(
    repo: &Repository,
    index: &Index,
    tree: &Id,
    path: &str,
    out: &mut dyn io::Write,
) -> Result<u64> {
    let node = find_node(repo, index, tree, path)?
        .ok_or_else(|| Error::NotFound(format!("{path:?} in the snapshot")))?;
    if node.kind != NodeKind::File {
        return Err(Error::Invalid(format!(
            "{path:?} is a {:?}, not a file",
            node.kind
        )));
    }
    let mut written = 0u64;
    for id in &node.content {
        let data = repo.read_blob(index, id)?;
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
    let mut current = Node::bare(Name::default(), NodeKind::Dir, 0, Some(*tree));
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
