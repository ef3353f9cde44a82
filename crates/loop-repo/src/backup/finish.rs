//! Finishing: index what was stored, make sure the snapshot can be restored, and save it.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Local};

use super::setup::Setup;
use super::state::Run;
use super::{BackupOptions, BackupResult};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::locks::Lock;
use crate::snapshot::{Snapshot, Summary};
use crate::storage::FileKind;

/// Ends a run whose pipeline is done: `root` is the root tree's ID, `None` when the run
/// failed. Saves the snapshot unless this is a dry run.
pub(super) fn finish(
    run: &Run,
    root: Option<Id>,
    setup: Setup,
    opts: BackupOptions,
    start: DateTime<Local>,
) -> Result<BackupResult> {
    let failure = run.failure.lock().expect("failure mutex").take();
    let outcome = match failure {
        Some(e) => Err(e),
        None if run.progress.cancel.load(Ordering::Relaxed) => Err(Error::Interrupted),
        None => root.ok_or(Error::Interrupted),
    };
    // The packs stored so far are indexed even when the backup fails: the next backup reuses
    // them instead of uploading them again, and prune frees them at once instead of after
    // its grace period (a backup refused for quota must not hold its partial upload).
    let rest = std::mem::take(&mut run.index_state.lock().expect("index mutex").current);
    let flushed = run.write_index(&rest);
    let root_id = outcome?;
    flushed?;

    let end = Local::now();
    let unreadable = std::mem::take(&mut *run.unreadable.lock().expect("warnings mutex"));
    let snapshot = Snapshot {
        time: opts.time.unwrap_or_else(|| start.fixed_offset()),
        tree: root_id,
        paths: setup.paths,
        hostname: opts.host,
        username: opts.user,
        tags: opts.tags,
        parent: setup.parent,
        excludes: opts.excludes,
        program_version: format!("loop {}", env!("CARGO_PKG_VERSION")),
        summary: Some(run.summary(start, end, unreadable.len() as u64)),
    };
    let snapshot_id = match &setup.lock {
        None => None,
        Some(lock) => {
            run.verify_relied_on(lock)?;
            let id = run.repo.save_snapshot(&snapshot)?;
            // The marker held all the while the snapshot was written, or a prune that took it
            // for stale meanwhile may have deleted what the snapshot uses. (A storage error
            // reading it says nothing of the marker: the snapshot, checked before, stays.)
            if let Err(lost @ Error::Invalid(_)) = lock.verify_held(run.repo.master()) {
                return Err(match run.repo.remove_snapshot(&id) {
                    Ok(()) => lost,
                    Err(e) => Error::Invalid(format!(
                        "{lost}; the snapshot {} it saved could not be removed again ({e}): \
                         `loop check` tells whether it is whole",
                        id.short()
                    )),
                });
            }
            Some(id)
        }
    };
    let changed_while_reading = std::mem::take(&mut *run.changed.lock().expect("warnings mutex"));
    Ok(BackupResult {
        snapshot_id,
        snapshot,
        unreadable,
        changed_while_reading,
        warnings: setup.index_warnings,
    })
}

impl Run<'_> {
    fn summary(&self, start: DateTime<Local>, end: DateTime<Local>, unreadable: u64) -> Summary {
        let c = &self.counters;
        Summary {
            backup_start: start.to_rfc3339(),
            backup_end: end.to_rfc3339(),
            files_new: c.files_new.load(Ordering::Relaxed),
            files_changed: c.files_changed.load(Ordering::Relaxed),
            files_unmodified: c.files_unmodified.load(Ordering::Relaxed),
            files_unreadable: unreadable,
            dirs: c.dirs.load(Ordering::Relaxed),
            data_blobs: c.data_blobs.load(Ordering::Relaxed),
            tree_blobs: c.tree_blobs.load(Ordering::Relaxed),
            data_added: c.data_added.load(Ordering::Relaxed),
            data_added_packed: c.data_added_packed.load(Ordering::Relaxed),
            total_files_processed: self.progress.files_done.load(Ordering::Relaxed),
            total_bytes_processed: self.progress.bytes_done.load(Ordering::Relaxed),
        }
    }

    /// Before the snapshot is saved: the backup's marker is still there (or a prune that did
    /// not see this backup may have deleted what it wrote), and every pack the snapshot
    /// relies on, old or written by this run, still exists. A backup never reports success
    /// for a snapshot that cannot be restored.
    fn verify_relied_on(&self, lock: &Lock) -> Result<()> {
        lock.verify_held(self.repo.master())?;
        let stored: HashSet<Id> = self
            .repo
            .storage()
            .list(FileKind::Pack)?
            .iter()
            .filter_map(|o| Id::parse(&o.name).ok())
            .collect();
        let written = self.written.lock().expect("written mutex");
        let lost: Vec<&Id> = (self.relied.iter())
            .zip(self.index.pack_ids())
            .filter(|(r, id)| r.load(Ordering::Relaxed) && !stored.contains(id))
            .map(|(_, id)| id)
            .collect();
        // A pack the index named when the run began: lost, or deleted by a prune. The index
        // still names it, so every backup would find its data stored and fail again until
        // `repair index` drops it; the next backup then stores that data anew.
        if let Some(first) = lost.first() {
            return Err(Error::Invalid(format!(
                "{} pack(s) holding data this backup found already stored are missing from \
                 storage (first: {}); the snapshot was not saved. Run `loop repair index`, \
                 then the backup again (it stores that data anew); `loop check` names the \
                 snapshots that used them",
                lost.len(),
                first.to_hex()
            )));
        }
        let gone: Vec<&Id> = written.iter().filter(|id| !stored.contains(id)).collect();
        if let Some(first) = gone.first() {
            return Err(Error::Invalid(format!(
                "{} pack(s) this backup wrote disappeared while it ran (first: {}); \
                 the snapshot was not saved. Run the backup again, and `loop check`",
                gone.len(),
                first.to_hex()
            )));
        }
        Ok(())
    }
}
