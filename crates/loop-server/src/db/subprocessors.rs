//! The provider's register of sub-processors (`subprocessors`).

use loop_api::Subprocessor;
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col, time};

fn subprocessor(row: &AnyRow) -> DbResult<Subprocessor> {
    Ok(Subprocessor {
        id: col(row, "id")?,
        name: col(row, "name")?,
        purpose: col(row, "purpose")?,
        location: col(row, "location")?,
        added_at: time(col(row, "added_at")?),
    })
}

pub async fn list(pool: &AnyPool) -> DbResult<Vec<Subprocessor>> {
    let rows = sqlx::query("SELECT * FROM subprocessors ORDER BY name, id")
        .fetch_all(pool)
        .await?;
    rows.iter().map(subprocessor).collect()
}

pub async fn by_id(pool: &AnyPool, id: &str) -> DbResult<Option<Subprocessor>> {
    let row = sqlx::query("SELECT * FROM subprocessors WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(subprocessor).transpose()
}

/// Adds one (a name already listed is a unique violation).
pub async fn insert(tx: &mut Tx, s: &Subprocessor) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO subprocessors (id, name, purpose, location, added_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&s.id)
    .bind(&s.name)
    .bind(&s.purpose)
    .bind(&s.location)
    .bind(s.added_at.timestamp_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn delete(tx: &mut Tx, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM subprocessors WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Queues the notice of a change to every active admin of a customer and every active
/// partner-admin: the controllers, and the processors who resell to them (GDPR Art. 28).
/// Returns how many were queued.
pub async fn queue_notices(
    tx: &mut Tx,
    change_id: &str,
    params: &serde_json::Value,
    now: i64,
) -> DbResult<u64> {
    let r = sqlx::query(
        "INSERT INTO mail_outbox (id, kind, user_id, params, state, attempts, created_at,
                                  next_attempt_at)
         SELECT CAST($1 AS TEXT) || u.id, 'subprocessor_change', u.id, $2, 'queued', 0, $3, $3
         FROM users u
         WHERE u.status = 'active' AND EXISTS (
             SELECT 1 FROM role_bindings b JOIN tenants t ON t.id = b.tenant_id
             WHERE b.user_id = u.id AND t.status <> 'erased'
               AND ((b.role = 'admin' AND t.kind = 'customer')
                    OR b.role = 'partner-admin'))",
    )
    .bind(format!("{change_id}-"))
    .bind(params.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected())
}
