//! The walker: goes through the snapshot's trees on the calling thread, decides what is
//! restored (includes, excludes, hard links), creates directories, links, symlinks and
//! special files, opens regular files, and plans the reads of their chunks.
//!
//! Reads are planned per pack, not per file: the walker collects the chunks of up to 128
//! newly opened files or 100k chunks, sorts them by pack and offset, and merges neighbours less
//! than 1 MiB apart into one ranged read of at most 16 MiB. A chunk needed several times in a
//! batch (hard copies, the zero chunks of a sparse image) is read and decrypted once.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::Sender;
use rustix::fs::{FileType, Mode};

use super::RestoreOptions;
use super::dirs::{DirChain, DirRecord, inode_of};
use super::nofollow;
use super::readers::{BlobWrites, RangeJob, TreeAhead};
use super::writer::{Beside, PendingFile, Restorer};
use crate::error::Result;
use crate::exclude::Excluder;
use crate::id::Id;
use crate::pack::PackEntry;
use crate::tree::{MAX_PATH, Name, Node, NodeKind, Tree};

/// A batch of planned reads ends after `Restorer::files_per_batch` newly opened files, or
/// this many chunks (about 100 bytes of plan each).
const CHUNKS_PER_BATCH: usize = 100_000;
/// Blobs of one pack closer than this are fetched in one read (the gap is read and dropped).
const RANGE_GAP: u64 = 1 << 20;
/// Largest merged read; a single larger blob is still read whole.
const MAX_RANGE: u64 = 16 << 20;

/// Which paths of the snapshot are restored.
pub(super) struct Selection {
    includes: Excluder,
    excludes: Excluder,
    /// There are no include patterns: everything not excluded is restored.
    everything: bool,
}

impl Selection {
    pub(super) fn new(opts: &RestoreOptions) -> Result<Selection> {
        Ok(Selection {
            includes: Excluder::new(&opts.includes)?,
            excludes: Excluder::new(&opts.excludes)?,
            everything: opts.includes.is_empty(),
        })
    }
}

enum DirState {
    /// Not created yet: with include patterns, a directory appears only when something
    /// below it is restored.
    Pending,
    /// Shared with the files written in it that replace others, until they are renamed.
    Ready(Arc<OwnedFd>),
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

/// The first name of a file with several links: where it was restored and what it holds.
struct FirstLink {
    record: Option<usize>,
    name: Name,
    size: u64,
    content: Vec<Id>,
}

/// One chunk of a file, planned but not yet sent to the readers.
struct ChunkRef {
    pack: Id,
    entry: PackEntry,
    file: Arc<PendingFile>,
    offset: u64,
}

pub(super) struct Walker<'a, 'r> {
    ctx: &'a Restorer<'r>,
    trees: TreeAhead,
    selection: &'a Selection,
    root: &'a OwnedFd,
    frames: Vec<Frame>,
    records: Vec<DirRecord>,
    /// (dev, inode) of files with several links → the first one restored.
    hardlinks: HashMap<(u64, u64), FirstLink>,
    chain: DirChain,
    refs: Vec<ChunkRef>,
    batch_files: usize,
    tx: Sender<RangeJob>,
}

impl<'a, 'r> Walker<'a, 'r> {
    /// A walker of `root_tree` into the target `root` (`root_dir` is a second descriptor of
    /// it, for the first frame), sending its reads to `tx`.
    pub(super) fn new(
        ctx: &'a Restorer<'r>,
        selection: &'a Selection,
        root: &'a OwnedFd,
        root_dir: OwnedFd,
        root_tree: Tree,
        mut trees: TreeAhead,
        tx: Sender<RangeJob>,
    ) -> Self {
        trees.request_children(&root_tree);
        Walker {
            ctx,
            trees,
            selection,
            root,
            frames: vec![Frame {
                nodes: root_tree.nodes.into_iter(),
                rel: PathBuf::new(),
                node: None,
                record: None,
                dir: DirState::Ready(Arc::new(root_dir)),
                included: selection.everything,
            }],
            records: Vec::new(),
            hardlinks: HashMap::new(),
            chain: DirChain::default(),
            refs: Vec::new(),
            batch_files: 0,
            tx,
        }
    }

    /// Walks the whole tree and sends the last planned reads. Returns the directories made,
    /// for their metadata once the readers are done.
    pub(super) fn run(mut self) -> Vec<DirRecord> {
        self.walk();
        self.flush();
        // No more tree requests: the loaders end with the channel.
        self.trees.close();
        std::mem::take(&mut self.records)
        // The sender of range jobs drops with the walker: the readers drain the queue and end.
    }

    /// Depth first with an explicit stack, so a hostile deep tree cannot overflow ours.
    fn walk(&mut self) {
        while let Some(top) = self.frames.last_mut() {
            let Some(node) = top.nodes.next() else {
                self.frames.pop();
                continue;
            };
            // Asked only with an entry left: a cancel after the last one cut nothing.
            if self.ctx.progress.cancel.load(Ordering::Relaxed) {
                self.ctx.cut.store(true, Ordering::Relaxed);
                return;
            }
            let rel = top.rel.join(node.name.to_os());
            let parent_included = top.included;
            // Trees are validated on load; this keeps the walker safe on its own.
            if !node.name.is_safe_component() {
                let path = self.ctx.target.join(&rel);
                self.ctx.error(&path, "unsafe name in the snapshot");
                continue;
            }
            let in_snapshot = Path::new("/").join(&rel);
            if self.selection.excludes.is_excluded(&in_snapshot) {
                if let Some(id) = node.subtree {
                    self.trees.forget(&id);
                }
                continue;
            }
            // `is_excluded` of the include set means "matches an include pattern".
            let included = parent_included || self.selection.includes.is_excluded(&in_snapshot);
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
        if rel.as_os_str().len() > MAX_PATH {
            let shown: String = rel.to_string_lossy().chars().take(200).collect();
            let at = self.ctx.target.join(shown + "...");
            self.ctx.error(
                &at,
                format!("directory skipped: its path is longer than {MAX_PATH} bytes"),
            );
            return;
        }
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
            let made = nofollow::make_dir(parent_fd.as_fd(), &node.name)
                .and_then(|fd| Ok((inode_of(fd.as_fd())?, fd)));
            match made {
                Ok((inode, fd)) => {
                    frame.dir = DirState::Ready(Arc::new(fd));
                    frame.record = Some(self.records.len());
                    self.records.push(DirRecord {
                        parent: parent.record,
                        node,
                        inode,
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

    fn dir_arc(&self, k: usize) -> Arc<OwnedFd> {
        match &self.frames[k].dir {
            DirState::Ready(fd) => fd.clone(),
            _ => unreachable!("ensure_dir succeeded"),
        }
    }

    fn restore_other(&mut self, k: usize, node: Node, rel: PathBuf) {
        let path = self.ctx.target.join(&rel);
        if !self.ensure_dir(k) {
            return;
        }
        let dir = self.dir_fd(k);
        let mode = Mode::from_raw_mode(node.mode & 0o7777);
        let kind = match node.kind {
            NodeKind::Symlink => FileType::Symlink,
            NodeKind::Fifo => FileType::Fifo,
            NodeKind::Chardev => FileType::CharacterDevice,
            _ => FileType::BlockDevice,
        };
        let made = match kind {
            FileType::Symlink => match &node.link_target {
                Some(t) => nofollow::make_symlink(dir, &node.name, t.to_os()),
                None => Err(io::Error::other("symlink without a target")),
            },
            FileType::Fifo => nofollow::make_node(dir, &node.name, kind, mode, 0),
            _ if !rustix::process::geteuid().is_root() => {
                Err(io::Error::other("device files are restored only as root"))
            }
            _ => nofollow::make_node(dir, &node.name, kind, mode, node.rdev),
        };
        match made.and_then(|()| nofollow::open_made(dir, &node.name, kind)) {
            Ok(made) => {
                let counter = if node.kind == NodeKind::Symlink {
                    &self.ctx.counts.symlinks
                } else {
                    &self.ctx.counts.special
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.ctx.apply_made_meta(&made, &node, &path);
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
        // A later name is linked only when it holds what the first holds: a file written
        // between the reads of its two names, or a hostile tree, gives names of one inode
        // different content, and linking would lose the later name's.
        if let Some(first) = key
            .and_then(|key| self.hardlinks.get(&key))
            .filter(|f| f.size == node.size && f.content == node.content)
        {
            let (record, name) = (first.record, first.name.clone());
            self.link(k, &node.name, record, &name, &path);
            return;
        }
        self.wait_for_file_slot();
        // The first name of a hard-linked file replaces what is there at once, since later
        // names link to it as soon as they are met; any other file is written beside what it
        // replaces and renamed over it once complete.
        let created = if key.is_some() {
            nofollow::create_file(self.dir_fd(k), &node.name).map(|f| (f, None))
        } else {
            nofollow::create_file_beside(self.dir_fd(k), &node.name).map(|(f, temporary)| {
                let beside = temporary.map(|temporary| Beside {
                    dir: self.dir_arc(k),
                    temporary,
                    name: node.name.clone(),
                });
                (f, beside)
            })
        };
        let (file, beside) = match created {
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
            self.hardlinks.entry(key).or_insert_with(|| FirstLink {
                record: self.frames[k].record,
                name: node.name.clone(),
                size: node.size,
                content: node.content.clone(),
            });
        }
        self.batch_files += 1;
        let pf = Arc::new(PendingFile::new(path, node, file, beside));
        // Size the file first: chunks are written at their offsets and zeros stay holes. Two
        // passes over the chunk list, so planning a huge file needs no copy of it.
        let mut size = 0u64;
        let mut usable = 0;
        for id in &pf.node.content {
            let Some(loc) = self.ctx.locate(id) else {
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
            let loc = self.ctx.locate(id).expect("looked up above");
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
        if self.batch_files >= self.ctx.files_per_batch {
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
            .and_then(|old_dir| nofollow::hard_link(old_dir, old_name, new_dir.as_fd(), name));
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
        let max = self.ctx.max_open_files;
        let full = *self.ctx.open_files.lock().expect("open files mutex") >= max;
        if full {
            self.flush();
        }
        let mut open = self.ctx.open_files.lock().expect("open files mutex");
        while *open >= max {
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
                // Only the same entry is read once for both: an entry of another blob at
                // this place (a forged one) is read on its own, fails its ID and falls back
                // to that blob's other copies, instead of taking this blob's bytes.
                if j.pack == r.pack && last.entry == r.entry {
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
