//! The hashers: read a file (or standard input) through the chunker, name each chunk with the
//! vault's keyed BLAKE3, and queue the chunks the vault lacks for the packers.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use chrono::Local;
use crossbeam_channel::{Receiver, Sender};

use super::StdinSource;
use super::packer::BlobJob;
use super::state::Run;
use crate::error::{Error, Result};
use crate::fsmeta::nanos;
use crate::id::Id;
use crate::pack::BlobKind;
use crate::tree::{Name, Node, NodeKind};

/// A file to read, from the walker.
pub(super) struct FileJob {
    pub(super) path: PathBuf,
    pub(super) node: Node,
    pub(super) reply: Sender<FileOutcome>,
}

/// A file's content as stored, for the finalizer.
pub(super) enum FileOutcome {
    Done { content: Vec<Id>, size: u64 },
    Failed,
}

impl Run<'_> {
    /// One hasher thread: reads files until the walker is done.
    pub(super) fn hash_files(&self, jobs: Receiver<FileJob>, blobs: Sender<BlobJob>) {
        let mut buf = Vec::new();
        for job in jobs {
            let outcome = self.hash_file(&job, &mut buf, &blobs);
            let _ = job.reply.send(outcome);
            // Most files are small: give back the room a large one needed.
            if buf.capacity() > 1 << 20 {
                buf = Vec::new();
            }
        }
    }

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

    /// Backs up standard input as one new file, named as the caller asked.
    pub(super) fn hash_stdin(
        &self,
        src: &mut StdinSource,
        blobs: &Sender<BlobJob>,
    ) -> Result<Node> {
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
