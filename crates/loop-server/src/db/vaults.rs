//! Vaults. Their usage is kept by [`super::objects`].

use loop_api::Vault;
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::page::{Page, Paged, asc};
use super::tenants::in_scope;
use super::{DbResult, Tx, col, col_value, time};
use crate::domain::TenantScope;

pub(super) fn vault(row: &AnyRow) -> DbResult<Vault> {
    Ok(Vault {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        name: col(row, "name")?,
        destination: col(row, "destination")?,
        jurisdiction: String::new(),
        key_custody: col_value(row, "key_custody")?,
        quota_bytes: col::<Option<i64>>(row, "quota_bytes")?.map(|q| q.max(0) as u64),
        used_bytes: col::<i64>(row, "used_bytes")?.max(0) as u64,
        maintainer_device_id: col(row, "maintainer_device_id")?,
        retention_lock_days: col::<Option<i64>>(row, "retention_lock_days")?
            .map(|d| d.clamp(0, u32::MAX as i64) as u32),
        created_at: time(col(row, "created_at")?),
    })
}

pub async fn vault_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<Vault>> {
    let row = sqlx::query("SELECT * FROM vaults WHERE id = $1 AND deleted_at IS NULL")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(vault).transpose()
}

/// A vault marked deleted (its objects may still be there, for the erasure job).
pub async fn deleted_vault(pool: &AnyPool, id: &str) -> DbResult<Option<Vault>> {
    let row = sqlx::query("SELECT * FROM vaults WHERE id = $1 AND deleted_at IS NOT NULL")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(vault).transpose()
}

/// A tenant's vaults marked deleted.
pub async fn deleted_vaults_of(pool: &AnyPool, tenant_id: &str) -> DbResult<Vec<Vault>> {
    let rows = sqlx::query(
        "SELECT * FROM vaults WHERE tenant_id = $1 AND deleted_at IS NOT NULL ORDER BY id",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(vault).collect()
}

/// The vaults of the tenants in `scope`.
pub async fn vaults_in(
    pool: &AnyPool,
    scope: &TenantScope,
    page: Option<&Page>,
) -> DbResult<Paged<Vault>> {
    let rows = in_scope(
        pool,
        "SELECT v.* FROM vaults v JOIN tenants t ON t.id = v.tenant_id AND v.deleted_at IS NULL",
        scope,
        &[asc("t.path"), asc("v.name"), asc("v.id")],
        page,
    )
    .await?;
    rows.map(|r| vault(&r))
}

pub async fn insert_vault(tx: &mut Tx, v: &Vault, now: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO vaults (id, tenant_id, name, destination, key_custody, quota_bytes,
            used_bytes, created_at, retention_lock_days)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&v.id)
    .bind(&v.tenant_id)
    .bind(&v.name)
    .bind(&v.destination)
    .bind(v.key_custody.as_str())
    .bind(v.quota_bytes.map(|q| q as i64))
    .bind(v.used_bytes as i64)
    .bind(now)
    .bind(v.retention_lock_days.map(i64::from))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Lengthens a vault's retention lock to `days`. False (nothing changed) when the lock is
/// already longer, which a concurrent change may have made it.
pub async fn lengthen_retention_lock(tx: &mut Tx, id: &str, days: u32) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE vaults SET retention_lock_days = $1
         WHERE id = $2 AND deleted_at IS NULL
           AND (retention_lock_days IS NULL OR retention_lock_days <= $1)",
    )
    .bind(i64::from(days))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Whether the vault is there to take it.
pub async fn set_quota(tx: &mut Tx, id: &str, quota_bytes: Option<u64>) -> DbResult<bool> {
    let r = sqlx::query("UPDATE vaults SET quota_bytes = $1 WHERE id = $2 AND deleted_at IS NULL")
        .bind(quota_bytes.map(|q| q as i64))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn mark_vault_deleted(tx: &mut Tx, id: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE vaults SET deleted_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Every vault that is not deleted, oldest first.
pub async fn all_vaults(pool: &AnyPool) -> DbResult<Vec<Vault>> {
    let rows = sqlx::query("SELECT * FROM vaults WHERE deleted_at IS NULL ORDER BY created_at, id")
        .fetch_all(pool)
        .await?;
    rows.iter().map(vault).collect()
}

/// The managed vaults of one tenant (not of the tenants below it), oldest first.
pub async fn managed_vaults_of(pool: &AnyPool, tenant_id: &str) -> DbResult<Vec<Vault>> {
    let rows = sqlx::query(
        "SELECT * FROM vaults WHERE tenant_id = $1 AND key_custody = 'managed'
            AND deleted_at IS NULL ORDER BY created_at, id",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(vault).collect()
}
