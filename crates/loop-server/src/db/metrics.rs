//! What `/metrics` reads from the database at each scrape: the same answer on every node.

use sqlx::AnyPool;

use super::{DbResult, col};

/// (tenant, device, item, time of the last successful backup in ms).
pub async fn last_backups(pool: &AnyPool) -> DbResult<Vec<(String, String, String, i64)>> {
    let rows = sqlx::query(
        "SELECT i.tenant_id, i.device_id, i.id, MAX(j.finished_at) AS at
         FROM protected_items i JOIN jobs j ON j.target_id = i.id
         WHERE j.kind = 'backup' AND j.state IN ('succeeded', 'succeeded-with-warnings')
         GROUP BY i.tenant_id, i.device_id, i.id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                col(r, "tenant_id")?,
                col(r, "device_id")?,
                col(r, "id")?,
                col::<Option<i64>>(r, "at")?.unwrap_or(0),
            ))
        })
        .collect()
}

/// (kind, state, jobs): every job ever recorded stays, so the counts only grow.
pub async fn job_counts(pool: &AnyPool) -> DbResult<Vec<(String, String, i64)>> {
    let rows = sqlx::query("SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok((col(r, "kind")?, col(r, "state")?, col(r, "n")?)))
        .collect()
}

/// (tenant, vault, used bytes, quota bytes) of the vaults not deleted.
pub async fn vault_sizes(pool: &AnyPool) -> DbResult<Vec<(String, String, i64, Option<i64>)>> {
    let rows = sqlx::query(
        "SELECT tenant_id, id, used_bytes, quota_bytes FROM vaults WHERE deleted_at IS NULL",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                col(r, "tenant_id")?,
                col(r, "id")?,
                col(r, "used_bytes")?,
                col(r, "quota_bytes")?,
            ))
        })
        .collect()
}

/// (tenant, devices heard from since `since` ms).
pub async fn devices_online(pool: &AnyPool, since: i64) -> DbResult<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT tenant_id, COUNT(*) AS n FROM devices
         WHERE deleted_at IS NULL AND last_seen_at >= $1 GROUP BY tenant_id",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((col(r, "tenant_id")?, col(r, "n")?)))
        .collect()
}
