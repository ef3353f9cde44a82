//! Data residency: the jurisdictions a tenant allows, the check every route that places data
//! makes, and where each vault's objects live.

use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{Residency, ResidencyReport, SetResidency, TenantId, VaultLocation};

use super::{Json, Path, audit_refused, commit_audited};
use crate::auth::Caller;
use crate::db::tenants::TenantRow;
use crate::db::{self, residency};
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::vaults::scoped_vault;

fn refused(detail: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "residency", detail)
}

fn describe(set: &Option<Vec<String>>) -> String {
    match set {
        Some(s) if s.is_empty() => "none".into(),
        Some(s) => s.join(", "),
        None => "any".into(),
    }
}

/// Refuses (403 `residency`, recorded in the audit log as a failed `action`) placing the
/// objects of `tenant` at `place` (a destination's name, or another server's vault) when its
/// jurisdiction is outside what the tenant allows.
/// Every route that places data calls this before it writes anything.
pub(crate) async fn check_placement(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantRow,
    (place, jurisdiction): (&str, &str),
    action: &'static str,
    object: (&'static str, Option<&str>),
) -> ApiResult<()> {
    let chain = residency::chain(&state.db.pool, &tenant.path).await?;
    if state.jurisdictions.admits(&chain, jurisdiction) {
        return Ok(());
    }
    let allowed = state.jurisdictions.effective(&chain);
    let event = caller.event(
        &tenant.tenant.id,
        action,
        object.0,
        object.1,
        serde_json::json!({
            "reason": "residency", "destination": place,
            "jurisdiction": jurisdiction, "allowed": allowed,
        }),
    );
    audit_refused(state, event).await?;
    Err(refused(format!(
        "destination {} is in jurisdiction {}, which this tenant's residency does not allow \
         (allowed: {})",
        place,
        if jurisdiction.is_empty() {
            "(not reported)"
        } else {
            jurisdiction
        },
        describe(&allowed)
    )))
}

/// Show a tenant's residency
///
/// The jurisdictions the tenant itself allows and what it may use (what every tenant on its
/// path allows).
#[utoipa::path(get, path = "/api/v1/tenants/{id}/residency", tag = "residency",
    params(("id" = TenantId, Path)),
    responses((status = 200, description = "Success", body = Residency),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn get_residency(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
) -> ApiResult<axum::Json<Residency>> {
    let t = caller
        .tenant(&state, Permission::TenantRead, id.as_str())
        .await?;
    let chain = residency::chain(&state.db.pool, &t.path).await?;
    Ok(axum::Json(Residency {
        tenant_id: t.tenant.id,
        allowed: chain.last().cloned().flatten(),
        effective: state.jurisdictions.effective(&chain),
    }))
}

/// Set a tenant's residency
///
/// Admins above the tenant may set any jurisdictions its parent allows, or null (the tenant
/// then has what its parent allows). The tenant's own admins may only narrow what it has:
/// widening is `403 residency`, audited. Vaults already placed stay where they are; the
/// residency report shows them as outside.
#[utoipa::path(put, path = "/api/v1/tenants/{id}/residency", tag = "residency",
    params(("id" = TenantId, Path)), request_body = SetResidency,
    responses((status = 200, description = "Success", body = Residency),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn set_residency(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
    Json(req): Json<SetResidency>,
) -> ApiResult<axum::Json<Residency>> {
    let t = caller
        .tenant(&state, Permission::TenantWrite, id.as_str())
        .await?;
    let mut allowed = req.allowed;
    if let Some(set) = &mut allowed {
        if set.len() > 64 {
            return Err(ApiError::bad_request("at most 64 jurisdictions"));
        }
        if let Some(bad) = set.iter().find(|j| !crate::residency::valid_label(j)) {
            return Err(ApiError::bad_request(format!(
                "{bad:?} is not a jurisdiction (a lowercase label like nl or eu)"
            )));
        }
        set.sort();
        set.dedup();
    }
    let chain = residency::chain(&state.db.pool, &t.path).await?;
    // The provider has nobody above it: its own admins set its residency freely.
    let above = match t.path.parent() {
        None => true,
        Some(p) => caller.can(Permission::TenantWrite, &p),
    };
    // From above, the parent's residency bounds the set; from inside, the tenant's own.
    let bound = if above {
        &chain[..chain.len() - 1]
    } else {
        &chain[..]
    };
    let widens = match &allowed {
        Some(set) => !state.jurisdictions.narrows(bound, set),
        None => !above && chain.last().is_some_and(Option::is_some),
    };
    let details = serde_json::json!({
        "allowed": allowed, "before": chain.last().cloned().flatten(),
    });
    if widens {
        let event = caller.event(
            &t.tenant.id,
            "tenant.residency",
            "tenant",
            Some(&t.tenant.id),
            serde_json::json!({ "reason": "widening", "allowed": allowed }),
        );
        audit_refused(&state, event).await?;
        return Err(refused(format!(
            "a tenant's residency can only be narrowed from inside it; {} allows {}",
            if above { "its parent" } else { "it now" },
            describe(&state.jurisdictions.effective(bound))
        )));
    }
    let mut tx = state.db.begin().await?;
    residency::set(&mut tx, &t.tenant.id, allowed.as_deref()).await?;
    commit_audited(
        tx,
        caller.event(
            &t.tenant.id,
            "tenant.residency",
            "tenant",
            Some(&t.tenant.id),
            details,
        ),
        state.now(),
    )
    .await?;
    let mut chain = chain;
    if let Some(own) = chain.last_mut() {
        *own = allowed.clone();
    }
    Ok(axum::Json(Residency {
        tenant_id: t.tenant.id,
        allowed,
        effective: state.jurisdictions.effective(&chain),
    }))
}

/// List a vault's locations
///
/// Every place the vault's objects live, with its jurisdiction.
#[utoipa::path(get, path = "/api/v1/vaults/{id}/locations", tag = "residency",
    params(("id" = loop_api::VaultId, Path)),
    responses((status = 200, description = "Success", body = Vec<VaultLocation>),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn vault_locations(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<loop_api::VaultId>,
) -> ApiResult<axum::Json<Vec<VaultLocation>>> {
    let v = scoped_vault(&state, &caller, Permission::VaultRead, &id).await?;
    let t = db::tenants::tenant_by_id(&state.db.pool, &v.tenant_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let chain = residency::chain(&state.db.pool, &t.path).await?;
    let replicas = db::replicas::of_vault(&state.db.pool, &v.id).await?;
    Ok(axum::Json(crate::placement::locations_of(
        &state, &v, &replicas, &chain,
    )))
}

/// Residency report
///
/// Every place the vaults of the tenant and of the tenants below it live, each judged
/// against its own tenant's residency.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/residency/report", tag = "residency",
    params(("id" = TenantId, Path)),
    responses((status = 200, description = "Success", body = ResidencyReport),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn residency_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
) -> ApiResult<axum::Json<ResidencyReport>> {
    let t = caller
        .tenant(&state, Permission::VaultRead, id.as_str())
        .await?;
    Ok(axum::Json(crate::placement::report(&state, &t).await?))
}
