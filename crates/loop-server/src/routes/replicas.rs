//! A vault's replicas: added, listed, verified, promoted and removed here; kept up by the
//! `replication` job (`jobs::replicate`); read from by the vault protocol when the primary
//! fails (`vault_protocol::reads`).

use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{
    CreateReplica, Job, JobKind, JobTrigger, KeyCustody, Replica, ReplicaState, Vault, VaultId,
    VerifyReplica,
};

use super::residency::check_placement;
use super::{Json, Path, commit_audited, queue_audited};
use crate::auth::Caller;
use crate::db;
use crate::db::jobs::Runner;
use crate::db::replicas::{self, ReplicaRow};
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::jobs::Work;
use crate::state::AppState;
use crate::vaults::{replica_view, scoped_vault};

async fn replica_of(state: &AppState, v: &Vault, id: &str) -> ApiResult<ReplicaRow> {
    replicas::by_id(&state.db.pool, &v.id, id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// Refuses (`403 residency`, audited as `action`) placing vault `v`'s data at `dest`
/// outside its tenant's residency.
async fn within_residency(
    state: &AppState,
    caller: &Caller,
    v: &Vault,
    dest: &crate::destinations::Destination,
    action: &'static str,
) -> ApiResult<()> {
    let tenant = db::tenants::tenant_by_id(&state.db.pool, &v.tenant_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let place = (dest.name.as_str(), dest.jurisdiction.as_str());
    check_placement(
        state,
        caller,
        &tenant,
        place,
        action,
        ("vault", Some(&v.id)),
    )
    .await
}

/// List a vault's replicas
///
/// Each with its state, lag (objects and bytes the vault received since its last complete
/// replication began) and last verify.
#[utoipa::path(get, path = "/api/v1/vaults/{id}/replicas", tag = "replicas",
    params(("id" = VaultId, Path)),
    responses((status = 200, description = "Success", body = Vec<Replica>),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn list_replicas(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<VaultId>,
) -> ApiResult<axum::Json<Vec<Replica>>> {
    let v = scoped_vault(&state, &caller, Permission::VaultRead, &id).await?;
    let mut out = Vec::new();
    for r in replicas::of_vault(&state.db.pool, &v.id).await? {
        out.push(replica_view(&state, r).await?);
    }
    Ok(axum::Json(out))
}

/// Add a replica
///
/// The vault's objects are copied to `destination` as stored (encrypted; no key needed) by a
/// `replication` job queued now, then after each backup and prune and every
/// `replication.interval_minutes`. A destination outside the tenant's residency is `403
/// residency` (audited); the primary's own destination, or one the vault is already
/// replicated to, is `409 exists`.
#[utoipa::path(post, path = "/api/v1/vaults/{id}/replicas", tag = "replicas",
    params(("id" = VaultId, Path)), request_body = CreateReplica,
    responses((status = 201, description = "Created", body = Replica),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 403, description = "Forbidden (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn create_replica(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<VaultId>,
    Json(req): Json<CreateReplica>,
) -> ApiResult<(StatusCode, axum::Json<Replica>)> {
    let v = scoped_vault(&state, &caller, Permission::VaultWrite, &id).await?;
    let dest = state
        .destinations
        .get(&req.destination)
        .ok_or_else(|| ApiError::bad_request(format!("no destination {:?}", req.destination)))?;
    within_residency(&state, &caller, &v, dest, "vault.replica_add").await?;
    let existing = replicas::of_vault(&state.db.pool, &v.id).await?;
    if dest.name == v.destination || existing.iter().any(|r| r.destination == dest.name) {
        return Err(ApiError::conflict(
            "exists",
            format!("the vault already lives at {}", dest.name),
        ));
    }
    let erasing = location_key(&v.id, &dest.name);
    if db::jobs::open_of(&state.db.pool, JobKind::ReplicaErasure, &erasing)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            "replica_erasing",
            "a removed replica of this vault is still being erased there; add it again once \
             its erasure job ended",
        ));
    }
    let replica_id = crate::domain::new_id("rp");
    let now = state.now();
    let mut tx = state.db.begin().await?;
    crate::auth::hold_unerased(&mut tx, &v.tenant_id).await?;
    replicas::insert(&mut tx, &replica_id, &v.id, &dest.name, now).await?;
    let job =
        crate::jobs::replicate::queue_if_replicated(&state, &mut tx, &v, JobTrigger::Event).await?;
    commit_audited(
        tx,
        caller.event(
            &v.tenant_id,
            "vault.replica_add",
            "vault",
            Some(&v.id),
            serde_json::json!({
                "replica_id": replica_id, "destination": dest.name,
                "jurisdiction": dest.jurisdiction, "replication_job_id": job,
            }),
        ),
        now,
    )
    .await?;
    state.jobs_wake.notify_one();
    let r = replica_of(&state, &v, &replica_id).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(replica_view(&state, r).await?),
    ))
}

/// The target of a replica erasure job: one vault at one destination.
fn location_key(vault_id: &str, destination: &str) -> String {
    format!("{vault_id}/{destination}")
}

/// Remove a replica
///
/// Reads stop using it at once; a `replica-erasure` job (the answer) deletes every object
/// of the vault at its destination.
#[utoipa::path(delete, path = "/api/v1/vaults/{id}/replicas/{replica}", tag = "replicas",
    params(("id" = VaultId, Path), ("replica" = String, Path)),
    responses((status = 202, description = "Removed; the erasure job", body = Job),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Promoted meanwhile (problem+json)", body = loop_api::Problem)))]
pub async fn delete_replica(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, replica)): Path<(VaultId, String)>,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    let v = scoped_vault(&state, &caller, Permission::VaultWrite, &id).await?;
    let r = replica_of(&state, &v, &replica).await?;
    let mut tx = state.db.begin().await?;
    if !replicas::delete(&mut tx, &r).await? {
        return Err(changed_meanwhile());
    }
    // A replication under way writes into every replica it set out with: it stops, and the
    // erasure waits until it has (the next one serves the other replicas).
    db::stopping::cancel_open(
        &mut tx,
        db::stopping::Erasing::Vault(&v.id),
        Some(db::stopping::REPLICATING),
        "a replica was removed",
        state.now(),
    )
    .await?;
    let (_, actor) = caller.actor();
    let key = location_key(&v.id, &r.destination);
    let work = Work {
        runner: Runner::Server,
        tenant_id: &v.tenant_id,
        kind: JobKind::ReplicaErasure,
        target: ("replica-location", &key),
        trigger: JobTrigger::User,
        started_by_id: Some(&actor),
        params: serde_json::json!({ "vault_id": v.id, "destination": r.destination }),
    };
    queue_audited(&state, tx, work, |job_id| {
        caller.event(
            &v.tenant_id,
            "vault.replica_delete",
            "vault",
            Some(&v.id),
            serde_json::json!({
                "replica_id": r.id, "destination": r.destination, "erasure_job_id": job_id,
            }),
        )
    })
    .await
}

/// Queues the replica erasure of every replica of a vault being deleted, in its transaction.
pub(crate) async fn erase_all(
    state: &AppState,
    tx: &mut crate::db::Tx,
    v: &Vault,
    started_by: &str,
) -> crate::db::DbResult<Vec<String>> {
    let mut jobs = Vec::new();
    for r in replicas::delete_of_vault(tx, &v.id).await? {
        let key = location_key(&v.id, &r.destination);
        let work = Work {
            runner: Runner::Server,
            tenant_id: &v.tenant_id,
            kind: JobKind::ReplicaErasure,
            target: ("replica-location", &key),
            trigger: JobTrigger::Event,
            started_by_id: Some(started_by),
            params: serde_json::json!({ "vault_id": v.id, "destination": r.destination }),
        };
        jobs.push(crate::jobs::queue(state, tx, work).await?);
    }
    Ok(jobs)
}

/// Promote a replica
///
/// The replica becomes the vault's primary (where backups write and reads go first) and the
/// old primary a replica that the next replication seeds again. Only a replica that completed
/// a replication, and for a managed vault one the tenant's current key opens, can be promoted
/// (`409 replica_not_ready`; `409 key_rotation` while that key is rotated). A replica that
/// lacks objects the vault holds is promoted only once the primary no longer answers (`409
/// replica_behind`, or `409 replica_behind_lock` for objects a retention lock holds:
/// replicate first); what it lacks is then lost (in the answer's audit event as
/// `objects_lost`). None is promoted while a replication of the vault is queued or running
/// (`409 replication_running`). A destination outside the tenant's residency is `403
/// residency` (audited).
#[utoipa::path(post, path = "/api/v1/vaults/{id}/replicas/{replica}/promote", tag = "replicas",
    params(("id" = VaultId, Path), ("replica" = String, Path)),
    responses((status = 200, description = "The vault, with its new primary", body = Vault),
        (status = 403, description = "Forbidden (problem+json)", body = loop_api::Problem),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn promote_replica(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, replica)): Path<(VaultId, String)>,
) -> ApiResult<axum::Json<Vault>> {
    let v = scoped_vault(&state, &caller, Permission::VaultWrite, &id).await?;
    let r = replica_of(&state, &v, &replica).await?;
    let dest = state
        .destinations
        .get(&r.destination)
        .ok_or_else(|| ApiError::Internal(format!("destination {} is gone", r.destination)))?
        .clone();
    within_residency(&state, &caller, &v, &dest, "vault.replica_promote").await?;
    if r.state != ReplicaState::Active {
        return Err(ApiError::conflict(
            "replica_not_ready",
            format!(
                "the replica at {} is {}: only a replica that completed a replication and \
                 verifies whole can be promoted",
                r.destination, r.state
            ),
        ));
    }
    if v.key_custody == KeyCustody::Managed {
        crate::managed_keys::check_promotable(&state, &v, &dest).await?;
    }
    // A replication under way copies from the old primary into the replica, and on its end
    // would mark the old primary (the replica then) as in step; a replica verify would
    // delete from the new primary the copies it takes for damaged, judged against the old.
    for kind in db::stopping::REPLICATING {
        if let Some(job) = db::jobs::open_of(&state.db.pool, *kind, &v.id).await? {
            return Err(replication_running(&job));
        }
    }
    // What the replica lacks is dropped from the vault, and the replication that follows
    // makes the old primary match: under a retention lock that would remove held objects.
    // Refused while the primary still answers (replicate first); a primary that is gone
    // holds nothing to protect.
    let held = crate::db::retention_lock::held_since(
        &state.db.pool,
        &v.id,
        r.synced_from.unwrap_or(0),
        state.now(),
    )
    .await?;
    let answers = primary_answers(&state, &v).await;
    if held > 0 && answers {
        return Err(ApiError::conflict(
            "replica_behind_lock",
            format!(
                "the replica at {} lacks {held} object(s) that arrived after its last \
                 replication began and that the vault's retention lock holds: replicate, then \
                 promote",
                r.destination
            ),
        ));
    }
    // Without a lock too: while the old primary answers, it holds what the replica lacks,
    // and the replication after the promotion would remove that from it. Lost only once the
    // primary is gone, when the replica is all there is.
    if answers {
        let lacking = crate::usage::lacking_at(&state.db.pool, &dest, &v.id)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if lacking > 0 {
            return Err(ApiError::conflict(
                "replica_behind",
                format!(
                    "the replica at {} lacks {lacking} object(s) the vault's primary still \
                     holds: replicate, then promote",
                    r.destination
                ),
            ));
        }
    }
    // The vault's object records follow the new primary: what it lacks (what the vault
    // received after the replica's last replication) is dropped from them. Done first, so a
    // replica that cannot be listed is not promoted.
    let (_, change) = crate::usage::reconcile_vault(&state.db.pool, &dest, &v.id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    if !replicas::promote(&mut tx, &r, &v.destination, now).await? {
        return Err(changed_meanwhile());
    }
    // Asked again now that the vault's row is taken: a replication queued by a backup that
    // ended while the replica was listed would be joined below and copy the old way.
    for kind in db::stopping::REPLICATING {
        if let Some(job) = db::jobs::open_of(&mut *tx, *kind, &v.id).await? {
            return Err(replication_running(&job));
        }
    }
    let promoted = Vault {
        destination: r.destination.clone(),
        ..v.clone()
    };
    let job =
        crate::jobs::replicate::queue_if_replicated(&state, &mut tx, &promoted, JobTrigger::Event)
            .await?;
    commit_audited(
        tx,
        caller.event(
            &v.tenant_id,
            "vault.replica_promote",
            "vault",
            Some(&v.id),
            serde_json::json!({
                "replica_id": r.id, "destination": r.destination,
                "previous_destination": v.destination, "objects_lost": change.dropped,
                "replication_job_id": job,
            }),
        ),
        now,
    )
    .await?;
    state.jobs_wake.notify_one();
    Ok(axum::Json(
        scoped_vault(&state, &caller, Permission::VaultRead, &id).await?,
    ))
}

/// A replication or replica verify queued or running, which a promotion would race.
fn replication_running(job: &str) -> ApiError {
    ApiError::conflict(
        "replication_running",
        format!(
            "job {job} (a replication or replica verify) is queued or running: promote once \
             it has ended"
        ),
    )
}

/// A replica removed, or promoted, by a request that ran at the same time.
fn changed_meanwhile() -> ApiError {
    ApiError::conflict(
        "replica_changed",
        "the replica was removed or promoted meanwhile: list the replicas again",
    )
}

/// Whether the vault's primary destination still holds any of the vault's objects (a
/// primary that cannot be listed does not answer). Any object, not the config alone: the
/// config is as old as the vault, so a lock that held the newest objects may no longer hold
/// it, and deleting it must not make the primary look gone.
async fn primary_answers(state: &AppState, v: &Vault) -> bool {
    let Some(d) = state.destinations.get(&v.destination) else {
        return false;
    };
    for kind in crate::replication::COPY_ORDER {
        match d.list_kind(&v.id, kind).await {
            Ok(found) if !found.is_empty() => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// Verify a replica
///
/// Queues a `replica-verify` job: the replica's listing and sizes are compared with the
/// primary's and, with `read_data`, every object is read (byte for byte against the
/// primary's copy, and, for a managed vault, checked with the key as `loop check
/// --read-data` would). A damaged replica is marked `damaged` (reads stop using it), raises
/// `replica-damaged` and is repaired by a replication.
#[utoipa::path(post, path = "/api/v1/vaults/{id}/replicas/{replica}/verify", tag = "replicas",
    params(("id" = VaultId, Path), ("replica" = String, Path)), request_body = VerifyReplica,
    responses((status = 202, description = "The verify job", body = Job),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "A verify of other settings is queued or running (problem+json)", body = loop_api::Problem)))]
pub async fn verify_replica(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, replica)): Path<(VaultId, String)>,
    Json(req): Json<VerifyReplica>,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    let v = scoped_vault(&state, &caller, Permission::VaultRead, &id).await?;
    caller
        .tenant(&state, Permission::JobWrite, &v.tenant_id)
        .await?;
    let r = replica_of(&state, &v, &replica).await?;
    super::queue_vault_job(
        &state,
        &caller,
        &v,
        Runner::Server,
        JobKind::ReplicaVerify,
        "vault.replica_verify",
        serde_json::json!({ "replica_id": r.id, "read_data": req.read_data }),
    )
    .await
}

/// Replicate a vault now
///
/// Queues a `replication` job that brings every replica of the vault up to date (one
/// already queued or running is the answer instead).
#[utoipa::path(post, path = "/api/v1/vaults/{id}/replication", tag = "replicas",
    params(("id" = VaultId, Path)),
    responses((status = 202, description = "The replication job", body = Job),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn replicate_now(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<VaultId>,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    let v = scoped_vault(&state, &caller, Permission::VaultRead, &id).await?;
    caller
        .tenant(&state, Permission::JobWrite, &v.tenant_id)
        .await?;
    super::queue_vault_job(
        &state,
        &caller,
        &v,
        Runner::Server,
        JobKind::Replication,
        "vault.replicate",
        serde_json::json!({}),
    )
    .await
}
