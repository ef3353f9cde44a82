//! A partner's branding of the console (white label).

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use loop_api::{AppliedBranding, Branding, SetBranding, TenantId};

use super::{Json, Path};
use crate::auth::Caller;
use crate::db;
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A branding request at most: a logo of `MAX_LOGO_BYTES` in base64, and the rest.
pub const BODY_BYTES: usize = crate::branding::MAX_LOGO_BYTES * 4 / 3 + 8 * 1024;

/// Show the branding that applies to a tenant
///
/// The tenant's own, else the nearest one above it (its `tenant_id` says whose); none: the
/// console's own look.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/branding", tag = "tenants",
    params(("id" = TenantId, Path)),
    responses((status = 200, description = "Success", body = AppliedBranding),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn get_branding(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
) -> ApiResult<axum::Json<AppliedBranding>> {
    let t = caller
        .tenant(&state, Permission::TenantRead, id.as_str())
        .await?;
    let ids: Vec<&str> = t.path.ids().collect();
    let row = db::brandings::nearest(&state.db.pool, &ids).await?;
    Ok(axum::Json(AppliedBranding {
        branding: row.as_ref().map(crate::branding::shown),
    }))
}

/// Brand the console
///
/// A partner's (or the provider's) product name, colour and logo, which the console shows
/// to everyone signed in to it or to a tenant below it. Replaces what was set.
#[utoipa::path(put, path = "/api/v1/tenants/{id}/branding", tag = "tenants",
    params(("id" = TenantId, Path)), request_body = SetBranding,
    responses((status = 200, description = "Success", body = Branding),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem)))]
pub async fn set_branding(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
    Json(req): Json<SetBranding>,
) -> ApiResult<axum::Json<Branding>> {
    let logo = match &req.logo_png {
        Some(b) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|_| ApiError::bad_request("logo_png is base64"))?,
        ),
        None => None,
    };
    let b = crate::branding::set(
        &state,
        &caller,
        id.as_str(),
        &req.product_name,
        &req.accent,
        logo,
    )
    .await?;
    Ok(axum::Json(b))
}

/// Remove a tenant's branding
///
/// It and the tenants below it take the nearest branding above, or the console's own look.
/// Removing a branding that is not there changes nothing (and is recorded all the same).
#[utoipa::path(delete, path = "/api/v1/tenants/{id}/branding", tag = "tenants",
    params(("id" = TenantId, Path)),
    responses((status = 204, description = "Removed")))]
pub async fn clear_branding(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
) -> ApiResult<StatusCode> {
    crate::branding::clear(&state, &caller, id.as_str()).await?;
    Ok(StatusCode::NO_CONTENT)
}
