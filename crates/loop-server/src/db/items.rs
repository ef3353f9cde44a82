//! Protected items, and the scheduler's view of them: which are due.

use loop_api::ProtectedItem;
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::page::{Page, Paged, asc};
use super::tenants::in_scope;
use super::{DbResult, Tx, col, col_json, opt_time, time};
use crate::domain::TenantScope;

pub(super) fn item(row: &AnyRow) -> DbResult<ProtectedItem> {
    Ok(ProtectedItem {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        device_id: col(row, "device_id")?,
        vault_id: col(row, "vault_id")?,
        name: col(row, "name")?,
        paths: col_json(row, "paths")?,
        excludes: col_json(row, "excludes")?,
        one_file_system: col::<i64>(row, "one_file_system")? != 0,
        tags: col_json(row, "tags")?,
        pre_command: col(row, "pre_command")?,
        post_command: col(row, "post_command")?,
        schedule: col(row, "schedule")?,
        jitter_seconds: col::<i64>(row, "jitter_seconds")?.clamp(0, u32::MAX as i64) as u32,
        window_seconds: col::<i64>(row, "window_seconds")?.clamp(0, u32::MAX as i64) as u32,
        upload_limit_kib: col::<Option<i64>>(row, "upload_limit_kib")?
            .map(|k| k.clamp(1, u32::MAX as i64) as u32),
        next_run_at: opt_time(col(row, "next_run_at")?),
        created_at: time(col(row, "created_at")?),
        updated_at: time(col(row, "updated_at")?),
    })
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).expect("strings serialize")
}

pub async fn item_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<ProtectedItem>> {
    let row = sqlx::query("SELECT * FROM protected_items WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(item).transpose()
}

/// The items of the tenants in `scope`, by tenant, device and name.
pub async fn items_in(
    pool: &AnyPool,
    scope: &TenantScope,
    page: Option<&Page>,
) -> DbResult<Paged<ProtectedItem>> {
    let rows = in_scope(
        pool,
        "SELECT i.* FROM protected_items i JOIN tenants t ON t.id = i.tenant_id",
        scope,
        &[
            asc("t.path"),
            asc("i.device_id"),
            asc("i.name"),
            asc("i.id"),
        ],
        page,
    )
    .await?;
    rows.map(|r| item(&r))
}

/// Inserts an item (`next_run_at` as the item says); a unique violation means the device
/// has an item of that name.
pub async fn insert_item(tx: &mut Tx, i: &ProtectedItem, now: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO protected_items (id, tenant_id, device_id, vault_id, name, paths, excludes,
            one_file_system, tags, pre_command, post_command, schedule, jitter_seconds,
            window_seconds, next_run_at, created_at, updated_at, upload_limit_kib)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17)",
    )
    .bind(&i.id)
    .bind(&i.tenant_id)
    .bind(&i.device_id)
    .bind(&i.vault_id)
    .bind(&i.name)
    .bind(json(&i.paths))
    .bind(json(&i.excludes))
    .bind(i.one_file_system as i64)
    .bind(json(&i.tags))
    .bind(&i.pre_command)
    .bind(&i.post_command)
    .bind(&i.schedule)
    .bind(i.jitter_seconds as i64)
    .bind(i.window_seconds as i64)
    .bind(i.next_run_at.map(|t| t.timestamp_millis()))
    .bind(now)
    .bind(i.upload_limit_kib.map(i64::from))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores every setting of an item, and `next_run_at` when `rescheduled` (otherwise the
/// stored one stays, as the scheduler may have moved it meanwhile).
pub async fn update_item(
    tx: &mut Tx,
    i: &ProtectedItem,
    rescheduled: bool,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE protected_items SET name = $1, paths = $2, excludes = $3, one_file_system = $4,
            tags = $5, pre_command = $6, post_command = $7, schedule = $8, jitter_seconds = $9,
            window_seconds = $10,
            next_run_at = CASE WHEN $15 = 1 THEN $11 ELSE next_run_at END,
            updated_at = $12, upload_limit_kib = $14
         WHERE id = $13",
    )
    .bind(&i.name)
    .bind(json(&i.paths))
    .bind(json(&i.excludes))
    .bind(i.one_file_system as i64)
    .bind(json(&i.tags))
    .bind(&i.pre_command)
    .bind(&i.post_command)
    .bind(&i.schedule)
    .bind(i.jitter_seconds as i64)
    .bind(i.window_seconds as i64)
    .bind(i.next_run_at.map(|t| t.timestamp_millis()))
    .bind(now)
    .bind(&i.id)
    .bind(i.upload_limit_kib.map(i64::from))
    .bind(rescheduled as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn delete_item(tx: &mut Tx, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM protected_items WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes the items of a device or a vault that is being deleted (`column` is
/// `device_id` or `vault_id`).
pub async fn delete_items_of(tx: &mut Tx, column: &'static str, id: &str) -> DbResult<u64> {
    let sql = match column {
        "device_id" => "DELETE FROM protected_items WHERE device_id = $1",
        "vault_id" => "DELETE FROM protected_items WHERE vault_id = $1",
        other => unreachable!("no item column {other}"),
    };
    Ok(sqlx::query(sql)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Items with a schedule whose next run is due at `now`, oldest first, at most `limit`.
pub async fn due(pool: &AnyPool, now: i64, limit: u32) -> DbResult<Vec<ProtectedItem>> {
    let rows = sqlx::query(
        "SELECT * FROM protected_items
         WHERE schedule IS NOT NULL AND next_run_at IS NOT NULL AND next_run_at <= $1
         ORDER BY next_run_at LIMIT $2",
    )
    .bind(now)
    .bind(limit as i64)
    .fetch_all(pool)
    .await?;
    rows.iter().map(item).collect()
}
