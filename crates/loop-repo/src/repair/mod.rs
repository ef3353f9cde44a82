//! `loop repair index`: the index made whole again from the packs.
//!
//! Every pack carries its own list of blobs in its trailer (docs/FORMAT.md), so an index file
//! that was lost or damaged loses no data, only the way to it: the blobs of packs no index
//! file names cannot be found, and prune refuses to run while an index file cannot be read.
//! The repair
//!
//! 1. reads every index file; one that fails authentication or decoding is damaged (any other
//!    error, a storage error or a file of a newer version, stops the repair before it changes
//!    anything);
//! 2. lists the packs, and reads the header and trailer of each pack no readable index file
//!    names (two ranged reads, not the pack);
//! 3. writes new index files for those packs, and rewrites the readable index files that name
//!    packs no longer in storage without them;
//! 4. only then deletes the damaged and the rewritten index files.
//!
//! A pack whose trailer cannot be read is named and left as it is (its blobs cannot be found
//! without it). Backups may run meanwhile: a pack stored after the oldest running backup
//! started (less [`CLOCK_SKEW`]) is left for that backup, which indexes it itself. The repair
//! holds the prune marker, so no prune runs meanwhile.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::IndexFile;
use crate::locks::{self, Lock, LockKind};
use crate::pack::{self, PACK_HEADER_LEN, PackEntry};
use crate::repo::{FETCH_THREADS, Repository};
use crate::storage::{FileKind, ObjectInfo};
use crate::util::parallel_map;

/// How far the clock of a running backup's machine may be behind the storage's: its packs
/// are recognised by their time against the backup's start.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(10);
/// Index files are read this many at a time (each is held until its batch is done).
const READ_BATCH: usize = 64;
/// Most blobs one new index file names (as prune writes them).
const BLOBS_PER_FILE: usize = 500_000;
/// The trailer is read with the pack's last bytes in one request when it fits in this many.
const TAIL_READ: u64 = 64 * 1024;

/// What to do.
#[derive(Clone, Debug, Default)]
pub struct IndexRepairOptions {
    /// Read and report, change nothing.
    pub dry_run: bool,
}

/// An object the repair could not use or remove, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub object: String,
    pub reason: String,
}

/// What [`index`] found and did.
#[derive(Debug, Default, Serialize)]
pub struct IndexRepair {
    pub dry_run: bool,
    /// Index files listed, and of them the ones that could not be read (replaced).
    pub index_files: usize,
    pub damaged_index_files: Vec<Problem>,
    /// Readable index files that named packs no longer in storage (rewritten without them).
    pub rewritten_index_files: usize,
    /// Packs in storage.
    pub packs: usize,
    /// Packs no readable index file named, indexed from their trailers, and their blobs.
    pub packs_indexed: usize,
    pub blobs_indexed: usize,
    /// Packs whose header or trailer could not be read: left in place, not indexed.
    pub unreadable_packs: Vec<Problem>,
    /// Packs an index file named that are not in storage: no longer named.
    pub packs_gone: Vec<String>,
    /// Packs stored after a running backup started: left for that backup to index.
    pub packs_of_running_backups: usize,
    pub index_files_written: usize,
    pub index_files_deleted: usize,
    /// Index files that could not be deleted (a retention lock, a vault whose deletions
    /// must be announced first); the new ones are written, so nothing is lost.
    pub index_files_left: Vec<Problem>,
}

impl IndexRepair {
    /// True when the repair wrote or deleted an index file.
    pub fn changed_anything(&self) -> bool {
        self.index_files_written > 0 || self.index_files_deleted > 0
    }

    /// True when there is something to write or delete: a damaged index file, one naming a
    /// pack that is gone, or a pack no index file names.
    fn needed(&self) -> bool {
        !self.damaged_index_files.is_empty()
            || self.rewritten_index_files > 0
            || self.packs_indexed > 0
    }
}

/// Makes the index name every readable pack in storage, and no pack that is gone.
pub fn index(repo: &Repository, opts: &IndexRepairOptions) -> Result<IndexRepair> {
    let _lock = if opts.dry_run {
        None
    } else {
        Some(Lock::acquire_exclusive_prune(repo)?)
    };
    let mut report = IndexRepair {
        dry_run: opts.dry_run,
        ..Default::default()
    };

    // 1. The index files: readable or damaged. Nothing else may pass for damage.
    let names: Vec<String> = repo
        .storage()
        .list(FileKind::Index)?
        .into_iter()
        .map(|o| o.name)
        .collect();
    report.index_files = names.len();
    let mut readable: Vec<(String, IndexFile)> = Vec::new();
    let mut damaged: Vec<String> = Vec::new();
    for batch in names.chunks(READ_BATCH) {
        let files = parallel_map(batch, FETCH_THREADS, |name| repo.load_index_file(name));
        for (name, file) in batch.iter().zip(files) {
            match file {
                Ok(f) => readable.push((name.clone(), f)),
                Err(Error::Corrupt { object, reason }) => {
                    report.damaged_index_files.push(Problem { object, reason });
                    damaged.push(name.clone());
                }
                // Gone since the listing: a backup does not delete index files, and no prune
                // runs, so only another program did; what it named is indexed from the packs.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
    }

    // 2. The packs: which are gone, which no readable index file names.
    let stored: HashMap<Id, ObjectInfo> = repo
        .storage()
        .list(FileKind::Pack)?
        .into_iter()
        .filter_map(|o| {
            Id::parse(&o.name)
                .ok()
                .filter(|id| id.to_hex() == o.name)
                .map(|id| (id, o))
        })
        .collect();
    report.packs = stored.len();
    let named: HashSet<Id> = readable
        .iter()
        .flat_map(|(_, f)| f.packs.iter().map(|(id, _)| *id))
        .collect();
    let mut gone: Vec<Id> = named
        .iter()
        .filter(|id| !stored.contains_key(id))
        .copied()
        .collect();
    gone.sort_unstable();
    report.packs_gone = gone
        .iter()
        .map(|id| FileKind::Pack.path(&id.to_hex()))
        .collect();
    let gone: HashSet<Id> = gone.into_iter().collect();

    let oldest_backup = locks::list(repo)?
        .into_iter()
        .filter(|(_, l)| l.kind == LockKind::Backup && !l.is_stale(Utc::now()))
        .map(|(_, l)| l.created)
        .min();
    let mut unnamed: Vec<&ObjectInfo> = Vec::new();
    for (id, info) in &stored {
        if named.contains(id) {
            continue;
        }
        if oldest_backup.is_some_and(|started| info.modified >= started - CLOCK_SKEW) {
            report.packs_of_running_backups += 1;
        } else {
            unnamed.push(info);
        }
    }
    unnamed.sort_unstable_by(|a, b| a.name.cmp(&b.name));

    // 3. The trailers of the packs no index file names.
    let mut found: Vec<(Id, Vec<PackEntry>)> = Vec::new();
    let trailers = parallel_map(&unnamed, FETCH_THREADS, |o| read_trailer(repo, o));
    for (info, trailer) in unnamed.iter().zip(trailers) {
        match trailer {
            Ok(entries) => {
                report.blobs_indexed += entries.len();
                found.push((Id::parse(&info.name)?, entries));
            }
            Err(Error::Corrupt { object, reason }) => {
                report.unreadable_packs.push(Problem { object, reason })
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    report.packs_indexed = found.len();

    let mut rewritten: Vec<String> = Vec::new();
    for (name, file) in &mut readable {
        if file.packs.iter().any(|(id, _)| gone.contains(id)) {
            file.packs.retain(|(id, _)| !gone.contains(id));
            found.append(&mut file.packs);
            rewritten.push(name.clone());
        }
    }
    report.rewritten_index_files = rewritten.len();
    if opts.dry_run || !report.needed() {
        return Ok(report);
    }

    // 4. New index files first; then the ones they replace.
    let mut file = IndexFile::default();
    for (id, entries) in found {
        file.packs.push((id, entries));
        if file.blob_count() >= BLOBS_PER_FILE {
            repo.save_index_file(&std::mem::take(&mut file))?;
            report.index_files_written += 1;
        }
    }
    if !file.packs.is_empty() {
        repo.save_index_file(&file)?;
        report.index_files_written += 1;
    }
    for name in damaged.iter().chain(&rewritten) {
        match repo.storage().delete(FileKind::Index, name) {
            Ok(()) => report.index_files_deleted += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => report.index_files_left.push(Problem {
                object: FileKind::Index.path(name),
                reason: e.to_string(),
            }),
        }
    }
    Ok(report)
}

/// A pack's entries from its header and trailer, read with two ranged reads (three when the
/// trailer is longer than [`TAIL_READ`]).
fn read_trailer(repo: &Repository, info: &ObjectInfo) -> Result<Vec<PackEntry>> {
    let object = FileKind::Pack.path(&info.name);
    let size = info.size;
    if size > pack::max_pack_size(repo.config().pack_size as usize) {
        return Err(Error::corrupt(
            &object,
            format!("{size} bytes, too large to be a pack"),
        ));
    }
    if size < (PACK_HEADER_LEN + 4) as u64 {
        return Err(Error::corrupt(&object, "too short to be a pack"));
    }
    let storage = repo.storage();
    let header = storage.get_range(FileKind::Pack, &info.name, 0, PACK_HEADER_LEN as u64)?;
    let tail_len = size.min(TAIL_READ);
    let tail = storage.get_range(FileKind::Pack, &info.name, size - tail_len, tail_len)?;
    if tail.len() as u64 != tail_len || header.len() != PACK_HEADER_LEN {
        return Err(Error::corrupt(&object, "shorter than its listed size"));
    }
    let n = pack::trailer_len(&object, &tail[tail.len() - 4..], size)?;
    let trailer = if n + 4 <= tail_len {
        let end = tail.len() - 4;
        tail[end - n as usize..end].to_vec()
    } else {
        storage.get_range(FileKind::Pack, &info.name, size - 4 - n, n)?
    };
    if trailer.len() as u64 != n {
        return Err(Error::corrupt(&object, "shorter than its listed size"));
    }
    let (id, entries) = pack::parse_trailer(repo.master(), &object, &header, trailer, size)?;
    if id.to_hex() != info.name {
        return Err(Error::corrupt(
            &object,
            format!("its header names pack {}, not this one", id.short()),
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests;
