//! Prune: remove data no snapshot needs, without ever stopping backups.
//!
//! Destructive work is planned first ([`plan`], which `--dry-run` prints) and carried out
//! second ([`execute`]). Backups never wait: instead of an exclusive lock, prune *condemns*
//! packs by writing a plan object (`plans/<id>`, sealed `LPPP`). From then on new backups do
//! not deduplicate against condemned packs. A condemned pack is deleted only when no backup
//! that could have seen it as live is still running:
//!
//! - right away, when prune sees no live backup, restore or check marker after writing the
//!   plan (a backup that writes its marker later lists plans after that, so it sees the plan);
//! - otherwise by a later prune, once every backup marker created before the plan (with a
//!   five-minute allowance for clock skew) is gone or stale. Before deleting, that prune
//!   copies out any blob a newer snapshot still uses ("rescue"), exactly as it repacks.
//!
//! Packs no index names (left by a killed backup, or being written by a running one) are
//! deleted only once older than the grace period.
//!
//! Order of writes, each step safe to interrupt: new packs → plan → new index files → delete
//! replaced index files → delete packs → delete executed plans.
//!
//! [`execute_gated`] runs the same prune for a caller that may delete only some objects now
//! (an agent whose server releases a deletion only a grace period after it was announced):
//! what it may not delete yet it leaves in place and reports ([`PruneReport::held`]), and
//! it never deletes a pack an index file it keeps still names, nor a plan whose packs are
//! not all gone. Every state it leaves is a whole repository; a later run finishes the job.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{self, Magic, Version};
use crate::id::Id;
use crate::index::{Index, IndexFile};
use crate::locks::{self, Lock, LockKind};
use crate::pack::{self, PackEntry, PackWriter};
use crate::repo::Repository;
use crate::storage::FileKind;
use crate::tree::NodeKind;

/// How far apart two hosts' clocks may be. A backup whose marker was created up to this long
/// after a prune plan may still have started before it, so the plan waits for it.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);
/// Largest prune plan accepted from storage.
const MAX_PLAN: u64 = 256 << 20;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PlanObject {
    created: DateTime<Utc>,
    packs: Vec<Id>,
}

/// Every pack some plan has condemned. Backups skip these when deduplicating.
pub fn condemned_packs(repo: &Repository) -> Result<HashSet<Id>> {
    Ok(load_plans(repo)?
        .into_iter()
        .flat_map(|(_, p)| p.packs)
        .collect())
}

fn load_plans(repo: &Repository) -> Result<Vec<(String, PlanObject)>> {
    let mut out = Vec::new();
    for obj in repo.storage().list(FileKind::Plan)? {
        let object = FileKind::Plan.path(&obj.name);
        let bytes = match repo.storage().get(
            FileKind::Plan,
            &obj.name,
            crate::repo::SEALED_OVERHEAD + MAX_PLAN,
        ) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let plan: PlanObject = match format::open(
            repo.master(),
            Magic::PrunePlan,
            &object,
            &bytes,
            MAX_PLAN as usize,
        )? {
            (Version::V1, json) => {
                serde_json::from_slice(&json).map_err(|e| Error::corrupt(&object, e.to_string()))?
            }
        };
        out.push((obj.name, plan));
    }
    Ok(out)
}

/// Prune settings.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Repack a pack when more than this share of its bytes is unused (0.0 to 1.0).
    pub max_unused: f64,
    /// Unindexed packs younger than this are left alone (a backup may still be writing them).
    pub grace: Duration,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: 0.1,
            grace: Duration::from_secs(3600),
        }
    }
}

/// What a prune will do. Counts are for display; the sets drive [`execute`].
#[derive(Debug, Default, Serialize)]
pub struct PrunePlan {
    pub snapshots: usize,
    pub used_blobs: usize,
    pub packs_total: usize,
    pub packs_keep: usize,
    pub packs_repack: usize,
    pub packs_delete: usize,
    pub orphan_packs_delete: usize,
    pub orphan_packs_young: usize,
    pub condemned_packs_execute: usize,
    pub condemned_packs_waiting: usize,
    pub bytes_total: u64,
    pub bytes_unused: u64,
    pub bytes_to_repack: u64,
    pub bytes_to_free: u64,
    #[serde(skip)]
    repack: Vec<Id>,
    #[serde(skip)]
    delete: Vec<Id>,
    #[serde(skip)]
    orphans: Vec<Id>,
    #[serde(skip)]
    executable_plans: Vec<String>,
    #[serde(skip)]
    executable_packs: HashSet<Id>,
    #[serde(skip)]
    index_files: Vec<String>,
    /// The packs each index file names.
    #[serde(skip)]
    index_packs: HashMap<String, Vec<Id>>,
    /// The packs each executable plan condemns.
    #[serde(skip)]
    plan_packs: HashMap<String, Vec<Id>>,
    #[serde(skip)]
    packs: HashMap<Id, Vec<PackEntry>>,
    #[serde(skip)]
    copy: HashSet<Id>,
    #[serde(skip)]
    keep: HashSet<Id>,
}

impl PrunePlan {
    pub fn is_noop(&self) -> bool {
        self.repack.is_empty()
            && self.delete.is_empty()
            && self.orphans.is_empty()
            && self.executable_plans.is_empty()
    }
}

/// Every blob reachable from any snapshot.
pub fn used_blobs(repo: &Repository, index: &Index, roots: &[Id]) -> Result<HashSet<Id>> {
    let mut used = HashSet::new();
    for root in roots {
        mark_used(repo, index, root, &mut used)?;
    }
    Ok(used)
}

/// Adds every blob reachable from `root` to `used`; trees already in `used` are not walked
/// again, so snapshots that share subtrees cost one walk.
fn mark_used(repo: &Repository, index: &Index, root: &Id, used: &mut HashSet<Id>) -> Result<()> {
    let mut stack: Vec<Id> = vec![*root];
    while let Some(tree_id) = stack.pop() {
        if !used.insert(tree_id) {
            continue;
        }
        let tree = repo.load_tree(index, &tree_id)?;
        for node in &tree.nodes {
            match node.kind {
                NodeKind::Dir => {
                    if let Some(sub) = node.subtree {
                        stack.push(sub);
                    }
                }
                NodeKind::File => used.extend(node.content.iter().copied()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Plans a prune without changing anything.
pub fn plan(repo: &Repository, opts: &PruneOptions) -> Result<PrunePlan> {
    let now = Utc::now();
    let live_backups: Vec<_> = locks::list(repo)?
        .into_iter()
        .filter(|(_, l)| l.kind != LockKind::Prune && !l.is_stale(now))
        .collect();
    let plans = load_plans(repo)?;
    let mut p = PrunePlan::default();
    let mut waiting: HashSet<Id> = HashSet::new();
    for (name, plan) in &plans {
        let blocked = live_backups
            .iter()
            .any(|(_, l)| l.created < plan.created + CLOCK_SKEW);
        if blocked {
            waiting.extend(plan.packs.iter().copied());
        } else {
            p.executable_plans.push(name.clone());
            p.executable_packs.extend(plan.packs.iter().copied());
            p.plan_packs.insert(name.clone(), plan.packs.clone());
        }
    }
    // A pack in a waiting plan stays condemned even if an executable plan also names it.
    for w in &waiting {
        p.executable_packs.remove(w);
    }
    p.condemned_packs_execute = p.executable_packs.len();
    p.condemned_packs_waiting = waiting.len();

    // Index files and the packs they name.
    for obj in repo.storage().list(FileKind::Index)? {
        let file = repo.load_index_file(&obj.name)?;
        let mut named = Vec::with_capacity(file.packs.len());
        for (pack, blobs) in file.packs {
            named.push(pack);
            p.packs.entry(pack).or_insert(blobs);
        }
        p.index_packs.insert(obj.name.clone(), named);
        p.index_files.push(obj.name);
    }
    let mut index = Index::new();
    for (pack, blobs) in &p.packs {
        index.add_pack(*pack, blobs);
    }
    index.finish();

    let list = repo.list_snapshots()?;
    // What a snapshot uses decides what may go: one that cannot be read blocks everything.
    if let Some((name, e)) = list.damaged.first() {
        return Err(Error::Invalid(format!(
            "prune deletes nothing while a snapshot cannot be read: {} damaged snapshot(s), \
             first {name} ({e}). Remove a damaged snapshot with `loop forget {name}` (or \
             restore it), then prune again",
            list.damaged.len()
        )));
    }
    let snapshots = list.snapshots;
    p.snapshots = snapshots.len();
    let mut used = HashSet::new();
    for (id, s) in &snapshots {
        mark_used(repo, &index, &s.tree, &mut used).map_err(|e| {
            Error::Invalid(format!(
                "prune deletes nothing while snapshot {} cannot be read whole ({e}); run \
                 `loop check`, and remove or repair that snapshot, then prune again",
                id.to_hex()
            ))
        })?;
    }
    p.used_blobs = used.len();

    // Which packs can be kept whole: normal packs that are mostly used, and packs of waiting
    // plans (left untouched until their plan can run).
    let mut pack_ids: Vec<Id> = p.packs.keys().copied().collect();
    pack_ids.sort();
    p.packs_total = pack_ids.len();
    let mut covered: HashSet<Id> = HashSet::new();
    for id in &pack_ids {
        let blobs = &p.packs[id];
        let total: u64 = blobs.iter().map(|b| b.length as u64).sum();
        p.bytes_total += total;
        if p.executable_packs.contains(id) {
            continue;
        }
        if waiting.contains(id) {
            p.keep.insert(*id);
            covered.extend(blobs.iter().map(|b| b.id));
            continue;
        }
        let used_bytes: u64 = blobs
            .iter()
            .filter(|b| used.contains(&b.id))
            .map(|b| b.length as u64)
            .sum();
        p.bytes_unused += total - used_bytes;
        if used_bytes == 0 {
            p.delete.push(*id);
            p.bytes_to_free += total;
        } else if (total - used_bytes) as f64 > opts.max_unused * total as f64 {
            p.repack.push(*id);
        } else {
            p.keep.insert(*id);
            covered.extend(blobs.iter().map(|b| b.id));
        }
    }
    // Blobs still needed whose only copies are in packs about to go: copy them out.
    let mut sources: Vec<Id> = p.repack.clone();
    sources.extend(
        p.executable_packs
            .iter()
            .filter(|id| p.packs.contains_key(id)),
    );
    for id in &sources {
        for b in &p.packs[id] {
            if used.contains(&b.id) && !covered.contains(&b.id) && p.copy.insert(b.id) {
                p.bytes_to_repack += b.length as u64;
            }
        }
    }
    // A used blob with no copy anywhere means damage: stop before deleting anything.
    for id in &used {
        if !covered.contains(id) && !p.copy.contains(id) {
            return Err(Error::Invalid(format!(
                "blob {} is used by a snapshot but stored nowhere; run `loop check` and repair before pruning",
                id.short()
            )));
        }
    }
    for id in &p.repack {
        let total: u64 = p.packs[id].iter().map(|b| b.length as u64).sum();
        p.bytes_to_free += total;
    }
    p.packs_repack = p.repack.len();
    p.packs_delete = p.delete.len();
    p.packs_keep = p.keep.len();

    // Unindexed packs: delete when older than the grace period and not condemned elsewhere.
    let grace = chrono::Duration::from_std(opts.grace).unwrap_or(chrono::Duration::MAX);
    for obj in repo.storage().list(FileKind::Pack)? {
        let id = Id::parse(&obj.name)?;
        if p.packs.contains_key(&id) || waiting.contains(&id) || p.executable_packs.contains(&id) {
            continue;
        }
        if now.signed_duration_since(obj.modified) >= grace {
            p.orphans.push(id);
            p.bytes_to_free += obj.size;
        } else {
            p.orphan_packs_young += 1;
        }
    }
    p.orphan_packs_delete = p.orphans.len();
    Ok(p)
}

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
    let _lock = Lock::acquire_exclusive_prune(repo)?;
    let mut report = PruneReport::default();
    let storage = repo.storage();

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
            let (start, end) = (b.offset as usize, b.offset as usize + b.length as usize);
            if end > bytes.len() {
                return Err(Error::corrupt(&object, "shorter than the index says"));
            }
            let payload = pack::decrypt_payload(&cipher, b, bytes[start..end].to_vec(), &object)?;
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
    // With no live backup after the plan is visible, it can run now.
    let now = Utc::now();
    let backups_running = locks::list(repo)?
        .into_iter()
        .any(|(_, l)| l.kind != LockKind::Prune && !l.is_stale(now));
    let immediate = !backups_running;
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
