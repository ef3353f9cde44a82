//! A vault's retention lock, as the claims on its objects read it: which kinds it holds, and
//! until when it holds an object (from the server's record of its arrival).

use sqlx::AnyPool;

use super::{DbResult, Tx, col};

const DAY_MS: i64 = 86_400_000;

/// How a delete meets the vault's retention lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockRule {
    /// The lock holds every kind it covers (every token, admin and job).
    Holds,
    /// The tenant key rotation removes key slots of the old key, after the vault was opened
    /// with a slot of the new one: access is replaced, nothing is lost, so the lock does not
    /// hold key slots for it (docs/SECURITY.md).
    SparesReplacedKeySlots,
}

/// The kinds a retention lock holds: everything but lock markers and prune plans, which
/// carry no backup data and must come and go for backups and prunes to work.
pub fn locked_kind(kind: &str) -> bool {
    !matches!(kind, "locks" | "plans")
}

/// The vault's retention lock in days, read inside `tx` after the vault's row is locked, so
/// a lengthening committed before is seen. `None`: no lock.
async fn lock_days(tx: &mut Tx, vault_id: &str) -> DbResult<Option<i64>> {
    let r = sqlx::query("SELECT retention_lock_days FROM vaults WHERE id = $1")
        .bind(vault_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match r {
        Some(r) => col::<Option<i64>>(&r, "retention_lock_days")?.filter(|d| *d > 0),
        None => None,
    })
}

/// Until when the vault's retention lock holds a stored object of `kind` that the server
/// recorded at `created_at`; `None` when it may be replaced or removed now.
pub(super) async fn held_until(
    tx: &mut Tx,
    vault_id: &str,
    kind: &str,
    created_at: i64,
    now: i64,
) -> DbResult<Option<i64>> {
    if !locked_kind(kind) {
        return Ok(None);
    }
    Ok(lock_days(tx, vault_id)
        .await?
        .map(|days| created_at.saturating_add(days.saturating_mul(DAY_MS)))
        .filter(|until| *until > now))
}

/// Until when the vault's retention lock holds objects whose arrival the server did not
/// record (stored before rows were kept): their age is unknown, so a lock holds them for its
/// whole length from now. `None` without a lock or for a kind it does not hold.
pub async fn unrecorded_held_until(
    pool: &AnyPool,
    vault_id: &str,
    kind: &str,
    now: i64,
) -> DbResult<Option<i64>> {
    let mut tx = pool.begin().await?;
    let until = held_until(&mut tx, vault_id, kind, now, now).await?;
    tx.commit().await?;
    Ok(until)
}

/// When the last object a vault's retention lock holds is released (ms); `None` when the
/// lock holds nothing now.
pub async fn vault_held_until(tx: &mut Tx, vault_id: &str, now: i64) -> DbResult<Option<i64>> {
    let r = sqlx::query(
        "SELECT v.retention_lock_days AS days, MAX(o.created_at) AS newest
         FROM vaults v JOIN vault_objects o ON o.vault_id = v.id
         WHERE v.id = $1 AND o.kind NOT IN ('locks', 'plans')
         GROUP BY v.retention_lock_days",
    )
    .bind(vault_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = r else { return Ok(None) };
    let days: Option<i64> = col(&r, "days")?;
    let newest: Option<i64> = col(&r, "newest")?;
    Ok(match (days.filter(|d| *d > 0), newest) {
        (Some(d), Some(n)) => Some(n.saturating_add(d.saturating_mul(DAY_MS))).filter(|u| *u > now),
        _ => None,
    })
}

/// How many objects the vault's retention lock holds now that the server recorded at or
/// after `since`: what a replica whose last complete replication began then may lack.
pub async fn held_since(pool: &AnyPool, vault_id: &str, since: i64, now: i64) -> DbResult<i64> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n FROM vaults v JOIN vault_objects o ON o.vault_id = v.id
         WHERE v.id = $1 AND v.retention_lock_days > 0 AND o.kind NOT IN ('locks', 'plans')
           AND o.created_at >= $2 AND o.created_at + v.retention_lock_days * $3 > $4",
    )
    .bind(vault_id)
    .bind(since)
    .bind(DAY_MS)
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(col(&r, "n")?)
}
