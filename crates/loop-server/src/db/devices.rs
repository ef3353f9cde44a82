//! Devices: the machines whose agents back up.

use loop_api::Device;
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::page::{Page, Paged, asc};
use super::tenants::in_scope;
use super::{DbResult, Tx, col, opt_time, time};
use crate::domain::TenantScope;

pub(super) fn device(row: &AnyRow) -> DbResult<Device> {
    Ok(Device {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        name: col(row, "name")?,
        created_at: time(col(row, "created_at")?),
        last_seen_at: opt_time(col(row, "last_seen_at")?),
    })
}

pub async fn device_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<Device>> {
    let row = sqlx::query("SELECT * FROM devices WHERE id = $1 AND deleted_at IS NULL")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(device).transpose()
}

/// The devices of the tenants in `scope`.
pub async fn devices_in(
    pool: &AnyPool,
    scope: &TenantScope,
    page: Option<&Page>,
) -> DbResult<Paged<Device>> {
    let rows = in_scope(
        pool,
        "SELECT d.* FROM devices d JOIN tenants t ON t.id = d.tenant_id AND d.deleted_at IS NULL",
        scope,
        &[asc("t.path"), asc("d.name"), asc("d.id")],
        page,
    )
    .await?;
    rows.map(|r| device(&r))
}

pub async fn insert_device(tx: &mut Tx, d: &Device, now: i64) -> DbResult<()> {
    sqlx::query("INSERT INTO devices (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&d.id)
        .bind(&d.tenant_id)
        .bind(&d.name)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes a device and revokes its tokens; the vaults it maintained have no maintainer.
pub async fn delete_device(tx: &mut Tx, id: &str, now: i64) -> DbResult<()> {
    for vault_id in super::deletions::maintained_by(tx, id).await? {
        super::deletions::set_maintainer(tx, &vault_id, None, now).await?;
    }
    sqlx::query("UPDATE devices SET deleted_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn touch_device(pool: &AnyPool, id: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
