//! The jurisdictions each tenant allows (`tenants.jurisdictions`).

use sqlx::{AnyPool, Row as _};

use super::{DbResult, Tx};
use crate::domain::TenantPath;
use crate::residency::parse_stored;

/// The sets of the tenants on `path`, the provider's first and the tenant's own last (`None`
/// where a tenant sets nothing). One query.
pub async fn chain(pool: &AnyPool, path: &TenantPath) -> DbResult<Vec<Option<Vec<String>>>> {
    let ids: Vec<&str> = path.ids().collect();
    let marks = (1..=ids.len())
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Safe to assemble: only numbered placeholders; every value is bound.
    let sql = format!("SELECT id, jurisdictions FROM tenants WHERE id IN ({marks})");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in &ids {
        q = q.bind(*id);
    }
    let rows = q.fetch_all(pool).await?;
    let mut by_id = std::collections::HashMap::new();
    for r in &rows {
        let id: String = r.try_get("id")?;
        let set: Option<String> = r.try_get("jurisdictions")?;
        by_id.insert(id, parse_stored(set));
    }
    Ok(ids.iter().map(|id| by_id.remove(*id).flatten()).collect())
}

/// Stores the set a tenant allows (`None`: it sets none).
pub async fn set(tx: &mut Tx, tenant_id: &str, allowed: Option<&[String]>) -> DbResult<()> {
    sqlx::query("UPDATE tenants SET jurisdictions = $1 WHERE id = $2")
        .bind(allowed.map(|a| a.join(" ")))
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
