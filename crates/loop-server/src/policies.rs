//! Retention policies made, changed and deleted: the API and the console both call these.
//! A policy is attached to a tenant, one of its vaults or one of its protected items (one
//! policy a target); its keep rules and schedules are checked before they are kept, and
//! every change is audited.

use loop_api::{CreatePolicy, Policy, PolicyId, UpdatePolicy};

use crate::auth::Caller;
use crate::db::{self, Tx, policies, vaults};
use crate::domain::{Permission, check_maintenance, check_policy, new_id};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The policy `id`, when the caller may `perm` on its tenant (else 404 or 403).
pub async fn scoped(
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

/// Commits `tx` with the audit event `action` of policy `p` (its target, rules and schedules).
async fn commit(
    tx: Tx,
    caller: &Caller,
    action: &'static str,
    p: &Policy,
    now: i64,
) -> ApiResult<()> {
    let details = serde_json::json!({
        "vault_id": p.vault_id, "item_id": p.item_id, "keep": p.keep,
        "prune_max_unused_percent": p.prune_max_unused_percent,
        "prune_grace_seconds": p.prune_grace_seconds, "maintenance": p.maintenance,
    });
    let event = caller.event(&p.tenant_id, action, "policy", Some(&p.id), details);
    Ok(db::audit::commit_audited(tx, event, now).await?)
}

/// Makes the policy `req` describes (vault-write on its tenant); its vault or item must be
/// that tenant's, and its target must have none yet (409 `policy_exists`).
pub async fn create(state: &AppState, caller: &Caller, req: CreatePolicy) -> ApiResult<Policy> {
    let tenant = caller
        .tenant(state, Permission::VaultWrite, req.tenant_id.as_str())
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
    commit(tx, caller, "policy.create", &p, now).await?;
    Ok(p)
}

/// Changes policy `id` (vault-write on its tenant): what `req` gives replaces what was.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &PolicyId,
    req: UpdatePolicy,
) -> ApiResult<Policy> {
    let mut p = scoped(state, caller, Permission::VaultWrite, id).await?;
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
    commit(tx, caller, "policy.update", &p, now).await?;
    Ok(p)
}

/// Deletes policy `id` (vault-write on its tenant) and answers what it was: its target then
/// follows the nearest policy above it.
pub async fn delete(state: &AppState, caller: &Caller, id: &PolicyId) -> ApiResult<Policy> {
    let p = scoped(state, caller, Permission::VaultWrite, id).await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    policies::delete_policy(&mut tx, &p.id).await?;
    commit(tx, caller, "policy.delete", &p, now).await?;
    Ok(p)
}
