//! Protected items: what a device backs up into which vault, on which schedule; and running
//! one now.

use axum::extract::OriginalUri;
use axum::extract::State;
use axum::http::StatusCode;
use loop_api::PageQuery;
use loop_api::{CreateItem, ItemId, Job, ProtectedItem, UpdateItem};

use super::pages::{Listing, page};
use super::tenants::TenantFilter;
use super::{Json, Path, Query};
use crate::auth::Caller;
use crate::db::items;
use crate::domain::Permission;
use crate::error::ApiResult;
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
    let i = crate::items::create(&state, &caller, req).await?;
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
    Ok(axum::Json(
        crate::items::update(&state, &caller, &id, req).await?,
    ))
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
    crate::items::delete(&state, &caller, &id).await?;
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
