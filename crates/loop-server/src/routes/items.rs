//! Protected items: what a device backs up into which vault, on which schedule; and running
//! one now.

use axum::extract::OriginalUri;
use axum::extract::State;
use axum::http::StatusCode;
use loop_api::PageQuery;
use loop_api::{CreateItem, ItemId, Job, ProtectedItem, UpdateItem};

use super::pages::{Listing, page};
use super::tenants::TenantFilter;
use super::{Json, Path, Query, commit_audited};
use crate::auth::Caller;
use crate::db::{self, devices, items, tenants, vaults};
use crate::domain::{DEFAULT_WINDOW_SECONDS, Permission, check_item, new_id};
use crate::error::{ApiError, ApiResult};
use crate::jobs::scheduler::next_run;
use crate::state::AppState;

/// The item `id`, when the caller may `perm` on its tenant (else 404 or 403).
async fn scoped_item(
    state: &AppState,
    caller: &Caller,
    perm: Permission,
    id: &ItemId,
) -> ApiResult<ProtectedItem> {
    crate::jobs::control::scoped_item(state, caller, perm, id.as_str()).await
}

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
        "post_command": i.post_command.is_some(),
    })
}

/// List protected items
#[utoipa::path(get, path = "/api/v1/items", tag = "items", params(TenantFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<ProtectedItem>)))]
pub async fn list_items(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TenantFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<ProtectedItem>> {
    let scope = caller
        .scope(&state, Permission::DeviceRead, f.tenant_id.as_ref())
        .await?;
    let page = items::items_in(&state.db.pool, &scope, Some(&page(&p)?)).await?;
    Ok(Listing::new(uri, page))
}

/// Create a protected item
///
/// What a device of the tenant backs up into a vault of the tenant, and when (a calendar
/// event or a cron line, in the tenant's time zone). One name per device (409 `item_exists`).
#[utoipa::path(post, path = "/api/v1/items", tag = "items", request_body = CreateItem,
    responses((status = 201, description = "Created", body = ProtectedItem),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn create_item(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateItem>,
) -> ApiResult<(StatusCode, axum::Json<ProtectedItem>)> {
    let tenant = caller
        .tenant(&state, Permission::DeviceWrite, req.tenant_id.as_str())
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
        next_run_at: None,
        created_at: db::time(now),
        updated_at: db::time(now),
    };
    check_item(&mut i)?;
    schedule_next(&state, &mut i).await?;
    let mut tx = state.db.begin().await?;
    items::insert_item(&mut tx, &i, now)
        .await
        .map_err(name_taken)?;
    commit_audited(
        tx,
        caller.event(t, "item.create", "item", Some(&i.id), details(&i)),
        now,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(i)))
}

/// Show a protected item
#[utoipa::path(get, path = "/api/v1/items/{id}", tag = "items", params(("id" = ItemId, Path)),
    responses((status = 200, description = "Success", body = ProtectedItem)))]
pub async fn get_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<ItemId>,
) -> ApiResult<axum::Json<ProtectedItem>> {
    Ok(axum::Json(
        scoped_item(&state, &caller, Permission::DeviceRead, &id).await?,
    ))
}

/// Update a protected item
///
/// What the request gives replaces what was; an empty `schedule` removes the schedule. The
/// next run is computed again from now.
#[utoipa::path(patch, path = "/api/v1/items/{id}", tag = "items", params(("id" = ItemId, Path)),
    request_body = UpdateItem,
    responses((status = 200, description = "Success", body = ProtectedItem),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn update_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<ItemId>,
    Json(req): Json<UpdateItem>,
) -> ApiResult<axum::Json<ProtectedItem>> {
    let mut i = scoped_item(&state, &caller, Permission::DeviceWrite, &id).await?;
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
    check_item(&mut i)?;
    schedule_next(&state, &mut i).await?;
    let now = state.now();
    i.updated_at = db::time(now);
    let mut tx = state.db.begin().await?;
    items::update_item(&mut tx, &i, now)
        .await
        .map_err(name_taken)?;
    commit_audited(
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
    Ok(axum::Json(i))
}

/// Delete a protected item
///
/// Its snapshots stay in the vault, under the vault's retention policy.
#[utoipa::path(delete, path = "/api/v1/items/{id}", tag = "items", params(("id" = ItemId, Path)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<ItemId>,
) -> ApiResult<StatusCode> {
    let i = scoped_item(&state, &caller, Permission::DeviceWrite, &id).await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    crate::db::policies::delete_item_policies(&mut tx, "id", &i.id).await?;
    items::delete_item(&mut tx, &i.id).await?;
    commit_audited(
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
    Ok(StatusCode::NO_CONTENT)
}

/// Back up a protected item now
///
/// Queues a `backup` job of the item for its device's agent, due now and missed if not
/// started within the item's window. While a run of the item is open, the answer is that
/// run. A suspended subscription is `402 subscription_suspended`.
#[utoipa::path(post, path = "/api/v1/items/{id}/run", tag = "items", params(("id" = ItemId, Path)),
    responses((status = 202, description = "The backup job", body = Job),
        (status = 402, description = "The subscription is suspended (problem+json)", body = loop_api::Problem)))]
pub async fn run_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<ItemId>,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    let job = crate::jobs::control::run_item(&state, &caller, id.as_str()).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(job)))
}
