//! Making tenants: the row and place in the tree, the tenant key (made and wrapped under
//! the master key), and a customer's subscription, whose trial starts then. The API's
//! `POST /tenants` and the self-service sign-up both make them here.

use loop_api::{Plan, Tenant, TenantId, TenantKind, TenantStatus};

use crate::db::tenants::{self, TenantRow};
use crate::db::{self, Tx, billing};
use crate::domain::{NewTenant, Permission, TenantTree as _, new_id};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A new tenant of `kind` under `parent`, in the parent's time zone unless one is given; not
/// recorded yet.
pub fn draft(
    parent: &TenantRow,
    kind: TenantKind,
    name: &str,
    time_zone: Option<String>,
    now: i64,
) -> TenantRow {
    let tenant = Tenant {
        id: new_id(TenantId::PREFIX),
        parent_id: Some(parent.tenant.id.clone()),
        kind,
        name: name.to_string(),
        status: TenantStatus::Active,
        time_zone: time_zone.unwrap_or_else(|| parent.tenant.time_zone.clone()),
        created_at: db::time(now),
    };
    let path = parent.path.child(&tenant.id);
    TenantRow { tenant, path }
}

/// Records a drafted tenant with its key, and with `plan`'s subscription (the default
/// collection, its trial from `now`).
pub async fn record(
    state: &AppState,
    tx: &mut Tx,
    t: &TenantRow,
    plan: Option<&Plan>,
    now: i64,
) -> ApiResult<()> {
    let (_, wrapped) = state.master.new_tenant_key(&t.tenant.id);
    tenants::insert_tenant(tx, &t.tenant, &t.path, &wrapped, now).await?;
    if let Some(plan) = plan {
        let days = state.config.billing.trial_days;
        let collection = crate::billing::payments::default_collection(state);
        let s = billing::SubRow::trial(&t.tenant.id, &plan.id, collection, now, days);
        billing::insert_subscription(tx, &s).await?;
    }
    Ok(())
}

/// Makes the tenant `req` describes under its parent (tenant-create there), with its plan when
/// one is named; audited.
pub async fn create(
    state: &AppState,
    caller: &crate::auth::Caller,
    req: loop_api::CreateTenant,
) -> crate::error::ApiResult<loop_api::Tenant> {
    let parent = caller
        .tenant(state, Permission::TenantCreate, req.parent_id.as_str())
        .await?;
    let req = NewTenant::parse(req)?;
    let kind = req.kind;
    let parent_kind = parent.tenant.kind;
    if !parent_kind.may_have_child(kind) {
        return Err(ApiError::bad_request(format!(
            "a {parent_kind} tenant cannot have a {kind} child"
        )));
    }
    let now = state.now();
    let draft = draft(&parent, kind, &req.name, req.time_zone, now);
    let plan = match &req.plan_id {
        Some(plan_id) => Some(crate::billing::plan_for(state, caller, &draft, plan_id).await?),
        None => None,
    };
    let mut tx = state.db.begin().await?;
    crate::tenancy::record(state, &mut tx, &draft, plan.as_ref(), now).await?;
    let t = draft.tenant;
    crate::db::audit::commit_audited(
        tx,
        caller.event(
            &t.id,
            "tenant.create",
            "tenant",
            Some(&t.id),
            serde_json::json!({
                "parent_id": parent.tenant.id, "kind": t.kind, "time_zone": t.time_zone,
                "plan_id": plan.as_ref().map(|p| &p.id),
            }),
        ),
        now,
    )
    .await?;
    Ok(t)
}
