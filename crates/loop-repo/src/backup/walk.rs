//! The walker: lists directories in order, reuses what the parent snapshot says is unchanged,
//! and hands files to the hashers and finished listings to the finalizer.

use std::ffi::{OsStr, OsString};
use std::fs::{DirEntry, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::StdinSource;
use super::finalizer::{Child, PendingDir};
use super::hasher::FileJob;
use super::packer::BlobJob;
use super::setup::root_name;
use super::state::Run;
use crate::error::{Error, Result};
use crate::exclude::CACHEDIR_TAG;
use crate::fsmeta::node_from_metadata;
use crate::id::Id;
use crate::tree::{Node, NodeKind, Tree};

/// A child as listed: its path, its name, and its metadata (not following a symlink), or
/// why that could not be read.
struct Entry<'a> {
    path: PathBuf,
    name: &'a OsStr,
    meta: io::Result<Metadata>,
    /// How many directories down from a backed-up path (0 for the path itself).
    depth: usize,
}

/// Directories at most this deep are held open while the walk is below them, so the walker
/// holds at most this many file descriptors however deep the tree.
const OPEN_DEPTH: usize = 64;

/// How many of one directory's parent-snapshot subtrees are loaded ahead of the walker at
/// once: enough to hide a store's latency, few enough that a directory of many thousands of
/// subdirectories does not hold all their trees in memory (at most this many per level of
/// the walk).
const SUBTREES_AHEAD: usize = 32;

/// The parent snapshot's subtrees of one directory, by name, loaded ahead of the walker
/// ([`SUBTREES_AHEAD`] at a time, in the parent tree's order, which is the walk's).
#[derive(Default)]
struct Subtrees {
    /// Not asked for yet.
    waiting: std::collections::VecDeque<(Vec<u8>, Id)>,
    /// Asked for: each name and where its tree will arrive.
    asked: Vec<(Vec<u8>, Receiver<Option<Tree>>)>,
}

/// Asks the tree loaders for a tree: where it will arrive.
type AskTree<'a> = &'a dyn Fn(Id) -> Option<Receiver<Option<Tree>>>;

impl Subtrees {
    /// The parent tree of subdirectory `name` (none when the parent snapshot had none, or
    /// it cannot be read); the window moves past it. The walk goes in name order, as the
    /// parent tree does: subtrees named before `name` are not needed any more (their
    /// directories are gone).
    fn take(&mut self, ask: AskTree<'_>, name: &[u8]) -> Option<Tree> {
        self.asked.retain(|(n, _)| n.as_slice() >= name);
        while self
            .waiting
            .front()
            .is_some_and(|(n, _)| n.as_slice() < name)
        {
            self.waiting.pop_front();
        }
        let rx = match self.asked.first() {
            Some((n, _)) if n == name => Some(self.asked.remove(0).1),
            _ => match self.waiting.front() {
                Some((n, id)) if n == name => {
                    let id = *id;
                    self.waiting.pop_front();
                    ask(id)
                }
                _ => None,
            },
        };
        self.top_up(ask);
        rx?.recv().ok().flatten()
    }

    /// Asks for the next subtrees until [`SUBTREES_AHEAD`] are on their way.
    fn top_up(&mut self, ask: AskTree<'_>) {
        while self.asked.len() < SUBTREES_AHEAD {
            let Some((name, id)) = self.waiting.pop_front() else {
                return;
            };
            if let Some(rx) = ask(id) {
                self.asked.push((name, rx));
            }
        }
    }
}

impl Run<'_> {
    /// The walker thread. The root tree holds one entry per backed-up path, or the one
    /// standard-input file; returns where the root tree's ID will arrive. The senders end
    /// with it, so the stages after it end when their queues drain.
    pub(super) fn walk_roots(
        &self,
        roots: &[PathBuf],
        parent_root: Option<&Tree>,
        stdin: Option<StdinSource>,
        files: Sender<FileJob>,
        dirs: Sender<PendingDir>,
        blobs: Sender<BlobJob>,
    ) -> Result<Receiver<Option<Id>>> {
        let (tx, rx) = bounded(1);
        let mut out = Listing::default();
        if let Some(mut src) = stdin {
            out.push(
                Child::Ready(self.hash_stdin(&mut src, &blobs)?),
                &files,
                self,
            );
        } else {
            let mut top: Vec<(Vec<u8>, &Path)> =
                roots.iter().map(|p| (root_name(p), p.as_path())).collect();
            top.sort();
            let mut subtrees = self.prefetch_subtrees(parent_root);
            for (name, p) in top {
                let meta = std::fs::symlink_metadata(p);
                let dev = meta.as_ref().map(|m| m.dev()).unwrap_or(0);
                self.child(
                    Entry {
                        path: p.to_path_buf(),
                        name: OsStr::from_bytes(&name),
                        meta,
                        depth: 0,
                    },
                    parent_root,
                    &mut subtrees,
                    dev,
                    &mut out,
                    &files,
                    &dirs,
                );
            }
        }
        let children = out.finish(&files, self);
        drop(files);
        dirs.send(PendingDir {
            children,
            reply: tx,
        })
        .map_err(|_| Error::Interrupted)?;
        Ok(rx)
    }

    /// Starts loading the parent snapshot's subtrees of one directory, so they are ready by
    /// the time the walker descends. A parent tree that cannot be read only costs re-reading
    /// the files below it.
    fn prefetch_subtrees(&self, parent: Option<&Tree>) -> Subtrees {
        let mut out = Subtrees::default();
        for node in parent.iter().flat_map(|p| &p.nodes) {
            if let (NodeKind::Dir, Some(id)) = (node.kind, node.subtree) {
                out.waiting.push_back((node.name.0.clone(), id));
            }
        }
        out.top_up(&|id| self.ask_tree(id));
        out
    }

    /// Asks the tree loaders for tree `id`: where it will arrive (none once the walk ended).
    fn ask_tree(&self, id: Id) -> Option<Receiver<Option<Tree>>> {
        let guard = self.prefetch.lock().expect("prefetch mutex");
        let (tx, rx) = bounded(1);
        guard.as_ref()?.send((id, tx)).ok()?;
        Some(rx)
    }

    /// Reuses an unchanged file's content from the parent snapshot, or queues the file to
    /// be read.
    fn file_child(
        &self,
        path: PathBuf,
        mut node: Node,
        parent: Option<&Tree>,
        out: &mut Listing,
        files: &Sender<FileJob>,
    ) {
        let old = parent.and_then(|t| t.find(&node.name.0));
        if let Some(old) = old
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
            out.push(Child::Ready(node), files, self);
            return;
        }
        if old.is_none() {
            self.counters.files_new.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.files_changed.fetch_add(1, Ordering::Relaxed);
        }
        out.read(path, node, files, self);
    }

    /// Lists one directory (`depth` levels below a backed-up path), queues its files, recurses
    /// into subdirectories and queues the directory for the finalizer. Returns where its tree
    /// ID will arrive.
    fn walk_dir(
        &self,
        path: &Path,
        depth: usize,
        parent: Option<Tree>,
        root_dev: u64,
        files: &Sender<FileJob>,
        dirs: &Sender<PendingDir>,
    ) -> Receiver<Option<Id>> {
        let (tx, rx) = bounded(1);
        let mut out = Listing::default();
        self.counters.dirs.fetch_add(1, Ordering::Relaxed);
        let mut subtrees = self.prefetch_subtrees(parent.as_ref());
        match std::fs::read_dir(path) {
            Err(e) => self.warn_unreadable(path, &e),
            Ok(rd) => {
                let mut entries: Vec<(OsString, DirEntry)> = Vec::new();
                for entry in rd {
                    match entry {
                        Ok(e) => entries.push((e.file_name(), e)),
                        Err(e) => {
                            self.warn_unreadable(path, &e);
                            break;
                        }
                    }
                }
                if self.excluder.skips_cache(path) {
                    entries.retain(|(name, _)| name == CACHEDIR_TAG);
                }
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                // A child's metadata is read right before the child is handled, relative to
                // the open directory (one lookup instead of a walk of the whole path from the
                // root). The entries hold their directory open while its subdirectories are
                // walked, so below `OPEN_DEPTH` levels they are let go and paths are used.
                let held = depth < OPEN_DEPTH;
                let entries: Vec<(OsString, Option<DirEntry>)> = entries
                    .into_iter()
                    .map(|(name, e)| (name, held.then_some(e)))
                    .collect();
                for (name, e) in entries {
                    if self.stopped() {
                        break;
                    }
                    let child_path = path.join(&name);
                    if self.excluder.is_excluded(&child_path) {
                        continue;
                    }
                    let meta = match e {
                        Some(e) => e.metadata(),
                        None => std::fs::symlink_metadata(&child_path),
                    };
                    self.child(
                        Entry {
                            path: child_path,
                            name: &name,
                            meta,
                            depth: depth + 1,
                        },
                        parent.as_ref(),
                        &mut subtrees,
                        root_dev,
                        &mut out,
                        files,
                        dirs,
                    );
                }
            }
        }
        let children = out.finish(files, self);
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
        entry: Entry<'_>,
        parent: Option<&Tree>,
        subtrees: &mut Subtrees,
        root_dev: u64,
        out: &mut Listing,
        files: &Sender<FileJob>,
        dirs: &Sender<PendingDir>,
    ) {
        let Entry {
            path,
            name,
            meta,
            depth,
        } = entry;
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                self.warn_unreadable(&path, &e);
                return;
            }
        };
        // Changing extended attributes changes ctime: with the same inode and ctime as in the
        // parent snapshot, the recorded attributes are still right.
        let old = parent.and_then(|t| t.find(name.as_bytes()));
        let ctime = crate::fsmeta::nanos(meta.ctime(), meta.ctime_nsec());
        let reuse = old.filter(|o| o.inode == meta.ino() && o.ctime_ns == ctime);
        let mut node = match node_from_metadata(name, &meta, &path, reuse.is_none()) {
            Ok(n) => n,
            Err(e) => {
                self.warn_unreadable(&path, &e);
                return;
            }
        };
        if let Some(o) = reuse {
            node.xattrs = o.xattrs.clone();
        }
        match node.kind {
            NodeKind::File => self.file_child(path, node, parent, out, files),
            NodeKind::Dir => {
                // Files listed before the subdirectory go to the hashers before its walk.
                out.flush(files, self);
                let rx = if self.one_file_system && meta.dev() != root_dev {
                    // A mount point: record the directory itself, not what is mounted there.
                    let (tx, rx) = bounded(1);
                    let _ = dirs.send(PendingDir {
                        children: Vec::new(),
                        reply: tx,
                    });
                    rx
                } else {
                    let sub = subtrees.take(&|id| self.ask_tree(id), name.as_bytes());
                    self.walk_dir(&path, depth, sub, root_dev, files, dirs)
                };
                out.push(Child::Dir(node, rx), files, self);
            }
            _ => out.push(Child::Ready(node), files, self),
        }
    }
}

/// Files at most this large are read in batches (see [`Listing`]).
const SMALL_FILE: u64 = 64 * 1024;
/// A batch of small files ends at this many files or this many bytes, so that the hashers
/// share a directory of small files between them.
const BATCH_FILES: usize = 64;
const BATCH_BYTES: u64 = 1 << 20;

/// One directory's children in name order, as the walker lists them. Small files that need
/// reading are gathered into one [`FileJob`] for a hasher, so a file of a few KiB costs no
/// channel, message or thread wake-up of its own; a large file is a job by itself, so that
/// the hashers read large files in parallel. A batch is a run of consecutive children,
/// sent before any other child is added, which keeps the children in name order.
#[derive(Default)]
struct Listing {
    children: Vec<Child>,
    batch: Vec<(PathBuf, Node)>,
    batch_bytes: u64,
}

impl Listing {
    fn push(&mut self, child: Child, files: &Sender<FileJob>, run: &Run<'_>) {
        self.flush(files, run);
        self.children.push(child);
    }

    /// Queues a file to be read.
    fn read(&mut self, path: PathBuf, node: Node, files: &Sender<FileJob>, run: &Run<'_>) {
        let small = node.size <= SMALL_FILE;
        if !small {
            self.flush(files, run);
        }
        self.batch_bytes += node.size;
        self.batch.push((path, node));
        if !small || self.batch.len() >= BATCH_FILES || self.batch_bytes >= BATCH_BYTES {
            self.flush(files, run);
        }
    }

    /// Hands the gathered files to a hasher.
    fn flush(&mut self, files: &Sender<FileJob>, run: &Run<'_>) {
        if self.batch.is_empty() {
            return;
        }
        let (tx, rx) = bounded(1);
        let n = self.batch.len();
        self.batch_bytes = 0;
        let job = FileJob {
            files: std::mem::take(&mut self.batch),
            reply: tx,
        };
        if files.send(job).is_err() {
            run.fail(Error::Interrupted);
        }
        self.children.push(Child::Files(n, rx));
    }

    fn finish(mut self, files: &Sender<FileJob>, run: &Run<'_>) -> Vec<Child> {
        self.flush(files, run);
        self.children
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// A directory of 1,000 subdirectories, every tenth gone since the parent snapshot, and
    /// new ones between: at most [`SUBTREES_AHEAD`] of their trees are on their way at any
    /// time, each taken only once asked for, and gone or new ones cost no request.
    #[test]
    fn subtrees_are_loaded_a_bounded_window_ahead_of_the_walker() {
        let name = |i: usize| format!("d{i:04}").into_bytes();
        let mut subtrees = Subtrees::default();
        for i in 0..1000 {
            subtrees
                .waiting
                .push_back((name(i), Id([(i % 251) as u8; 32])));
        }
        let asks = Cell::new(0usize);
        let ask = |_: Id| {
            asks.set(asks.get() + 1);
            let (tx, rx) = bounded(1);
            tx.send(Some(Tree::default())).unwrap();
            Some(rx)
        };
        subtrees.top_up(&ask);
        assert_eq!(asks.get(), SUBTREES_AHEAD);
        for i in 0..1000 {
            if i % 10 == 0 {
                // A directory that is new: nothing to take.
                let new = format!("d{i:04}-new").into_bytes();
                assert!(subtrees.take(&ask, &new).is_none());
                continue;
            }
            assert!(subtrees.take(&ask, &name(i)).is_some(), "d{i:04}");
            assert!(subtrees.asked.len() <= SUBTREES_AHEAD);
            assert!(
                asks.get() <= i + 1 + SUBTREES_AHEAD,
                "{} asked by d{i:04}",
                asks.get()
            );
        }
        assert!(subtrees.take(&ask, b"zzz").is_none());
    }
}
