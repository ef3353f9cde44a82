//! Brandings: a partner's product name, colour and logo for the console.

use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col};

/// One tenant's branding, as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrandingRow {
    pub tenant_id: String,
    pub product_name: String,
    /// `#rrggbb`, lower case.
    pub accent: String,
    /// The logo's PNG, base64.
    pub logo_png: Option<String>,
    pub updated_at: i64,
}

fn branding(row: &AnyRow) -> DbResult<BrandingRow> {
    Ok(BrandingRow {
        tenant_id: col(row, "tenant_id")?,
        product_name: col(row, "product_name")?,
        accent: col(row, "accent")?,
        logo_png: col(row, "logo_png")?,
        updated_at: col(row, "updated_at")?,
    })
}

pub async fn branding_of(pool: &AnyPool, tenant_id: &str) -> DbResult<Option<BrandingRow>> {
    let row = sqlx::query("SELECT * FROM brandings WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(branding).transpose()
}

/// The nearest branding of `ids` (a tenant's path, root first): the last one that has one.
pub async fn nearest(pool: &AnyPool, ids: &[&str]) -> DbResult<Option<BrandingRow>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let places: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT * FROM brandings WHERE tenant_id IN ({})",
        places.join(", ")
    );
    // Only numbered places are written into the text; the IDs are bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(*id);
    }
    let found = q
        .fetch_all(pool)
        .await?
        .iter()
        .map(branding)
        .collect::<DbResult<Vec<_>>>()?;
    Ok(ids
        .iter()
        .rev()
        .find_map(|id| found.iter().find(|b| b.tenant_id == *id).cloned()))
}

/// Sets the tenant's branding, replacing what it had.
pub async fn put(tx: &mut Tx, b: &BrandingRow) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO brandings (tenant_id, product_name, accent, logo_png, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id) DO UPDATE SET product_name = $2, accent = $3, logo_png = $4,
            updated_at = $5",
    )
    .bind(&b.tenant_id)
    .bind(&b.product_name)
    .bind(&b.accent)
    .bind(b.logo_png.as_deref())
    .bind(b.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes the tenant's branding; false when it had none.
pub async fn remove(tx: &mut Tx, tenant_id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM brandings WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() > 0)
}
