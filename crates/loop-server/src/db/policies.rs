//! Retention policies and which one applies to a vault.

use loop_api::{KeepRules, Policy, Vault};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::page::{Page, Paged, asc};
use super::tenants::in_scope;
use super::{DbError, DbResult, Tx, col, time};
use crate::domain::{TenantPath, TenantScope};

fn policy(row: &AnyRow) -> DbResult<Policy> {
    let rules: String = col(row, "keep_rules")?;
    // Rules that cannot be read must never be taken for "keep everything" or for anything
    // else: the policy is refused as damaged.
    let keep: KeepRules =
        serde_json::from_str(&rules).map_err(|e| DbError::Sql(sqlx::Error::Decode(e.into())))?;
    Ok(Policy {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        vault_id: col(row, "vault_id")?,
        item_id: col(row, "item_id")?,
        keep,
        prune_max_unused_percent: col(row, "prune_max_unused_percent")?,
        prune_grace_seconds: col::<i64>(row, "prune_grace_seconds")?.max(0) as u64,
        maintenance: {
            let text: String = col(row, "maintenance")?;
            serde_json::from_str(&text).map_err(|e| DbError::Sql(sqlx::Error::Decode(e.into())))?
        },
        created_at: time(col(row, "created_at")?),
        updated_at: time(col(row, "updated_at")?),
    })
}

pub async fn policy_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<Policy>> {
    let row = sqlx::query("SELECT * FROM policies WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(policy).transpose()
}

/// The policies of the tenants in `scope`, tenant policies first.
pub async fn policies_in(
    pool: &AnyPool,
    scope: &TenantScope,
    page: Option<&Page>,
) -> DbResult<Paged<Policy>> {
    let rows = in_scope(
        pool,
        "SELECT p.* FROM policies p JOIN tenants t ON t.id = p.tenant_id",
        scope,
        &[asc("t.path"), asc("COALESCE(p.vault_id, '')"), asc("p.id")],
        page,
    )
    .await?;
    rows.map(|r| policy(&r))
}

/// Inserts a policy; a unique violation means its target has one already.
pub async fn insert_policy(tx: &mut Tx, p: &Policy, now: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO policies (id, tenant_id, vault_id, keep_rules, prune_max_unused_percent,
            prune_grace_seconds, created_at, updated_at, maintenance, item_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)",
    )
    .bind(&p.id)
    .bind(&p.tenant_id)
    .bind(&p.vault_id)
    .bind(serde_json::to_string(&p.keep).expect("rules serialize"))
    .bind(p.prune_max_unused_percent)
    .bind(p.prune_grace_seconds as i64)
    .bind(now)
    .bind(serde_json::to_string(&p.maintenance).expect("maintenance serializes"))
    .bind(&p.item_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn update_policy(tx: &mut Tx, p: &Policy, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE policies SET keep_rules = $1, prune_max_unused_percent = $2,
            prune_grace_seconds = $3, updated_at = $4, maintenance = $5
         WHERE id = $6",
    )
    .bind(serde_json::to_string(&p.keep).expect("rules serialize"))
    .bind(p.prune_max_unused_percent)
    .bind(p.prune_grace_seconds as i64)
    .bind(now)
    .bind(serde_json::to_string(&p.maintenance).expect("maintenance serializes"))
    .bind(&p.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn delete_policy(tx: &mut Tx, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM policies WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes the policy of a vault that is being deleted, and those of its items.
pub async fn delete_vault_policy(tx: &mut Tx, vault_id: &str) -> DbResult<()> {
    sqlx::query(
        "DELETE FROM policies WHERE vault_id = $1
           OR item_id IN (SELECT id FROM protected_items WHERE vault_id = $1)",
    )
    .bind(vault_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes the policies of items that are being deleted: the item `id` (`column` "id"), or
/// every item of the device `id` ("device_id").
pub async fn delete_item_policies(tx: &mut Tx, column: &'static str, id: &str) -> DbResult<()> {
    let sql = match column {
        "id" => "DELETE FROM policies WHERE item_id = $1",
        "device_id" => {
            "DELETE FROM policies WHERE item_id IN
               (SELECT id FROM protected_items WHERE device_id = $1)"
        }
        other => unreachable!("no item column {other}"),
    };
    sqlx::query(sql).bind(id).execute(&mut **tx).await?;
    Ok(())
}

/// The policies attached to items of the vault, with each item's ID.
pub async fn item_policies(pool: &AnyPool, vault_id: &str) -> DbResult<Vec<Policy>> {
    let rows = sqlx::query(
        "SELECT p.* FROM policies p JOIN protected_items i ON i.id = p.item_id
         WHERE i.vault_id = $1 ORDER BY p.item_id",
    )
    .bind(vault_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(policy).collect()
}

/// Where an applying policy is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Vault,
    /// The vault's tenant or a tenant above it.
    Tenant,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Vault => "vault",
            Source::Tenant => "tenant",
        }
    }
}

/// The policy that applies to the vault `v` (see [`effective`]), its tenant's path looked up.
pub async fn effective_for_vault(pool: &AnyPool, v: &Vault) -> DbResult<Option<(Policy, Source)>> {
    match super::tenants::tenant_by_id(pool, &v.tenant_id).await? {
        Some(t) => effective(pool, &v.id, &t.path).await,
        None => Ok(None),
    }
}

/// The policy that applies to the vault `vault_id` of the tenant at `tenant_path`: its own,
/// else the nearest one attached to its tenant or a tenant above it.
pub async fn effective(
    pool: &AnyPool,
    vault_id: &str,
    tenant_path: &TenantPath,
) -> DbResult<Option<(Policy, Source)>> {
    let own = sqlx::query("SELECT * FROM policies WHERE vault_id = $1")
        .bind(vault_id)
        .fetch_optional(pool)
        .await?;
    if let Some(row) = own {
        return Ok(Some((policy(&row)?, Source::Vault)));
    }
    let inherited = sqlx::query(
        "SELECT p.* FROM policies p JOIN tenants t ON t.id = p.tenant_id
         WHERE p.vault_id IS NULL AND p.item_id IS NULL
           AND substr($1, 1, length(t.path)) = t.path
         ORDER BY length(t.path) DESC LIMIT 1",
    )
    .bind(tenant_path.as_str())
    .fetch_optional(pool)
    .await?;
    inherited
        .as_ref()
        .map(|row| Ok((policy(row)?, Source::Tenant)))
        .transpose()
}
