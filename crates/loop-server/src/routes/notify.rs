//! Notification targets, their delivery log, and the events of a tenant.

use axum::extract::OriginalUri;
use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{
    CreateTarget, CreatedTarget, Delivery, Event, EventKind, NotifyTarget, PageQuery, TargetId,
    TenantId, UpdateTarget,
};
use serde::Deserialize;

use super::pages::{Listing, page};
use super::tenants::TenantFilter;
use super::{Json, Path, Query};
use crate::auth::Caller;
use crate::db::notify as db_notify;
use crate::domain::Permission;
use crate::error::ApiResult;
use crate::notify::targets;
use crate::state::AppState;

/// List notification targets
#[utoipa::path(get, path = "/api/v1/notify/targets", tag = "notifications", params(TenantFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<NotifyTarget>)))]
pub async fn list_targets(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TenantFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<NotifyTarget>> {
    let scope = caller
        .scope(&state, Permission::NotifyRead, f.tenant_id.as_ref())
        .await?;
    let page = db_notify::targets_in(&state.db.pool, &scope, Some(&page(&p)?))
        .await?
        .map(|t| Ok(targets::shown(t)))?;
    Ok(Listing::new(uri, page))
}

/// Create a notification target
///
/// An e-mail list (`email`) or a webhook (`webhook`). It hears the tenant's events and,
/// with `include_children` (the default), those of every tenant below it, when at least
/// `min_severity` (default `warning`) and of one of `kinds` (empty: every kind). A webhook
/// target's signing secret is in the answer, once.
#[utoipa::path(post, path = "/api/v1/notify/targets", tag = "notifications", request_body = CreateTarget,
    responses((status = 201, description = "Created", body = CreatedTarget),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 409, description = "The tenant has as many targets as it may (problem+json)", body = loop_api::Problem)))]
pub async fn create_target(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateTarget>,
) -> ApiResult<(StatusCode, axum::Json<CreatedTarget>)> {
    let made = targets::create(&state, &caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(made)))
}

/// Show a notification target
#[utoipa::path(get, path = "/api/v1/notify/targets/{id}", tag = "notifications", params(("id" = TargetId, Path)),
    responses((status = 200, description = "Success", body = NotifyTarget)))]
pub async fn get_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TargetId>,
) -> ApiResult<axum::Json<NotifyTarget>> {
    let t = targets::scoped(&state, &caller, Permission::NotifyRead, &id).await?;
    Ok(axum::Json(targets::shown(t.target)))
}

/// Change a notification target
///
/// What is given replaces what was. Its kind stays: give `email` to an e-mail target and
/// `webhook` to a webhook target.
#[utoipa::path(patch, path = "/api/v1/notify/targets/{id}", tag = "notifications", params(("id" = TargetId, Path)),
    request_body = UpdateTarget,
    responses((status = 200, description = "Success", body = NotifyTarget),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem)))]
pub async fn update_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TargetId>,
    Json(req): Json<UpdateTarget>,
) -> ApiResult<axum::Json<NotifyTarget>> {
    Ok(axum::Json(
        targets::update(&state, &caller, &id, req).await?,
    ))
}

/// Delete a notification target
///
/// What was still queued for it ends as failed; its delivery log stays readable until it
/// is trimmed (`notify.keep_days`).
#[utoipa::path(delete, path = "/api/v1/notify/targets/{id}", tag = "notifications", params(("id" = TargetId, Path)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TargetId>,
) -> ApiResult<StatusCode> {
    targets::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a test notification
///
/// Raises a `test` event addressed to this target only and queues its delivery; the
/// answer is the delivery, to follow in the delivery log. At most 5 tests of a target, and
/// 20 of a tenant's targets, within `signin.window_minutes` (then `429 throttled`).
#[utoipa::path(post, path = "/api/v1/notify/targets/{id}/test", tag = "notifications", params(("id" = TargetId, Path)),
    responses((status = 202, description = "The queued delivery", body = Delivery),
        (status = 429, description = "Too many tests; wait (problem+json)", body = loop_api::Problem)))]
pub async fn test_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TargetId>,
) -> ApiResult<(StatusCode, axum::Json<Delivery>)> {
    let delivery = targets::test(&state, &caller, &id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// Only this tenant's targets (default: every tenant the caller can see).
    pub tenant_id: Option<TenantId>,
    /// Only this target.
    pub target_id: Option<TargetId>,
}

/// The delivery log
///
/// Each event on its way to each target, newest first: its state, tries, the last error
/// and the receiver's last HTTP status.
#[utoipa::path(get, path = "/api/v1/notify/deliveries", tag = "notifications", params(DeliveryFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<Delivery>)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<DeliveryFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Delivery>> {
    if let Some(t) = &f.target_id {
        targets::scoped_log(&state, &caller, t).await?;
    }
    let scope = caller
        .scope(&state, Permission::NotifyRead, f.tenant_id.as_ref())
        .await?;
    let page = db_notify::deliveries_in(
        &state.db.pool,
        &scope,
        f.target_id.as_ref().map(TargetId::as_str),
        &page(&p)?,
    )
    .await?;
    Ok(Listing::new(uri, page))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only this tenant (default: every tenant the caller can see).
    pub tenant_id: Option<TenantId>,
    pub kind: Option<EventKind>,
}

/// List events
///
/// What the service raised for the tenants the caller can see, newest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "notifications", params(EventFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<Event>)))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<EventFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Event>> {
    let scope = caller
        .scope(&state, Permission::NotifyRead, f.tenant_id.as_ref())
        .await?;
    let page = db_notify::events_in(&state.db.pool, &scope, f.kind, &page(&p)?).await?;
    Ok(Listing::new(uri, page))
}
