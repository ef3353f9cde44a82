//! Damage traced to what a user cares about: for each damaged pack, the snapshots and paths
//! that can no longer be restored.

use std::collections::{HashMap, HashSet};

use super::{Checker, child_path, fetch_tree};
use crate::id::Id;
use crate::snapshot::Snapshot;
use crate::storage::FileKind;
use crate::tree::MAX_PATH;

/// Affected files listed per damaged pack; the rest are counted in a final line.
const MAX_FILES_PER_PACK: usize = 100;

/// Where lost data shows up, for one damaged pack.
#[derive(Default)]
pub(super) struct Trace {
    pub(super) snapshots: Vec<String>,
    pub(super) files: Vec<String>,
    pub(super) more: usize,
}

impl Checker<'_> {
    /// Finds the snapshots and paths that lost data to each damaged pack. A tree is loaded
    /// at most once to learn whether anything below it is lost, then again only along the
    /// paths to lost blobs, once per snapshot.
    pub(super) fn trace_damage(&mut self, snapshots: &[(Id, Snapshot)]) {
        let mut healthy: HashSet<Id> = HashSet::new();
        for (pack, entries) in &self.packs {
            if self.stored.contains_key(pack) {
                healthy.extend(
                    entries
                        .iter()
                        .filter(|e| self.bad.contains_key(&e.id) && !self.is_bad(&e.id, pack))
                        .map(|e| e.id),
                );
            }
        }
        let mut lost: HashMap<Id, Vec<Id>> = self
            .bad
            .iter()
            .filter(|(blob, _)| !healthy.contains(*blob))
            .map(|(blob, packs)| (*blob, packs.clone()))
            .collect();
        if lost.is_empty() {
            for pack in std::mem::take(&mut self.vanished_condemned) {
                self.prune_not_finished(pack);
            }
            return;
        }
        // A large tree with a lost part is lost itself, wherever the part's packs are.
        let lost_parts = self.lost_parts(&lost);
        for (tree, parts) in &lost_parts {
            let mut packs = lost.get(tree).cloned().unwrap_or_default();
            for pack in parts.iter().flat_map(|p| &lost[p]) {
                if !packs.contains(pack) {
                    packs.push(*pack);
                }
            }
            lost.insert(*tree, packs);
        }
        let index = self.good_index();
        let repo = self.repo;

        // Which trees have lost data at or below them, each tree loaded once (post-order).
        enum Step {
            Visit(Id),
            Done(Id, bool, Vec<Id>),
        }
        let mut affected: HashMap<Id, bool> = HashMap::new();
        // The lost blobs a snapshot uses: a condemned pack a prune deleted is damage only for
        // those (the blobs it condemned are unused by definition).
        let mut used_lost: HashSet<Id> = HashSet::new();
        for (_, s) in snapshots {
            if lost.contains_key(&s.tree) {
                use_lost(&mut used_lost, &lost_parts, s.tree);
            }
        }
        let mut stack: Vec<Step> = snapshots.iter().map(|(_, s)| Step::Visit(s.tree)).collect();
        while let Some(step) = stack.pop() {
            match step {
                Step::Visit(id) => {
                    if affected.contains_key(&id) {
                        continue;
                    }
                    affected.insert(id, false);
                    let Ok(tree) = fetch_tree(repo, &index, &id).tree else {
                        continue;
                    };
                    let mut direct = false;
                    let mut subtrees = Vec::new();
                    for node in &tree.nodes {
                        for b in node.content.iter().filter(|b| lost.contains_key(*b)) {
                            direct = true;
                            used_lost.insert(*b);
                        }
                        if let Some(sub) = node.subtree {
                            if lost.contains_key(&sub) {
                                direct = true;
                                use_lost(&mut used_lost, &lost_parts, sub);
                            } else {
                                subtrees.push(sub);
                            }
                        }
                    }
                    let visits: Vec<Step> = subtrees.iter().map(|s| Step::Visit(*s)).collect();
                    stack.push(Step::Done(id, direct, subtrees));
                    stack.extend(visits);
                }
                Step::Done(id, direct, subtrees) => {
                    let any = direct || subtrees.iter().any(|s| affected.get(s) == Some(&true));
                    affected.insert(id, any);
                }
            }
        }

        for pack in std::mem::take(&mut self.vanished_condemned) {
            let needed = self.packs[&pack]
                .iter()
                .filter(|e| used_lost.contains(&e.id))
                .count();
            if needed > 0 {
                self.mark_damaged(
                    pack,
                    format!("deleted by a prune, but {needed} of its blobs had no other copy"),
                );
            } else {
                self.prune_not_finished(pack);
            }
        }
        // Lost blobs in a vanished pack a prune no longer needed are not in `damage`.
        lost.retain(|_, packs| {
            packs.retain(|p| self.damage.contains_key(p));
            !packs.is_empty()
        });
        if lost.is_empty() {
            return;
        }

        // The paths, per snapshot, descending only into affected trees, each tree once: a
        // subtree named at several places is listed at its first (a tree written to name one
        // subtree twice at each of many levels has more paths than anyone could walk).
        let traces = &mut self.traces;
        for (snap_id, snap) in snapshots {
            let short = snap_id.short();
            let mut note = |packs: &[Id], path: &str| {
                for pack in packs {
                    let t = traces.entry(*pack).or_default();
                    if t.snapshots.last() != Some(&short) {
                        t.snapshots.push(short.clone());
                    }
                    if t.files.len() < MAX_FILES_PER_PACK {
                        t.files.push(format!("{short}:{path}"));
                    } else {
                        t.more += 1;
                    }
                }
            };
            if let Some(packs) = lost.get(&snap.tree) {
                note(packs, "/");
                continue;
            }
            let mut dirs = vec![(snap.tree, String::from("/"))];
            let mut traced: HashSet<Id> = HashSet::new();
            while let Some((tree_id, dir)) = dirs.pop() {
                if affected.get(&tree_id) != Some(&true) || !traced.insert(tree_id) {
                    continue;
                }
                let Ok(tree) = fetch_tree(repo, &index, &tree_id).tree else {
                    continue;
                };
                // Pushed last to first, so that directories are entered in name order.
                let below = dirs.len();
                for node in &tree.nodes {
                    let path = child_path(&dir, &node.name);
                    let mut hit: Vec<Id> = Vec::new();
                    let blobs = node.content.iter().chain(node.subtree.as_ref());
                    for packs in blobs.filter_map(|b| lost.get(b)) {
                        for p in packs {
                            if !hit.contains(p) {
                                hit.push(*p);
                            }
                        }
                    }
                    if !hit.is_empty() {
                        note(&hit, &path);
                    } else if let Some(sub) = node.subtree
                        && path.len() <= MAX_PATH
                    {
                        dirs.push((sub, path));
                    }
                }
                dirs[below..].reverse();
            }
        }
    }

    /// The large trees the walk read that have a part in `lost`, with those parts.
    fn lost_parts(&self, lost: &HashMap<Id, Vec<Id>>) -> HashMap<Id, Vec<Id>> {
        self.tree_parts
            .iter()
            .filter_map(|(tree, parts)| {
                let gone: Vec<Id> = parts
                    .iter()
                    .filter(|p| lost.contains_key(*p))
                    .copied()
                    .collect();
                (!gone.is_empty()).then_some((*tree, gone))
            })
            .collect()
    }

    /// A condemned pack that is gone while the index still names it: a prune deleted it and
    /// has not finished (it writes the index without it next). Not damage.
    fn prune_not_finished(&mut self, pack: Id) {
        let object = FileKind::Pack.path(&pack.to_hex());
        self.report.warnings.push(format!(
            "{object}: deleted by a prune that has not finished (the index still names it)"
        ));
    }
}

/// Notes that a snapshot uses lost blob `id`, and the lost parts it is stored in.
fn use_lost(used: &mut HashSet<Id>, lost_parts: &HashMap<Id, Vec<Id>>, id: Id) {
    used.insert(id);
    used.extend(lost_parts.get(&id).into_iter().flatten().copied());
}
