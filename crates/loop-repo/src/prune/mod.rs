//! Prune: remove data no snapshot needs, without ever stopping backups.
//!
//! Destructive work is planned first ([`plan`], which `--dry-run` prints) and carried out
//! second ([`execute`]). Backups never wait: instead of an exclusive lock, prune *condemns*
//! packs by writing a plan object (`plans/<id>`, sealed `LPPP`). From then on new backups do
//! not deduplicate against condemned packs. A condemned pack is deleted only when no backup
//! that could have seen it as live is still running:
//!
//! - right away, when prune sees no live backup, restore or check marker after writing the
//!   plan (a backup that writes its marker later lists plans after that, so it sees the plan)
//!   and no snapshot it did not plan for (one saved by a backup that ran while prune was
//!   planning, and ended before prune looked for markers);
//! - otherwise by a later prune, once every backup marker created before the plan (with a
//!   five-minute allowance for clock skew) and every restore and check marker is gone or
//!   stale. Before deleting, that prune copies out any blob a newer snapshot still uses
//!   ("rescue"), exactly as it repacks.
//!
//! A plan is carried out only on the repository it was made for: when another prune has
//! retired an index file the plan read, it is refused and must be made again.
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
use crate::index::Index;
use crate::locks::{self, LockKind};
use crate::pack::PackEntry;
use crate::repo::Repository;
use crate::storage::FileKind;
use crate::tree::NodeKind;

/// How far apart two hosts' clocks may be. A backup whose marker was created up to this long
/// after a prune plan may still have started before it, so the plan waits for it.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);
/// Largest prune plan accepted from storage.
const MAX_PLAN: u64 = 256 << 20;

mod execute;

pub use execute::{PruneReport, execute, execute_gated};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PlanObject {
    created: DateTime<Utc>,
    packs: Vec<Id>,
}

/// Every pack some readable plan has condemned, which backups skip when deduplicating, and a
/// warning for each plan that cannot be read (see [`Plans::damaged`]).
pub fn condemned_packs(repo: &Repository) -> Result<(HashSet<Id>, Vec<String>)> {
    let plans = load_plans(repo)?;
    let warnings = plans
        .damaged
        .iter()
        .map(|(name, e)| {
            format!(
                "prune plan {} cannot be read ({e}); the packs it condemned count as any \
                 other until the next prune removes it",
                FileKind::Plan.path(name)
            )
        })
        .collect();
    let packs = plans
        .readable
        .into_iter()
        .flat_map(|(_, p)| p.packs)
        .collect();
    Ok((packs, warnings))
}

/// The plans in storage.
struct Plans {
    readable: Vec<(String, PlanObject)>,
    /// Plans that fail authentication or decoding. Each is taken as absent, which is safe:
    /// nothing is deleted on its word, so its packs only count as any other again. One that
    /// is still condemned unused is condemned again by a new plan, which waits for every
    /// backup running before it (as any new plan does); a prune deletes the damaged plan.
    damaged: Vec<(String, Error)>,
}

fn load_plans(repo: &Repository) -> Result<Plans> {
    let mut out = Vec::new();
    let mut damaged = Vec::new();
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
        let plan = format::open(
            repo.master(),
            Magic::PrunePlan,
            &object,
            &bytes,
            MAX_PLAN as usize,
        )
        .and_then(|(version, json)| match version {
            Version::V1 => serde_json::from_slice::<PlanObject>(&json)
                .map_err(|e| Error::corrupt(&object, e.to_string())),
        });
        match plan {
            Ok(plan) => out.push((obj.name, plan)),
            Err(e @ Error::Corrupt { .. }) => damaged.push((obj.name, e)),
            Err(e) => return Err(e),
        }
    }
    Ok(Plans {
        readable: out,
        damaged,
    })
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
    /// Plans that cannot be read, taken as absent and deleted (see [`Plans::damaged`]).
    pub damaged_plans: Vec<String>,
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
    /// The snapshots the plan was made for.
    #[serde(skip)]
    snapshots_seen: HashSet<Id>,
    /// Made by [`preview_without`]: shown, never carried out.
    #[serde(skip)]
    preview: bool,
    #[serde(skip)]
    keep: HashSet<Id>,
}

impl PrunePlan {
    pub fn is_noop(&self) -> bool {
        self.repack.is_empty()
            && self.delete.is_empty()
            && self.orphans.is_empty()
            && self.executable_plans.is_empty()
            && self.damaged_plans.is_empty()
    }
}

/// Every blob reachable from any snapshot.
pub fn used_blobs(repo: &Repository, index: &Index, roots: &[Id]) -> Result<HashSet<Id>> {
    let mut used = Used::default();
    for root in roots {
        mark_used(repo, index, root, &mut used)?;
    }
    Ok(used.blobs)
}

/// What snapshots use: every blob, and apart from them the trees already walked.
#[derive(Default)]
struct Used {
    blobs: HashSet<Id>,
    walked: HashSet<Id>,
}

/// Adds every blob reachable from `root` to `used` (a large tree's parts too); trees already
/// walked are not walked again, so snapshots that share subtrees cost one walk.
fn mark_used(repo: &Repository, index: &Index, root: &Id, used: &mut Used) -> Result<()> {
    let mut stack: Vec<Id> = vec![*root];
    while let Some(tree_id) = stack.pop() {
        // Walked once, however its ID is used elsewhere: a file may hold exactly a tree's
        // bytes (blob IDs do not depend on the kind), and a snapshot written by a holder of
        // a backup-only token may name any tree as file content.
        if !used.walked.insert(tree_id) {
            continue;
        }
        used.blobs.insert(tree_id);
        let (tree, parts) = repo.load_tree_with_parts(index, &tree_id)?;
        used.blobs.extend(parts);
        for node in &tree.nodes {
            match node.kind {
                NodeKind::Dir => {
                    if let Some(sub) = node.subtree {
                        stack.push(sub);
                    }
                }
                NodeKind::File => used.blobs.extend(node.content.iter().copied()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Plans a prune without changing anything.
pub fn plan(repo: &Repository, opts: &PruneOptions) -> Result<PrunePlan> {
    make_plan(repo, opts, &HashSet::new())
}

/// What a prune would do once the snapshots `forgotten` are gone (a dry run of `forget
/// --prune`, which removes nothing): a plan to show, which [`execute`] refuses.
pub fn preview_without(
    repo: &Repository,
    opts: &PruneOptions,
    forgotten: &HashSet<Id>,
) -> Result<PrunePlan> {
    let mut p = make_plan(repo, opts, forgotten)?;
    p.preview = true;
    Ok(p)
}

fn make_plan(repo: &Repository, opts: &PruneOptions, forgotten: &HashSet<Id>) -> Result<PrunePlan> {
    let now = Utc::now();
    let live: Vec<_> = locks::list(repo)?
        .into_iter()
        .filter(|(_, l)| l.kind != LockKind::Prune && !l.is_stale(now))
        .collect();
    let plans = load_plans(repo)?;
    let mut p = PrunePlan {
        damaged_plans: plans.damaged.into_iter().map(|(name, _)| name).collect(),
        ..Default::default()
    };
    let mut waiting: HashSet<Id> = HashSet::new();
    for (name, plan) in &plans.readable {
        // A backup that started after the plan saw it and stays off its packs. A restore or
        // check reads condemned packs too (they may hold the only copy it knows of), however
        // late it started.
        let blocked = live
            .iter()
            .any(|(_, l)| l.kind == LockKind::Read || l.created < plan.created + CLOCK_SKEW);
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
        let file = repo.load_index_file(&obj.name).map_err(|e| match e {
            Error::Corrupt { .. } => Error::Invalid(format!(
                "prune deletes nothing while an index file cannot be read: {e}. Run `loop \
                 repair index`, which indexes its packs again from their own lists, then \
                 prune again"
            )),
            e => e,
        })?;
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
    let snapshots: Vec<_> = (list.snapshots.into_iter())
        .filter(|(id, _)| !forgotten.contains(id))
        .collect();
    p.snapshots = snapshots.len();
    p.snapshots_seen = snapshots.iter().map(|(id, _)| *id).collect();
    let mut used = Used::default();
    for (id, s) in &snapshots {
        mark_used(repo, &index, &s.tree, &mut used).map_err(|e| {
            Error::Invalid(format!(
                "prune deletes nothing while snapshot {} cannot be read whole ({e}); run \
                 `loop check`, and remove or repair that snapshot, then prune again",
                id.to_hex()
            ))
        })?;
    }
    let used = used.blobs;
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
    verify_standing_in(repo, &mut p, &used, &covered, &sources)?;
    // A used blob with no copy anywhere means damage: stop before deleting anything.
    for id in &used {
        if !covered.contains(id) && !p.copy.contains(id) {
            return Err(Error::Invalid(format!(
                "blob {} is used by a snapshot but stored nowhere that an index file names; run \
                 `loop repair index` (it indexes packs no index file names), then `loop check`, \
                 which names the snapshots that use it, and prune again",
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

#[cfg(test)]
mod tests;

/// A used blob in a pack about to go whose copy in a kept pack would stand in for it: that
/// copy stands in only if it is the blob. Anyone with the key (a backup-only token) can
/// store a copy under an existing blob's ID with other content, and prune must not drop the
/// genuine copy for it; such a blob is copied out of the pack about to go instead (and
/// checked again there). Normally a blob is stored twice only after a prune that was put off
/// (its copies and their condemned originals), read a kept pack at a time.
fn verify_standing_in(
    repo: &Repository,
    p: &mut PrunePlan,
    used: &HashSet<Id>,
    covered: &HashSet<Id>,
    sources: &[Id],
) -> Result<()> {
    let mut doubted: HashMap<Id, u32> = HashMap::new();
    for id in sources {
        for b in &p.packs[id] {
            if used.contains(&b.id) && covered.contains(&b.id) && !p.copy.contains(&b.id) {
                doubted.insert(b.id, b.length);
            }
        }
    }
    if doubted.is_empty() {
        return Ok(());
    }
    // Each kept pack's copies are read together (after a deferred prune, every blob it
    // copied out is doubled until its condemned pack goes: many blobs, few packs).
    let mut stands: HashSet<Id> = HashSet::new();
    let mut kept: Vec<&Id> = p.keep.iter().collect();
    kept.sort();
    for pack in kept {
        let copies: Vec<PackEntry> = p.packs[pack]
            .iter()
            .filter(|e| doubted.contains_key(&e.id) && !stands.contains(&e.id))
            .copied()
            .collect();
        if copies.is_empty() {
            continue;
        }
        for (entry, read) in copies.iter().zip(repo.read_blobs_in_pack(pack, &copies)?) {
            match read {
                Ok(_) => {
                    stands.insert(entry.id);
                }
                Err(Error::Corrupt { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    for (id, length) in doubted {
        if !stands.contains(&id) && p.copy.insert(id) {
            p.bytes_to_repack += length as u64;
        }
    }
    Ok(())
}
