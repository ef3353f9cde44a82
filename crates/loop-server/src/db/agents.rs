//! Enrolment codes and what agents report about their devices.

use loop_api::ProtectedItem;
use sqlx::AnyPool;

use super::{DbResult, Tx, col};

pub async fn insert_code(
    tx: &mut Tx,
    code_hash: &str,
    tenant_id: &str,
    created_by: &str,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO enrolment_codes (code_hash, tenant_id, created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(code_hash)
    .bind(tenant_id)
    .bind(created_by)
    .bind(now)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Uses up a code that is unused and unexpired; returns its tenant. Of two redemptions at
/// once, one gets the tenant.
pub async fn redeem_code(tx: &mut Tx, code_hash: &str, now: i64) -> DbResult<Option<String>> {
    let used = sqlx::query(
        "UPDATE enrolment_codes SET used_at = $1
         WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(code_hash)
    .execute(&mut **tx)
    .await?;
    if used.rows_affected() != 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT tenant_id FROM enrolment_codes WHERE code_hash = $1")
        .bind(code_hash)
        .fetch_one(&mut **tx)
        .await?;
    Ok(Some(col(&row, "tenant_id")?))
}

/// Records the device a code made.
pub async fn code_made_device(tx: &mut Tx, code_hash: &str, device_id: &str) -> DbResult<()> {
    sqlx::query("UPDATE enrolment_codes SET device_id = $1 WHERE code_hash = $2")
        .bind(device_id)
        .bind(code_hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The device was heard from now, running this agent version.
pub async fn heartbeat(pool: &AnyPool, device_id: &str, version: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE devices SET last_seen_at = $1, agent_version = $2 WHERE id = $3")
        .bind(now)
        .bind(version)
        .bind(device_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The protected items of a device.
pub async fn items_of_device(pool: &AnyPool, device_id: &str) -> DbResult<Vec<ProtectedItem>> {
    let rows = sqlx::query("SELECT id FROM protected_items WHERE device_id = $1 ORDER BY name")
        .bind(device_id)
        .fetch_all(pool)
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: String = col(&r, "id")?;
        if let Some(i) = super::items::item_by_id(pool, &id).await? {
            out.push(i);
        }
    }
    Ok(out)
}
