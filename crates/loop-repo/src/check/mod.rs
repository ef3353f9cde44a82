//! Repository checking (`loop check`): can every snapshot be restored, and does storage hold
//! what the index says?
//!
//! Two depths:
//!
//! - The structure check (always) reads only small objects: every index file, snapshot and
//!   tree. It finds packs the index names but storage lacks, packs whose size disagrees with
//!   their index entries, trees that do not load, and blobs a snapshot needs that no index
//!   names. Data blobs are looked up, not read.
//! - `--read-data` (or a random `--read-data-subset`) also downloads packs whole (one request
//!   each), authenticates the trailer and every blob, recomputes each blob's keyed ID and
//!   compares the trailer with the index. At most `threads` packs are in memory at once.
//!
//! Damage is then traced to what a user cares about: for each damaged pack, the snapshots and
//! paths that can no longer be restored. A blob with an intact copy in another pack is not
//! lost (prune's rescue and concurrent backups make such copies), so it is not traced.
//!
//! Packs no index names are normal: a killed backup or prune leaves them, and prune deletes
//! them after its grace period. They are counted, not reported. Check holds a read lock when it
//! can write one, so a prune waits for it; on storage it cannot write to (read-only, full) it
//! runs without, and a concurrent prune can then make packs vanish under it.
//!
//! Here: the structure check and the report; `packs.rs`: reading packs for `--read-data`;
//! `trace.rs`: tracing damage to snapshots and paths.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicU64;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::Index;
use crate::pack::{self, PackEntry};
use crate::prune;
use crate::repo::{FETCH_THREADS, Repository};
use crate::snapshot::Snapshot;
use crate::storage::FileKind;
use crate::tree::{MAX_PATH, Name, Tree, TreeParts};
use crate::util::parallel_map;

mod packs;
mod trace;

use trace::Trace;

/// Errors listed per damaged pack; a pack of garbage would otherwise give one per blob.
const MAX_ERRORS_PER_PACK: usize = 20;
/// Trees fetched per parallel round of the structure walk (bounds the trees in memory).
const TREE_BATCH: usize = 256;

/// What `loop check` should do.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub read_data: ReadData,
    /// Packs read at once; 0 picks 2 to 4 from the cores available.
    pub threads: usize,
}

/// Which packs to download and verify.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReadData {
    None,
    All,
    /// A random sample of this percentage (0 to 100) of the indexed packs; at least one pack
    /// when above zero.
    Subset(f64),
}

impl ReadData {
    /// `percent` of the packs (clamped to 0 to 100): none at 0, all at 100, else a subset.
    pub fn percent(percent: f64) -> ReadData {
        let p = percent.clamp(0.0, 100.0);
        if p >= 100.0 {
            ReadData::All
        } else if p > 0.0 {
            ReadData::Subset(p)
        } else {
            ReadData::None
        }
    }
}

/// Live counters for a progress display (reading packs only; the structure check is quick).
#[derive(Default)]
pub struct CheckProgress {
    pub packs_done: AtomicU64,
    pub packs_total: AtomicU64,
    pub bytes_done: AtomicU64,
    /// Set to stop reading packs early (a cancelled job); the report's warnings say how
    /// many selected packs were left unread.
    pub stop: std::sync::atomic::AtomicBool,
}

/// What a check found.
#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    pub snapshots: usize,
    pub trees: usize,
    pub data_blobs: usize,
    /// Packs the index names.
    pub packs: usize,
    pub packs_read: usize,
    /// Each names the object it concerns.
    pub errors: Vec<String>,
    /// Packs that are missing or damaged, with what they affect.
    pub damaged: Vec<DamagedPack>,
    /// Packs in storage that no index names (informational, not an error).
    pub unreferenced_packs: usize,
    pub warnings: Vec<String>,
}

impl CheckReport {
    /// True when nothing is damaged or missing.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty() && self.damaged.is_empty()
    }
}

/// One damaged pack and the snapshot contents that can no longer be restored because of it.
#[derive(Debug, Serialize)]
pub struct DamagedPack {
    /// The pack ID (64 hex digits).
    pub pack: String,
    pub reason: String,
    /// Short IDs of the snapshots with lost data.
    pub snapshots: Vec<String>,
    /// `snapshot:/path` of each lost file or directory, capped with a final `... and N more`.
    pub files: Vec<String>,
}

/// Checks the repository. Storage that cannot be listed is an `Err`; everything found wrong
/// with the objects themselves goes into the report.
pub fn run(
    repo: &Repository,
    opts: &CheckOptions,
    progress: &CheckProgress,
) -> Result<CheckReport> {
    // Best effort: a read-only or full repository can still be read, just without telling a
    // concurrent prune to wait.
    let _lock = crate::locks::Lock::acquire(repo, crate::locks::LockKind::Read).ok();
    let mut c = Checker::new(repo);
    // Snapshots before the index: a backup writes its index files before its snapshot, so
    // every snapshot seen here has its blobs in an index file listed afterwards.
    let snapshots = c.load_snapshots()?;
    c.load_index()?;
    c.check_pack_sizes()?;
    let index = c.good_index();
    c.walk_snapshots(&snapshots, &index);
    drop(index);
    c.read_packs(opts, progress);
    c.trace_damage(&snapshots);
    Ok(c.finish())
}

struct Checker<'a> {
    repo: &'a Repository,
    report: CheckReport,
    /// Every pack the index names with its blobs in offset order, all index files merged.
    packs: HashMap<Id, Vec<PackEntry>>,
    /// Packs in storage and their sizes.
    stored: HashMap<Id, u64>,
    /// Packs a prune plan will delete.
    condemned: HashSet<Id>,
    /// Blob copies known to be unreadable: blob → the packs holding a bad copy.
    bad: HashMap<Id, Vec<Id>>,
    /// Damaged packs and the reasons, in pack order.
    damage: BTreeMap<Id, Vec<String>>,
    /// Indexed, condemned packs that are gone: a prune deleted them; damage only if needed.
    vanished_condemned: Vec<Id>,
    /// Where each damaged pack's lost blobs show up.
    traces: HashMap<Id, Trace>,
    /// The parts of each large tree the walk read: a lost part loses its tree.
    tree_parts: HashMap<Id, Vec<Id>>,
}

/// Why a tree could not be used.
enum TreeFailure {
    /// No usable copy of this blob (the tree's own, or one of its parts) is indexed.
    Missing(Id),
    /// The copy of this blob in this pack is damaged (the error names the pack).
    Damaged(Id, Id, Error),
    /// The blobs are fine but are not a valid tree, or storage failed.
    Other(Error),
}

/// A tree as the check loads it, and the parts it is stored in: known once its parts list is
/// read, even when a part then fails, so the damage can be traced to the tree.
struct Fetched {
    tree: std::result::Result<Tree, TreeFailure>,
    parts: Vec<Id>,
}

/// Loads a tree as [`Repository::load_tree`] does (without the cache), telling a damaged
/// pack apart from a bad tree so the pack can be reported.
fn fetch_tree(repo: &Repository, index: &Index, id: &Id) -> Fetched {
    // The blob whose read failed, and the pack of its damaged copy (none: not indexed).
    let failed = std::cell::Cell::new(None);
    let read = |blob: &Id| {
        let Some(loc) = index.get(blob) else {
            failed.set(Some((*blob, None)));
            return Err(Error::corrupt(
                format!("blob {}", blob.short()),
                "not indexed",
            ));
        };
        repo.read_blob(index, blob).inspect_err(|e| {
            if matches!(e, Error::Corrupt { .. }) {
                failed.set(Some((*blob, Some(loc.pack))));
            }
        })
    };
    let failure = |e: Error| match failed.take() {
        Some((blob, None)) => TreeFailure::Missing(blob),
        Some((blob, Some(pack))) => TreeFailure::Damaged(blob, pack, e),
        None => TreeFailure::Other(e),
    };
    let own = match read(id) {
        Ok(data) => data,
        Err(e) => {
            return Fetched {
                tree: Err(failure(e)),
                parts: Vec::new(),
            };
        }
    };
    let object = format!("tree {}", id.short());
    let parts = match TreeParts::decode(&object, &own) {
        Ok(Some(list)) => list.parts,
        _ => Vec::new(),
    };
    let mut own = Some(own);
    let limit = repo.tree_limit();
    let tree = crate::repo::read_tree(index, id, limit, |blob| {
        own.take().map_or_else(|| read(blob), Ok)
    })
    .map(|(tree, _)| tree)
    .map_err(failure);
    Fetched { tree, parts }
}

/// The error's text, prefixed with the object unless it already names it.
fn named(object: &str, e: &Error) -> String {
    let text = e.to_string();
    if text.contains(object) {
        text
    } else {
        format!("{object}: {text}")
    }
}

/// The part of an error that says what is wrong, without the object name.
fn reason_of(e: &Error) -> String {
    match e {
        Error::Corrupt { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

fn child_path(dir: &str, name: &Name) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// A tree to visit in the structure walk, with the first snapshot and path that reached it.
struct TreeRef {
    id: Id,
    snapshot: usize,
    path: String,
}

impl<'a> Checker<'a> {
    fn new(repo: &'a Repository) -> Checker<'a> {
        Checker {
            repo,
            report: CheckReport::default(),
            packs: HashMap::new(),
            stored: HashMap::new(),
            condemned: HashSet::new(),
            bad: HashMap::new(),
            damage: BTreeMap::new(),
            vanished_condemned: Vec::new(),
            traces: HashMap::new(),
            tree_parts: HashMap::new(),
        }
    }

    fn error(&mut self, msg: String) {
        self.report.errors.push(msg);
    }

    fn mark_bad(&mut self, blob: Id, pack: Id) {
        let packs = self.bad.entry(blob).or_default();
        if !packs.contains(&pack) {
            packs.push(pack);
        }
    }

    fn mark_damaged(&mut self, pack: Id, reason: String) {
        let reasons = self.damage.entry(pack).or_default();
        if reasons.contains(&reason) {
            return;
        }
        reasons.push(reason.clone());
        let object = FileKind::Pack.path(&pack.to_hex());
        match reasons.len() {
            n if n <= MAX_ERRORS_PER_PACK => self.error(format!("{object}: {reason}")),
            n if n == MAX_ERRORS_PER_PACK + 1 => self.error(format!(
                "{object}: more problems (listed in its damage report)"
            )),
            _ => {}
        }
    }

    fn is_bad(&self, blob: &Id, pack: &Id) -> bool {
        self.bad.get(blob).is_some_and(|p| p.contains(pack))
    }

    /// Loads every index file; one that cannot be read is an error, and the rest still count.
    fn load_index(&mut self) -> Result<()> {
        match prune::condemned_packs(self.repo) {
            Ok((set, warnings)) => {
                self.condemned = set;
                self.report.warnings.extend(warnings);
            }
            Err(e) => self.error(format!("prune plans: {e}")),
        }
        let names: Vec<String> = self
            .repo
            .storage()
            .list(FileKind::Index)?
            .into_iter()
            .map(|o| o.name)
            .collect();
        let repo = self.repo;
        for chunk in names.chunks(64) {
            let files = parallel_map(chunk, FETCH_THREADS, |name| repo.load_index_file(name));
            for (name, file) in chunk.iter().zip(files) {
                let object = FileKind::Index.path(name);
                match file {
                    Ok(f) => {
                        for (pack, blobs) in f.packs {
                            self.packs.entry(pack).or_default().extend(blobs);
                        }
                    }
                    Err(e) if e.is_not_found() => self.report.warnings.push(format!(
                        "{object} was deleted while check ran (is a prune running?)"
                    )),
                    Err(e) => self.error(named(&object, &e)),
                }
            }
        }
        // A pack listed by two index files (an interrupted prune) keeps one copy of each entry.
        for entries in self.packs.values_mut() {
            entries.sort_unstable_by_key(|e| (e.offset, e.id));
            entries.dedup();
        }
        self.report.packs = self.packs.len();
        Ok(())
    }

    /// Lists the packs in storage and checks each indexed pack's presence and size.
    fn check_pack_sizes(&mut self) -> Result<()> {
        for o in self.repo.storage().list(FileKind::Pack)? {
            match Id::parse(&o.name) {
                Ok(id) if id.to_hex() == o.name => {
                    self.stored.insert(id, o.size);
                }
                _ => self.report.warnings.push(format!(
                    "{}: not a pack name this program writes; ignored",
                    FileKind::Pack.path(&o.name)
                )),
            }
        }
        self.report.unreferenced_packs = self
            .stored
            .keys()
            .filter(|id| !self.packs.contains_key(id))
            .count();
        let mut ids: Vec<Id> = self.packs.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let entries = std::mem::take(self.packs.get_mut(&id).expect("listed"));
            match self.stored.get(&id) {
                None => {
                    for e in &entries {
                        self.mark_bad(e.id, id);
                    }
                    if self.condemned.contains(&id) {
                        self.vanished_condemned.push(id);
                    } else {
                        let reason = format!(
                            "missing from storage (the index names {} blobs in it)",
                            entries.len()
                        );
                        self.mark_damaged(id, reason);
                    }
                }
                Some(&size) => {
                    let (problems, beyond) = pack::check_layout(&entries, size);
                    for b in beyond {
                        self.mark_bad(b, id);
                    }
                    for p in problems {
                        self.mark_damaged(id, p.to_string());
                    }
                }
            }
            self.packs.insert(id, entries);
        }
        Ok(())
    }

    /// Every snapshot that decrypts, oldest first; one that does not is an error.
    fn load_snapshots(&mut self) -> Result<Vec<(Id, Snapshot)>> {
        let names: Vec<String> = self
            .repo
            .storage()
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|o| o.name)
            .collect();
        let repo = self.repo;
        let loaded = parallel_map(&names, FETCH_THREADS, |name| {
            let id = Id::parse(name)?;
            repo.load_snapshot(&id).map(|s| (id, s))
        });
        let mut out = Vec::with_capacity(names.len());
        for (name, r) in names.iter().zip(loaded) {
            match r {
                Ok(s) => out.push(s),
                // Removed by a concurrent forget between list and get.
                Err(e) if e.is_not_found() => {}
                Err(e) => self.error(named(&FileKind::Snapshot.path(name), &e)),
            }
        }
        out.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        self.report.snapshots = out.len();
        Ok(out)
    }

    /// The index without the blob copies known to be bad, so lookups find intact copies.
    fn good_index(&self) -> Index {
        let mut index = Index::new();
        for (pack, entries) in &self.packs {
            if !self.stored.contains_key(pack) {
                continue;
            }
            if entries.iter().any(|e| self.is_bad(&e.id, pack)) {
                let good: Vec<PackEntry> = entries
                    .iter()
                    .filter(|e| !self.is_bad(&e.id, pack))
                    .copied()
                    .collect();
                index.add_pack(*pack, &good);
            } else {
                index.add_pack(*pack, entries);
            }
        }
        index.finish();
        index
    }

    /// Visits every tree of every snapshot once, level by level with parallel fetches.
    /// Problems are reported at the first snapshot and path that reach them; blobs in
    /// damaged packs are traced to every snapshot later, in [`Checker::trace_damage`].
    fn walk_snapshots(&mut self, snapshots: &[(Id, Snapshot)], index: &Index) {
        let mut visited: HashSet<Id> = HashSet::new();
        let mut data_blobs: HashSet<Id> = HashSet::new();
        let mut frontier: Vec<TreeRef> = Vec::new();
        for (i, (_, s)) in snapshots.iter().enumerate() {
            if visited.insert(s.tree) {
                frontier.push(TreeRef {
                    id: s.tree,
                    snapshot: i,
                    path: "/".into(),
                });
            }
        }
        let repo = self.repo;
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for batch in frontier.chunks(TREE_BATCH) {
                let trees = parallel_map(batch, FETCH_THREADS, |t| fetch_tree(repo, index, &t.id));
                for (t, fetched) in batch.iter().zip(trees) {
                    if !fetched.parts.is_empty() {
                        self.tree_parts.insert(t.id, fetched.parts);
                    }
                    let at = format!("snapshot {}:{}", snapshots[t.snapshot].0.short(), t.path);
                    let tree = match fetched.tree {
                        Ok(tree) => tree,
                        Err(failure) => {
                            self.tree_failed(&at, &t.id, failure);
                            continue;
                        }
                    };
                    for node in &tree.nodes {
                        for id in &node.content {
                            if data_blobs.insert(*id)
                                && !index.contains(id)
                                && !self.bad.contains_key(id)
                            {
                                self.error(format!(
                                    "snapshot {}:{}: data blob {} is not in any index",
                                    snapshots[t.snapshot].0.short(),
                                    child_path(&t.path, &node.name),
                                    id.short()
                                ));
                            }
                        }
                        if let Some(sub) = node.subtree
                            && visited.insert(sub)
                        {
                            let path = child_path(&t.path, &node.name);
                            if path.len() > MAX_PATH {
                                self.error(format!(
                                    "{at}: a directory in it makes a path longer than \
                                     {MAX_PATH} bytes; not read further"
                                ));
                                continue;
                            }
                            next.push(TreeRef {
                                id: sub,
                                snapshot: t.snapshot,
                                path,
                            });
                        }
                    }
                }
            }
            frontier = next;
        }
        self.report.trees = visited.len();
        self.report.data_blobs = data_blobs.len();
    }

    /// Reports a tree of the walk that could not be used, at the first place that names it.
    fn tree_failed(&mut self, at: &str, tree: &Id, failure: TreeFailure) {
        match failure {
            TreeFailure::Missing(blob) => {
                if self.bad.contains_key(&blob) {
                    // Its pack is reported as damaged already.
                } else if blob == *tree {
                    self.error(format!("{at}: tree {} is not in any index", tree.short()));
                } else {
                    self.error(format!(
                        "{at}: part {} of tree {} is not in any index",
                        blob.short(),
                        tree.short()
                    ));
                }
            }
            TreeFailure::Damaged(blob, pack, e) => {
                self.mark_bad(blob, pack);
                self.mark_damaged(pack, reason_of(&e));
            }
            TreeFailure::Other(e) => self.error(format!("{at}: {e}")),
        }
    }

    fn finish(mut self) -> CheckReport {
        let mut seen = HashSet::new();
        self.report.errors.retain(|e| seen.insert(e.clone()));
        for (pack, reasons) in std::mem::take(&mut self.damage) {
            let mut reason = reasons[..reasons.len().min(3)].join("; ");
            if reasons.len() > 3 {
                reason.push_str(&format!("; and {} more problems", reasons.len() - 3));
            }
            let trace = self.traces.remove(&pack).unwrap_or_default();
            let mut files = trace.files;
            if trace.more > 0 {
                files.push(format!("... and {} more", trace.more));
            }
            self.report.damaged.push(DamagedPack {
                pack: pack.to_hex(),
                reason,
                snapshots: trace.snapshots,
                files,
            });
        }
        self.report
    }
}

#[cfg(test)]
mod tests;
