//! The hashers: read a file (or standard input) through the chunker, name each chunk with the
//! vault's keyed BLAKE3, and queue the chunks the vault lacks for the packers.
//!
//! Files and standard input share one chunk loop, [`Run::store_chunks`], so both honour a
//! cancel, reuse chunk buffers and count as a file done alike. They differ in how a read error
//! is reported: a file that cannot be read is skipped with a warning and the run goes on (exit
//! code 3), while standard input is the whole backup, so its read error fails the run.

use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use chrono::Local;
use crossbeam_channel::{Receiver, Sender};

use super::StdinSource;
use super::packer::{BlobJob, INLINE_BLOB, Packing};
use super::state::Run;
use crate::error::{Error, Result};
use crate::fsmeta::nanos;
use crate::id::Id;
use crate::pack::BlobKind;
use crate::tree::{Name, Node, NodeKind};

/// Files to read, from the walker: one large file, or a run of small files of one directory,
/// answered together so that a small file costs no channel of its own.
pub(super) struct FileJob {
    pub(super) files: Vec<(PathBuf, Node)>,
    /// Each file's node with its content filled in, in order; `None` for a file that could
    /// not be read (it is left out of the snapshot with a warning).
    pub(super) reply: Sender<Vec<Option<Node>>>,
}

/// Why a stream's chunks were not all queued.
enum ChunkError {
    /// The run failed or was cancelled: stop without a word of its own.
    Stopped,
    Read(io::Error),
}

impl Run<'_> {
    /// One hasher thread: reads files until the walker is done.
    pub(super) fn hash_files(&self, jobs: Receiver<FileJob>, blobs: Sender<BlobJob>) {
        let mut buf = Vec::new();
        let Some(mut packing) = self.packing() else {
            return;
        };
        for job in jobs {
            let outcomes = job
                .files
                .into_iter()
                .map(|(path, node)| self.hash_file(&path, node, &mut buf, &mut packing, &blobs))
                .collect();
            let _ = job.reply.send(outcomes);
            // Most files are small: give back the room a large one needed.
            if buf.capacity() > 1 << 20 {
                buf = Vec::new();
            }
        }
    }

    /// Reads a file the walker found, as it is when opened: what was opened is what the node
    /// describes.
    pub(super) fn hash_file(
        &self,
        path: &Path,
        mut node: Node,
        buf: &mut Vec<u8>,
        packing: &mut Packing,
        blobs: &Sender<BlobJob>,
    ) -> Option<Node> {
        use rustix::fs::OFlags;
        // A symlink or FIFO put in the file's place since the walker looked is neither
        // followed nor waited on (reads of a regular file ignore O_NONBLOCK). NOATIME is
        // refused for others' files: then without it.
        let open = |extra: OFlags| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK | extra).bits() as i32)
                .open(path)
        };
        let opened = open(OFlags::NOATIME)
            .or_else(|_| open(OFlags::empty()))
            .and_then(|f| f.metadata().map(|m| (f, m)));
        let (file, meta) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                self.warn_unreadable(path, &e);
                return None;
            }
        };
        if !meta.file_type().is_file() {
            self.warn_unreadable(
                path,
                &"replaced by something other than a file during the backup",
            );
            return None;
        }
        if (meta.ino(), meta.dev()) != (node.inode, node.dev) {
            // Another file now (saved over, or a directory above it swapped for a symlink):
            // its own owner, mode and times, never the old file's; its extended attributes
            // are read from the file opened, not by the path again. (Recorded with its
            // inode and ctime, they are what a later backup reuses while both stay.)
            let name = std::ffi::OsStr::from_bytes(node.name.as_bytes()).to_os_string();
            match crate::fsmeta::node_from_metadata(&name, &meta, path, false) {
                Ok(n) => {
                    node = n;
                    node.xattrs = crate::fsmeta::read_xattrs_of(&file);
                }
                Err(e) => {
                    self.warn_unreadable(path, &e);
                    return None;
                }
            }
            self.changed
                .lock()
                .expect("warnings mutex")
                .push(path.display().to_string());
        }
        let (content, size) = match self.store_chunks(&file, buf, Some(node.size), packing, blobs) {
            Ok(stored) => stored,
            Err(ChunkError::Stopped) => return None,
            Err(ChunkError::Read(e)) => {
                self.warn_unreadable(path, &e);
                return None;
            }
        };
        if let Ok(after) = file.metadata() {
            let changed = after.size() != node.size
                || nanos(after.mtime(), after.mtime_nsec()) != node.mtime_ns
                || size != node.size;
            if changed {
                self.changed
                    .lock()
                    .expect("warnings mutex")
                    .push(path.display().to_string());
            }
        }
        node.content = content;
        node.size = size;
        Some(node)
    }

    /// Backs up standard input as one new file, named as the caller asked.
    pub(super) fn hash_stdin(
        &self,
        src: &mut StdinSource,
        blobs: &Sender<BlobJob>,
    ) -> Result<Node> {
        let mut buf = Vec::new();
        let mut packing = self.packing().ok_or(Error::Interrupted)?;
        let (content, size) = self
            .store_chunks(&mut src.reader, &mut buf, None, &mut packing, blobs)
            .map_err(|e| match e {
                ChunkError::Stopped => Error::Interrupted,
                ChunkError::Read(e) => Error::io("standard input", e),
            })?;
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

    /// The chunk loop: read, cut, hash, and queue each chunk the vault does not have yet.
    /// Returns the chunk IDs and the length read, and counts the stream as one file done.
    /// `buf` is the chunker's window, kept by the caller so it is reused across files; small
    /// new chunks are packed right here with `packing`, larger ones queued for the packers.
    fn store_chunks<R: Read>(
        &self,
        input: R,
        buf: &mut Vec<u8>,
        size_hint: Option<u64>,
        packing: &mut Packing,
        blobs: &Sender<BlobJob>,
    ) -> std::result::Result<(Vec<Id>, u64), ChunkError> {
        let mut content = Vec::new();
        let mut size = 0u64;
        let mut reader = self.chunker.reader(input, buf, size_hint);
        loop {
            // Checked per chunk, so a cancelled or failed run stops reading even an endless
            // stream.
            if self.stopped() {
                return Err(ChunkError::Stopped);
            }
            let Some(chunk) = reader.next_chunk().map_err(ChunkError::Read)? else {
                break;
            };
            let id = self.repo.blob_id(chunk);
            size += chunk.len() as u64;
            self.progress
                .bytes_done
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if self.want_blob(&id) {
                if chunk.len() <= INLINE_BLOB {
                    self.pack_blob(packing, BlobKind::Data, id, chunk);
                } else {
                    let job = BlobJob {
                        kind: BlobKind::Data,
                        id,
                        data: self.buffer_from(chunk),
                    };
                    // The packers are gone only when the run failed.
                    if blobs.send(job).is_err() {
                        return Err(ChunkError::Stopped);
                    }
                }
            }
            content.push(id);
        }
        self.progress.files_done.fetch_add(1, Ordering::Relaxed);
        Ok((content, size))
    }
}
