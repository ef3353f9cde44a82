//! Devices, tokens and sessions.

use axum::extract::OriginalUri;
use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{
    CreateDevice, CreateToken, CreatedToken, Device, DeviceId, Session, SessionId, Token, TokenId,
};

use super::pages::{Listing, page};
use super::tenants::TenantFilter;
use super::{Json, Path, Query, commit_audited};
use crate::auth::Caller;
use crate::db::{self, devices, tokens};
use crate::domain::{NewDevice, Permission, new_id};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use loop_api::PageQuery;

/// List devices
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(TenantFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<Device>)))]
pub async fn list_devices(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TenantFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Device>> {
    let scope = caller
        .scope(&state, Permission::DeviceRead, f.tenant_id.as_ref())
        .await?;
    let page = devices::devices_in(&state.db.pool, &scope, Some(&page(&p)?)).await?;
    Ok(Listing::new(uri, page))
}

/// Enrol a device
///
/// A machine that will back up with a device token.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", request_body = CreateDevice,
    responses((status = 201, description = "Created", body = Device),
        (status = 402, description = "The subscription is suspended (problem+json)", body = loop_api::Problem),
        (status = 409, description = "The plan's device limit is reached (problem+json)", body = loop_api::Problem)))]
pub async fn create_device(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateDevice>,
) -> ApiResult<(StatusCode, axum::Json<Device>)> {
    let tenant = caller
        .tenant(&state, Permission::DeviceWrite, req.tenant_id.as_str())
        .await?;
    let req = NewDevice::parse(req)?;
    let now = state.now();
    let d = Device {
        id: new_id(DeviceId::PREFIX),
        tenant_id: tenant.tenant.id,
        name: req.name,
        created_at: db::time(now),
        last_seen_at: None,
    };
    let mut tx = state.db.begin().await?;
    devices::insert_device(&mut tx, &d, now).await?;
    crate::billing::admit_device(&mut tx, &d.tenant_id).await?;
    commit_audited(
        tx,
        caller.event(
            &d.tenant_id,
            "device.create",
            "device",
            Some(&d.id),
            serde_json::json!({}),
        ),
        now,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(d)))
}

/// Remove a device
///
/// Its tokens are revoked.
#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = "devices", params(("id" = DeviceId, Path)),
    responses((status = 204, description = "Done, no content"), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn delete_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<DeviceId>,
) -> ApiResult<StatusCode> {
    caller.user()?;
    let d = devices::device_by_id(&state.db.pool, id.as_str())
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller
        .tenant(&state, Permission::DeviceWrite, &d.tenant_id)
        .await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    devices::delete_device(&mut tx, id.as_str(), now).await?;
    crate::db::policies::delete_item_policies(&mut tx, "device_id", id.as_str()).await?;
    crate::db::items::delete_items_of(&mut tx, "device_id", id.as_str()).await?;
    commit_audited(
        tx,
        caller.event(
            &d.tenant_id,
            "device.delete",
            "device",
            Some(id.as_str()),
            serde_json::json!({}),
        ),
        now,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List tokens
///
/// Without their secrets, which only the creation answer holds.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(TenantFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<Token>)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TenantFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Token>> {
    let scope = caller
        .scope(&state, Permission::TokenRead, f.tenant_id.as_ref())
        .await?;
    let page = tokens::tokens_in(&state.db.pool, &scope, Some(&page(&p)?)).await?;
    Ok(Listing::new(uri, page))
}

/// Create a token
///
/// A device or API token. The secret is in the response once; the server keeps only its hash.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, description = "Created", body = CreatedToken), (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 409, description = "The tenant was erased or the device removed meanwhile (problem+json)", body = loop_api::Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateToken>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    let made = crate::tokens::create(&state, &caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(made)))
}

/// Revoke a token
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = TokenId, Path)),
    responses((status = 204, description = "Done, no content"), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TokenId>,
) -> ApiResult<StatusCode> {
    crate::tokens::revoke(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List sessions
///
/// Without `tenant_id`: the caller's own sessions. With it: the sessions of that tenant's users
/// (needs the session-read permission there).
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", params(TenantFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<Session>)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TenantFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Session>> {
    let rows = crate::accounts::sessions(&state, &caller, f.tenant_id.as_ref(), &page(&p)?).await?;
    Ok(Listing::new(uri, rows))
}

/// End a session
///
/// One's own, or (with the session-revoke permission) one of the tenant's.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions", params(("id" = SessionId, Path)),
    responses((status = 204, description = "Done, no content"), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<SessionId>,
) -> ApiResult<StatusCode> {
    crate::accounts::revoke_session(&state, &caller, id.as_str()).await?;
    Ok(StatusCode::NO_CONTENT)
}
