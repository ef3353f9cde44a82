//! Protected items: what a device backs up into which vault, and when. Made, changed and
//! deleted here for the API and the console alike; each change is audited, and the next
//! scheduled run is computed again in the tenant's time zone.

use loop_api::{CreateItem, ItemId, ProtectedItem, UpdateItem};

use crate::auth::Caller;
use crate::db::{self, devices, items, tenants, vaults};
use crate::domain::{DEFAULT_WINDOW_SECONDS, Permission, check_item, new_id};
use crate::error::{ApiError, ApiResult};
use crate::jobs::scheduler::next_run;
use crate::state::AppState;

/// Sets the item's next scheduled run from now, in its tenant's time zone.
async fn schedule_next(state: &AppState, i: &mut ProtectedItem) -> ApiResult<()> {
    let tz = tenants::tenant_by_id(&state.db.pool, &i.tenant_id)
        .await?
        .map(|t| t.tenant.time_zone)
        .unwrap_or_else(|| "UTC".into());
    i.next_run_at = next_run(i, &tz, db::time(state.now())).map(db::time);
    Ok(())
}

/// A second item of one name on a device is a conflict; any other failure is what it is.
fn name_taken(e: crate::db::DbError) -> ApiError {
    if e.is_unique_violation() {
        ApiError::conflict("item_exists", "the device has an item of this name")
    } else {
        e.into()
    }
}

fn details(i: &ProtectedItem) -> serde_json::Value {
    serde_json::json!({
        "device_id": i.device_id, "vault_id": i.vault_id, "name": i.name, "paths": i.paths,
        "schedule": i.schedule, "pre_command": i.pre_command.is_some(),
        "post_command": i.post_command.is_some(), "upload_limit_kib": i.upload_limit_kib,
    })
}

/// Makes the item `req` describes (device-write on its tenant; its device and vault must be
/// that tenant's, else 404). One name per device (409 `item_exists`).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    req: CreateItem,
) -> ApiResult<ProtectedItem> {
    let tenant = caller
        .tenant(state, Permission::DeviceWrite, req.tenant_id.as_str())
        .await?;
    let t = &tenant.tenant.id;
    // A device or vault of another tenant is as absent as one that does not exist.
    devices::device_by_id(&state.db.pool, req.device_id.as_str())
        .await?
        .filter(|d| &d.tenant_id == t)
        .ok_or_else(ApiError::not_found)?;
    vaults::vault_by_id(&state.db.pool, req.vault_id.as_str())
        .await?
        .filter(|v| &v.tenant_id == t)
        .ok_or_else(ApiError::not_found)?;
    let now = state.now();
    let mut i = ProtectedItem {
        id: new_id(ItemId::PREFIX),
        tenant_id: t.clone(),
        device_id: req.device_id.into(),
        vault_id: req.vault_id.into(),
        name: req.name,
        paths: req.paths,
        excludes: req.excludes,
        one_file_system: req.one_file_system,
        tags: req.tags,
        pre_command: req.pre_command,
        post_command: req.post_command,
        schedule: req.schedule,
        jitter_seconds: req.jitter_seconds.unwrap_or(0),
        window_seconds: req.window_seconds.unwrap_or(DEFAULT_WINDOW_SECONDS),
        upload_limit_kib: req.upload_limit_kib,
        next_run_at: None,
        created_at: db::time(now),
        updated_at: db::time(now),
    };
    check_item(&mut i)?;
    schedule_next(state, &mut i).await?;
    let mut tx = state.db.begin().await?;
    items::insert_item(&mut tx, &i, now)
        .await
        .map_err(name_taken)?;
    db::audit::commit_audited(
        tx,
        caller.event(t, "item.create", "item", Some(&i.id), details(&i)),
        now,
    )
    .await?;
    Ok(i)
}

/// Applies `req` to item `id` (device-write on its tenant): what it gives replaces what was,
/// and an empty schedule removes the schedule.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &ItemId,
    req: UpdateItem,
) -> ApiResult<ProtectedItem> {
    let mut i =
        crate::jobs::control::scoped_item(state, caller, Permission::DeviceWrite, id.as_str())
            .await?;
    let schedule_before = i.schedule.clone();
    macro_rules! take {
        ($($field:ident),*) => { $(if let Some(v) = req.$field { i.$field = v; })* };
    }
    take!(
        name,
        paths,
        excludes,
        one_file_system,
        tags,
        jitter_seconds,
        window_seconds
    );
    if let Some(v) = req.pre_command {
        i.pre_command = Some(v);
    }
    if let Some(v) = req.post_command {
        i.post_command = Some(v);
    }
    if let Some(v) = req.schedule {
        i.schedule = Some(v);
    }
    if let Some(v) = req.upload_limit_kib {
        i.upload_limit_kib = Some(v);
    }
    check_item(&mut i)?;
    // Only a new schedule moves the next run: any other change keeps a run that is due but
    // not fired yet (recomputed from now, it would be skipped without trace).
    let rescheduled = i.schedule != schedule_before;
    if rescheduled {
        schedule_next(state, &mut i).await?;
    }
    let now = state.now();
    i.updated_at = db::time(now);
    let mut tx = state.db.begin().await?;
    items::update_item(&mut tx, &i, rescheduled, now)
        .await
        .map_err(name_taken)?;
    db::audit::commit_audited(
        tx,
        caller.event(
            &i.tenant_id,
            "item.update",
            "item",
            Some(&i.id),
            details(&i),
        ),
        now,
    )
    .await?;
    Ok(i)
}

/// Deletes item `id` (device-write on its tenant) and the policies attached to it; its
/// snapshots stay in the vault, under the vault's retention policy.
pub async fn delete(state: &AppState, caller: &Caller, id: &ItemId) -> ApiResult<()> {
    let i = crate::jobs::control::scoped_item(state, caller, Permission::DeviceWrite, id.as_str())
        .await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    crate::db::policies::delete_item_policies(&mut tx, "id", &i.id).await?;
    items::delete_item(&mut tx, &i.id).await?;
    db::audit::commit_audited(
        tx,
        caller.event(
            &i.tenant_id,
            "item.delete",
            "item",
            Some(&i.id),
            details(&i),
        ),
        now,
    )
    .await?;
    Ok(())
}
