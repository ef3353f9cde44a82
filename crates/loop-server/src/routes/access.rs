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
use crate::db::{self, devices, tokens, vaults};
use crate::domain::{NewDevice, NewToken, Permission, new_id, new_secret, secret_hash};
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
    responses((status = 201, description = "Created", body = CreatedToken), (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateToken>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    let tenant = caller
        .tenant(&state, Permission::TokenWrite, req.tenant_id.as_str())
        .await?;
    let req = NewToken::parse(req)?;
    if let Some(d) = req.holder.device_id() {
        let dev = devices::device_by_id(&state.db.pool, d.as_str()).await?;
        if dev.is_none_or(|dev| dev.tenant_id != tenant.tenant.id) {
            return Err(ApiError::bad_request("no such device in this tenant"));
        }
    }
    for v in &req.vault_ids {
        let vault = vaults::vault_by_id(&state.db.pool, v.as_str()).await?;
        if vault.is_none_or(|vault| vault.tenant_id != tenant.tenant.id) {
            return Err(ApiError::bad_request("no such vault in this tenant"));
        }
    }
    let now = state.now();
    let t = Token {
        id: new_id(TokenId::PREFIX),
        tenant_id: tenant.tenant.id.clone(),
        kind: req.holder.kind(),
        name: req.name,
        device_id: req.holder.device_id().map(|d| d.to_string()),
        vault_ids: req.vault_ids.into_iter().map(String::from).collect(),
        permissions: req.permissions,
        created_at: db::time(now),
        expires_at: (req.expires_in_days).map(|d| db::time(now + d as i64 * 86_400_000)),
        revoked_at: None,
        last_used_at: None,
    };
    let secret = new_secret("lpt");
    let mut tx = state.db.begin().await?;
    tokens::insert_token(&mut tx, &t, &secret_hash(&secret), &caller.actor().1, now).await?;
    commit_audited(
        tx,
        caller.event(
            &t.tenant_id,
            "token.create",
            "token",
            Some(&t.id),
            serde_json::json!({
                "kind": t.kind, "permissions": t.permissions, "vault_ids": t.vault_ids,
                "device_id": t.device_id,
            }),
        ),
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedToken {
            token: t,
            secret: secret.into(),
        }),
    ))
}

/// Revoke a token
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = TokenId, Path)),
    responses((status = 204, description = "Done, no content"), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TokenId>,
) -> ApiResult<StatusCode> {
    caller.user()?;
    let t = tokens::token_by_id(&state.db.pool, id.as_str())
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller
        .tenant(&state, Permission::TokenWrite, &t.tenant_id)
        .await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    tokens::revoke_token(&mut tx, id.as_str(), now).await?;
    commit_audited(
        tx,
        caller.event(
            &t.tenant_id,
            "token.revoke",
            "token",
            Some(id.as_str()),
            serde_json::json!({}),
        ),
        now,
    )
    .await?;
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
