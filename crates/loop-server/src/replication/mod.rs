//! Replication of a vault's stored objects from its primary destination to a replica, and
//! their comparison. Objects are copied as stored (encrypted), so no key is needed.
//!
//! A round lists the primary (snapshots, then indexes, then packs: any object a listed
//! snapshot or index names was written before it, so it is in the later listing), lists the
//! replica, copies what the replica lacks or holds at another size (configuration and key
//! slots, then packs, then indexes and plans, then snapshots, each kind finished before the
//! next begins) and removes what the primary no longer holds (the other way round). A
//! replica stopped at any moment therefore names nothing it lacks. An object that vanished
//! from the primary between listing and copying (a prune ran) makes another round, and so
//! does, for a vault of this server, an object its records gained while the round ran (it was
//! stored after the listing); the rounds stop when one has neither, or after [`MAX_ROUNDS`]
//! (a vault written faster than it is copied keeps its newest objects for the next
//! replication). Lock markers are not copied: they belong to processes writing the primary.

mod pace;
mod place;
mod records;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use loop_repo::FileKind;
use object_store::ObjectStoreExt as _;
use sqlx::AnyPool;

use pace::Pace;
pub use place::{At, Place, Removal};
pub use records::{AsStored, StoredCopies, as_stored, recorded, still_owed};

use crate::destinations::Destination;

/// The kinds replicated, in the order they are copied (removed the other way round).
pub const COPY_ORDER: [FileKind; 6] = [
    FileKind::Config,
    FileKind::Key,
    FileKind::Pack,
    FileKind::Index,
    FileKind::Plan,
    FileKind::Snapshot,
];

/// The order the primary is listed in: what a later kind's objects name is listed after it.
pub(crate) const LIST_ORDER: [FileKind; 6] = [
    FileKind::Snapshot,
    FileKind::Plan,
    FileKind::Index,
    FileKind::Pack,
    FileKind::Key,
    FileKind::Config,
];

/// Rounds before a replication gives up on a primary that keeps changing under it.
const MAX_ROUNDS: u32 = 5;

/// How often a sync waiting on its copies asks whether to go on.
const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One kind's objects at one place: name → size.
pub type Listing = HashMap<String, u64>;

/// The replicated kinds of a vault at a place, listed in [`LIST_ORDER`].
pub async fn list(place: &Place) -> Result<HashMap<FileKind, Listing>, SyncError> {
    let mut out = HashMap::new();
    for kind in LIST_ORDER {
        let objects = place.list(kind).await.map_err(|message| SyncError::List {
            place: place.name(),
            message,
        })?;
        out.insert(kind, objects);
    }
    Ok(out)
}

/// The source's listing, then the target's.
async fn list_both(
    source: &Place,
    target: &Place,
) -> Result<(HashMap<FileKind, Listing>, HashMap<FileKind, Listing>), SyncError> {
    Ok((list(source).await?, list(target).await?))
}

/// What a replication did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SyncReport {
    pub objects_copied: u64,
    pub bytes_copied: u64,
    pub objects_removed: u64,
    /// Objects the source no longer holds that the target kept: its retention lock holds
    /// them, or another writer wrote them.
    pub objects_kept: u64,
    pub rounds: u32,
    /// Objects the source held, then did not by the time they were copied.
    pub vanished: u64,
    /// Objects the vault's records hold that the primary lacks (it lost them); the replica
    /// keeps its copies.
    pub primary_missing: u64,
    /// Objects the primary holds at another size than they were stored at, whose copy at the
    /// target still has that size: not copied over it (the primary's is damaged).
    pub primary_damaged: u64,
    /// Objects the target holds at another size than the source, that it does not replace
    /// (a vault behind the vault protocol never replaces a stored object): left as they are
    /// there, and the rest copied. The first [`NAMED_MAX`] of them by name in `differing`.
    pub target_differs: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differing: Vec<String>,
}

/// How many objects a report names where it counts more.
pub const NAMED_MAX: usize = 20;

impl SyncReport {
    /// This report, then `later`'s on the same target: what both moved, and what the
    /// target and source were found to be in at the end.
    pub fn then(&self, later: &SyncReport) -> SyncReport {
        SyncReport {
            objects_copied: self.objects_copied + later.objects_copied,
            bytes_copied: self.bytes_copied + later.bytes_copied,
            objects_removed: self.objects_removed + later.objects_removed,
            rounds: self.rounds + later.rounds,
            vanished: self.vanished + later.vanished,
            ..later.clone()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("listing {place} failed: {message}")]
    List { place: String, message: String },
    #[error("copying {object} failed: {message}")]
    Copy { object: String, message: String },
    #[error("removing {object} failed: {message}")]
    Remove { object: String, message: String },
    #[error("the source kept changing: {MAX_ROUNDS} rounds did not settle")]
    Unsettled,
    #[error("{0}")]
    Stopped(String),
    #[error("reading the vault's records: {0}")]
    Db(#[from] crate::db::DbError),
}

/// How a sync runs.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Objects moved at once.
    pub transfers: usize,
    /// Remove from the target what the source no longer holds.
    pub remove_vanished: bool,
    /// At most this many bytes a second are copied (on average).
    pub bytes_per_sec: Option<u64>,
    /// The vault of this server whose records guard the target: `source` is its primary.
    pub guard: Option<String>,
}

/// Brings `target` up to `source` for one vault. `check` is asked between objects whether
/// to go on (a job's cancel or lost lease); `progress` hears the report as it grows.
///
/// With `opts.guard`, the server's records of that vault guard the target against a
/// source that lost data: an object they hold throughout a round that the source's listing
/// lacks is counted in [`SyncReport::primary_missing`], and the target keeps every copy
/// they still record.
pub async fn sync(
    pool: &AnyPool,
    source: &Place,
    target: &Place,
    opts: &SyncOptions,
    check: &(dyn Fn() -> Result<(), String> + Sync),
    progress: &mut (dyn FnMut(&SyncReport) + Send),
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let pace = opts.bytes_per_sec.map(|rate| Arc::new(Pace::new(rate)));
    loop {
        report.rounds += 1;
        let guarded = |since| async move {
            Ok::<_, SyncError>(match &opts.guard {
                Some(v) => recorded(pool, v, since).await?,
                None => HashSet::new(),
            })
        };
        let before = guarded(None).await?;
        let stored = match &opts.guard {
            Some(v) => as_stored(pool, v).await?,
            None => StoredCopies::new(),
        };
        let (source_list, held) = list_both(source, target).await?;
        let after = guarded(None).await?;
        let listed = |(kind, name): &(FileKind, String)| {
            source_list.get(kind).is_some_and(|l| l.contains_key(name))
        };
        report.primary_missing = before
            .intersection(&after)
            .filter(|o| o.0 != FileKind::Lock && !listed(o))
            .count() as u64;
        let mut vanished = 0;
        report.primary_damaged = 0;
        report.target_differs = 0;
        report.differing.clear();
        for kind in COPY_ORDER {
            let empty = Listing::new();
            let have = held.get(&kind).unwrap_or(&empty);
            // A source copy of another size than the object was stored at, where the target
            // holds it at that size, is damage: the target's copy stays.
            let damaged = |name: &String, size: &u64| {
                stored
                    .get(&(kind, name.clone()))
                    .is_some_and(|s| s.size != *size && have.get(name) == Some(&s.size))
            };
            // One the target holds at another size and does not replace stays as it is there.
            let differs = |name: &String| !target.replaces() && have.contains_key(name);
            let mut wanted: Vec<(String, u64)> = source_list[&kind]
                .iter()
                .filter(|(name, size)| have.get(*name) != Some(size))
                .filter(|(name, size)| {
                    let d = damaged(name, size);
                    report.primary_damaged += u64::from(d);
                    !d
                })
                .filter(|(name, _)| {
                    let d = differs(name);
                    if d {
                        report.target_differs += 1;
                        if report.differing.len() < NAMED_MAX {
                            report.differing.push(kind.path(name));
                        }
                    }
                    !d
                })
                .map(|(n, s)| (n.clone(), *s))
                .collect();
            wanted.sort();
            // Each kind is finished before the next begins.
            let mut running = tokio::task::JoinSet::new();
            let mut wanted = wanted.into_iter();
            loop {
                while running.len() < opts.transfers.max(1) {
                    let Some((name, size)) = wanted.next() else {
                        break;
                    };
                    check().map_err(SyncError::Stopped)?;
                    let (s, t, p) = (source.clone(), target.clone(), pace.clone());
                    running
                        .spawn(async move { copy(&s, &t, p.as_deref(), kind, &name, size).await });
                }
                // A copy may wait long for its turn: a cancel is heard meanwhile (returning
                // drops `running`, which aborts the copies under way).
                let done = loop {
                    match tokio::time::timeout(CHECK_EVERY, running.join_next()).await {
                        Ok(done) => break done,
                        Err(_) => check().map_err(SyncError::Stopped)?,
                    }
                };
                let Some(done) = done else {
                    break;
                };
                let copied = done.map_err(|e| SyncError::Stopped(e.to_string()))?;
                match copied? {
                    Some(bytes) => {
                        report.objects_copied += 1;
                        report.bytes_copied += bytes;
                        progress(&report);
                    }
                    None => vanished += 1,
                }
            }
        }
        if opts.remove_vanished {
            for kind in COPY_ORDER.into_iter().rev() {
                let Some(have) = held.get(&kind) else {
                    continue;
                };
                // Gone from the source and from the records: removed, not lost.
                let mut extra: Vec<&String> = have
                    .keys()
                    .filter(|n| !source_list[&kind].contains_key(*n))
                    .filter(|n| !after.contains(&(kind, n.to_string())))
                    .collect();
                extra.sort();
                for name in extra {
                    check().map_err(SyncError::Stopped)?;
                    let removed =
                        target
                            .remove(kind, name)
                            .await
                            .map_err(|message| SyncError::Remove {
                                object: kind.path(name),
                                message,
                            })?;
                    match removed {
                        Removal::Removed => report.objects_removed += 1,
                        Removal::Kept => report.objects_kept += 1,
                    }
                    progress(&report);
                }
            }
        }
        report.vanished += vanished;
        // What the vault received while the round ran was not in its listing: another round
        // copies it, so a replication asked for while one runs (which takes it) is answered.
        let arrived = match &opts.guard {
            Some(_) if vanished == 0 => guarded(None)
                .await?
                .difference(&before)
                .filter(|o| COPY_ORDER.contains(&o.0) && !listed(o))
                .count(),
            _ => 0,
        };
        if vanished == 0 && arrived == 0 {
            return Ok(report);
        }
        if report.rounds >= MAX_ROUNDS {
            // A vault written faster than it is copied: what arrived last waits for the next
            // replication (and counts in the replica's lag until then).
            if vanished == 0 {
                return Ok(report);
            }
            return Err(SyncError::Unsettled);
        }
        // Kept objects are counted again by the next round.
        report.objects_kept = 0;
    }
}

/// Copies one object; `None` when the source no longer holds it (or holds another size).
async fn copy(
    source: &Place,
    target: &Place,
    pace: Option<&Pace>,
    kind: FileKind,
    name: &str,
    size: u64,
) -> Result<Option<u64>, SyncError> {
    let fail = |message: String| SyncError::Copy {
        object: kind.path(name),
        message,
    };
    // A listing's sizes are the source's word: one larger than a read may be is refused
    // before it waits its turn, or a hostile remote could hold the job for centuries.
    if let Some(max) = source.max_read().filter(|max| size > *max) {
        return Err(fail(format!(
            "{} lists it at {size} bytes, more than the {max} an object may hold",
            source.name()
        )));
    }
    if let Some(p) = pace {
        p.take(size).await;
    }
    let bytes = match source.get(kind, name).await {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(e) => return Err(fail(format!("reading {}: {e}", source.name()))),
    };
    if bytes.len() as u64 != size {
        return Ok(None);
    }
    target
        .put(kind, name, bytes)
        .await
        .map_err(|e| fail(format!("writing {}: {e}", target.name())))?;
    Ok(Some(size))
}

/// With `give`, gives `target` the key slots `source` holds and, with `remove`, takes away
/// those it no longer holds: the tenant key rotation keeps every replica openable with the
/// key it makes current, so a replica promoted later opens. Answers (copied, removed).
pub async fn mirror_key_slots(
    source: &Place,
    target: &Place,
    give: bool,
    remove: bool,
) -> Result<(u64, u64), SyncError> {
    let listing = |place: &Place| {
        let place = place.clone();
        async move {
            place
                .list(FileKind::Key)
                .await
                .map_err(|message| SyncError::List {
                    place: place.name(),
                    message,
                })
        }
    };
    let (slots, held) = (listing(source).await?, listing(target).await?);
    let mut copied = 0;
    for (name, size) in slots.iter().filter(|_| give) {
        if held.get(name) != Some(size) {
            match copy(source, target, None, FileKind::Key, name, *size).await? {
                Some(_) => copied += 1,
                None => return Err(SyncError::Unsettled),
            }
        }
    }
    let mut removed = 0;
    if remove {
        for name in held.keys().filter(|n| !slots.contains_key(*n)) {
            target
                .remove(FileKind::Key, name)
                .await
                .map_err(|message| SyncError::Remove {
                    object: FileKind::Key.path(name),
                    message,
                })?;
            removed += 1;
        }
    }
    Ok((copied, removed))
}

/// How a replica differs from its primary, object by object.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Differences {
    /// Objects the primary holds and the replica lacks (`kind/name`).
    pub missing: Vec<String>,
    /// Objects both hold at different sizes.
    pub resized: Vec<String>,
    /// Objects both hold whose bytes differ (only when read).
    pub altered: Vec<String>,
    /// Objects whose copy at the primary is not as it was stored (another size, or with
    /// `read_data` other bytes) while the replica's is, or both are wrong: the replica's copy
    /// is not replaced from it.
    pub primary_damaged: Vec<String>,
    /// Objects the replica holds and the primary no longer does.
    pub extra: Vec<String>,
    pub objects_compared: u64,
    pub bytes_read: u64,
}

/// Compares the replica with the primary: names and sizes, and with `read_data` every
/// object's bytes (BLAKE3 of both copies). `lagging` says whether a missing object may be
/// missing only because it arrived after the last replication began. Where the copies
/// differ, `stored` (what the server recorded as each object was stored) says which one is
/// wrong.
pub async fn compare(
    primary: &Place,
    replica: &Place,
    read_data: bool,
    stored: &StoredCopies,
    lagging: &(dyn Fn(FileKind, &str) -> bool + Sync),
    check: &(dyn Fn() -> Result<(), String> + Sync),
) -> Result<Differences, SyncError> {
    let (source, held) = list_both(primary, replica).await?;
    let mut d = Differences::default();
    let mut both = Vec::new();
    for kind in COPY_ORDER {
        for (name, size) in &source[&kind] {
            match held[&kind].get(name) {
                None if lagging(kind, name) => {}
                None => d.missing.push(kind.path(name)),
                Some(s) if s != size => {
                    let replica_as_stored = stored
                        .get(&(kind, name.clone()))
                        .is_some_and(|r| r.size == *s);
                    if replica_as_stored {
                        d.primary_damaged.push(kind.path(name));
                    } else {
                        d.resized.push(kind.path(name));
                    }
                }
                Some(_) => both.push((kind, name.clone())),
            }
        }
        for name in held[&kind].keys() {
            if !source[&kind].contains_key(name) {
                d.extra.push(kind.path(name));
            }
        }
    }
    d.objects_compared = both.len() as u64;
    if read_data {
        let mut running = tokio::task::JoinSet::new();
        let mut both = both.into_iter();
        loop {
            while running.len() < 4 {
                let Some((kind, name)) = both.next() else {
                    break;
                };
                check().map_err(SyncError::Stopped)?;
                let (p, r) = (primary.clone(), replica.clone());
                let recorded = stored
                    .get(&(kind, name.clone()))
                    .and_then(|s| s.blake3.clone());
                running.spawn(async move {
                    let read = |place: Place| {
                        let name = name.clone();
                        async move {
                            let object = kind.path(&name);
                            match place.get(kind, &name).await {
                                Ok(Some(b)) => Ok(b),
                                Ok(None) => Err(SyncError::Copy {
                                    object,
                                    message: format!("{} no longer holds it", place.name()),
                                }),
                                Err(message) => Err(SyncError::Copy { object, message }),
                            }
                        }
                    };
                    let a = read(p).await?;
                    let b = read(r).await?;
                    let (at_primary, at_replica) = (blake3::hash(&a), blake3::hash(&b));
                    let verdict = match recorded {
                        Some(h) if at_primary.to_hex().as_str() != h => Verdict::PrimaryWrong,
                        _ if at_primary != at_replica => Verdict::ReplicaWrong,
                        _ => Verdict::Same,
                    };
                    Ok::<_, SyncError>((kind.path(&name), verdict, (a.len() + b.len()) as u64))
                });
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let (object, verdict, read) = done.map_err(|e| SyncError::Stopped(e.to_string()))??;
            d.bytes_read += read;
            match verdict {
                Verdict::Same => {}
                Verdict::ReplicaWrong => d.altered.push(object),
                Verdict::PrimaryWrong => d.primary_damaged.push(object),
            }
        }
    }
    for list in [
        &mut d.missing,
        &mut d.resized,
        &mut d.altered,
        &mut d.primary_damaged,
        &mut d.extra,
    ] {
        list.sort();
    }
    Ok(d)
}

/// Which copy of an object read at both places is wrong.
enum Verdict {
    Same,
    /// The replica's differs from the primary's, which is as stored (or nothing says).
    ReplicaWrong,
    /// The primary's is not as it was stored.
    PrimaryWrong,
}

impl Differences {
    /// Whether the replica is damaged: it lacks, or holds wrongly, an object it should have.
    pub fn damaged(&self) -> bool {
        !(self.missing.is_empty() && self.resized.is_empty() && self.altered.is_empty())
    }
}

/// Removes the replica's copies of `objects` (`kind/name`), so the next replication copies
/// them again from the primary.
pub async fn drop_copies(
    replica: &Destination,
    vault_id: &str,
    objects: &[String],
) -> object_store::Result<()> {
    for object in objects {
        match replica.store.delete(&replica.path(vault_id, object)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The healthy replicas' destinations of a vault (reads fall back to them), as configured
/// on this node.
pub async fn fallbacks(
    state: &crate::state::AppState,
    vault_id: &str,
) -> crate::db::DbResult<Vec<Arc<Destination>>> {
    Ok(crate::db::replicas::of_vault(&state.db.pool, vault_id)
        .await?
        .into_iter()
        .filter(|r| r.state == loop_api::ReplicaState::Active)
        .filter_map(|r| state.destinations.get(&r.destination).cloned())
        .collect())
}
