//! Replication of a vault's stored objects from its primary destination to a replica, and
//! their comparison. Objects are copied as stored (encrypted), so no key is needed.
//!
//! A round lists the primary (snapshots, then indexes, then packs: any object a listed
//! snapshot or index names was written before it, so it is in the later listing), lists the
//! replica, copies what the replica lacks or holds at another size (configuration and key
//! slots, then packs, then indexes and plans, then snapshots, each kind finished before the
//! next begins) and removes what the primary no longer holds (the other way round). A
//! replica stopped at any moment therefore names nothing it lacks. An object that vanished
//! from the primary between listing and copying (a prune ran) makes another round; the rounds
//! stop when one copies nothing that vanished. Lock markers are not copied: they belong to
//! processes writing the primary.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use loop_repo::FileKind;
use object_store::{ObjectStoreExt as _, PutPayload};
use sqlx::AnyPool;

use crate::destinations::{Destination, StoredObject};

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
const LIST_ORDER: [FileKind; 6] = [
    FileKind::Snapshot,
    FileKind::Plan,
    FileKind::Index,
    FileKind::Pack,
    FileKind::Key,
    FileKind::Config,
];

/// Rounds before a replication gives up on a primary that keeps changing under it.
const MAX_ROUNDS: u32 = 5;

/// One kind's objects at one place: name → size.
pub type Listing = HashMap<String, u64>;

/// The replicated kinds of a vault at a destination, listed in [`LIST_ORDER`].
pub async fn list(
    dest: &Destination,
    vault_id: &str,
) -> object_store::Result<HashMap<FileKind, Listing>> {
    let mut out = HashMap::new();
    for kind in LIST_ORDER {
        let objects = dest.list_kind(vault_id, kind).await?;
        out.insert(kind, sizes(objects));
    }
    Ok(out)
}

/// The primary's listing, then the replica's.
async fn list_both(
    primary: &Destination,
    replica: &Destination,
    vault_id: &str,
) -> Result<(HashMap<FileKind, Listing>, HashMap<FileKind, Listing>), SyncError> {
    let failed = |place| move |source| SyncError::List { place, source };
    let source = list(primary, vault_id).await.map_err(failed("primary"))?;
    let held = list(replica, vault_id).await.map_err(failed("replica"))?;
    Ok((source, held))
}

fn sizes(objects: Vec<StoredObject>) -> Listing {
    objects.into_iter().map(|o| (o.name, o.size)).collect()
}

/// What a replication did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SyncReport {
    pub objects_copied: u64,
    pub bytes_copied: u64,
    pub objects_removed: u64,
    pub rounds: u32,
    /// Objects the primary held, then did not by the time they were copied.
    pub vanished: u64,
    /// Objects the vault's records hold that the primary lacks (it lost them); the replica
    /// keeps its copies.
    pub primary_missing: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("listing the {place} failed: {source}")]
    List {
        place: &'static str,
        source: object_store::Error,
    },
    #[error("copying {object} failed: {message}")]
    Copy { object: String, message: String },
    #[error("removing {object} from the replica failed: {source}")]
    Remove {
        object: String,
        source: object_store::Error,
    },
    #[error("the primary kept changing: {MAX_ROUNDS} rounds did not settle")]
    Unsettled,
    #[error("{0}")]
    Stopped(String),
    #[error("reading the vault's records: {0}")]
    Db(#[from] crate::db::DbError),
}

/// The objects the server records as stored in the vault: all, or those that arrived at or
/// after `since`.
pub async fn recorded(
    pool: &AnyPool,
    vault_id: &str,
    since: Option<i64>,
) -> crate::db::DbResult<HashSet<(FileKind, String)>> {
    Ok(crate::db::replicas::recorded(pool, vault_id, since)
        .await?
        .into_iter()
        .filter_map(|(kind, name)| Some((FileKind::from_name(&kind)?, name)))
        .collect())
}

/// Brings `replica` up to `primary` for one vault. `transfers` objects move at once.
/// `check` is asked between objects whether to go on (a job's cancel or lost lease);
/// `progress` hears the report as it grows.
///
/// The server's records of the vault's objects guard the replica against a primary that lost
/// data: an object they hold throughout a round that the primary's listing lacks is counted
/// in [`SyncReport::primary_missing`], and the replica keeps every copy they still record.
pub async fn sync(
    pool: &AnyPool,
    primary: &Arc<Destination>,
    replica: &Arc<Destination>,
    vault_id: &str,
    transfers: usize,
    check: &(dyn Fn() -> Result<(), String> + Sync),
    progress: &mut (dyn FnMut(&SyncReport) + Send),
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    loop {
        report.rounds += 1;
        let before = recorded(pool, vault_id, None).await?;
        let (source, held) = list_both(primary, replica, vault_id).await?;
        let after = recorded(pool, vault_id, None).await?;
        let listed = |(kind, name): &(FileKind, String)| {
            source.get(kind).is_some_and(|l| l.contains_key(name))
        };
        report.primary_missing = before
            .intersection(&after)
            .filter(|o| o.0 != FileKind::Lock && !listed(o))
            .count() as u64;
        let mut vanished = 0;
        for kind in COPY_ORDER {
            let empty = Listing::new();
            let have = held.get(&kind).unwrap_or(&empty);
            let mut wanted: Vec<(String, u64)> = source[&kind]
                .iter()
                .filter(|(name, size)| have.get(*name) != Some(size))
                .map(|(n, s)| (n.clone(), *s))
                .collect();
            wanted.sort();
            // Each kind is finished before the next begins.
            let mut running = tokio::task::JoinSet::new();
            let mut wanted = wanted.into_iter();
            loop {
                while running.len() < transfers.max(1) {
                    let Some((name, size)) = wanted.next() else {
                        break;
                    };
                    check().map_err(SyncError::Stopped)?;
                    let (p, r, v) = (primary.clone(), replica.clone(), vault_id.to_string());
                    running.spawn(async move { copy(&p, &r, &v, kind, &name, size).await });
                }
                let Some(done) = running.join_next().await else {
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
        for kind in COPY_ORDER.into_iter().rev() {
            let Some(have) = held.get(&kind) else {
                continue;
            };
            // Gone from the primary and from the records: removed, not lost.
            let mut extra: Vec<&String> = have
                .keys()
                .filter(|n| !source[&kind].contains_key(*n))
                .filter(|n| !after.contains(&(kind, n.to_string())))
                .collect();
            extra.sort();
            for name in extra {
                check().map_err(SyncError::Stopped)?;
                let path = replica.path(vault_id, &kind.path(name));
                match replica.store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(source) => {
                        return Err(SyncError::Remove {
                            object: kind.path(name),
                            source,
                        });
                    }
                }
                report.objects_removed += 1;
                progress(&report);
            }
        }
        report.vanished += vanished;
        if vanished == 0 {
            return Ok(report);
        }
        if report.rounds >= MAX_ROUNDS {
            return Err(SyncError::Unsettled);
        }
    }
}

/// Copies one object; `None` when the primary no longer holds it (or holds another size).
async fn copy(
    primary: &Destination,
    replica: &Destination,
    vault_id: &str,
    kind: FileKind,
    name: &str,
    size: u64,
) -> Result<Option<u64>, SyncError> {
    let object = kind.path(name);
    let fail = |message: String| SyncError::Copy {
        object: object.clone(),
        message,
    };
    let bytes = match read(primary, vault_id, kind, name).await {
        Ok(b) => b,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(fail(format!("reading the primary: {e}"))),
    };
    if bytes.len() as u64 != size {
        return Ok(None);
    }
    replica
        .store
        .put(
            &replica.path(vault_id, &object),
            PutPayload::from_bytes(bytes),
        )
        .await
        .map_err(|e| fail(format!("writing the replica: {e}")))?;
    Ok(Some(size))
}

/// One whole object of a vault at `dest`.
pub async fn read(
    dest: &Destination,
    vault_id: &str,
    kind: FileKind,
    name: &str,
) -> object_store::Result<bytes::Bytes> {
    dest.store
        .get(&dest.path(vault_id, &kind.path(name)))
        .await?
        .bytes()
        .await
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
    /// Objects the replica holds and the primary no longer does.
    pub extra: Vec<String>,
    pub objects_compared: u64,
    pub bytes_read: u64,
}

/// Compares the replica with the primary: names and sizes, and with `read_data` every
/// object's bytes (BLAKE3 of both copies). `lagging` says whether a missing object may be
/// missing only because it arrived after the last replication began.
pub async fn compare(
    primary: &Arc<Destination>,
    replica: &Arc<Destination>,
    vault_id: &str,
    read_data: bool,
    lagging: &(dyn Fn(FileKind, &str) -> bool + Sync),
    check: &(dyn Fn() -> Result<(), String> + Sync),
) -> Result<Differences, SyncError> {
    let (source, held) = list_both(primary, replica, vault_id).await?;
    let mut d = Differences::default();
    let mut both = Vec::new();
    for kind in COPY_ORDER {
        for (name, size) in &source[&kind] {
            match held[&kind].get(name) {
                None if lagging(kind, name) => {}
                None => d.missing.push(kind.path(name)),
                Some(s) if s != size => d.resized.push(kind.path(name)),
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
                let (p, r, v) = (primary.clone(), replica.clone(), vault_id.to_string());
                running.spawn(async move {
                    let fail = |e: object_store::Error| SyncError::Copy {
                        object: kind.path(&name),
                        message: e.to_string(),
                    };
                    let a = read(&p, &v, kind, &name).await.map_err(fail)?;
                    let b = read(&r, &v, kind, &name).await.map_err(fail)?;
                    let same = blake3::hash(&a) == blake3::hash(&b);
                    Ok::<_, SyncError>((kind.path(&name), same, (a.len() + b.len()) as u64))
                });
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let (object, same, read) = done.map_err(|e| SyncError::Stopped(e.to_string()))??;
            d.bytes_read += read;
            if !same {
                d.altered.push(object);
            }
        }
    }
    for list in [&mut d.missing, &mut d.resized, &mut d.altered, &mut d.extra] {
        list.sort();
    }
    Ok(d)
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
