//! Destinations and vaults.

use std::sync::Arc;

use axum::extract::OriginalUri;
use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{
    CreateVault, Destination, Job, JobKind, JobTrigger, KeyCustody, SetMaintainer, SetVaultQuota,
    SnapshotInfo, Vault, VaultId, VerifyVault,
};
use loop_repo::keys::{Secret, SlotMeta};
use loop_repo::{InitOptions, Repository};

use super::pages::{Listing, page};
use super::tenants::TenantFilter;
use super::{Json, Path, Query, commit_audited};
use crate::auth::Caller;
use crate::db::page::{Key, in_memory};
use crate::db::{self, vaults};
use crate::domain::{NewVault, Permission, TenantKind, new_id, quota_bytes};
use crate::error::{ApiError, ApiResult};
use crate::jobs::Work;
use crate::state::AppState;
use crate::vaults::{scoped_vault, with_jurisdiction};
use loop_api::PageQuery;

/// List destinations
///
/// Where vaults can be placed, with their jurisdiction.
#[utoipa::path(get, path = "/api/v1/destinations", tag = "vaults",
    responses((status = 200, description = "Success", body = Vec<Destination>)))]
pub async fn list_destinations(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<Destination>>> {
    caller.user()?;
    Ok(axum::Json(
        state
            .destinations
            .all()
            .map(|d| Destination {
                name: d.name.clone(),
                jurisdiction: d.jurisdiction.clone(),
                backend: d.backend,
            })
            .collect(),
    ))
}

/// List vaults
#[utoipa::path(get, path = "/api/v1/vaults", tag = "vaults", params(TenantFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<Vault>)))]
pub async fn list_vaults(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TenantFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Vault>> {
    let scope = caller
        .scope(&state, Permission::VaultRead, f.tenant_id.as_ref())
        .await?;
    let page = vaults::vaults_in(&state.db.pool, &scope, Some(&page(&p)?))
        .await?
        .map(|v| Ok(with_jurisdiction(&state, v)))?;
    Ok(Listing::new(uri, page))
}

/// Create a vault
///
/// For a customer tenant at a destination. A managed vault's repository is created at once,
/// keyed from the tenant key; a customer-key vault is initialised by the client (`loop init`
/// with a manage token).
#[utoipa::path(post, path = "/api/v1/vaults", tag = "vaults", request_body = CreateVault,
    responses((status = 201, description = "Created", body = Vault), (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 402, description = "The subscription is suspended (problem+json)", body = loop_api::Problem),
        (status = 409, description = "A managed vault while the tenant's key is being rotated, or after it was destroyed (problem+json)", body = loop_api::Problem)))]
pub async fn create_vault(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateVault>,
) -> ApiResult<(StatusCode, axum::Json<Vault>)> {
    let tenant = caller
        .tenant(&state, Permission::VaultWrite, req.tenant_id.as_str())
        .await?;
    if tenant.tenant.kind != TenantKind::Customer {
        return Err(ApiError::bad_request("vaults belong to customer tenants"));
    }
    crate::billing::refuse_if_suspended(&state, &tenant.tenant.id).await?;
    let req = NewVault::parse(req)?;
    let Some(dest) = state.destinations.get(&req.destination) else {
        return Err(ApiError::bad_request("no such destination"));
    };
    super::residency::check_placement(
        &state,
        &caller,
        &tenant,
        (&dest.name, &dest.jurisdiction),
        "vault.create",
        ("vault", None),
    )
    .await?;
    let now = state.now();
    let vault = Vault {
        id: new_id(VaultId::PREFIX),
        tenant_id: tenant.tenant.id.clone(),
        name: req.name,
        destination: dest.name.clone(),
        jurisdiction: dest.jurisdiction.clone(),
        key_custody: req.key_custody,
        quota_bytes: req.quota_bytes,
        used_bytes: 0,
        maintainer_device_id: None,
        retention_lock_days: req.retention_lock_days,
        created_at: db::time(now),
    };
    let mut held_key = None;
    if vault.key_custody == KeyCustody::Managed {
        let (kek, wrapped) = crate::managed_keys::new_vault_kek(&state, &vault).await?;
        held_key = Some(wrapped);
        let storage = dest.repo_storage(&vault.id)?;
        let created = chrono::Utc::now().to_rfc3339();
        tokio::task::spawn_blocking(move || {
            let opts = InitOptions {
                meta: SlotMeta {
                    created,
                    host: "loop server".into(),
                    user: String::new(),
                    label: "managed".into(),
                },
                ..Default::default()
            };
            Repository::init(Arc::new(storage), Secret::RawKey(&kek), &opts).map(|_| ())
        })
        .await??;
    }
    let mut tx = state.db.begin().await?;
    let held = async {
        crate::auth::hold_unerased(&mut tx, &vault.tenant_id).await?;
        if let Some(wrapped) = &held_key {
            crate::managed_keys::hold_new_vault_key(&mut tx, &vault, wrapped).await?;
        }
        ApiResult::Ok(())
    };
    if let Err(e) = held.await {
        drop(tx);
        discard_objects(dest, &vault.id).await;
        return Err(e);
    }
    vaults::insert_vault(&mut tx, &vault, now).await?;
    commit_audited(
        tx,
        caller.event(
            &vault.tenant_id,
            "vault.create",
            "vault",
            Some(&vault.id),
            serde_json::json!({
                "destination": vault.destination, "jurisdiction": vault.jurisdiction,
                "key_custody": vault.key_custody, "quota_bytes": vault.quota_bytes,
                "retention_lock_days": vault.retention_lock_days,
            }),
        ),
        now,
    )
    .await?;
    // The config and key slot the server just wrote count like any uploaded object.
    let (_, recorded) = crate::usage::reconcile_vault(&state.db.pool, dest, &vault.id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let vault = Vault {
        used_bytes: recorded.used_after,
        ..vault
    };
    Ok((StatusCode::CREATED, axum::Json(vault)))
}

/// Deletes what was written for a vault that was not recorded after all. Best effort: what
/// stays is a few hundred bytes under a vault ID nothing refers to, and is logged.
async fn discard_objects(dest: &crate::destinations::Destination, vault_id: &str) {
    use futures_util::TryStreamExt as _;
    use object_store::ObjectStoreExt as _;
    let prefix = object_store::path::Path::from(dest.vault_prefix(vault_id));
    let listed: Result<Vec<_>, _> = dest.store.list(Some(&prefix)).try_collect().await;
    let result = match listed {
        Ok(objects) => {
            let mut r = Ok(());
            for o in objects {
                if let Err(e) = dest.store.delete(&o.location).await {
                    r = Err(e);
                }
            }
            r
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(vault = %vault_id, error = %e, "discarding an unrecorded vault's objects");
    }
}

/// Show a vault
#[utoipa::path(get, path = "/api/v1/vaults/{id}", tag = "vaults", params(("id" = VaultId, Path)),
    responses((status = 200, description = "Success", body = Vault), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn get_vault(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<VaultId>,
) -> ApiResult<axum::Json<Vault>> {
    Ok(axum::Json(
        scoped_vault(&state, &caller, Permission::VaultRead, &id).await?,
    ))
}

/// Set a vault's quota
///
/// The bytes the vault may hold (null: no limit). An upload that would take the vault past
/// it is `507 quota_exceeded`; a quota below what the vault holds refuses every upload until
/// enough is pruned, and keeps what is there.
#[utoipa::path(put, path = "/api/v1/vaults/{id}/quota", tag = "vaults", params(("id" = VaultId, Path)),
    request_body = SetVaultQuota,
    responses((status = 200, description = "The vault", body = Vault),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem)))]
pub async fn set_quota(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<VaultId>,
    Json(req): Json<SetVaultQuota>,
) -> ApiResult<axum::Json<Vault>> {
    let v = scoped_vault(&state, &caller, Permission::VaultWrite, &id).await?;
    let quota = quota_bytes(req.quota_bytes)?;
    let mut tx = state.db.begin().await?;
    if !vaults::set_quota(&mut tx, &v.id, quota).await? {
        return Err(ApiError::not_found());
    }
    commit_audited(
        tx,
        caller.event(
            &v.tenant_id,
            "vault.quota",
            "vault",
            Some(&v.id),
            serde_json::json!({
                "quota_bytes": quota, "previous_quota_bytes": v.quota_bytes,
            }),
        ),
        state.now(),
    )
    .await?;
    Ok(axum::Json(
        scoped_vault(&state, &caller, Permission::VaultRead, &id).await?,
    ))
}

/// Set a vault's maintainer
///
/// Names the device whose agent holds a customer-key vault's passphrase and runs the
/// vault's retention and verify jobs (scheduled by its policy, or asked for), deleting only
/// within the policy's limits (`min_snapshot_age_days`, `deletion_grace_hours`). A null
/// `device_id` takes the maintainer away and drops every deletion it announced that has
/// not happened yet. A managed vault is maintained by the server (409).
#[utoipa::path(put, path = "/api/v1/vaults/{id}/maintainer", tag = "vaults", params(("id" = VaultId, Path)),
    request_body = SetMaintainer,
    responses((status = 200, description = "The vault", body = Vault),
        (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn set_maintainer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<VaultId>,
    Json(req): Json<SetMaintainer>,
) -> ApiResult<axum::Json<Vault>> {
    let v = scoped_vault(&state, &caller, Permission::VaultWrite, &id).await?;
    if v.key_custody == KeyCustody::Managed {
        return Err(ApiError::conflict(
            "managed_vault",
            "the server maintains a managed vault itself",
        ));
    }
    let device = match &req.device_id {
        Some(d) => Some(
            db::devices::device_by_id(&state.db.pool, d.as_str())
                .await?
                .filter(|d| d.tenant_id == v.tenant_id)
                .ok_or_else(|| {
                    ApiError::bad_request("device_id: no such device of the vault's tenant")
                })?
                .id,
        ),
        None => None,
    };
    let now = state.now();
    let mut tx = state.db.begin().await?;
    db::deletions::set_maintainer(&mut tx, &v.id, device.as_deref(), now).await?;
    commit_audited(
        tx,
        caller.event(
            &v.tenant_id,
            "vault.maintainer",
            "vault",
            Some(&v.id),
            serde_json::json!({
                "device_id": device, "previous_device_id": v.maintainer_device_id,
            }),
        ),
        now,
    )
    .await?;
    Ok(axum::Json(
        scoped_vault(&state, &caller, Permission::VaultRead, &id).await?,
    ))
}

/// Delete a vault
///
/// The vault is gone from the API and the vault protocol at once; a `vault-erasure` job
/// (the answer) then deletes every object it holds at its destination, resuming after any
/// interruption until none is left. While the vault's retention lock holds any of its
/// objects, deleting it is `403 retention_locked`.
#[utoipa::path(delete, path = "/api/v1/vaults/{id}", tag = "vaults", params(("id" = VaultId, Path)),
    responses((status = 202, description = "Deleted; the erasure job that removes its objects", body = Job)))]
pub async fn delete_vault(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<VaultId>,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    let v = scoped_vault(&state, &caller, Permission::VaultWrite, &id).await?;
    // What push sync jobs copied it to stays there, remembered for the tenant's erasure
    // (the jobs naming it go with it).
    let copies = super::remotes::copies_of_vault(&state, &v).await?;
    let now = state.now();
    // Mark first: the vault protocol stops serving it before its objects go.
    let mut tx = state.db.begin().await?;
    vaults::mark_vault_deleted(&mut tx, id.as_str(), now).await?;
    for c in &copies {
        crate::db::erasure::insert_departed(&mut tx, c, now).await?;
    }
    let mut tx = super::retention_lock::refuse_locked_deletion(&state, &caller, tx, &v).await?;
    let (_, actor) = caller.actor();
    let replica_erasures = crate::erasure::retire_vault(&state, &mut tx, &v, &actor).await?;
    let work = Work {
        runner: crate::db::jobs::Runner::Server,
        tenant_id: &v.tenant_id,
        kind: JobKind::VaultErasure,
        target: ("vault", id.as_str()),
        trigger: JobTrigger::User,
        started_by_id: Some(&actor),
        params: serde_json::json!({}),
    };
    super::queue_audited(&state, tx, work, |job_id| {
        caller.event(
            &v.tenant_id,
            "vault.delete",
            "vault",
            Some(id.as_str()),
            serde_json::json!({
                "erasure_job_id": job_id, "replica_erasure_job_ids": replica_erasures,
            }),
        )
    })
    .await
}

/// Verify a vault
///
/// Queues a `verify` job: the vault's structure is checked and `read_data_percent` of its
/// packs (default 10) downloaded and authenticated, by the server with the key it holds or,
/// for a customer-key vault, by its maintainer device's agent. A customer-key vault without
/// a maintainer is 409.
#[utoipa::path(post, path = "/api/v1/vaults/{id}/verify", tag = "vaults", params(("id" = VaultId, Path)),
    request_body = VerifyVault,
    responses((status = 202, description = "The verify job", body = Job),
        (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn verify_vault(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<VaultId>,
    Json(req): Json<VerifyVault>,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    let v = scoped_vault(&state, &caller, Permission::VaultRead, &id).await?;
    caller
        .tenant(&state, Permission::JobWrite, &v.tenant_id)
        .await?;
    let percent = req
        .read_data_percent
        .unwrap_or(crate::jobs::verify::DEFAULT_READ_PERCENT);
    if !(0.0..=100.0).contains(&percent) {
        return Err(ApiError::bad_request(
            "read_data_percent must be between 0 and 100",
        ));
    }
    queue_managed_job(
        &state,
        &caller,
        &v,
        JobKind::Verify,
        "vault.verify",
        serde_json::json!({ "read_data_percent": percent }),
    )
    .await
}

/// Queues `kind` on the vault `v` for the caller (audited as `action`, with `params` and the
/// job's ID) and answers 202 with the job: run by the server for a managed vault, by the
/// maintainer's agent for a customer-key vault. A customer-key vault without a maintainer is
/// `409 customer_key`: nobody who could read it runs jobs.
pub(super) async fn queue_managed_job(
    state: &AppState,
    caller: &Caller,
    v: &Vault,
    kind: JobKind,
    action: &'static str,
    params: serde_json::Value,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    let runner = match (v.key_custody, &v.maintainer_device_id) {
        (KeyCustody::Managed, _) => crate::db::jobs::Runner::Server,
        (_, Some(_)) => crate::db::jobs::Runner::Agent,
        (_, None) => {
            return Err(ApiError::conflict(
                "customer_key",
                "the server cannot read a vault whose key the customer holds; name a \
                 maintainer device whose agent holds the passphrase (PUT \
                 /api/v1/vaults/{id}/maintainer)",
            ));
        }
    };
    super::queue_vault_job(state, caller, v, runner, kind, action, params).await
}

/// List a managed vault's snapshots
///
/// The server opens the vault with the tenant key; it cannot read a vault whose key the
/// customer holds.
#[utoipa::path(get, path = "/api/v1/vaults/{id}/snapshots", tag = "vaults", params(("id" = VaultId, Path), PageQuery),
    responses((status = 200, description = "Success", body = Vec<SnapshotInfo>), (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn list_snapshots(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<VaultId>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<SnapshotInfo>> {
    let page = page(&p)?;
    let v = scoped_vault(&state, &caller, Permission::VaultRead, &id).await?;
    let opened = crate::vaults::reader::open(&state, &v).await?;
    let snaps = crate::vaults::reader::snapshots(&opened, &v.id).await?;
    // Oldest first, by time and ID.
    let rows = snaps
        .into_iter()
        .map(|(id, s)| {
            let key = vec![
                Key::Int(s.time.timestamp_nanos_opt().unwrap_or(i64::MAX)),
                Key::Text(id.to_hex()),
            ];
            let sum = s.summary.clone().unwrap_or_default();
            (
                key,
                SnapshotInfo {
                    id: id.to_hex(),
                    time: s.time.to_rfc3339(),
                    host: s.hostname,
                    paths: s.paths,
                    tags: s.tags,
                    files: sum.total_files_processed,
                    bytes: sum.total_bytes_processed,
                },
            )
        })
        .collect();
    Ok(Listing::new(uri, in_memory(rows, &page)))
}
