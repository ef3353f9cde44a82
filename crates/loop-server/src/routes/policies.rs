//! Retention policies: attached to a tenant or a vault, the nearest one applies; and running
//! a vault's retention now.

use axum::extract::OriginalUri;
use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{
    CreatePolicy, EffectivePolicy, Job, JobKind, Policy, PolicyId, RunRetention, UpdatePolicy,
    VaultId,
};

use super::pages::{Listing, page};
use super::tenants::TenantFilter;
use super::vaults::queue_managed_job;
use super::{Json, Path, Query};
use crate::auth::Caller;
use crate::db::{policies, tenants};
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::vaults::scoped_vault;
use loop_api::PageQuery;

/// List policies
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", params(TenantFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<Policy>)))]
pub async fn list_policies(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TenantFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Policy>> {
    let scope = caller
        .scope(&state, Permission::VaultRead, f.tenant_id.as_ref())
        .await?;
    let page = policies::policies_in(&state.db.pool, &scope, Some(&page(&p)?)).await?;
    Ok(Listing::new(uri, page))
}

/// Create a policy
///
/// Attached to the tenant (every vault of it and of the tenants below it without a nearer
/// policy follows it), with `vault_id` to one of its vaults, or with `item_id` to one of its
/// protected items (keep rules only: they judge the item's snapshots in place of the
/// vault's policy). One policy per target (409 `policy_exists`).
#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", request_body = CreatePolicy,
    responses((status = 201, description = "Created", body = Policy),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn create_policy(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreatePolicy>,
) -> ApiResult<(StatusCode, axum::Json<Policy>)> {
    let p = crate::policies::create(&state, &caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(p)))
}

/// Show a policy
#[utoipa::path(get, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = PolicyId, Path)),
    responses((status = 200, description = "Success", body = Policy)))]
pub async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<PolicyId>,
) -> ApiResult<axum::Json<Policy>> {
    let p = crate::policies::scoped(&state, &caller, Permission::VaultRead, &id).await?;
    Ok(axum::Json(p))
}

/// Update a policy
///
/// What the request gives replaces what was; its target stays.
#[utoipa::path(patch, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = PolicyId, Path)),
    request_body = UpdatePolicy,
    responses((status = 200, description = "Success", body = Policy),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem)))]
pub async fn update_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<PolicyId>,
    Json(req): Json<UpdatePolicy>,
) -> ApiResult<axum::Json<Policy>> {
    Ok(axum::Json(
        crate::policies::update(&state, &caller, &id, req).await?,
    ))
}

/// Delete a policy
///
/// Its target then follows the nearest policy above it, or keeps everything.
#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = PolicyId, Path)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<PolicyId>,
) -> ApiResult<StatusCode> {
    crate::policies::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The policy that applies to a vault
///
/// The vault's own, else the nearest one of its tenant and the tenants above it; none
/// means the vault keeps every snapshot.
#[utoipa::path(get, path = "/api/v1/vaults/{id}/policy", tag = "policies", params(("id" = VaultId, Path)),
    responses((status = 200, description = "Success", body = EffectivePolicy)))]
pub async fn vault_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<VaultId>,
) -> ApiResult<axum::Json<EffectivePolicy>> {
    let v = scoped_vault(&state, &caller, Permission::VaultRead, &id).await?;
    let tenant = tenants::tenant_by_id(&state.db.pool, &v.tenant_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let found = policies::effective(&state.db.pool, &v.id, &tenant.path).await?;
    Ok(axum::Json(EffectivePolicy {
        source: found.as_ref().map(|(_, s)| s.as_str().to_string()),
        policy: found.map(|(p, _)| p),
    }))
}

/// Apply a vault's retention policy now
///
/// Queues a `retention` job: the snapshots the vault's policy does not keep are forgotten
/// and the data only they used is pruned (`dry_run`: the plan is logged, nothing changes).
/// The server runs it with the key it holds; a customer-key vault's maintainer device runs
/// it with the passphrase, within the policy's limits. A customer-key vault without a
/// maintainer is 409.
#[utoipa::path(post, path = "/api/v1/vaults/{id}/retention", tag = "policies", params(("id" = VaultId, Path)),
    request_body = RunRetention,
    responses((status = 202, description = "The retention job", body = Job),
        (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn run_retention(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<VaultId>,
    Json(req): Json<RunRetention>,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    let v = scoped_vault(&state, &caller, Permission::VaultWrite, &id).await?;
    caller
        .tenant(&state, Permission::JobWrite, &v.tenant_id)
        .await?;
    queue_managed_job(
        &state,
        &caller,
        &v,
        JobKind::Retention,
        "vault.retention",
        serde_json::json!({ "dry_run": req.dry_run }),
    )
    .await
}
