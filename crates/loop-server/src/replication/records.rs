//! What the server recorded of a vault's objects, which syncs and verifies hold the places
//! against.

use std::collections::{HashMap, HashSet};

use loop_repo::FileKind;
use sqlx::AnyPool;

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

/// What the server recorded of an object as it was stored: its size and BLAKE3 hash (hex;
/// none for objects stored before hashes were kept). Of two copies that differ, the one that
/// matches it is right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsStored {
    pub size: u64,
    pub blake3: Option<String>,
}

pub type StoredCopies = HashMap<(FileKind, String), AsStored>;

/// Keeps, of the objects a comparison found missing at a replica (`kind/name` paths), those
/// it still owes. Listing both places takes time, and the primary changes meanwhile: an
/// object that arrived since the replica's last replication began (`young`, read after the
/// listings) is lagging, and one recorded before the comparison (`before`) but no longer
/// (`after`: pruned meanwhile) is gone. Neither is damage.
pub fn still_owed(
    missing: &mut Vec<String>,
    young: &HashSet<(FileKind, String)>,
    before: &StoredCopies,
    after: &StoredCopies,
) {
    let paths = |keys: &mut dyn Iterator<Item = &(FileKind, String)>| -> HashSet<String> {
        keys.map(|(k, n)| k.path(n)).collect()
    };
    let young = paths(&mut young.iter());
    let removed = paths(&mut before.keys().filter(|k| !after.contains_key(*k)));
    missing.retain(|p| !young.contains(p) && !removed.contains(p));
}

/// The vault's objects as the server recorded them when they were stored.
pub async fn as_stored(pool: &AnyPool, vault_id: &str) -> crate::db::DbResult<StoredCopies> {
    Ok(crate::db::replicas::stored_copies(pool, vault_id)
        .await?
        .into_iter()
        .filter_map(|(kind, name, size, blake3)| {
            let size = u64::try_from(size).ok()?;
            Some((
                (FileKind::from_name(&kind)?, name),
                AsStored { size, blake3 },
            ))
        })
        .collect())
}
