//! What a tenant's dashboard reads: each protected item with its last backup, devices heard
//! from, storage, stored bytes per day and job outcomes per day.

use sqlx::AnyPool;

use super::{DbResult, col};

/// A protected item and how its backups went.
pub struct ItemHealth {
    pub id: String,
    pub name: String,
    pub device: String,
    pub scheduled: bool,
    /// The state of its last backup that ended, and when (ms).
    pub last: Option<(String, i64)>,
    /// When its last good backup ended (ms).
    pub last_ok_at: Option<i64>,
}

pub async fn items(pool: &AnyPool, tenant_id: &str) -> DbResult<Vec<ItemHealth>> {
    let rows = sqlx::query(
        "SELECT i.id, i.name, d.name AS device, i.schedule,
             (SELECT j.state FROM jobs j
              WHERE j.target_id = i.id AND j.kind = 'backup' AND j.finished_at IS NOT NULL
              ORDER BY j.finished_at DESC, j.id DESC LIMIT 1) AS last_state,
             (SELECT MAX(j.finished_at) FROM jobs j
              WHERE j.target_id = i.id AND j.kind = 'backup') AS last_at,
             (SELECT MAX(j.finished_at) FROM jobs j
              WHERE j.target_id = i.id AND j.kind = 'backup'
                AND j.state IN ('succeeded', 'succeeded-with-warnings')) AS ok_at
         FROM protected_items i JOIN devices d ON d.id = i.device_id
         WHERE i.tenant_id = $1
         ORDER BY i.name, d.name, i.id",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let state: Option<String> = col(r, "last_state")?;
            let at: Option<i64> = col(r, "last_at")?;
            Ok(ItemHealth {
                id: col(r, "id")?,
                name: col(r, "name")?,
                device: col(r, "device")?,
                scheduled: col::<Option<String>>(r, "schedule")?.is_some(),
                last: state.zip(at),
                last_ok_at: col(r, "ok_at")?,
            })
        })
        .collect()
}

/// (devices, devices heard from since `since` ms) of the tenant.
pub async fn devices(pool: &AnyPool, tenant_id: &str, since: i64) -> DbResult<(i64, i64)> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n,
                CAST(COALESCE(SUM(CASE WHEN last_seen_at >= $2 THEN 1 ELSE 0 END), 0) AS BIGINT)
                    AS online
         FROM devices WHERE tenant_id = $1 AND deleted_at IS NULL",
    )
    .bind(tenant_id)
    .bind(since)
    .fetch_one(pool)
    .await?;
    Ok((col(&r, "n")?, col(&r, "online")?))
}

/// (bytes used, quota) over the tenant's vaults; the quota only when every vault has one.
pub async fn storage(pool: &AnyPool, tenant_id: &str) -> DbResult<(i64, Option<i64>)> {
    let r = sqlx::query(
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
        "SELECT CAST(COALESCE(SUM(used_bytes), 0) AS BIGINT) AS used,
                CAST(COALESCE(SUM(quota_bytes), 0) AS BIGINT) AS quota,
                CAST(COALESCE(SUM(CASE WHEN quota_bytes IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT)
                    AS open
         FROM vaults WHERE tenant_id = $1 AND deleted_at IS NULL",
    )
    .bind(tenant_id)
    .fetch_one(pool)
    .await?;
    let open: i64 = col(&r, "open")?;
    Ok((
        col(&r, "used")?,
        (open == 0).then(|| col(&r, "quota")).transpose()?,
    ))
}

/// (day `YYYY-MM-DD`, stored bytes) of the tenant from `since_day` on, oldest first.
pub async fn stored_per_day(
    pool: &AnyPool,
    tenant_id: &str,
    since_day: &str,
) -> DbResult<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT day, stored_bytes FROM usage_days WHERE tenant_id = $1 AND day >= $2
         ORDER BY day",
    )
    .bind(tenant_id)
    .bind(since_day)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((col(r, "day")?, col(r, "stored_bytes")?)))
        .collect()
}

/// (day number since 1970, state, jobs) of the tenant's jobs that ended since `since` ms.
pub async fn outcomes_per_day(
    pool: &AnyPool,
    tenant_id: &str,
    since: i64,
) -> DbResult<Vec<(i64, String, i64)>> {
    let rows = sqlx::query(
        "SELECT finished_at / 86400000 AS day, state, COUNT(*) AS n FROM jobs
         WHERE tenant_id = $1 AND finished_at >= $2
         GROUP BY finished_at / 86400000, state",
    )
    .bind(tenant_id)
    .bind(since)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((col(r, "day")?, col(r, "state")?, col(r, "n")?)))
        .collect()
}

/// A tenant of a subtree as the tree page shows it.
pub struct TenantHealth {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub path: String,
    pub subscription: Option<String>,
    pub stored: i64,
    pub items: i64,
    /// Items whose last backup failed, was missed or abandoned.
    pub failing: i64,
}

/// The tenants under `path` (itself first), with their health, a page at a time.
pub async fn tree(
    pool: &AnyPool,
    path: &crate::domain::TenantPath,
    page: &super::page::Page,
) -> DbResult<super::page::Paged<TenantHealth>> {
    super::tenants::in_scope(
        pool,
        // Only joins after the first FROM: the listing splits the query there.
        "SELECT t.id, t.name, t.kind, t.status, t.path, s.state AS sub_state,
                COALESCE(v.stored, 0) AS stored, COALESCE(i.items, 0) AS items,
                COALESCE(i.failing, 0) AS failing
         FROM tenants t
         LEFT JOIN subscriptions s ON s.tenant_id = t.id
         LEFT JOIN (SELECT tenant_id, CAST(SUM(used_bytes) AS BIGINT) AS stored FROM vaults
                    WHERE deleted_at IS NULL GROUP BY tenant_id) v ON v.tenant_id = t.id
         LEFT JOIN (SELECT pi.tenant_id, COUNT(*) AS items,
                           CAST(SUM(CASE WHEN (SELECT j.state FROM jobs j
                                               WHERE j.target_id = pi.id AND j.kind = 'backup'
                                                 AND j.finished_at IS NOT NULL
                                               ORDER BY j.finished_at DESC, j.id DESC LIMIT 1)
                                              IN ('failed', 'missed', 'abandoned')
                                         THEN 1 ELSE 0 END) AS BIGINT) AS failing
                    FROM protected_items pi GROUP BY pi.tenant_id) i ON i.tenant_id = t.id",
        &crate::domain::TenantScope::Subtrees(vec![path.clone()]),
        &[super::page::asc("t.path")],
        Some(page),
    )
    .await?
    .map(|r| {
        Ok(TenantHealth {
            id: col(&r, "id")?,
            name: col(&r, "name")?,
            kind: col(&r, "kind")?,
            status: col(&r, "status")?,
            path: col(&r, "path")?,
            subscription: col(&r, "sub_state")?,
            stored: col(&r, "stored")?,
            items: col(&r, "items")?,
            failing: col(&r, "failing")?,
        })
    })
}

/// A device as the devices page shows it: with the version its agent last reported.
pub struct DeviceRow {
    pub device: loop_api::Device,
    pub agent_version: Option<String>,
    pub items: i64,
}

/// The devices of tenant `tenant_id`, by name.
pub async fn devices_of(pool: &AnyPool, tenant_id: &str) -> DbResult<Vec<DeviceRow>> {
    let rows = sqlx::query(
        "SELECT d.*, (SELECT COUNT(*) FROM protected_items i WHERE i.device_id = d.id) AS items
         FROM devices d WHERE d.tenant_id = $1 AND d.deleted_at IS NULL ORDER BY d.name, d.id",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DeviceRow {
                device: super::devices::device(r)?,
                agent_version: col(r, "agent_version")?,
                items: col(r, "items")?,
            })
        })
        .collect()
}
