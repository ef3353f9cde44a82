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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::Index;
use crate::pack::{self, PackEntry};
use crate::prune;
use crate::repo::{FETCH_THREADS, Repository};
use crate::snapshot::Snapshot;
use crate::storage::FileKind;
use crate::tree::{Name, Tree};
use crate::util::parallel_map;

/// Affected files listed per damaged pack; the rest are counted in a final line.
const MAX_FILES_PER_PACK: usize = 100;
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
}

/// Why a tree could not be used.
enum TreeFailure {
    /// No usable copy is indexed.
    Missing,
    /// The copy in this pack is damaged (the error names the pack).
    Damaged(Id, Error),
    /// The blob is fine but its contents are not a valid tree, or storage failed.
    Other(Error),
}

/// Loads a tree as [`Repository::load_tree`] does, telling a damaged pack apart from a bad
/// tree so the pack can be reported.
fn fetch_tree(repo: &Repository, index: &Index, id: &Id) -> std::result::Result<Tree, TreeFailure> {
    let Some(loc) = index.get(id) else {
        return Err(TreeFailure::Missing);
    };
    let data = match repo.read_blob(index, id) {
        Ok(d) => d,
        Err(e @ Error::Corrupt { .. }) => return Err(TreeFailure::Damaged(loc.pack, e)),
        Err(e) => return Err(TreeFailure::Other(e)),
    };
    let object = format!("tree {}", id.short());
    let tree = Tree::decode(&object, &data).map_err(TreeFailure::Other)?;
    tree.validate(&object).map_err(TreeFailure::Other)?;
    Ok(tree)
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

/// Picks `percent`% of the packs at random (rounded up, at least one when above zero), in
/// pack order.
fn sample_packs(candidates: &[Id], percent: f64) -> Vec<Id> {
    let n = candidates.len();
    if n == 0 || percent.is_nan() || percent <= 0.0 {
        return Vec::new();
    }
    // Multiply first so whole percentages of whole counts stay exact.
    let want = (percent.min(100.0) * n as f64 / 100.0).ceil() as usize;
    let mut picked = rand::seq::index::sample(&mut rand::rng(), n, want.clamp(1, n)).into_vec();
    picked.sort_unstable();
    picked.into_iter().map(|i| candidates[i]).collect()
}

/// What reading one pack found.
#[derive(Default)]
struct PackOutcome {
    /// Reasons the pack is damaged (without its name).
    damage: Vec<String>,
    /// Blobs whose copy in this pack cannot be read.
    bad_blobs: Vec<Id>,
    /// Failures that say nothing about the pack (a storage error).
    errors: Vec<String>,
    warnings: Vec<String>,
    bytes: u64,
}

/// Authenticates, decodes and re-hashes one blob whose bytes lie in `bytes`.
fn verify_blob(
    repo: &Repository,
    cipher: &crate::crypto::Cipher,
    object: &str,
    e: &PackEntry,
    bytes: &[u8],
    out: &mut PackOutcome,
) {
    let end = e.offset as u64 + e.length as u64;
    if end > bytes.len() as u64 {
        out.damage
            .push(format!("blob {} lies beyond the pack's end", e.id.short()));
        out.bad_blobs.push(e.id);
        return;
    }
    let stored = bytes[e.offset as usize..end as usize].to_vec();
    match pack::decode_blob(cipher, e, stored, object) {
        Ok(data) if repo.blob_id(&data) == e.id => {}
        Ok(_) => {
            out.damage
                .push(format!("blob {} does not match its ID", e.id.short()));
            out.bad_blobs.push(e.id);
        }
        Err(err) => {
            out.damage.push(reason_of(&err));
            out.bad_blobs.push(e.id);
        }
    }
}

/// Downloads one pack and verifies all of it against itself and against the index.
fn read_pack(repo: &Repository, pack: Id, listed_size: u64, indexed: &[PackEntry]) -> PackOutcome {
    let name = pack.to_hex();
    let object = FileKind::Pack.path(&name);
    let mut out = PackOutcome::default();
    // The largest pack a writer makes: the target, one more blob, and the trailer.
    let limit = pack::max_pack_size(repo.config().pack_size as usize);
    if listed_size > limit {
        out.damage.push(format!(
            "{listed_size} bytes, too large to be a pack; not read"
        ));
        return out;
    }
    let bytes = match repo.storage().get(FileKind::Pack, &name, limit) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            out.damage.push("missing from storage".into());
            out.bad_blobs.extend(indexed.iter().map(|e| e.id));
            return out;
        }
        Err(e) => {
            out.errors.push(named(&object, &e));
            return out;
        }
    };
    out.bytes = bytes.len() as u64;
    let cipher = pack::pack_cipher(repo.master(), &pack);
    match pack::read_contents(repo.master(), &object, &bytes) {
        Ok(contents) => {
            if contents.id != pack {
                out.damage.push(format!(
                    "its header names pack {}, not this one",
                    contents.id.short()
                ));
            }
            for e in &contents.entries {
                verify_blob(repo, &cipher, &object, e, &bytes, &mut out);
            }
            let slack = contents.slack();
            if slack > 0 {
                out.damage.push(format!(
                    "{slack} bytes between the last blob and the trailer"
                ));
            }
            // PackEntry has no Hash; (ID, offset) is unique within a pack.
            let in_trailer: HashMap<(Id, u32), &PackEntry> = contents
                .entries
                .iter()
                .map(|e| ((e.id, e.offset), e))
                .collect();
            for ie in indexed {
                if in_trailer.get(&(ie.id, ie.offset)) != Some(&ie) {
                    out.damage.push(format!(
                        "the index places blob {} at offset {}, but the pack's trailer does not",
                        ie.id.short(),
                        ie.offset
                    ));
                    out.bad_blobs.push(ie.id);
                }
            }
            let in_index: HashSet<(Id, u32)> = indexed.iter().map(|e| (e.id, e.offset)).collect();
            let unindexed = contents
                .entries
                .iter()
                .filter(|e| !in_index.contains(&(e.id, e.offset)))
                .count();
            if unindexed > 0 {
                out.warnings.push(format!(
                    "{object}: {unindexed} blobs in the pack are not named by the index"
                ));
            }
        }
        Err(e) => {
            out.damage.push(reason_of(&e));
            // The index knows where each blob is, so a broken trailer loses no data by itself:
            // verify the blobs at the index's offsets to trace only what is really gone.
            for ie in indexed {
                verify_blob(repo, &cipher, &object, ie, &bytes, &mut out);
            }
        }
    }
    out
}

/// A tree to visit in the structure walk, with the first snapshot and path that reached it.
struct TreeRef {
    id: Id,
    snapshot: usize,
    path: String,
}

/// Where lost data shows up, for one damaged pack.
#[derive(Default)]
struct Trace {
    snapshots: Vec<String>,
    files: Vec<String>,
    more: usize,
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
            Ok(set) => self.condemned = set,
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
                for (t, tree) in batch.iter().zip(trees) {
                    let at = format!("snapshot {}:{}", snapshots[t.snapshot].0.short(), t.path);
                    let tree = match tree {
                        Ok(tree) => tree,
                        Err(TreeFailure::Missing) => {
                            if !self.bad.contains_key(&t.id) {
                                self.error(format!(
                                    "{at}: tree {} is not in any index",
                                    t.id.short()
                                ));
                            }
                            continue;
                        }
                        Err(TreeFailure::Damaged(pack, e)) => {
                            self.mark_bad(t.id, pack);
                            self.mark_damaged(pack, reason_of(&e));
                            continue;
                        }
                        Err(TreeFailure::Other(e)) => {
                            self.error(format!("{at}: {e}"));
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
                            next.push(TreeRef {
                                id: sub,
                                snapshot: t.snapshot,
                                path: child_path(&t.path, &node.name),
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

    fn read_packs(&mut self, opts: &CheckOptions, progress: &CheckProgress) {
        let mut candidates: Vec<Id> = self
            .packs
            .keys()
            .filter(|id| self.stored.contains_key(id))
            .copied()
            .collect();
        candidates.sort_unstable();
        let selected = match opts.read_data {
            ReadData::None => return,
            ReadData::All => candidates,
            ReadData::Subset(percent) => sample_packs(&candidates, percent),
        };
        let threads = if opts.threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(2, 4)
        } else {
            opts.threads
        };
        progress
            .packs_total
            .store(selected.len() as u64, Ordering::Relaxed);
        let (repo, packs, stored) = (self.repo, &self.packs, &self.stored);
        let outcomes = parallel_map(&selected, threads, |id| {
            if progress.stop.load(Ordering::Relaxed) {
                return None;
            }
            let out = read_pack(repo, *id, stored[id], &packs[id]);
            progress.packs_done.fetch_add(1, Ordering::Relaxed);
            progress.bytes_done.fetch_add(out.bytes, Ordering::Relaxed);
            Some(out)
        });
        let unread = outcomes.iter().filter(|o| o.is_none()).count();
        if unread > 0 {
            self.report.warnings.push(format!(
                "stopped early: {unread} of {} selected packs were not read",
                selected.len()
            ));
        }
        self.report.packs_read = selected.len() - unread;
        let outcomes: Vec<_> = outcomes
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        for (id, out) in selected.into_iter().zip(outcomes) {
            for b in out.bad_blobs {
                self.mark_bad(b, id);
            }
            for reason in out.damage {
                self.mark_damaged(id, reason);
            }
            self.report.errors.extend(out.errors);
            self.report.warnings.extend(out.warnings);
        }
    }

    /// Finds the snapshots and paths that lost data to each damaged pack. A tree is loaded
    /// at most once to learn whether anything below it is lost, then again only along the
    /// paths to lost blobs, once per snapshot.
    fn trace_damage(&mut self, snapshots: &[(Id, Snapshot)]) {
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
        for pack in std::mem::take(&mut self.vanished_condemned) {
            let object = FileKind::Pack.path(&pack.to_hex());
            let needed = self.packs[&pack]
                .iter()
                .filter(|e| lost.contains_key(&e.id))
                .count();
            if needed > 0 {
                self.mark_damaged(
                    pack,
                    format!("deleted by a prune, but {needed} of its blobs had no other copy"),
                );
            } else {
                self.report.warnings.push(format!(
                    "{object}: deleted by a prune that has not finished (the index still names it)"
                ));
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
        let index = self.good_index();
        let repo = self.repo;

        // Which trees have lost data at or below them, each tree loaded once (post-order).
        enum Step {
            Visit(Id),
            Done(Id, bool, Vec<Id>),
        }
        let mut affected: HashMap<Id, bool> = HashMap::new();
        let mut stack: Vec<Step> = snapshots.iter().map(|(_, s)| Step::Visit(s.tree)).collect();
        while let Some(step) = stack.pop() {
            match step {
                Step::Visit(id) => {
                    if affected.contains_key(&id) {
                        continue;
                    }
                    affected.insert(id, false);
                    let Ok(tree) = fetch_tree(repo, &index, &id) else {
                        continue;
                    };
                    let mut direct = false;
                    let mut subtrees = Vec::new();
                    for node in &tree.nodes {
                        direct |= node.content.iter().any(|b| lost.contains_key(b));
                        if let Some(sub) = node.subtree {
                            if lost.contains_key(&sub) {
                                direct = true;
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

        // The paths, per snapshot, descending only into affected trees.
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
            while let Some((tree_id, dir)) = dirs.pop() {
                if affected.get(&tree_id) != Some(&true) {
                    continue;
                }
                let Ok(tree) = fetch_tree(repo, &index, &tree_id) else {
                    continue;
                };
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
                    } else if let Some(sub) = node.subtree {
                        dirs.push((sub, path));
                    }
                }
            }
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
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::backup::{self, BackupOptions, BackupProgress};
    use crate::index::IndexFile;
    use crate::pack::PackWriter;
    use crate::tree::NodeKind;

    /// A repository with one snapshot of `src/{a.txt, sub/b.txt}`.
    struct Fixture {
        repo_dir: tempfile::TempDir,
        src: tempfile::TempDir,
        repo: Repository,
        snapshot: Id,
    }

    fn fixture() -> Fixture {
        let repo_dir = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        std::fs::write(
            src.path().join("a.txt"),
            "the file a user cares about\n".repeat(50),
        )
        .unwrap();
        std::fs::create_dir(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/b.txt"), b"another file").unwrap();
        let repo = crate::testutil::local_repo(repo_dir.path());
        let result = backup::run(
            &repo,
            BackupOptions {
                paths: vec![src.path().to_path_buf()],
                host: "h".into(),
                ..Default::default()
            },
            &BackupProgress::default(),
        )
        .unwrap();
        Fixture {
            repo_dir,
            snapshot: result.snapshot_id.unwrap(),
            src,
            repo,
        }
    }

    impl Fixture {
        fn check(&self, read_data: ReadData) -> CheckReport {
            let opts = CheckOptions {
                read_data,
                threads: 0,
            };
            run(&self.repo, &opts, &CheckProgress::default()).unwrap()
        }

        /// The name of the backed-up directory inside the snapshot.
        fn src_name(&self) -> String {
            self.src
                .path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into()
        }

        /// Where the first data blob of `src/a.txt` is stored.
        fn blob_of_a(&self) -> crate::index::BlobLocation {
            let index = self.repo.load_index().unwrap();
            let snap = self.repo.load_snapshot(&self.snapshot).unwrap();
            let root = self.repo.load_tree(&index, &snap.tree).unwrap();
            let dir = root.find(self.src_name().as_bytes()).unwrap();
            let tree = self
                .repo
                .load_tree(&index, dir.subtree.as_ref().unwrap())
                .unwrap();
            let a = tree.find(b"a.txt").unwrap();
            assert_eq!(a.kind, NodeKind::File);
            index.get(&a.content[0]).unwrap()
        }

        fn pack_file(&self, pack: &Id) -> PathBuf {
            self.repo_dir
                .path()
                .join(FileKind::Pack.path(&pack.to_hex()))
        }

        fn a_path(&self) -> String {
            format!("{}:/{}/a.txt", self.snapshot.short(), self.src_name())
        }
    }

    fn damaged<'r>(report: &'r CheckReport, pack: &Id) -> &'r DamagedPack {
        report
            .damaged
            .iter()
            .find(|d| d.pack == pack.to_hex())
            .unwrap_or_else(|| panic!("pack {} not reported: {report:#?}", pack.short()))
    }

    #[test]
    fn a_healthy_repository_passes_with_and_without_reading_data() {
        let fx = fixture();
        let report = fx.check(ReadData::None);
        assert!(report.is_ok(), "{report:#?}");
        assert_eq!(report.snapshots, 1);
        // Root, src and sub.
        assert_eq!(report.trees, 3);
        assert_eq!(report.data_blobs, 2);
        assert!(report.packs >= 1);
        assert_eq!(report.packs_read, 0);
        assert_eq!(report.unreferenced_packs, 0);

        let progress = CheckProgress::default();
        let opts = CheckOptions {
            read_data: ReadData::All,
            threads: 2,
        };
        let report = run(&fx.repo, &opts, &progress).unwrap();
        assert!(report.is_ok(), "{report:#?}");
        assert_eq!(report.packs_read, report.packs);
        assert_eq!(
            progress.packs_done.load(Ordering::Relaxed),
            report.packs as u64
        );
        assert!(progress.bytes_done.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn a_flipped_byte_in_a_blob_is_traced_to_the_pack_snapshot_and_file() {
        let fx = fixture();
        let loc = fx.blob_of_a();
        let path = fx.pack_file(&loc.pack);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[loc.entry.offset as usize + 3] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();

        // The structure check does not read data blobs, by design: it stays cheap.
        assert!(fx.check(ReadData::None).is_ok());

        let report = fx.check(ReadData::All);
        assert!(!report.is_ok());
        let d = damaged(&report, &loc.pack);
        assert!(d.reason.contains("failed authentication"), "{d:#?}");
        assert_eq!(d.snapshots, vec![fx.snapshot.short()]);
        assert_eq!(d.files, vec![fx.a_path()]);
        let object = FileKind::Pack.path(&loc.pack.to_hex());
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.contains(&object) && e.contains(&loc.entry.id.short())),
            "{:#?}",
            report.errors
        );
    }

    #[test]
    fn a_damaged_tree_is_found_by_the_structure_check_and_names_the_directory() {
        let fx = fixture();
        let index = fx.repo.load_index().unwrap();
        let snap = fx.repo.load_snapshot(&fx.snapshot).unwrap();
        let root = fx.repo.load_tree(&index, &snap.tree).unwrap();
        let dir = root.find(fx.src_name().as_bytes()).unwrap();
        let loc = index.get(dir.subtree.as_ref().unwrap()).unwrap();
        let path = fx.pack_file(&loc.pack);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[loc.entry.offset as usize + 3] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();

        let report = fx.check(ReadData::None);
        let d = damaged(&report, &loc.pack);
        assert!(d.reason.contains("failed authentication"), "{d:#?}");
        assert_eq!(
            d.files,
            vec![format!("{}:/{}", fx.snapshot.short(), fx.src_name())]
        );
    }

    #[test]
    fn a_blob_no_index_names_is_reported_with_the_snapshot_and_path() {
        let fx = fixture();
        let blob = fx.blob_of_a().entry.id;
        let storage = fx.repo.storage();
        for obj in storage.list(FileKind::Index).unwrap() {
            let mut file = fx.repo.load_index_file(&obj.name).unwrap();
            for (_, entries) in &mut file.packs {
                entries.retain(|e| e.id != blob);
            }
            fx.repo.save_index_file(&file).unwrap();
            storage.delete(FileKind::Index, &obj.name).unwrap();
        }

        let report = fx.check(ReadData::None);
        let want = format!(
            "snapshot {}: data blob {} is not in any index",
            fx.a_path(),
            blob.short()
        );
        assert!(report.errors.contains(&want), "{:#?}", report.errors);
    }

    #[test]
    fn a_truncated_pack_is_reported_without_reading_data() {
        let fx = fixture();
        let loc = fx.blob_of_a();
        let path = fx.pack_file(&loc.pack);
        let bytes = std::fs::read(&path).unwrap();
        // Cut inside a.txt's blob: it and everything after it are gone.
        std::fs::write(&path, &bytes[..loc.entry.offset as usize + 5]).unwrap();

        for read_data in [ReadData::None, ReadData::All] {
            let report = fx.check(read_data);
            let d = damaged(&report, &loc.pack);
            assert!(d.reason.contains("truncated"), "{d:#?}");
            assert!(d.snapshots.contains(&fx.snapshot.short()), "{d:#?}");
        }
    }

    #[test]
    fn a_deleted_pack_is_reported_with_the_snapshots_it_breaks() {
        let fx = fixture();
        let loc = fx.blob_of_a();
        std::fs::remove_file(fx.pack_file(&loc.pack)).unwrap();

        let report = fx.check(ReadData::None);
        let d = damaged(&report, &loc.pack);
        assert!(d.reason.contains("missing"), "{d:#?}");
        assert_eq!(d.snapshots, vec![fx.snapshot.short()]);
        assert!(!d.files.is_empty());
    }

    #[test]
    fn a_garbage_index_file_is_named_and_the_rest_still_checked() {
        let fx = fixture();
        let name = Id::random().to_hex();
        fx.repo
            .storage()
            .put(FileKind::Index, &name, b"LPIX garbage".to_vec())
            .unwrap();

        let report = fx.check(ReadData::None);
        assert!(!report.is_ok());
        assert!(
            report.errors.iter().any(|e| e.contains(&name)),
            "{:#?}",
            report.errors
        );
        assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
        assert_eq!(report.snapshots, 1);
        assert_eq!(report.data_blobs, 2);
    }

    #[test]
    fn an_unindexed_pack_is_counted_not_reported() {
        let fx = fixture();
        let loc = fx.blob_of_a();
        let bytes = std::fs::read(fx.pack_file(&loc.pack)).unwrap();
        fx.repo
            .storage()
            .put(FileKind::Pack, &Id::random().to_hex(), bytes)
            .unwrap();

        let before = fx.check(ReadData::None).packs;
        let report = fx.check(ReadData::All);
        assert!(report.is_ok(), "{report:#?}");
        assert_eq!(report.unreferenced_packs, 1);
        assert_eq!(report.packs, before);
        assert_eq!(report.packs_read, report.packs);
    }

    #[test]
    fn a_full_subset_reads_what_read_data_reads() {
        let fx = fixture();
        let loc = fx.blob_of_a();
        let path = fx.pack_file(&loc.pack);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[loc.entry.offset as usize + 3] ^= 0x80;
        std::fs::write(&path, bytes).unwrap();

        let all = serde_json::to_value(fx.check(ReadData::All)).unwrap();
        let subset = serde_json::to_value(fx.check(ReadData::Subset(100.0))).unwrap();
        assert_eq!(all, subset);
        assert_eq!(all["damaged"].as_array().unwrap().len(), 1);

        assert_eq!(fx.check(ReadData::Subset(0.0)).packs_read, 0);
        assert_eq!(fx.check(ReadData::Subset(0.001)).packs_read, 1);
    }

    #[test]
    fn subsets_round_up_and_stay_in_range() {
        let mut ids: Vec<Id> = (0..30).map(|_| Id::random()).collect();
        ids.sort_unstable();
        assert_eq!(sample_packs(&ids, 10.0).len(), 3);
        assert_eq!(sample_packs(&ids, 11.0).len(), 4);
        assert_eq!(sample_packs(&ids, 250.0).len(), 30);
        assert_eq!(sample_packs(&ids, f64::NAN).len(), 0);
        assert_eq!(sample_packs(&[], 50.0).len(), 0);
        let picked = sample_packs(&ids, 50.0);
        assert!(picked.windows(2).all(|w| w[0] < w[1]), "in pack order");
    }

    /// Hostile pack contents must give errors, not panics or huge allocations.
    #[test]
    fn garbage_packs_are_reported_without_panicking() {
        let fx = fixture();
        let loc = fx.blob_of_a();
        let path = fx.pack_file(&loc.pack);
        let len = std::fs::read(&path).unwrap().len();
        let mut tail_claims_everything = vec![0xAB; len];
        tail_claims_everything[len - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut tail_claims_the_pack = vec![0xAB; len];
        tail_claims_the_pack[len - 4..].copy_from_slice(&((len - 4) as u32).to_le_bytes());
        for garbage in [
            tail_claims_everything,
            tail_claims_the_pack,
            vec![0; len],
            vec![1, 2, 3],
            Vec::new(),
        ] {
            std::fs::write(&path, &garbage).unwrap();
            let report = fx.check(ReadData::All);
            let d = damaged(&report, &loc.pack);
            assert!(d.snapshots.contains(&fx.snapshot.short()), "{d:#?}");
        }
    }

    /// Prune's rescue and concurrent backups leave a second copy of a blob; damage to one
    /// copy must not be reported as a lost file.
    #[test]
    fn a_damaged_blob_with_an_intact_copy_elsewhere_loses_no_file() {
        let fx = fixture();
        let loc = fx.blob_of_a();
        let repo = &fx.repo;
        let bytes = std::fs::read(fx.pack_file(&loc.pack)).unwrap();
        let e = loc.entry;
        let payload = pack::decrypt_payload(
            &pack::pack_cipher(repo.master(), &loc.pack),
            &e,
            bytes[e.offset as usize..(e.offset + e.length) as usize].to_vec(),
            "p",
        )
        .unwrap();
        let mut w = PackWriter::new(repo.master(), 1024);
        w.add(e.kind, e.id, &payload, e.raw_len);
        let (copy, data, entries) = w.finish();
        repo.storage()
            .put(FileKind::Pack, &copy.to_hex(), data)
            .unwrap();
        repo.save_index_file(&IndexFile {
            packs: vec![(copy, entries)],
        })
        .unwrap();
        let mut bytes = bytes;
        bytes[e.offset as usize + 3] ^= 0x01;
        std::fs::write(fx.pack_file(&loc.pack), bytes).unwrap();

        let report = fx.check(ReadData::All);
        let d = damaged(&report, &loc.pack);
        assert!(d.files.is_empty(), "{d:#?}");
        assert!(d.snapshots.is_empty(), "{d:#?}");
        assert_eq!(report.damaged.len(), 1);
    }
}
