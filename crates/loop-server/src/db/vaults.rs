//! Vaults and their usage accounting.

use loop_api::Vault;
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col, time};

fn vault(row: &AnyRow) -> DbResult<Vault> {
    Ok(Vault {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        name: col(row, "name")?,
        destination: col(row, "destination")?,
        jurisdiction: String::new(),
        key_custody: col(row, "key_custody")?,
        quota_bytes: col::<Option<i64>>(row, "quota_bytes")?.map(|q| q.max(0) as u64),
        used_bytes: col::<i64>(row, "used_bytes")?.max(0) as u64,
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

pub async fn vaults_in(pool: &AnyPool, tenant_ids: &[String]) -> DbResult<Vec<Vault>> {
    let mut out = Vec::new();
    for t in tenant_ids {
        let rows = sqlx::query(
            "SELECT * FROM vaults WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY name",
        )
        .bind(t)
        .fetch_all(pool)
        .await?;
        for r in &rows {
            out.push(vault(r)?);
        }
    }
    Ok(out)
}

pub async fn insert_vault(tx: &mut Tx, v: &Vault, now: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO vaults (id, tenant_id, name, destination, key_custody, quota_bytes,
            used_bytes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&v.id)
    .bind(&v.tenant_id)
    .bind(&v.name)
    .bind(&v.destination)
    .bind(&v.key_custody)
    .bind(v.quota_bytes.map(|q| q as i64))
    .bind(v.used_bytes as i64)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn mark_vault_deleted(tx: &mut Tx, id: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE vaults SET deleted_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Reserves `bytes` of the vault's quota in one statement; false when that would exceed it.
pub async fn reserve(pool: &AnyPool, id: &str, bytes: u64) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE vaults SET used_bytes = used_bytes + $1
         WHERE id = $2 AND (quota_bytes IS NULL OR used_bytes + $1 <= quota_bytes)",
    )
    .bind(bytes as i64)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Gives back `bytes` (a failed upload, a deleted object).
pub async fn release(pool: &AnyPool, id: &str, bytes: u64) -> DbResult<()> {
    sqlx::query(
        "UPDATE vaults SET used_bytes = CASE WHEN used_bytes > $1 THEN used_bytes - $1 ELSE 0 END
         WHERE id = $2",
    )
    .bind(bytes as i64)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}
