//! Whether a vault still takes writes: a deleted vault, or one of an erased tenant, takes
//! none, a change under way in it stops at its next lease renewal, and its erasure waits
//! until none is under way before it lists what to delete.

use sqlx::AnyPool;

use super::super::{DbResult, col};

/// Whether vault `$1` is deleted, and its tenant's status (no row for an unknown vault).
pub(super) const VAULT_STATE: &str = "SELECT v.deleted_at, t.status FROM vaults v
     JOIN tenants t ON t.id = v.tenant_id WHERE v.id = $1";

/// A vault takes no more writes once deleted, its tenant erased, or when unknown.
pub(super) fn is_closed(row: Option<sqlx::any::AnyRow>) -> DbResult<bool> {
    let Some(r) = row else { return Ok(true) };
    Ok(col::<Option<i64>>(&r, "deleted_at")?.is_some() || col::<String>(&r, "status")? == "erased")
}

/// True when the vault takes no more writes (deleted, its tenant erased, or unknown): a
/// change under way stops before it stores anything, and its erasure waits for that.
pub async fn closed(pool: &AnyPool, vault_id: &str) -> DbResult<bool> {
    is_closed(
        sqlx::query(VAULT_STATE)
            .bind(vault_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// How many of the vault's objects a request is changing now (a claim whose lease runs).
pub async fn changes_under_way(pool: &AnyPool, vault_id: &str, now: i64) -> DbResult<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM vault_objects
         WHERE vault_id = $1 AND state <> 'stored' AND lease_until > $2",
    )
    .bind(vault_id)
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(n.max(0) as u64)
}
