//! The walker: lists directories in order, reuses what the parent snapshot says is unchanged,
//! and hands files to the hashers and finished listings to the finalizer.

use std::ffi::{OsStr, OsString};
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
use crate::fsmeta::node_from_metadata;
use crate::id::Id;
use crate::tree::{Node, NodeKind, Tree};

/// A subdirectory's name and where its parent-snapshot tree will arrive.
type Prefetched = (Vec<u8>, Receiver<Option<Tree>>);

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
        let mut children = Vec::new();
        if let Some(mut src) = stdin {
            children.push(Child::Ready(self.hash_stdin(&mut src, &blobs)?));
        } else {
            let mut top: Vec<(Vec<u8>, &Path)> =
                roots.iter().map(|p| (root_name(p), p.as_path())).collect();
            top.sort();
            let mut subtrees = self.prefetch_subtrees(parent_root);
            for (name, p) in top {
                let dev = std::fs::symlink_metadata(p).map(|m| m.dev()).unwrap_or(0);
                if let Some(c) = self.child(
                    p,
                    OsStr::from_bytes(&name),
                    parent_root,
                    &mut subtrees,
                    dev,
                    &files,
                    &dirs,
                ) {
                    children.push(c);
                }
            }
        }
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
        name: &OsStr,
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
}
