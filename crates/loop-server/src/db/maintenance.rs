//! Scheduled maintenance of vaults: the next run of each vault's retention and
//! verify (`vault_runs`), and what the scheduler needs to decide it.

use loop_api::Vault;
use sqlx::AnyPool;

use super::{DbResult, col};
use crate::domain::TenantPath;

/// A vault someone maintains (the server a managed one, its maintainer's agent a
/// customer-key one), with its tenant's path and time zone.
pub struct Managed {
    pub vault: Vault,
    pub path: TenantPath,
    pub time_zone: String,
}

pub async fn maintained_vaults(pool: &AnyPool) -> DbResult<Vec<Managed>> {
    let rows = sqlx::query(
        "SELECT v.*, t.path AS tenant_path, t.time_zone AS tenant_time_zone
         FROM vaults v JOIN tenants t ON t.id = v.tenant_id
         WHERE v.deleted_at IS NULL AND t.status = 'active'
           AND (v.key_custody = 'managed' OR v.maintainer_device_id IS NOT NULL)
         ORDER BY v.id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let path: String = col(r, "tenant_path")?;
            Ok(Managed {
                vault: super::vaults::vault(r)?,
                path: path
                    .parse()
                    .map_err(|_| super::DbError::Sql(sqlx::Error::RowNotFound))?,
                time_zone: col(r, "tenant_time_zone")?,
            })
        })
        .collect()
}

/// The schedule a vault's next `kind` run was computed from, and when it is due.
pub async fn next_run(
    pool: &AnyPool,
    vault_id: &str,
    kind: &str,
) -> DbResult<Option<(String, Option<i64>)>> {
    let row = sqlx::query(
        "SELECT schedule, next_run_at FROM vault_runs WHERE vault_id = $1 AND kind = $2",
    )
    .bind(vault_id)
    .bind(kind)
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((col(&r, "schedule")?, col(&r, "next_run_at")?)))
        .transpose()
}

/// Sets (or, with `schedule` none, forgets) the next run of a vault's `kind`.
pub async fn set_next_run(
    pool: &AnyPool,
    vault_id: &str,
    kind: &str,
    schedule: Option<&str>,
    next: Option<i64>,
) -> DbResult<()> {
    let Some(schedule) = schedule else {
        sqlx::query("DELETE FROM vault_runs WHERE vault_id = $1 AND kind = $2")
            .bind(vault_id)
            .bind(kind)
            .execute(pool)
            .await?;
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO vault_runs (vault_id, kind, schedule, next_run_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (vault_id, kind) DO UPDATE SET schedule = $3, next_run_at = $4",
    )
    .bind(vault_id)
    .bind(kind)
    .bind(schedule)
    .bind(next)
    .execute(pool)
    .await?;
    Ok(())
}

/// When the vault's last successful job of `kind` ended.
pub async fn last_success(pool: &AnyPool, vault_id: &str, kind: &str) -> DbResult<Option<i64>> {
    let row = sqlx::query(
        "SELECT MAX(finished_at) AS at FROM jobs WHERE target_id = $1 AND kind = $2
           AND state IN ('succeeded', 'succeeded-with-warnings')",
    )
    .bind(vault_id)
    .bind(kind)
    .fetch_one(pool)
    .await?;
    Ok(col(&row, "at")?)
}
