//! What the notifier's checks look for: jobs that ended badly, protected items without a
//! recent success, devices that went quiet, vaults near their quota.

use loop_api::{Device, Job, ProtectedItem, Vault};
use sqlx::AnyPool;

use super::{DbResult, col};

/// Jobs that ended failed, abandoned, missed or with warnings at or after `since` whose
/// event was not raised yet (at most `limit`, oldest first).
pub async fn ended_jobs_unreported(pool: &AnyPool, since: i64, limit: u32) -> DbResult<Vec<Job>> {
    let rows = sqlx::query(
        "SELECT * FROM jobs j
         WHERE j.state IN ('failed', 'abandoned', 'missed', 'succeeded-with-warnings')
           AND j.finished_at >= $1
           AND NOT EXISTS (SELECT 1 FROM events e WHERE e.dedupe_key = 'job:' || j.id)
         ORDER BY j.finished_at LIMIT $2",
    )
    .bind(since)
    .bind(limit as i64)
    .fetch_all(pool)
    .await?;
    rows.iter().map(super::jobs::job).collect()
}

/// A scheduled item with its tenant's time zone and the end of its last successful backup.
pub struct Watched {
    pub item: ProtectedItem,
    pub time_zone: String,
    pub last_success: Option<i64>,
}

/// Every protected item that has a schedule.
pub async fn scheduled_items(pool: &AnyPool) -> DbResult<Vec<Watched>> {
    let rows = sqlx::query(
        "SELECT i.*, t.time_zone AS tenant_time_zone,
            (SELECT MAX(j.finished_at) FROM jobs j WHERE j.target_id = i.id AND j.kind = 'backup'
               AND j.state IN ('succeeded', 'succeeded-with-warnings')) AS last_success
         FROM protected_items i JOIN tenants t ON t.id = i.tenant_id
         WHERE i.schedule IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Watched {
                item: super::items::item(r)?,
                time_zone: col(r, "tenant_time_zone")?,
                last_success: col(r, "last_success")?,
            })
        })
        .collect()
}

/// Devices with an agent that has not been heard from since `before`.
pub async fn silent_devices(pool: &AnyPool, before: i64) -> DbResult<Vec<Device>> {
    let rows = sqlx::query(
        "SELECT * FROM devices WHERE deleted_at IS NULL AND agent_version IS NOT NULL
           AND last_seen_at IS NOT NULL AND last_seen_at < $1",
    )
    .bind(before)
    .fetch_all(pool)
    .await?;
    rows.iter().map(super::devices::device).collect()
}

/// Vaults that hold more than 90% of their quota.
pub async fn vaults_near_quota(pool: &AnyPool) -> DbResult<Vec<Vault>> {
    let rows = sqlx::query(
        "SELECT * FROM vaults WHERE deleted_at IS NULL AND quota_bytes IS NOT NULL
           AND quota_bytes > 0 AND used_bytes * 10 > quota_bytes * 9",
    )
    .fetch_all(pool)
    .await?;
    rows.iter().map(super::vaults::vault).collect()
}

/// What a summary report says about a tenant (with `subtree`, its tenants below too).
pub struct Summary {
    /// Each protected item: name, device name, state and end of its last finished backup.
    pub items: Vec<(String, String, Option<String>, Option<i64>)>,
    pub vaults: Vec<Vault>,
    /// Backups that ended in the period, by outcome.
    pub succeeded: i64,
    pub failed: i64,
}

pub async fn summary(
    pool: &AnyPool,
    path: &crate::domain::TenantPath,
    tenant_id: &str,
    subtree: bool,
    from: i64,
    to: i64,
) -> DbResult<Summary> {
    // `$1` is the tenant's path (with `subtree`) or its ID: only the filter differs.
    let (filter, key) = if subtree {
        ("substr(t.path, 1, length($1)) = $1", path.as_str())
    } else {
        ("t.id = $1", tenant_id)
    };
    let items = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT i.name, d.name AS device_name, j.state AS last_state, j.finished_at AS last_at
         FROM protected_items i JOIN tenants t ON t.id = i.tenant_id
           JOIN devices d ON d.id = i.device_id
           LEFT JOIN jobs j ON j.id = (SELECT j2.id FROM jobs j2 WHERE j2.target_id = i.id
               AND j2.kind = 'backup' AND j2.finished_at IS NOT NULL
             ORDER BY j2.finished_at DESC LIMIT 1)
         WHERE {filter} ORDER BY t.path, d.name, i.name"
    )))
    .bind(key)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok((
            col(r, "name")?,
            col(r, "device_name")?,
            col(r, "last_state")?,
            col(r, "last_at")?,
        ))
    })
    .collect::<DbResult<Vec<_>>>()?;
    let vaults = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT v.* FROM vaults v JOIN tenants t ON t.id = v.tenant_id
         WHERE v.deleted_at IS NULL AND {filter} ORDER BY t.path, v.name"
    )))
    .bind(key)
    .fetch_all(pool)
    .await?
    .iter()
    .map(super::vaults::vault)
    .collect::<DbResult<Vec<_>>>()?;
    let counts = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT
           COALESCE(SUM(CASE WHEN j.state IN ('succeeded', 'succeeded-with-warnings') THEN 1 ELSE 0 END), 0) AS ok,
           COALESCE(SUM(CASE WHEN j.state IN ('failed', 'abandoned', 'missed') THEN 1 ELSE 0 END), 0) AS bad
         FROM jobs j JOIN tenants t ON t.id = j.tenant_id
         WHERE j.kind = 'backup' AND j.finished_at >= $2 AND j.finished_at < $3 AND {filter}"
    )))
    .bind(key)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    Ok(Summary {
        items,
        vaults,
        succeeded: col(&counts, "ok")?,
        failed: col(&counts, "bad")?,
    })
}
