//! Tokens: the secrets agents and scripts present, and what each may do.

use loop_api::{Token, TokenPermission};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::page::{Page, Paged, asc};
use super::tenants::in_scope;
use super::{DbResult, Tx, col, col_value, opt_time, parse_value, time};
use crate::domain::TenantScope;

fn split(s: String) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn token(row: &AnyRow) -> DbResult<Token> {
    Ok(Token {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        kind: col_value(row, "kind")?,
        name: col(row, "name")?,
        device_id: col(row, "device_id")?,
        vault_ids: split(col(row, "vault_ids")?),
        permissions: col::<String>(row, "permissions")?
            .split_whitespace()
            .map(|p| parse_value::<TokenPermission>("permissions", p))
            .collect::<DbResult<_>>()?,
        created_at: time(col(row, "created_at")?),
        expires_at: opt_time(col(row, "expires_at")?),
        revoked_at: opt_time(col(row, "revoked_at")?),
        last_used_at: opt_time(col(row, "last_used_at")?),
    })
}

pub async fn token_by_hash(pool: &AnyPool, hash: &str) -> DbResult<Option<Token>> {
    let row = sqlx::query("SELECT * FROM tokens WHERE secret_hash = $1")
        .bind(hash)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(token).transpose()
}

pub async fn token_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<Token>> {
    let row = sqlx::query("SELECT * FROM tokens WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(token).transpose()
}

/// The tokens of the tenants in `scope`.
pub async fn tokens_in(
    pool: &AnyPool,
    scope: &TenantScope,
    page: Option<&Page>,
) -> DbResult<Paged<Token>> {
    let rows = in_scope(
        pool,
        "SELECT k.* FROM tokens k JOIN tenants t ON t.id = k.tenant_id",
        scope,
        &[asc("t.path"), asc("k.created_at"), asc("k.id")],
        page,
    )
    .await?;
    rows.map(|r| token(&r))
}

/// Stores a new token, unless its tenant was erased or its device removed since the caller
/// checked them (false, and nothing stored). The tenant's row and the device's are written
/// first: an erasure or a removal running at once either committed before (and is seen
/// here) or waits for this transaction, and then revokes this token with the others.
pub async fn insert_token(
    tx: &mut Tx,
    t: &Token,
    secret_hash: &str,
    created_by: &str,
    now: i64,
) -> DbResult<bool> {
    if !super::tenants::hold_live(tx, &t.tenant_id).await? {
        return Ok(false);
    }
    if let Some(d) = &t.device_id {
        let device = sqlx::query(
            "UPDATE devices SET deleted_at = deleted_at
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(d)
        .bind(&t.tenant_id)
        .execute(&mut **tx)
        .await?;
        if device.rows_affected() != 1 {
            return Ok(false);
        }
    }
    sqlx::query(
        "INSERT INTO tokens (id, secret_hash, tenant_id, kind, name, device_id, vault_ids,
            permissions, created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&t.id)
    .bind(secret_hash)
    .bind(&t.tenant_id)
    .bind(t.kind.as_str())
    .bind(&t.name)
    .bind(&t.device_id)
    .bind(t.vault_ids.join(" "))
    .bind(
        t.permissions
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    )
    .bind(created_by)
    .bind(now)
    .bind(t.expires_at.map(|e| e.timestamp_millis()))
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

pub async fn revoke_token(tx: &mut Tx, id: &str, now: i64) -> DbResult<bool> {
    let r = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn touch_token(tx: &mut Tx, id: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Every replication token of the tenant, revoked ones included (what one wrote, the next
/// may remove).
pub async fn replicators(pool: &AnyPool, tenant_id: &str) -> DbResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM tokens WHERE tenant_id = $1
         AND (' ' || permissions || ' ') LIKE '% replicate %'",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?)
}
