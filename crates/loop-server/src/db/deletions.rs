//! Maintainers of customer-key vaults and the deletions they announce
//! (`vaults.maintainer_device_id`, `planned_deletions`).
//!
//! A maintainer agent holds the vault's passphrase, so the server cannot check what its
//! prune deletes. It can make deletion slow instead: an object (an index file, a pack, a
//! prune plan) may go only once the deletion was announced here at least the policy's
//! `deletion_grace_hours` earlier. Taking the maintainer away drops every announcement.

use loop_api::PlannedDeletion;
use sqlx::AnyPool;

use super::{DbResult, Tx, col, time};

/// Names `device_id` (or nobody) as the vault's maintainer; the announcements of the one
/// before are dropped. With nobody, the vault's jobs still waiting for an agent are
/// cancelled (no agent will claim them).
pub async fn set_maintainer(
    tx: &mut Tx,
    vault_id: &str,
    device_id: Option<&str>,
    now: i64,
) -> DbResult<()> {
    if device_id.is_none() {
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = $1,
                error = 'the vault has no maintainer any more'
             WHERE target_kind = 'vault' AND target_id = $2 AND runner = 'agent'
               AND state = 'queued'",
        )
        .bind(now)
        .bind(vault_id)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("UPDATE vaults SET maintainer_device_id = $1 WHERE id = $2")
        .bind(device_id)
        .bind(vault_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM planned_deletions WHERE vault_id = $1")
        .bind(vault_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The vaults `device_id` maintains.
pub async fn maintained_by(tx: &mut Tx, device_id: &str) -> DbResult<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM vaults WHERE maintainer_device_id = $1")
        .bind(device_id)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(|r| Ok(col(r, "id")?)).collect()
}

/// Records (in `tx`, which the caller commits with its audit event) the announced deletion
/// of objects of the vault that are stored; one announced before keeps its first time.
/// Returns how many objects and bytes were newly announced.
pub async fn announce(
    tx: &mut Tx,
    vault_id: &str,
    device_id: &str,
    objects: &[(&str, &str)],
    now: i64,
) -> DbResult<(u64, u64)> {
    let (mut count, mut bytes) = (0, 0);
    for (kind, name) in objects {
        let r = sqlx::query(
            "INSERT INTO planned_deletions (vault_id, kind, name, announced_at, device_id)
             SELECT $1, $2, $3, $4, $5 FROM vault_objects
             WHERE vault_id = $1 AND kind = $2 AND name = $3 AND state = 'stored'
             ON CONFLICT DO NOTHING",
        )
        .bind(vault_id)
        .bind(*kind)
        .bind(*name)
        .bind(now)
        .bind(device_id)
        .execute(&mut **tx)
        .await?;
        if r.rows_affected() == 1 {
            count += 1;
            let size = sqlx::query(
                "SELECT size FROM vault_objects WHERE vault_id = $1 AND kind = $2 AND name = $3",
            )
            .bind(vault_id)
            .bind(*kind)
            .bind(*name)
            .fetch_one(&mut **tx)
            .await?;
            bytes += col::<i64>(&size, "size")?.max(0) as u64;
        }
    }
    Ok((count, bytes))
}

/// The vault's announced deletions, released `grace_ms` after their announcement.
pub async fn planned(
    pool: &AnyPool,
    vault_id: &str,
    grace_ms: i64,
    now: i64,
) -> DbResult<Vec<PlannedDeletion>> {
    let rows = sqlx::query(
        "SELECT kind, name, announced_at FROM planned_deletions WHERE vault_id = $1
         ORDER BY announced_at, kind, name",
    )
    .bind(vault_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let at: i64 = col(r, "announced_at")?;
            Ok(PlannedDeletion {
                kind: col(r, "kind")?,
                name: col(r, "name")?,
                announced_at: time(at),
                released_at: time(at.saturating_add(grace_ms)),
                released: at.saturating_add(grace_ms) <= now,
            })
        })
        .collect()
}

/// When the deletion of the object was announced, if it was.
pub async fn announced_at(
    pool: &AnyPool,
    vault_id: &str,
    kind: &str,
    name: &str,
) -> DbResult<Option<i64>> {
    let row = sqlx::query(
        "SELECT announced_at FROM planned_deletions WHERE vault_id = $1 AND kind = $2 AND name = $3",
    )
    .bind(vault_id)
    .bind(kind)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| col(&r, "announced_at")).transpose()?)
}

/// The object is gone: its announcement goes too.
pub async fn forget(pool: &AnyPool, vault_id: &str, kind: &str, name: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM planned_deletions WHERE vault_id = $1 AND kind = $2 AND name = $3")
        .bind(vault_id)
        .bind(kind)
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

/// When the server stored the object (`vault_objects.created_at`), if it keeps a record.
pub async fn stored_at(
    pool: &AnyPool,
    vault_id: &str,
    kind: &str,
    name: &str,
) -> DbResult<Option<i64>> {
    let row = sqlx::query(
        "SELECT created_at FROM vault_objects WHERE vault_id = $1 AND kind = $2 AND name = $3
           AND state = 'stored'",
    )
    .bind(vault_id)
    .bind(kind)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| col(&r, "created_at")).transpose()?)
}

/// Snapshot objects of the vault the server stored after `after`.
pub async fn snapshots_stored_after(
    pool: &AnyPool,
    vault_id: &str,
    after: i64,
) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT name FROM vault_objects WHERE vault_id = $1 AND kind = 'snapshots'
           AND created_at > $2 ORDER BY name",
    )
    .bind(vault_id)
    .bind(after)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| Ok(col(r, "name")?)).collect()
}

/// The bytes of the vault's announced deletions not carried out yet.
pub async fn pending_bytes(pool: &AnyPool, vault_id: &str) -> DbResult<u64> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(o.size), 0) AS BIGINT) AS bytes FROM planned_deletions d
           JOIN vault_objects o ON o.vault_id = d.vault_id AND o.kind = d.kind AND o.name = d.name
         WHERE d.vault_id = $1",
    )
    .bind(vault_id)
    .fetch_one(pool)
    .await?;
    Ok(col::<i64>(&row, "bytes")?.max(0) as u64)
}
