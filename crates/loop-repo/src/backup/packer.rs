//! The packers: compress and encrypt blobs into the open pack of their kind, upload full
//! packs, and write index files often enough for an interrupted run to resume.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::state::Run;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::IndexFile;
use crate::pack::{BlobKind, PackWriter, encode_payload};

/// An index file is written once it lists this many blobs (as restic does), so a run of
/// many small files holds a bounded part of its index in memory, and an interrupted run
/// loses at most this much of what it stored.
const INDEX_FILE_BLOBS: usize = 50_000;

/// A blob the vault does not have yet.
pub(super) struct BlobJob {
    pub(super) kind: BlobKind,
    pub(super) id: Id,
    pub(super) data: Vec<u8>,
}

/// Blobs up to this size are compressed and packed by the hasher that cut them instead of
/// being handed to a packer thread: for a file of a few KiB the hand-over (a channel send, a
/// thread wake-up, a copy of the bytes) costs more than the zstd call itself. Larger chunks
/// still go to the packers, so reading a big file overlaps compressing it.
pub(super) const INLINE_BLOB: usize = 64 * 1024;

/// One thread's compression context and payload buffer.
pub(super) struct Packing {
    compressor: zstd::bulk::Compressor<'static>,
    payload: Vec<u8>,
}

impl Run<'_> {
    /// A compression context at the vault's level; `None` (and the run failed) when zstd
    /// refuses it.
    pub(super) fn packing(&self) -> Option<Packing> {
        match zstd::bulk::Compressor::new(self.repo.config().compression_level) {
            Ok(compressor) => Some(Packing {
                compressor,
                payload: Vec::new(),
            }),
            Err(e) => {
                self.fail(Error::Invalid(format!("zstd: {e}")));
                None
            }
        }
    }

    /// One packer thread: runs until every blob sender (hashers, finalizer, walker) is gone.
    pub(super) fn pack_blobs(&self, blobs: Receiver<BlobJob>) {
        let Some(mut packing) = self.packing() else {
            return;
        };
        for job in blobs {
            self.pack_blob(&mut packing, job.kind, job.id, &job.data);
            self.recycle(job.data);
        }
    }

    /// Compresses and encrypts one blob into the open pack of its kind, and stores the pack
    /// when it is full. Does nothing once the run failed.
    pub(super) fn pack_blob(&self, packing: &mut Packing, kind: BlobKind, id: Id, data: &[u8]) {
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        let target = self.repo.config().pack_size as usize;
        encode_payload(&mut packing.compressor, data, &mut packing.payload);
        let slot = &self.open_packs[kind.byte() as usize];
        let full = {
            let mut open = slot.lock().expect("pack mutex");
            let w = open.get_or_insert_with(|| {
                PackWriter::new(
                    self.repo.master(),
                    crate::pack::pack_buffer_capacity(target),
                )
            });
            let e = w.add(kind, id, &packing.payload, data.len() as u32);
            self.counters
                .data_added
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            self.counters
                .data_added_packed
                .fetch_add(e.length as u64, Ordering::Relaxed);
            if w.len() >= target { open.take() } else { None }
        };
        match kind {
            BlobKind::Data => self.counters.data_blobs.fetch_add(1, Ordering::Relaxed),
            BlobKind::Tree => self.counters.tree_blobs.fetch_add(1, Ordering::Relaxed),
        };
        if let Some(w) = full {
            self.store_pack(w);
        }
    }

    /// After the packers are done: stores the partly filled packs.
    pub(super) fn store_open_packs(&self) {
        for slot in &self.open_packs {
            if let Some(w) = slot.lock().expect("pack mutex").take()
                && !w.is_empty()
            {
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
            if let Err(e) = self.repo.put_pack(&id, bytes, &entries) {
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
            if st.last_flush.elapsed() >= self.index_flush
                || st.current.packs.len() >= 256
                || st.current.blob_count() >= INDEX_FILE_BLOBS
            {
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

    /// Writes the index entries of stored packs once they have waited `index_flush`, also
    /// while no further pack is stored (a long stretch of unchanged files): a prune takes a
    /// pack no index names, once older than its grace period, for a killed backup's. Runs
    /// until `stop`'s sender is dropped.
    pub(super) fn flush_index_while(&self, stop: Receiver<()>) {
        let tick = (self.index_flush / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(tick) {
            if self.failed.load(Ordering::Relaxed) {
                return;
            }
            let file = {
                let mut st = self.index_state.lock().expect("index mutex");
                if st.current.packs.is_empty() || st.last_flush.elapsed() < self.index_flush {
                    continue;
                }
                st.last_flush = Instant::now();
                std::mem::take(&mut st.current)
            };
            if let Err(e) = self.write_index(&file) {
                self.fail(e);
            }
        }
    }

    pub(super) fn write_index(&self, file: &IndexFile) -> Result<()> {
        if self.dry_run || file.packs.is_empty() {
            return Ok(());
        }
        self.repo.save_index_file(file).map(|_| ())
    }
}
