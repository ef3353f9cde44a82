//! A vault's replicas (`vault_replicas`): further destinations holding copies of its
//! objects, their state, when they were last replicated and verified, and when the
//! scheduler replicates them next.

use loop_api::ReplicaState;
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col, col_value};

/// A replica as stored.
#[derive(Clone, Debug)]
pub struct ReplicaRow {
    pub id: String,
    pub vault_id: String,
    pub destination: String,
    pub state: ReplicaState,
    pub created_at: i64,
    pub synced_from: Option<i64>,
    pub synced_at: Option<i64>,
    pub verified_at: Option<i64>,
    pub verify_ok: Option<bool>,
    pub last_error: Option<String>,
}

fn replica(row: &AnyRow) -> DbResult<ReplicaRow> {
    Ok(ReplicaRow {
        id: col(row, "id")?,
        vault_id: col(row, "vault_id")?,
        destination: col(row, "destination")?,
        state: col_value(row, "state")?,
        created_at: col(row, "created_at")?,
        synced_from: col(row, "synced_from")?,
        synced_at: col(row, "synced_at")?,
        verified_at: col(row, "verified_at")?,
        verify_ok: col::<Option<i64>>(row, "verify_ok")?.map(|v| v != 0),
        last_error: col(row, "last_error")?,
    })
}

pub async fn insert(
    tx: &mut Tx,
    id: &str,
    vault_id: &str,
    destination: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO vault_replicas (id, vault_id, destination, state, created_at, next_sync_at)
         VALUES ($1, $2, $3, 'seeding', $4, $4)",
    )
    .bind(id)
    .bind(vault_id)
    .bind(destination)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The replicas of a vault, oldest first.
pub async fn of_vault(pool: &AnyPool, vault_id: &str) -> DbResult<Vec<ReplicaRow>> {
    let rows =
        sqlx::query("SELECT * FROM vault_replicas WHERE vault_id = $1 ORDER BY created_at, id")
            .bind(vault_id)
            .fetch_all(pool)
            .await?;
    rows.iter().map(replica).collect()
}

pub async fn by_id(pool: &AnyPool, vault_id: &str, id: &str) -> DbResult<Option<ReplicaRow>> {
    let row = sqlx::query("SELECT * FROM vault_replicas WHERE id = $1 AND vault_id = $2")
        .bind(id)
        .bind(vault_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(replica).transpose()
}

/// Removes replica `r` if it is still as read (a promotion may have swapped it with the
/// primary since: false then, and nothing removed).
pub async fn delete(tx: &mut Tx, r: &ReplicaRow) -> DbResult<bool> {
    let gone = sqlx::query("DELETE FROM vault_replicas WHERE id = $1 AND destination = $2")
        .bind(&r.id)
        .bind(&r.destination)
        .execute(&mut **tx)
        .await?;
    Ok(gone.rows_affected() == 1)
}

/// Every replica of a vault goes (the vault is deleted; its erasure removes their objects).
pub async fn delete_of_vault(tx: &mut Tx, vault_id: &str) -> DbResult<Vec<ReplicaRow>> {
    let rows = sqlx::query("SELECT * FROM vault_replicas WHERE vault_id = $1")
        .bind(vault_id)
        .fetch_all(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM vault_replicas WHERE vault_id = $1")
        .bind(vault_id)
        .execute(&mut **tx)
        .await?;
    rows.iter().map(replica).collect()
}

/// A replication that began at `from` completed at `at`: the replica holds what the primary
/// held then, and reads may fall back to it. A replica a verify found damaged at `from` or
/// later stays `damaged`: the replication may have listed the copies that verify dropped.
pub async fn synced(pool: &AnyPool, id: &str, from: i64, at: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE vault_replicas SET synced_from = $1, synced_at = $2, last_error = NULL,
            state = CASE WHEN state = 'damaged' AND verify_ok = 0 AND verified_at >= $1
                THEN 'damaged' ELSE 'active' END
         WHERE id = $3",
    )
    .bind(from)
    .bind(at)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Why the last replication or verify of the replica did not end well.
pub async fn failed(pool: &AnyPool, id: &str, error: &str) -> DbResult<()> {
    sqlx::query("UPDATE vault_replicas SET last_error = $1 WHERE id = $2")
        .bind(error)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A verify ended: a replica found differing is `damaged` until a replication repairs it.
pub async fn verified(pool: &AnyPool, id: &str, ok: bool, at: i64) -> DbResult<()> {
    let sql = if ok {
        "UPDATE vault_replicas SET verified_at = $1, verify_ok = 1 WHERE id = $2"
    } else {
        "UPDATE vault_replicas SET verified_at = $1, verify_ok = 0, state = 'damaged' WHERE id = $2"
    };
    sqlx::query(sql).bind(at).bind(id).execute(pool).await?;
    Ok(())
}

/// The objects (and bytes) the vault received from `since` on: what a replica whose last
/// complete replication began then may lack.
pub async fn lag(pool: &AnyPool, vault_id: &str, since: Option<i64>) -> DbResult<(u64, u64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes FROM vault_objects
         WHERE vault_id = $1 AND state = 'stored' AND created_at >= $2",
    )
    .bind(vault_id)
    .bind(since.unwrap_or(i64::MIN))
    .fetch_one(pool)
    .await?;
    Ok((
        col::<i64>(&row, "n")?.max(0) as u64,
        col::<i64>(&row, "bytes")?.max(0) as u64,
    ))
}

/// The vaults one of whose replicas is due for a scheduled replication: (vault, due).
pub async fn due(pool: &AnyPool, now: i64, limit: u32) -> DbResult<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT vault_id, MIN(next_sync_at) AS due FROM vault_replicas
         WHERE next_sync_at <= $1 GROUP BY vault_id ORDER BY due LIMIT $2",
    )
    .bind(now)
    .bind(limit as i64)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((col(r, "vault_id")?, col(r, "due")?)))
        .collect()
}

/// Moves the vault's replications due at or before `due` on to `next`; false when another
/// node did first (see [`super::advance_timer`]).
pub async fn advance(tx: &mut Tx, vault_id: &str, due: i64, next: i64) -> DbResult<bool> {
    let n = sqlx::query(
        "UPDATE vault_replicas SET next_sync_at = $1 WHERE vault_id = $2 AND next_sync_at <= $3",
    )
    .bind(next)
    .bind(vault_id)
    .bind(due)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// The replica becomes the primary and the old primary a replica to seed again: the vault's
/// `destination` and the replica's swap.
pub async fn promote(tx: &mut Tx, r: &ReplicaRow, old_primary: &str, now: i64) -> DbResult<bool> {
    // The replica's row first: a removal of it running at once either committed before (and
    // nothing is promoted) or waits, and then finds the row changed.
    let swapped = sqlx::query(
        "UPDATE vault_replicas SET destination = $1, state = 'seeding', synced_from = NULL,
            synced_at = NULL, verified_at = NULL, verify_ok = NULL, last_error = NULL,
            next_sync_at = $2
         WHERE id = $3 AND destination = $4",
    )
    .bind(old_primary)
    .bind(now)
    .bind(&r.id)
    .bind(&r.destination)
    .execute(&mut **tx)
    .await?;
    if swapped.rows_affected() != 1 {
        return Ok(false);
    }
    let moved =
        sqlx::query("UPDATE vaults SET destination = $1 WHERE id = $2 AND destination = $3")
            .bind(&r.destination)
            .bind(&r.vault_id)
            .bind(old_primary)
            .execute(&mut **tx)
            .await?;
    Ok(moved.rows_affected() == 1)
}

/// Replicas whose last complete replication (or, before the first, their creation) is older
/// than `before`, with their vault's tenant.
pub async fn behind(pool: &AnyPool, before: i64) -> DbResult<Vec<(ReplicaRow, String)>> {
    let rows = sqlx::query(
        "SELECT r.*, v.tenant_id FROM vault_replicas r JOIN vaults v ON v.id = r.vault_id
         WHERE v.deleted_at IS NULL AND COALESCE(r.synced_at, r.created_at) < $1",
    )
    .bind(before)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((replica(r)?, col(r, "tenant_id")?)))
        .collect()
}

/// The names of the stored objects of `kind` the vault's records hold.
pub async fn stored_names(
    pool: &AnyPool,
    vault_id: &str,
    kind: &str,
) -> DbResult<std::collections::HashSet<String>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM vault_objects WHERE vault_id = $1 AND kind = $2 AND state = 'stored'",
    )
    .bind(vault_id)
    .bind(kind)
    .fetch_all(pool)
    .await?;
    Ok(names.into_iter().collect())
}

/// The stored objects of the vault the records hold, (kind, name): all, or those that
/// arrived at or after `since`.
pub async fn recorded(
    pool: &AnyPool,
    vault_id: &str,
    since: Option<i64>,
) -> DbResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT kind, name FROM vault_objects WHERE vault_id = $1 AND state = 'stored'
         AND created_at >= $2",
    )
    .bind(vault_id)
    .bind(since.unwrap_or(i64::MIN))
    .fetch_all(pool)
    .await?)
}

/// Every object the server records as stored in the vault: (kind, name, size, BLAKE3 hash
/// as stored, when known).
pub async fn stored_copies(
    pool: &AnyPool,
    vault_id: &str,
) -> DbResult<Vec<(String, String, i64, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT kind, name, size, blake3 FROM vault_objects
         WHERE vault_id = $1 AND state = 'stored'",
    )
    .bind(vault_id)
    .fetch_all(pool)
    .await?)
}

/// Whether the vault has a replica (in the caller's transaction).
pub async fn any(tx: &mut Tx, vault_id: &str) -> DbResult<bool> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM vault_replicas WHERE vault_id = $1 LIMIT 1")
            .bind(vault_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(id.is_some())
}

/// Whether the vault's records hold `kind`/`name` as stored.
pub async fn is_stored(pool: &AnyPool, vault_id: &str, kind: &str, name: &str) -> DbResult<bool> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT name FROM vault_objects WHERE vault_id = $1 AND kind = $2 AND name = $3
         AND state = 'stored'",
    )
    .bind(vault_id)
    .bind(kind)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}
