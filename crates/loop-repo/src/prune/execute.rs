//! Carrying out a prune plan: copy what is still needed, condemn, re-index, delete.

use std::collections::HashSet;

use chrono::Utc;
use serde::Serialize;

use super::{PlanObject, PrunePlan};
use crate::error::{Error, Result};
use crate::format::{self, Magic};
use crate::id::Id;
use crate::index::IndexFile;
use crate::locks::{self, Lock, LockKind};
use crate::pack::{self, PackEntry, PackWriter};
use crate::repo::Repository;
use crate::storage::FileKind;

/// What [`execute`] did.
#[derive(Debug, Default, Serialize)]
pub struct PruneReport {
    pub packs_written: usize,
    pub packs_deleted: usize,
    pub index_files_written: usize,
    pub index_files_deleted: usize,
    /// Packs condemned but kept until running backups finish.
    pub packs_deferred: usize,
    /// Objects a gated prune wanted to delete but was not allowed to yet (see
    /// [`execute_gated`]).
    pub objects_held: usize,
    /// Of those, the objects the store refused to delete because a retention lock keeps
    /// them (see [`Error::Held`]); a prune after the lock has passed deletes them.
    pub objects_locked: usize,
    #[serde(skip)]
    pub held: Vec<(FileKind, String)>,
}

/// Which deletions a prune may carry out now.
enum Gate<'a> {
    All,
    Only(&'a HashSet<(FileKind, String)>),
}

impl Gate<'_> {
    /// Deletes `kind`/`name` when allowed; records it as held otherwise. True when deleted.
    fn delete(
        &self,
        repo: &Repository,
        kind: FileKind,
        name: &str,
        report: &mut PruneReport,
    ) -> Result<bool> {
        if let Gate::Only(allowed) = self
            && !allowed.contains(&(kind, name.to_string()))
        {
            report.held.push((kind, name.to_string()));
            return Ok(false);
        }
        match repo.storage().delete(kind, name) {
            Ok(()) => Ok(true),
            Err(e) if e.is_held() => {
                report.held.push((kind, name.to_string()));
                report.objects_locked += 1;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// Carries out a plan. Takes the prune marker (only one prune at a time). An object the
/// store holds under a retention lock is left in place and counted as held, with the same
/// care as [`execute_gated`]'s: the repository stays whole and a later prune finishes.
pub fn execute(repo: &Repository, p: PrunePlan) -> Result<PruneReport> {
    run(repo, p, Gate::All)
}

/// Carries out a plan, deleting only the objects in `allowed` (kind, name); the rest of
/// what it would delete is left in place and listed in [`PruneReport::held`]. A pack is
/// deleted only when no index file left in place names it, and a plan only when every pack
/// it condemns is gone, so the repository stays whole. Stale markers of other processes
/// are left alone. Run again once more deletions are allowed, it finishes the job.
pub fn execute_gated(
    repo: &Repository,
    p: PrunePlan,
    allowed: &HashSet<(FileKind, String)>,
) -> Result<PruneReport> {
    run(repo, p, Gate::Only(allowed))
}

fn run(repo: &Repository, mut p: PrunePlan, gate: Gate<'_>) -> Result<PruneReport> {
    if p.preview {
        return Err(Error::Invalid(
            "a prune previewed without some snapshots is not carried out".into(),
        ));
    }
    let _lock = Lock::acquire_exclusive_prune(repo)?;
    let mut report = PruneReport::default();
    let storage = repo.storage();
    // Only a prune retires index files: one gone means another prune ran after this plan was
    // made, and what the plan keeps or copies may no longer be there.
    let present: HashSet<String> = storage
        .list(FileKind::Index)?
        .into_iter()
        .map(|o| o.name)
        .collect();
    if let Some(gone) = p.index_files.iter().find(|n| !present.contains(*n)) {
        return Err(Error::Invalid(format!(
            "another prune changed the repository after this prune was planned (index file \
             {gone} is gone); nothing was changed, prune again"
        )));
    }
    // Index files written since the plan was made: a backup's, or a `repair index` that ran
    // while this prune was planning (it holds the prune marker, so it is not running now)
    // and indexed packs the plan took for orphans. The packs they name stay.
    let planned: HashSet<&String> = p.index_files.iter().collect();
    let mut named_since: HashSet<Id> = HashSet::new();
    for name in present.iter().filter(|n| !planned.contains(n)) {
        match repo.load_index_file(name) {
            Ok(file) => named_since.extend(file.packs.iter().map(|(id, _)| *id)),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }

    // 1. Copy still-needed blobs out of packs that are going away.
    let mut new_packs: Vec<(Id, Vec<PackEntry>)> = Vec::new();
    let target = repo.config().pack_size as usize;
    // One writer per blob kind, as in a backup: packs of trees only stay small and cacheable.
    let mut writers: [Option<PackWriter>; 2] = [None, None];
    let mut sources: Vec<Id> = p.repack.clone();
    let mut exec_sources: Vec<Id> = p
        .executable_packs
        .iter()
        .copied()
        .filter(|id| p.packs.contains_key(id))
        .collect();
    exec_sources.sort();
    sources.extend(exec_sources);
    let mut copied: HashSet<Id> = HashSet::new();
    for pack_id in &sources {
        let blobs = &p.packs[pack_id];
        let wanted: Vec<&PackEntry> = blobs
            .iter()
            .filter(|b| p.copy.contains(&b.id) && !copied.contains(&b.id))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let name = pack_id.to_hex();
        let object = FileKind::Pack.path(&name);
        let bytes = storage.get(FileKind::Pack, &name, crate::pack::max_pack_size(target))?;
        let cipher = pack::pack_cipher(repo.master(), pack_id);
        for b in wanted {
            // A damaged copy (cut short, failing authentication, or other content stored
            // under the blob's ID) is passed over: another copy (in a later pack) is copied,
            // or the check below stops the prune.
            let (start, end) = (b.offset as usize, b.offset as usize + b.length as usize);
            let Some(stored) = bytes.get(start..end) else {
                continue;
            };
            let Ok(payload) = pack::decrypt_payload(&cipher, b, stored.to_vec(), &object) else {
                continue;
            };
            if !is_the_blob(repo, b, &payload, &object) {
                continue;
            }
            let slot = &mut writers[b.kind.byte() as usize];
            let w = slot.get_or_insert_with(|| {
                PackWriter::new(repo.master(), crate::pack::pack_buffer_capacity(target))
            });
            w.add(b.kind, b.id, &payload, b.raw_len);
            copied.insert(b.id);
            if w.len() >= target {
                let (id, data, entries) = slot.take().expect("writer").finish();
                repo.put_pack(&id, data, &entries)?;
                new_packs.push((id, entries));
            }
        }
    }
    for w in writers.into_iter().flatten().filter(|w| !w.is_empty()) {
        let (id, data, entries) = w.finish();
        repo.put_pack(&id, data, &entries)?;
        new_packs.push((id, entries));
    }
    report.packs_written = new_packs.len();
    let mut lost: Vec<&Id> = p.copy.iter().filter(|id| !copied.contains(id)).collect();
    if !lost.is_empty() {
        lost.sort();
        return Err(Error::Invalid(format!(
            "{} blobs a snapshot uses have no intact copy to keep (first {}); nothing was \
             deleted: run `loop check --read-data`",
            lost.len(),
            lost[0].short()
        )));
    }

    // 2. Condemn the packs this run retires.
    let newly_condemned: Vec<Id> = p.repack.iter().chain(p.delete.iter()).copied().collect();
    let mut new_plan_name = None;
    if !newly_condemned.is_empty() {
        let plan = PlanObject {
            created: Utc::now(),
            packs: newly_condemned.clone(),
        };
        let json = serde_json::to_vec(&plan).expect("plan serializes");
        let name = Id::random().to_hex();
        storage.put(
            FileKind::Plan,
            &name,
            format::seal(repo.master(), Magic::PrunePlan, &json, 3),
        )?;
        new_plan_name = Some(name);
    }
    // With no live backup after the plan is visible, it can run now, unless a backup ended
    // while prune was planning: it left no marker, only a snapshot the plan did not see
    // (saved before its marker went, so listed here after the markers), which may use what
    // the plan condemns. Then a later prune, which sees that snapshot, carries it out, and
    // the unindexed packs its index files may name stay until then too.
    let now = Utc::now();
    let backups_running = locks::list(repo)?
        .into_iter()
        .any(|(_, l)| l.kind != LockKind::Prune && !l.is_stale(now));
    let unplanned_snapshot = !backups_running
        && storage
            .list(FileKind::Snapshot)?
            .iter()
            .any(|o| Id::parse(&o.name).map_or(true, |id| !p.snapshots_seen.contains(&id)));
    if unplanned_snapshot {
        p.orphans.clear();
    }
    let immediate = !backups_running && !unplanned_snapshot;
    if !immediate {
        report.packs_deferred = newly_condemned.len();
    }

    // 3. New index: kept packs, newly written packs, and (when deferred) condemned packs.
    let mut file = IndexFile::default();
    let mut keep: Vec<Id> = p.keep.iter().copied().collect();
    keep.sort();
    if !immediate {
        keep.extend(newly_condemned.iter().copied());
    }
    let mut files = Vec::new();
    for id in keep {
        if let Some(blobs) = p.packs.remove(&id) {
            file.packs.push((id, blobs));
        }
        if file.blob_count() >= 500_000 {
            files.push(std::mem::take(&mut file));
        }
    }
    file.packs.extend(new_packs);
    files.push(file);
    for f in files.iter().filter(|f| !f.packs.is_empty()) {
        repo.save_index_file(f)?;
        report.index_files_written += 1;
    }

    // 4. Retire the old index files. Packs an index file left in place names stay.
    let mut named: HashSet<Id> = files
        .iter()
        .flat_map(|f| f.packs.iter().map(|(id, _)| *id))
        .chain(named_since)
        .collect();
    for name in &p.index_files {
        if gate.delete(repo, FileKind::Index, name, &mut report)? {
            report.index_files_deleted += 1;
        } else if let Some(packs) = p.index_packs.get(name) {
            named.extend(packs.iter().copied());
        }
    }

    // 5. Delete packs: executable condemned packs, orphans, and this run's packs if immediate.
    let mut doomed: Vec<Id> = p.executable_packs.iter().copied().collect();
    doomed.extend(p.orphans.iter().copied());
    if immediate {
        doomed.extend(newly_condemned.iter().copied());
    }
    doomed.sort();
    doomed.dedup();
    let mut kept: HashSet<Id> = HashSet::new();
    for id in &doomed {
        let name = id.to_hex();
        if named.contains(id) {
            report.held.push((FileKind::Pack, name));
            kept.insert(*id);
        } else if gate.delete(repo, FileKind::Pack, &name, &mut report)? {
            report.packs_deleted += 1;
        } else {
            kept.insert(*id);
        }
    }
    // 6. Plans whose packs are all gone. One with a pack left would let backups use it again.
    let mut plans: Vec<(String, Vec<Id>)> = p
        .executable_plans
        .iter()
        .map(|n| (n.clone(), p.plan_packs.remove(n).unwrap_or_default()))
        .collect();
    if immediate && let Some(name) = new_plan_name {
        plans.push((name, newly_condemned));
    }
    for (name, packs) in plans {
        if packs.iter().any(|id| kept.contains(id)) {
            report.held.push((FileKind::Plan, name));
        } else {
            gate.delete(repo, FileKind::Plan, &name, &mut report)?;
        }
    }
    // Plans that cannot be read: this run, and every backup, took them as absent.
    for name in &p.damaged_plans {
        gate.delete(repo, FileKind::Plan, name, &mut report)?;
    }
    report.objects_held = report.held.len();
    // Markers of killed processes.
    if let Gate::All = gate {
        for (id, info) in locks::list(repo)? {
            if info.is_stale(Utc::now()) {
                storage.delete(FileKind::Lock, &id.to_hex())?;
            }
        }
    }
    Ok(report)
}

/// Whether a payload read from a pack about to go is blob `b`: decoded, it has `b`'s keyed
/// ID. (A key holder can store other content under an existing blob's ID.)
fn is_the_blob(repo: &Repository, b: &PackEntry, payload: &[u8], object: &str) -> bool {
    let decoded;
    let plain: &[u8] = if b.is_compressed() {
        match pack::decode_payload(b, payload.to_vec(), object) {
            Ok(d) => {
                decoded = d;
                &decoded
            }
            Err(_) => return false,
        }
    } else {
        payload
    };
    repo.blob_id(plain) == b.id
}
