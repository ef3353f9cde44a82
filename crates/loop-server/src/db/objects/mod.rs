//! The objects of each vault, as the server knows them: what makes every object name
//! create-once and every vault's usage exact, for any number of server nodes sharing the
//! database (`vault_objects` in the migrations).
//!
//! A write or a delete first *claims* the object's row, then changes storage, then completes
//! (or aborts) the claim. A claim carries a random fencing ID that every later statement
//! checks, and a lease: a claim whose request died is taken over once its lease expires,
//! and the taker first settles what storage really holds. Every transaction here starts by
//! updating the vault's row, which serializes one vault's claims (the write lock on SQLite,
//! a row lock on PostgreSQL) before anything is read.
//!
//! Accounting: a vault's `used_bytes` is the sum of `size + reserved` over its rows; a
//! reservation is made in the same transaction as the claim, so concurrent uploads can never
//! together exceed the quota, and a finished or failed upload settles it exactly.

use sqlx::AnyPool;

use super::retention_lock::{LockRule, held_until};
use super::{DbResult, Tx, col};

mod closing;
mod lapsed;
mod reconcile;
mod settle;

use closing::{VAULT_STATE, is_closed};
pub use closing::{changes_under_way, closed};
pub use lapsed::{Lapsed, lapsed, release, take_lapsed};
pub use reconcile::{Reconciled, RecordedObject, reconcile, recorded};
pub use settle::{Completion, abort_write, complete_write};

/// Which object.
#[derive(Clone, Copy, Debug)]
pub struct ObjectKey<'a> {
    pub vault_id: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
}

/// A row as it was when a claim was attempted.
#[derive(Clone, Debug)]
struct Row {
    size: u64,
    reserved: u64,
    state: String,
    owner: Option<String>,
    claim: String,
    lease_until: i64,
    created_at: i64,
}

/// What the claim replaced; the caller decides from it whether storage must be consulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prior {
    /// No row: the object is new, unless storage holds one from before rows were kept.
    Unknown,
    /// A stored object of this size, recorded as arrived at `created_at` (ms), which this
    /// claim may replace or remove.
    Stored { size: u64, created_at: i64 },
    /// A claim whose request died; what storage holds is unknown.
    Abandoned,
}

/// A held claim on one object.
#[derive(Clone, Debug)]
pub struct Claim {
    pub id: String,
    pub prior: Prior,
}

/// The answer to a claim attempt.
#[derive(Debug)]
pub enum Claimed {
    Yes(Claim),
    /// The object is stored and this caller may not replace (or remove) it.
    Refused {
        owner: Option<String>,
    },
    /// Another request is writing or deleting the object right now.
    Busy,
    /// Writing it would exceed the vault's quota.
    OverQuota,
    /// (Deletes only) there is nothing to delete.
    Absent,
    /// The vault's retention lock holds the object until then (ms).
    Locked {
        until: i64,
    },
}

/// Takes the vault's row first: every claim of the vault is serialized from here on.
async fn lock_vault(tx: &mut Tx, vault_id: &str) -> DbResult<()> {
    sqlx::query("UPDATE vaults SET used_bytes = used_bytes WHERE id = $1")
        .bind(vault_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether the vault has a row for the object (stored, or a change of it under way).
pub async fn has_row(pool: &AnyPool, k: ObjectKey<'_>) -> DbResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM vault_objects WHERE vault_id = $1 AND kind = $2 AND name = $3",
    )
    .bind(k.vault_id)
    .bind(k.kind)
    .bind(k.name)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

async fn row(tx: &mut Tx, k: ObjectKey<'_>) -> DbResult<Option<Row>> {
    let r = sqlx::query(
        "SELECT size, reserved, state, owner_token, claim, lease_until, created_at FROM vault_objects
         WHERE vault_id = $1 AND kind = $2 AND name = $3",
    )
    .bind(k.vault_id)
    .bind(k.kind)
    .bind(k.name)
    .fetch_optional(&mut **tx)
    .await?;
    r.map(|r| -> DbResult<Row> {
        Ok(Row {
            size: col::<i64>(&r, "size")?.max(0) as u64,
            reserved: col::<i64>(&r, "reserved")?.max(0) as u64,
            state: col(&r, "state")?,
            owner: col(&r, "owner_token")?,
            claim: col(&r, "claim")?,
            lease_until: col(&r, "lease_until")?,
            created_at: col(&r, "created_at")?,
        })
    })
    .transpose()
}

/// Adds `bytes` to the vault's usage if the quota allows it.
async fn reserve(tx: &mut Tx, vault_id: &str, bytes: u64) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE vaults SET used_bytes = used_bytes + $1
         WHERE id = $2 AND (quota_bytes IS NULL OR used_bytes + $1 <= quota_bytes)",
    )
    .bind(bytes as i64)
    .bind(vault_id)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Changes the vault's usage by `delta` (never below zero).
async fn adjust(tx: &mut Tx, vault_id: &str, delta: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE vaults SET used_bytes = CASE WHEN used_bytes + $1 > 0 THEN used_bytes + $1 ELSE 0 END
         WHERE id = $2",
    )
    .bind(delta)
    .bind(vault_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn new_claim_id() -> String {
    crate::domain::new_id("clm")
}

/// Claims `k` for an upload of `len` bytes by `token`. `may_replace(owner)` says whether
/// this caller may replace a stored object written by `owner`.
pub async fn claim_write(
    pool: &AnyPool,
    k: ObjectKey<'_>,
    len: u64,
    token: &str,
    may_replace: impl Fn(Option<&str>) -> bool,
    now: i64,
    lease_ms: i64,
) -> DbResult<Claimed> {
    let mut tx = pool.begin().await?;
    lock_vault(&mut tx, k.vault_id).await?;
    // A deleted vault, or one of an erased tenant, takes nothing more (a pull sync that was
    // under way as it was deleted would write into what its erasure emptied).
    let vault = sqlx::query(VAULT_STATE)
        .bind(k.vault_id)
        .fetch_optional(&mut *tx)
        .await?;
    if is_closed(vault)? {
        return Ok(Claimed::Refused { owner: None });
    }
    let id = new_claim_id();
    let lease = now + lease_ms;
    let prior = match row(&mut tx, k).await? {
        None => {
            sqlx::query(
                "INSERT INTO vault_objects (vault_id, kind, name, size, reserved, state,
                    owner_token, claim, lease_until, created_at)
                 VALUES ($1, $2, $3, 0, $4, 'writing', $5, $6, $7, $8)",
            )
            .bind(k.vault_id)
            .bind(k.kind)
            .bind(k.name)
            .bind(len as i64)
            .bind(token)
            .bind(&id)
            .bind(lease)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Prior::Unknown
        }
        Some(r) => {
            let (prior, arrived) = if r.state == "stored" {
                if !may_replace(r.owner.as_deref()) {
                    return Ok(Claimed::Refused { owner: r.owner });
                }
                if let Some(until) =
                    held_until(&mut tx, k.vault_id, k.kind, r.created_at, now).await?
                {
                    return Ok(Claimed::Locked { until });
                }
                // From here on storage may hold the new content, so the object's age (which
                // the retention lock and a maintainer's limits read) counts from now;
                // completing records the arrival again, an abort puts the old age back.
                let prior = Prior::Stored {
                    size: r.size,
                    created_at: r.created_at,
                };
                (prior, now)
            } else if r.lease_until > now {
                return Ok(Claimed::Busy);
            } else {
                // The request that held it died: its reservation goes back.
                adjust(&mut tx, k.vault_id, -(r.reserved as i64)).await?;
                (Prior::Abandoned, r.created_at)
            };
            sqlx::query(
                "UPDATE vault_objects SET state = 'writing', reserved = $1, claim = $2,
                    lease_until = $3, owner_token = COALESCE(owner_token, $4), created_at = $5
                 WHERE vault_id = $6 AND kind = $7 AND name = $8 AND claim = $9",
            )
            .bind(len as i64)
            .bind(&id)
            .bind(lease)
            .bind(token)
            .bind(arrived)
            .bind(k.vault_id)
            .bind(k.kind)
            .bind(k.name)
            .bind(&r.claim)
            .execute(&mut *tx)
            .await?;
            prior
        }
    };
    if !reserve(&mut tx, k.vault_id, len).await? {
        return Ok(Claimed::OverQuota);
    }
    tx.commit().await?;
    Ok(Claimed::Yes(Claim { id, prior }))
}

/// Makes the row of a held claim say what storage holds (`found`: the object's size, or
/// absent), giving back the claim's reservation. Used when a claim found an object the rows
/// did not know of (`counted`: its bytes are already in the vault's usage, as for objects
/// stored before rows were kept), or took over a dead request. The caller claims again.
pub async fn settle(
    pool: &AnyPool,
    k: ObjectKey<'_>,
    claim: &Claim,
    found: Option<u64>,
    counted: bool,
) -> DbResult<()> {
    let mut tx = pool.begin().await?;
    lock_vault(&mut tx, k.vault_id).await?;
    let Some(r) = row(&mut tx, k).await?.filter(|r| r.claim == claim.id) else {
        return Ok(());
    };
    let before = (r.size + r.reserved) as i64;
    let after = match (found, counted) {
        (Some(size), false) => size as i64,
        _ => 0,
    };
    match found {
        Some(size) => {
            mark_stored(&mut tx, k, &claim.id, size).await?;
            // Stored before any row knew of it: nobody wrote it through this claim, so the
            // claimer is not its owner (a replication token may remove only what
            // replication wrote).
            if matches!(claim.prior, Prior::Unknown) {
                set_on_claim(&mut tx, k, &claim.id, "owner_token = NULL").await?;
            }
        }
        None => delete_row(&mut tx, k, &claim.id).await?,
    }
    adjust(&mut tx, k.vault_id, after - before).await?;
    tx.commit().await?;
    Ok(())
}

/// The object of the claim `claim` is stored with `size` bytes and nothing reserved. Returns
/// the rows changed (0 when the claim was taken over).
async fn mark_stored(tx: &mut Tx, k: ObjectKey<'_>, claim: &str, size: u64) -> DbResult<u64> {
    let r = sqlx::query(
        "UPDATE vault_objects SET state = 'stored', size = $1, reserved = 0, blake3 = NULL
         WHERE vault_id = $2 AND kind = $3 AND name = $4 AND claim = $5",
    )
    .bind(size as i64)
    .bind(k.vault_id)
    .bind(k.kind)
    .bind(k.name)
    .bind(claim)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected())
}

/// Sets `assignments` (fixed SQL, never input) on the row of `k` that claim `claim` holds.
async fn set_on_claim(
    tx: &mut Tx,
    k: ObjectKey<'_>,
    claim: &str,
    assignments: &'static str,
) -> DbResult<()> {
    on_claim(
        tx,
        k,
        claim,
        &format!("UPDATE vault_objects SET {assignments}"),
    )
    .await
}

async fn delete_row(tx: &mut Tx, k: ObjectKey<'_>, claim: &str) -> DbResult<()> {
    on_claim(tx, k, claim, "DELETE FROM vault_objects").await
}

/// Runs `change` (an UPDATE or DELETE of `vault_objects`, without its WHERE) on the row of
/// `k` while `claim` holds it.
async fn on_claim(tx: &mut Tx, k: ObjectKey<'_>, claim: &str, change: &str) -> DbResult<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{change} WHERE vault_id = $1 AND kind = $2 AND name = $3 AND claim = $4"
    )))
    .bind(k.vault_id)
    .bind(k.kind)
    .bind(k.name)
    .bind(claim)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Extends a held claim's lease (a long upload). False when the claim was taken over.
pub async fn renew(pool: &AnyPool, k: ObjectKey<'_>, claim: &Claim, until: i64) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE vault_objects SET lease_until = $1
         WHERE vault_id = $2 AND kind = $3 AND name = $4 AND claim = $5",
    )
    .bind(until)
    .bind(k.vault_id)
    .bind(k.kind)
    .bind(k.name)
    .bind(&claim.id)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Claims `k` for deletion. [`Claimed::Absent`] means no row: the caller asks storage and,
/// when it holds the object, claims it with [`claim_unrecorded_delete`].
pub async fn claim_delete(
    pool: &AnyPool,
    k: ObjectKey<'_>,
    may_delete: impl Fn(Option<&str>) -> bool,
    lock: LockRule,
    now: i64,
    lease_ms: i64,
) -> DbResult<Claimed> {
    let id = new_claim_id();
    let mut tx = pool.begin().await?;
    lock_vault(&mut tx, k.vault_id).await?;
    let Some(r) = row(&mut tx, k).await? else {
        return Ok(Claimed::Absent);
    };
    let stored = r.state == "stored";
    if !stored && r.lease_until > now {
        return Ok(Claimed::Busy);
    }
    // A claim whose lease lapsed may have left the object in storage (an upload that
    // finished as its server died): whose it is and the lock are asked all the same.
    if !may_delete(r.owner.as_deref()) {
        return Ok(Claimed::Refused { owner: r.owner });
    }
    let spared = lock == LockRule::SparesReplacedKeySlots && k.kind == "keys";
    if !spared
        && let Some(until) = held_until(&mut tx, k.vault_id, k.kind, r.created_at, now).await?
    {
        return Ok(Claimed::Locked { until });
    }
    let prior = if stored {
        Prior::Stored {
            size: r.size,
            created_at: r.created_at,
        }
    } else {
        Prior::Abandoned
    };
    sqlx::query(
        "UPDATE vault_objects SET state = 'deleting', claim = $1, lease_until = $2
         WHERE vault_id = $3 AND kind = $4 AND name = $5 AND claim = $6",
    )
    .bind(&id)
    .bind(now + lease_ms)
    .bind(k.vault_id)
    .bind(k.kind)
    .bind(k.name)
    .bind(&r.claim)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Claimed::Yes(Claim { id, prior }))
}

/// Claims for deletion an object that storage holds but no row records (stored before rows
/// were kept: its `size` bytes are already in the vault's usage). Its writer is unknown.
pub async fn claim_unrecorded_delete(
    pool: &AnyPool,
    k: ObjectKey<'_>,
    size: u64,
    now: i64,
    lease_ms: i64,
) -> DbResult<Claimed> {
    let id = new_claim_id();
    let mut tx = pool.begin().await?;
    lock_vault(&mut tx, k.vault_id).await?;
    if row(&mut tx, k).await?.is_some() {
        return Ok(Claimed::Busy);
    }
    sqlx::query(
        "INSERT INTO vault_objects (vault_id, kind, name, size, reserved, state,
            owner_token, claim, lease_until, created_at)
         VALUES ($1, $2, $3, $4, 0, 'deleting', NULL, $5, $6, $7)",
    )
    .bind(k.vault_id)
    .bind(k.kind)
    .bind(k.name)
    .bind(size as i64)
    .bind(&id)
    .bind(now + lease_ms)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Claimed::Yes(Claim {
        id,
        prior: Prior::Stored {
            size,
            created_at: now,
        },
    }))
}

/// The object of a held delete claim is gone from storage: the row goes, and every byte it
/// counted is given back. Returns the size the row recorded.
pub async fn complete_delete(pool: &AnyPool, k: ObjectKey<'_>, claim: &Claim) -> DbResult<u64> {
    let mut tx = pool.begin().await?;
    lock_vault(&mut tx, k.vault_id).await?;
    let Some(r) = row(&mut tx, k).await?.filter(|r| r.claim == claim.id) else {
        return Ok(0);
    };
    delete_row(&mut tx, k, &claim.id).await?;
    adjust(&mut tx, k.vault_id, -((r.size + r.reserved) as i64)).await?;
    tx.commit().await?;
    Ok(r.size)
}

/// The storage delete of a held claim failed: the object is still there. A claim that had
/// taken over a dead request leaves its row expired, so the next request settles it.
pub async fn abort_delete(pool: &AnyPool, k: ObjectKey<'_>, claim: &Claim) -> DbResult<()> {
    let state = match claim.prior {
        Prior::Stored { .. } => "stored",
        Prior::Unknown | Prior::Abandoned => "deleting",
    };
    sqlx::query(
        "UPDATE vault_objects SET state = $1, lease_until = 0
         WHERE vault_id = $2 AND kind = $3 AND name = $4 AND claim = $5",
    )
    .bind(state)
    .bind(k.vault_id)
    .bind(k.kind)
    .bind(k.name)
    .bind(&claim.id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets every row of a vault, and the snapshots retention set out to remove from it
/// (its objects are gone).
pub async fn forget_vault(pool: &AnyPool, vault_id: &str) -> DbResult<()> {
    for sql in [
        "DELETE FROM vault_objects WHERE vault_id = $1",
        "DELETE FROM retention_removals WHERE vault_id = $1",
    ] {
        sqlx::query(sql).bind(vault_id).execute(pool).await?;
    }
    Ok(())
}

/// Lets every claim lapse at once: for a database that one server process owns (SQLite),
/// where every claim found at start belongs to a process that is gone.
pub async fn expire_claims(pool: &AnyPool) -> DbResult<u64> {
    let r = sqlx::query("UPDATE vault_objects SET lease_until = 0 WHERE state <> 'stored'")
        .execute(pool)
        .await?;
    Ok(r.rows_affected())
}

/// How many objects of `kind` (its directory's name) the vault holds, stored or in flight.
pub async fn count_of_kind(pool: &AnyPool, vault_id: &str, kind: &str) -> DbResult<u64> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM vault_objects WHERE vault_id = $1 AND kind = $2")
            .bind(vault_id)
            .bind(kind)
            .fetch_one(pool)
            .await?;
    Ok(n.max(0) as u64)
}
