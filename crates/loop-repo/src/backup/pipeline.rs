//! The pipeline: starts the threads of one run, wires their bounded channels, and waits
//! until the last pack is stored.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, bounded};

use super::finalizer::PendingDir;
use super::hasher::FileJob;
use super::packer::BlobJob;
use super::scan::scan;
use super::state::{Run, TreeRequest};
use super::{BackupOptions, StdinSource};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::tree::Tree;

/// Runs every stage to its end. Returns the root tree's ID, or `None` when the run failed
/// (the failure is recorded in `run`).
pub(super) fn run(
    run: &Run,
    roots: &[PathBuf],
    parent_root: Option<&Tree>,
    stdin: Option<StdinSource>,
    opts: &BackupOptions,
    prefetch: Receiver<TreeRequest>,
) -> Result<Option<Id>> {
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        opts.threads
    };
    let (file_tx, file_rx) = bounded::<FileJob>(threads * 16);
    let (dir_tx, dir_rx) = bounded::<PendingDir>(4096);
    let (blob_tx, blob_rx) = bounded::<BlobJob>(threads * 2);

    std::thread::scope(|s| -> Result<Option<Id>> {
        if opts.scan && stdin.is_none() {
            s.spawn(|| scan(roots, &run.excluder, run.progress));
        }
        let fetchers = if opts.tree_fetchers == 0 {
            threads.max(2)
        } else {
            opts.tree_fetchers
        };
        for _ in 0..fetchers {
            let rx = prefetch.clone();
            s.spawn(move || {
                for (id, reply) in rx {
                    let _ = reply.send(run.repo.load_tree(run.index, &id).ok());
                }
            });
        }
        drop(prefetch);
        let mut packers = Vec::new();
        for _ in 0..threads {
            let rx = blob_rx.clone();
            packers.push(s.spawn(move || run.pack_blobs(rx)));
        }
        drop(blob_rx);
        // Dropped when this closure ends, which ends the flusher.
        let (_flusher_stop, flusher_wait) = bounded::<()>(0);
        s.spawn(move || run.flush_index_while(flusher_wait));
        for _ in 0..threads {
            let (rx, tx) = (file_rx.clone(), blob_tx.clone());
            s.spawn(move || run.hash_files(rx, tx));
        }
        drop(file_rx);
        {
            let tx = blob_tx.clone();
            s.spawn(move || run.finalize(dir_rx, tx));
        }

        let walker = std::thread::Builder::new()
            .name("loop-walker".into())
            .stack_size(256 * 1024 * 1024)
            .spawn_scoped(s, move || {
                run.walk_roots(roots, parent_root, stdin, file_tx, dir_tx, blob_tx)
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
        run.store_open_packs();
        Ok(root)
    })
}
