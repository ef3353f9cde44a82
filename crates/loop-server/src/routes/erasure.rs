//! `POST /api/v1/tenants/{id}/erase`: crypto-shredding of a customer, as a provider-admin
//! asks for it. The work itself is `crate::erasure::erase_tenant`.

use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{DeletionCertificate, EraseTenant, TenantErasure, TenantId};

use super::{Json, Path};
use crate::auth::Caller;
use crate::domain::{Permission, TenantKind};
use crate::erasure::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Erase a customer tenant
///
/// Destroys its tenant key and the key slots of its vaults, revokes its tokens and disables its
/// users: its backups become unreadable at once. Every vault is deleted (a retention lock
/// does not hold), and the erasure job (`erasure_job_id`) deletes every object at every
/// place, lists each place again and issues the deletion certificate. Provider-admins only;
/// `confirm` must repeat the tenant's name or ID.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/erase", tag = "tenants",
    params(("id" = TenantId, Path)), request_body = EraseTenant,
    responses(
        (status = 200, description = "Erased; what was destroyed", body = TenantErasure),
        (status = 400, description = "The confirmation does not match, or the tenant is not a customer (problem+json)", body = loop_api::Problem),
        (status = 403, description = "Only a provider-admin may erase a tenant (problem+json)", body = loop_api::Problem),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "The tenant kept gaining vaults or sync jobs while it was erased; erase it again (problem+json)", body = loop_api::Problem)))]
pub async fn erase_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
    Json(req): Json<EraseTenant>,
) -> ApiResult<axum::Json<TenantErasure>> {
    let tenant = caller
        .tenant(&state, Permission::TenantErase, id.as_str())
        .await?;
    if tenant.tenant.kind != TenantKind::Customer {
        return Err(ApiError::bad_request(
            "only a customer tenant can be erased; erase a partner's customers one by one",
        ));
    }
    confirmed(&tenant, &req.confirm)?;
    let actor = Actor::from(&caller);
    // Spawned: a client that hangs up must not stop an erasure between its steps.
    let report =
        tokio::spawn(async move { erasure::erase_tenant(&state, &tenant, &actor).await }).await??;
    Ok(axum::Json(report))
}

/// Show a deletion certificate
///
/// An erased tenant's certificate, once the erasure job deleted every object at every place
/// and listed each place again (`404` before). `sha256` is that of `body`, recorded in the
/// tenant's audit chain.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/erasure-certificate", tag = "tenants",
    params(("id" = TenantId, Path)),
    responses((status = 200, description = "The certificate", body = DeletionCertificate),
        (status = 404, description = "Not erased yet, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn erasure_certificate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
) -> ApiResult<axum::Json<DeletionCertificate>> {
    caller
        .tenant(&state, Permission::TenantRead, id.as_str())
        .await?;
    let c = crate::db::erasure::certificate_of(&state.db.pool, id.as_str())
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(DeletionCertificate {
        id: c.id,
        tenant_id: c.tenant_id,
        issued_at: crate::db::time(c.issued_at),
        sha256: c.sha256,
        body: c.body,
    }))
}

/// Checks that `confirm` repeats the tenant's name or ID (an irreversible request names what
/// it ends twice, so a mistyped ID cannot end another tenant).
pub(super) fn confirmed(tenant: &crate::db::tenants::TenantRow, confirm: &str) -> ApiResult<()> {
    let confirm = confirm.trim();
    if confirm == tenant.tenant.name || confirm == tenant.tenant.id {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "confirmation_mismatch",
        "confirm must repeat the tenant's name or ID exactly",
    ))
}
