//! Tenants: the tree of provider, partners and customers, and each tenant's settings.
//! (Erasing a tenant is in `erasure.rs`.)

use axum::extract::OriginalUri;
use axum::extract::State;
use axum::http::StatusCode;
use loop_api::PageQuery;
use loop_api::{CreateTenant, Tenant, TenantId, UpdateTenant};
use serde::Deserialize;

use super::Query;
use super::pages::{Listing, page};
use super::{Json, Path, commit_audited};
use crate::auth::Caller;
use crate::db::{self, tenants};
use crate::domain::{Permission, TenantChanges};
use crate::error::ApiResult;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantFilter {
    /// Only this tenant (default: every tenant the caller can see).
    pub tenant_id: Option<TenantId>,
}

/// List tenants
///
/// The tenants the caller can see: the subtrees of their role bindings.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    params(PageQuery),
    responses((status = 200, description = "Success", body = Vec<Tenant>)))]
pub async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Tenant>> {
    let scope = caller.scope(&state, Permission::TenantRead, None).await?;
    let page = tenants::tenants_in(&state.db.pool, &scope, &page(&p)?).await?;
    Ok(Listing::new(uri, page))
}

/// Create a tenant
///
/// A child of `parent_id`: provider → partner → customer.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, description = "Created", body = Tenant), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateTenant>,
) -> ApiResult<(StatusCode, axum::Json<Tenant>)> {
    let t = crate::tenancy::create(&state, &caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(t)))
}

/// Show a tenant
#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = TenantId, Path)), responses((status = 200, description = "Success", body = Tenant), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn get_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
) -> ApiResult<axum::Json<Tenant>> {
    Ok(axum::Json(
        caller
            .tenant(&state, Permission::TenantRead, id.as_str())
            .await?
            .tenant,
    ))
}

/// Update a tenant
///
/// Its name or its IANA time zone (the zone its schedules are read in). Admins of the
/// tenant or above it.
#[utoipa::path(patch, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = TenantId, Path)), request_body = UpdateTenant,
    responses((status = 200, description = "Success", body = Tenant), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn update_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
    Json(req): Json<UpdateTenant>,
) -> ApiResult<axum::Json<Tenant>> {
    let mut t = caller
        .tenant(&state, Permission::TenantWrite, id.as_str())
        .await?
        .tenant;
    let req = TenantChanges::parse(req)?;
    let mut fields = Vec::new();
    if let Some(v) = req.name {
        t.name = v;
        fields.push("name");
    }
    if let Some(v) = req.time_zone {
        t.time_zone = v;
        fields.push("time_zone");
    }
    let now = state.now();
    let mut tx = state.db.begin().await?;
    tenants::update_tenant_settings(&mut tx, &t).await?;
    if fields.contains(&"time_zone") {
        crate::jobs::scheduler::rezone(&mut tx, &t.id, &t.time_zone, now).await?;
    }
    commit_audited(
        tx,
        caller.event(
            &t.id,
            "tenant.update",
            "tenant",
            Some(&t.id),
            serde_json::json!({ "fields": fields, "time_zone": t.time_zone }),
        ),
        now,
    )
    .await?;
    Ok(axum::Json(t))
}

/// Rotate a tenant's key
///
/// Queues a `tenant-key-rotation` job: each managed vault of the tenant gets a key slot for
/// a new tenant key, the new key becomes current, and the old key's slots are removed. No
/// vault data is re-encrypted. While it runs, creating a managed vault in the tenant is
/// `409 key_rotation`. Admins of the tenant or above it.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/key-rotation", tag = "tenants",
    params(("id" = TenantId, Path)),
    responses((status = 202, description = "The rotation job", body = loop_api::Job),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn rotate_tenant_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
) -> ApiResult<(StatusCode, axum::Json<loop_api::Job>)> {
    let t = caller
        .tenant(&state, Permission::TenantWrite, id.as_str())
        .await?;
    caller
        .tenant(&state, Permission::JobWrite, id.as_str())
        .await?;
    let (_, actor) = caller.actor();
    let tx = state.db.begin().await?;
    let work = crate::jobs::Work {
        runner: db::jobs::Runner::Server,
        tenant_id: &t.tenant.id,
        kind: loop_api::JobKind::TenantKeyRotation,
        target: ("tenant", &t.tenant.id),
        trigger: loop_api::JobTrigger::User,
        started_by_id: Some(&actor),
        params: serde_json::json!({}),
    };
    super::queue_audited(&state, tx, work, |job_id| {
        caller.event(
            &t.tenant.id,
            "tenant.key_rotate",
            "tenant",
            Some(&t.tenant.id),
            serde_json::json!({ "job_id": job_id }),
        )
    })
    .await
}
