//! What a person does to jobs, for the API and the console alike: find one they may see,
//! cancel one, back up an item now.

use loop_api::{Job, JobKind, JobTrigger, ProtectedItem};

use super::queued;
use crate::auth::Caller;
use crate::db::audit::commit_audited;
use crate::db::items;
use crate::db::jobs::{self, NewJob, Runner};
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The job `id`, when the caller may `perm` on its tenant (else 404 or 403).
pub async fn scoped_job(
    state: &AppState,
    caller: &Caller,
    perm: Permission,
    id: &str,
) -> ApiResult<Job> {
    caller.user()?;
    let job = jobs::job_by_id(&state.db.pool, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller.tenant(state, perm, &job.tenant_id).await?;
    Ok(job)
}

/// The item `id`, when the caller may `perm` on its tenant (else 404 or 403).
pub async fn scoped_item(
    state: &AppState,
    caller: &Caller,
    perm: Permission,
    id: &str,
) -> ApiResult<ProtectedItem> {
    caller.user()?;
    let i = items::item_by_id(&state.db.pool, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller.tenant(state, perm, &i.tenant_id).await?;
    Ok(i)
}

/// Cancels the job `id` (audited): a queued job at once, a running one at its runner's next
/// check. An erasure or a key rotation ([`JobKind::must_finish`]), or a job that ended, is a
/// conflict.
pub async fn cancel(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Job> {
    let job = scoped_job(state, caller, Permission::JobWrite, id).await?;
    if job.kind.must_finish() {
        return Err(ApiError::conflict(
            "not_cancellable",
            format!(
                "a {} cannot be cancelled: stopped halfway, it would leave objects or keys \
                 that nothing else removes",
                job.kind
            ),
        ));
    }
    if job.state.is_final() {
        return Err(ApiError::conflict(
            "job_ended",
            format!("the job already ended ({})", job.state),
        ));
    }
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let after = jobs::request_cancel(&mut tx, id, now).await?;
    commit_audited(
        tx,
        caller.event(
            &job.tenant_id,
            "job.cancel",
            "job",
            Some(id),
            serde_json::json!({ "kind": job.kind, "state": after }),
        ),
        now,
    )
    .await?;
    queued(state, id).await
}

/// Queues a backup of the item `id` for its device's agent, due now and missed when not
/// started within the item's window (audited). A suspended subscription is refused.
pub async fn run_item(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Job> {
    let i = scoped_item(state, caller, Permission::DeviceRead, id).await?;
    caller
        .tenant(state, Permission::JobWrite, &i.tenant_id)
        .await?;
    crate::billing::refuse_if_suspended(state, &i.tenant_id).await?;
    let now = state.now();
    let (_, actor) = caller.actor();
    let mut tx = state.db.begin().await?;
    let job_id = jobs::enqueue(
        &mut tx,
        &NewJob {
            runner: Runner::Agent,
            tenant_id: &i.tenant_id,
            kind: JobKind::Backup,
            target_kind: "item",
            target_id: &i.id,
            scheduled_at: now,
            trigger: JobTrigger::User,
            started_by_id: Some(&actor),
            max_attempts: 1,
            params: serde_json::json!({}),
            deadline_at: Some(now + i.window_seconds as i64 * 1000),
        },
        now,
    )
    .await?;
    commit_audited(
        tx,
        caller.event(
            &i.tenant_id,
            "item.run",
            "item",
            Some(&i.id),
            serde_json::json!({ "job_id": job_id }),
        ),
        now,
    )
    .await?;
    queued(state, &job_id).await
}

/// How long a restore waits for the device's agent before it is missed.
const RESTORE_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Queues a `restore` job for the device's agent (audited `device.restore`): the snapshot
/// (`latest`, an ID or a unique prefix) of a vault of the device's tenant, or only `paths` of
/// it, into `target`, an absolute directory on the device; missed if the agent has not started
/// it within a day.
pub async fn restore_to_device(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: &loop_api::RestoreToDevice,
) -> ApiResult<Job> {
    caller.user()?;
    let device = crate::db::devices::device_by_id(&state.db.pool, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller
        .tenant(state, Permission::DeviceWrite, &device.tenant_id)
        .await?;
    caller
        .tenant(state, Permission::JobWrite, &device.tenant_id)
        .await?;
    crate::db::vaults::vault_by_id(&state.db.pool, req.vault_id.as_str())
        .await?
        .filter(|v| v.tenant_id == device.tenant_id)
        .ok_or_else(ApiError::not_found)?;
    let snapshot_ok = req.snapshot == "latest"
        || ((4..=64).contains(&req.snapshot.len())
            && req.snapshot.bytes().all(|b| b.is_ascii_hexdigit()));
    if !snapshot_ok {
        return Err(ApiError::bad_request(
            "snapshot is latest, an ID or a prefix of at least 4 hex digits",
        ));
    }
    let text_ok = |t: &str| !t.is_empty() && t.len() <= 4096 && !t.contains('\0');
    if !req.target.starts_with('/') || !text_ok(&req.target) {
        return Err(ApiError::bad_request(
            "target is an absolute directory on the device",
        ));
    }
    if req.paths.len() > 64 || !req.paths.iter().all(|p| text_ok(p)) {
        return Err(ApiError::bad_request(
            "paths: at most 64, each 1 to 4096 bytes",
        ));
    }
    let now = state.now();
    let (_, actor) = caller.actor();
    let params = serde_json::to_value(req).expect("a request serializes");
    let mut tx = state.db.begin().await?;
    let job_id = jobs::enqueue(
        &mut tx,
        &jobs::NewJob {
            runner: crate::db::jobs::Runner::Agent,
            tenant_id: &device.tenant_id,
            kind: JobKind::Restore,
            target_kind: "device",
            target_id: &device.id,
            scheduled_at: now,
            trigger: loop_api::JobTrigger::User,
            started_by_id: Some(&actor),
            max_attempts: 1,
            params: params.clone(),
            deadline_at: Some(now + RESTORE_WINDOW_MS),
        },
        now,
    )
    .await?;
    super::refuse_other_settings(&mut tx, &job_id, &params).await?;
    let mut details = params;
    details["job_id"] = job_id.clone().into();
    commit_audited(
        tx,
        caller.event(
            &device.tenant_id,
            "device.restore",
            "device",
            Some(&device.id),
            details,
        ),
        now,
    )
    .await?;
    queued(state, &job_id).await
}
