//! Role bindings: which role a user holds on which tenant.

use loop_api::RoleBinding;
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col, col_value, time};
use crate::domain::TenantPath;

#[derive(Clone, Debug)]
pub struct BindingRow {
    pub binding: RoleBinding,
    pub tenant_path: TenantPath,
}

fn binding(row: &AnyRow) -> DbResult<BindingRow> {
    Ok(BindingRow {
        binding: RoleBinding {
            id: col(row, "id")?,
            user_id: col(row, "user_id")?,
            tenant_id: col(row, "tenant_id")?,
            role: col_value(row, "role")?,
            created_at: time(col(row, "created_at")?),
        },
        tenant_path: col_value(row, "path")?,
    })
}

pub async fn bindings_of(pool: &AnyPool, user_id: &str) -> DbResult<Vec<BindingRow>> {
    let rows = sqlx::query(
        "SELECT b.*, t.path FROM role_bindings b JOIN tenants t ON t.id = b.tenant_id
         WHERE b.user_id = $1 ORDER BY t.path, b.role",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(binding).collect()
}

/// The role bindings on tenant `tenant_id` (not those above or below it).
pub async fn bindings_in(pool: &AnyPool, tenant_id: &str) -> DbResult<Vec<RoleBinding>> {
    let rows = sqlx::query(
        "SELECT b.*, t.path FROM role_bindings b JOIN tenants t ON t.id = b.tenant_id
         WHERE b.tenant_id = $1 ORDER BY b.user_id, b.role",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| binding(r).map(|b| b.binding)).collect()
}

pub async fn insert_binding(tx: &mut Tx, b: &RoleBinding, now: i64) -> DbResult<bool> {
    let exists = sqlx::query(
        "SELECT id FROM role_bindings WHERE user_id = $1 AND tenant_id = $2 AND role = $3",
    )
    .bind(&b.user_id)
    .bind(&b.tenant_id)
    .bind(b.role.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    if exists.is_some() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO role_bindings (id, user_id, tenant_id, role, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&b.id)
    .bind(&b.user_id)
    .bind(&b.tenant_id)
    .bind(b.role.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

pub async fn delete_binding(tx: &mut Tx, user_id: &str, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM role_bindings WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Removes every role binding of a user; answers how many.
pub async fn delete_of_user(tx: &mut Tx, user_id: &str) -> DbResult<u64> {
    let done = sqlx::query("DELETE FROM role_bindings WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}
