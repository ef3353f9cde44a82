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
use super::{Json, Path, Query, commit_audited};
use crate::auth::Caller;
use crate::db::{self, policies, tenants, vaults};
use crate::domain::{Permission, check_maintenance, check_policy, new_id};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::vaults::scoped_vault;
use loop_api::PageQuery;

/// The policy `id`, when the caller may `perm` on its tenant (else 404 or 403).
async fn scoped_policy(
    state: &AppState,
    caller: &Caller,
    perm: Permission,
    id: &PolicyId,
) -> ApiResult<Policy> {
    caller.user()?;
    let p = policies::policy_by_id(&state.db.pool, id.as_str())
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller.tenant(state, perm, &p.tenant_id).await?;
    Ok(p)
}

fn details(p: &Policy) -> serde_json::Value {
    serde_json::json!({
        "vault_id": p.vault_id, "item_id": p.item_id, "keep": p.keep,
        "prune_max_unused_percent": p.prune_max_unused_percent,
        "prune_grace_seconds": p.prune_grace_seconds, "maintenance": p.maintenance,
    })
}

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
    let tenant = caller
        .tenant(&state, Permission::VaultWrite, req.tenant_id.as_str())
        .await?;
    if let Some(v) = &req.vault_id {
        // A vault of another tenant is as absent as one that does not exist.
        vaults::vault_by_id(&state.db.pool, v.as_str())
            .await?
            .filter(|v| v.tenant_id == tenant.tenant.id)
            .ok_or_else(ApiError::not_found)?;
    }
    if let Some(i) = &req.item_id {
        if req.vault_id.is_some() {
            return Err(ApiError::bad_request(
                "a policy is attached to a vault or to an item, not to both",
            ));
        }
        db::items::item_by_id(&state.db.pool, i.as_str())
            .await?
            .filter(|i| i.tenant_id == tenant.tenant.id)
            .ok_or_else(ApiError::not_found)?;
        if req.maintenance.is_some() {
            return Err(ApiError::bad_request(
                "an item's policy has keep rules only: schedules are the vault's",
            ));
        }
    }
    let max_unused = req
        .prune_max_unused_percent
        .unwrap_or(loop_api::DEFAULT_PRUNE_MAX_UNUSED_PERCENT);
    let grace = req
        .prune_grace_seconds
        .unwrap_or(loop_api::DEFAULT_PRUNE_GRACE_SECONDS);
    check_policy(&req.keep, max_unused, grace)?;
    let maintenance = req.maintenance.unwrap_or_default();
    check_maintenance(&maintenance)?;
    let now = state.now();
    let p = Policy {
        id: new_id(PolicyId::PREFIX),
        tenant_id: tenant.tenant.id.clone(),
        vault_id: req.vault_id.map(String::from),
        item_id: req.item_id.map(String::from),
        keep: req.keep,
        prune_max_unused_percent: max_unused,
        prune_grace_seconds: grace,
        maintenance,
        created_at: db::time(now),
        updated_at: db::time(now),
    };
    let mut tx = state.db.begin().await?;
    match policies::insert_policy(&mut tx, &p, now).await {
        Err(e) if e.is_unique_violation() => {
            return Err(ApiError::conflict(
                "policy_exists",
                "this target has a policy already: change that one",
            ));
        }
        other => other?,
    }
    commit_audited(
        tx,
        caller.event(
            &p.tenant_id,
            "policy.create",
            "policy",
            Some(&p.id),
            details(&p),
        ),
        now,
    )
    .await?;
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
    Ok(axum::Json(
        scoped_policy(&state, &caller, Permission::VaultRead, &id).await?,
    ))
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
    let mut p = scoped_policy(&state, &caller, Permission::VaultWrite, &id).await?;
    if let Some(keep) = req.keep {
        p.keep = keep;
    }
    if let Some(v) = req.prune_max_unused_percent {
        p.prune_max_unused_percent = v;
    }
    if let Some(v) = req.prune_grace_seconds {
        p.prune_grace_seconds = v;
    }
    if let Some(m) = req.maintenance {
        if p.item_id.is_some() {
            return Err(ApiError::bad_request(
                "an item's policy has keep rules only: schedules are the vault's",
            ));
        }
        p.maintenance = m;
    }
    check_policy(&p.keep, p.prune_max_unused_percent, p.prune_grace_seconds)?;
    check_maintenance(&p.maintenance)?;
    let now = state.now();
    p.updated_at = db::time(now);
    let mut tx = state.db.begin().await?;
    policies::update_policy(&mut tx, &p, now).await?;
    commit_audited(
        tx,
        caller.event(
            &p.tenant_id,
            "policy.update",
            "policy",
            Some(&p.id),
            details(&p),
        ),
        now,
    )
    .await?;
    Ok(axum::Json(p))
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
    let p = scoped_policy(&state, &caller, Permission::VaultWrite, &id).await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    policies::delete_policy(&mut tx, &p.id).await?;
    commit_audited(
        tx,
        caller.event(
            &p.tenant_id,
            "policy.delete",
            "policy",
            Some(&p.id),
            details(&p),
        ),
        now,
    )
    .await?;
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
