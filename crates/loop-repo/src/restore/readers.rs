//! The reader pool, which fetches, decrypts and checks the blobs of planned reads and hands
//! them to the writer, and the tree loaders, which fetch directory trees ahead of the walker.
//!
//! Readers never resolve a path: they write, through the writer, into files the walker opened.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::Scope;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::writer::{PendingFile, Restorer};
use crate::error::Result;
use crate::id::Id;
use crate::pack::{self, PackEntry};
use crate::storage::FileKind;
use crate::tree::{NodeKind, Tree};

/// At most this many trees are requested ahead, which bounds their memory.
pub(super) const TREES_AHEAD: usize = 256;

/// One blob and every place it goes.
pub(super) struct BlobWrites {
    pub(super) entry: PackEntry,
    /// Files and the offsets in them.
    pub(super) targets: Vec<(Arc<PendingFile>, u64)>,
}

/// One ranged read of a pack.
pub(super) struct RangeJob {
    pub(super) pack: Id,
    pub(super) start: u64,
    pub(super) len: u64,
    pub(super) blobs: Vec<BlobWrites>,
}

/// Starts `threads` readers; they end when the returned sender is dropped and the queue is
/// empty.
pub(super) fn spawn_readers<'s>(
    s: &'s Scope<'s, '_>,
    ctx: &'s Restorer<'_>,
    threads: usize,
) -> Sender<RangeJob> {
    let (tx, rx) = bounded::<RangeJob>(threads * 2);
    for _ in 0..threads {
        let rx = rx.clone();
        s.spawn(move || {
            for job in rx {
                read_range(ctx, job);
            }
        });
    }
    tx
}

fn read_range(ctx: &Restorer<'_>, job: RangeJob) {
    if ctx.progress.cancel.load(Ordering::Relaxed) {
        ctx.cut.store(true, Ordering::Relaxed);
        // Each file still ends (and gives back its slot), as one whose read failed.
        for blob in job.blobs {
            for (file, offset) in blob.targets {
                ctx.write_chunk(&file, offset, &Err("the restore was cancelled".into()));
            }
        }
        return;
    }
    let name = job.pack.to_hex();
    let object = FileKind::Pack.path(&name);
    let storage = ctx.repo.storage();
    let stored = storage.get_range(FileKind::Pack, &name, job.start, job.len);
    let cipher = pack::pack_cipher(ctx.repo.master(), &job.pack);
    // AES-GCM proves a key holder stored these bytes; the keyed hash proves they are the
    // content the snapshot names. Both are checked: a holder of a backup-only token has the
    // key, and must not be able to slip other content under an existing blob's ID.
    let decode = |e: &PackEntry, bytes: Vec<u8>| {
        pack::decode_blob(&cipher, e, bytes, &object)
            .map_err(|err| err.to_string())
            .and_then(|d| {
                if ctx.repo.blob_id(&d) == e.id {
                    Ok(d)
                } else {
                    Err(format!(
                        "{object}: blob {} does not match its ID",
                        e.id.short()
                    ))
                }
            })
    };
    for blob in job.blobs {
        let e = &blob.entry;
        let data = match &stored {
            Ok(buf) => {
                let from = (e.offset as u64 - job.start) as usize;
                decode(e, buf[from..from + e.length as usize].to_vec())
            }
            // A cancel asked for meanwhile: nothing is read again, and the blob is left out.
            Err(err) if ctx.progress.cancel.load(Ordering::Relaxed) => {
                ctx.cut.store(true, Ordering::Relaxed);
                Err(err.to_string())
            }
            // The pack is gone: a prune moved its blobs since the index was read.
            Err(err) if err.is_not_found() => {
                match ctx
                    .relisted
                    .read(ctx.repo, |index| ctx.repo.read_blob(index, &e.id))
                {
                    Some(Ok(data)) => Ok(data),
                    _ => Err(err.to_string()),
                }
            }
            // The merged read failed (a pack cut short fails every blob the range spans):
            // this blob on its own may still be whole.
            Err(err) => storage
                .get_range(FileKind::Pack, &name, e.offset as u64, e.length as u64)
                .map_err(|_| err.to_string())
                .and_then(|bytes| decode(e, bytes)),
        };
        // A damaged or wrongly indexed copy: try the blob's other copies.
        let data = data.or_else(|msg| {
            if ctx.progress.cancel.load(Ordering::Relaxed) {
                ctx.cut.store(true, Ordering::Relaxed);
                return Err(msg);
            }
            ctx.repo
                .read_blob_alternate(ctx.index, &e.id)
                .map_err(|_| msg)
        });
        // The walker sized each file and placed its later chunks by the raw length this
        // entry gives. The bytes that came back may be another copy's (the entry read first
        // was damaged or lied), whose length is the blob's own: written anyway, they would
        // leave the file padded or its chunks shifted without a word.
        let data = data.and_then(|d| {
            if d.len() as u64 == e.raw_len as u64 {
                Ok(d)
            } else {
                Err(format!(
                    "blob {} is {} bytes, but the index entry the restore planned with says {}",
                    e.id.short(),
                    d.len(),
                    e.raw_len
                ))
            }
        });
        for (file, offset) in blob.targets {
            ctx.write_chunk(&file, offset, &data);
        }
    }
}

/// A tree to load, and where to send it.
type TreeFetch = (Id, Sender<Result<Tree>>);

/// Trees requested ahead of the walker, by ID.
pub(super) struct TreeAhead {
    tx: Option<Sender<TreeFetch>>,
    pending: HashMap<Id, Receiver<Result<Tree>>>,
}

/// Starts `loaders` tree loaders (none: each tree is loaded when the walker reaches it). They
/// end with [`TreeAhead::close`].
pub(super) fn spawn_tree_loaders<'s>(
    s: &'s Scope<'s, '_>,
    ctx: &'s Restorer<'_>,
    loaders: usize,
) -> TreeAhead {
    let (tx, rx) = crossbeam_channel::unbounded::<TreeFetch>();
    for _ in 0..loaders {
        let rx = rx.clone();
        s.spawn(move || {
            for (id, reply) in rx {
                let _ = reply.send(ctx.load_tree(&id));
            }
        });
    }
    TreeAhead {
        tx: (loaders > 0).then_some(tx),
        pending: HashMap::new(),
    }
}

impl TreeAhead {
    /// Asks the loaders for the subtrees of `tree`'s directories, up to the bound.
    pub(super) fn request_children(&mut self, tree: &Tree) {
        let Some(tx) = &self.tx else { return };
        for n in &tree.nodes {
            if self.pending.len() >= TREES_AHEAD {
                return;
            }
            if let (NodeKind::Dir, Some(id)) = (n.kind, n.subtree)
                && !self.pending.contains_key(&id)
            {
                let (reply, rx) = bounded(1);
                if tx.send((id, reply)).is_ok() {
                    self.pending.insert(id, rx);
                }
            }
        }
    }

    /// The tree `id`: from a request made earlier, else loaded now.
    pub(super) fn get(&mut self, ctx: &Restorer<'_>, id: &Id) -> Result<Tree> {
        if let Some(rx) = self.pending.remove(id)
            && let Ok(r) = rx.recv()
        {
            return r;
        }
        ctx.load_tree(id)
    }

    /// Drops a request for a tree that will not be entered, which would otherwise hold its
    /// slot forever.
    pub(super) fn forget(&mut self, id: &Id) {
        self.pending.remove(id);
    }

    /// No more requests: the loaders end.
    pub(super) fn close(&mut self) {
        self.tx.take();
    }
}
