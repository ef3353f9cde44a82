//! The agent protocol (`/agent/v1/...`, docs/PROTOCOL.md): a machine enrols with a
//! single-use code and gets a device token; with it, its agent reports that it is alive,
//! learns its protected items, claims their backup jobs and reports on them under the
//! job's fence. And the management API's enrolment codes.
//!
//! A device token reaches only its own device's items and jobs: anything else is 404.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use loop_api::{
    ActorKind, AgentConfig, AgentEnrolled, AgentFinish, AgentHeartbeat, AgentJob, AgentLease,
    AgentReport, CreateEnrolmentCode, Device, DeviceId, EnrollAgent, EnrolmentCode, JobId, JobKind,
    JobState, Outcome, RestoreToDevice, Token, TokenId, TokenKind, TokenPermission,
};

use super::{Json, Path, commit_audited};
use crate::auth::Caller;
use crate::db::audit::NewEvent;
use crate::db::jobs::{self, Held};
use crate::db::{self, agents, devices, items, tokens};
use crate::domain::{new_id, new_secret, parse_name, secret_hash};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router(json_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/agent/v1/enroll", post(enroll))
        .route("/agent/v1/heartbeat", post(heartbeat))
        .route("/agent/v1/jobs/claim", post(claim))
        .route("/agent/v1/jobs/{id}/report", post(report))
        .route("/agent/v1/jobs/{id}/finish", post(finish))
        .layer(axum::extract::DefaultBodyLimit::max(json_limit))
}

/// Create an enrolment code
///
/// A single-use code, valid `expires_in_minutes` (default 60, at most a week), with which
/// `loop agent enroll` registers one machine as a device of the tenant. Shown once.
#[utoipa::path(post, path = "/api/v1/devices/enroll-codes", tag = "devices",
    request_body = CreateEnrolmentCode,
    responses((status = 201, description = "Created", body = EnrolmentCode),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem)))]
pub async fn create_enrolment_code(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateEnrolmentCode>,
) -> ApiResult<(StatusCode, axum::Json<EnrolmentCode>)> {
    let code = crate::enrolment::new_code(
        &state,
        &caller,
        req.tenant_id.as_str(),
        req.expires_in_minutes,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(code)))
}

/// Restore to a device
///
/// Queues a `restore` job for the device's agent: it restores the snapshot (`latest`, an ID
/// or a unique prefix) of a vault of the device's tenant, or only `paths` of it, into
/// `target`, an absolute directory on the device. Missed if the agent has not started it
/// within a day.
#[utoipa::path(post, path = "/api/v1/devices/{id}/restore", tag = "devices",
    params(("id" = DeviceId, Path)), request_body = RestoreToDevice,
    responses((status = 202, description = "The restore job", body = loop_api::Job),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Another restore is queued or running on the device (problem+json)", body = loop_api::Problem)))]
pub async fn restore_to_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<DeviceId>,
    Json(req): Json<RestoreToDevice>,
) -> ApiResult<(StatusCode, axum::Json<loop_api::Job>)> {
    let job = crate::jobs::control::restore_to_device(&state, &caller, id.as_str(), &req).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(job)))
}

/// A code that is unknown, used or expired: one answer for all three.
fn bad_code() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "enrolment_refused",
        "the enrolment code is unknown, used or expired; ask for a new one",
    )
}

/// Registers the machine as a device of the code's tenant, with a device token that backs
/// up to and restores from the tenant's vaults.
async fn enroll(
    State(state): State<AppState>,
    Json(req): Json<EnrollAgent>,
) -> ApiResult<axum::Json<AgentEnrolled>> {
    let name = parse_name("device name", &req.name)?;
    let hash = secret_hash(req.code.expose());
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let Some(tenant_id) = agents::redeem_code(&mut tx, &hash, now).await? else {
        return Err(bad_code());
    };
    let device = Device {
        id: new_id(DeviceId::PREFIX),
        tenant_id: tenant_id.clone(),
        name,
        created_at: db::time(now),
        last_seen_at: None,
    };
    devices::insert_device(&mut tx, &device, now).await?;
    crate::billing::admit_device(&mut tx, &tenant_id).await?;
    agents::code_made_device(&mut tx, &hash, &device.id).await?;
    let token = Token {
        id: new_id(TokenId::PREFIX),
        tenant_id: tenant_id.clone(),
        kind: TokenKind::Device,
        name: format!("agent of {}", device.name),
        device_id: Some(device.id.clone()),
        vault_ids: Vec::new(),
        permissions: vec![TokenPermission::Backup, TokenPermission::Restore],
        created_at: db::time(now),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
    };
    let secret = new_secret("lpt");
    if !tokens::insert_token(&mut tx, &token, &secret_hash(&secret), "enrolment", now).await? {
        return Err(bad_code());
    }
    commit_audited(
        tx,
        NewEvent {
            tenant_id: tenant_id.clone(),
            actor_kind: ActorKind::Anonymous,
            actor_id: None,
            action: "device.enroll",
            object_kind: "device",
            object_id: Some(device.id.clone()),
            outcome: Outcome::Success,
            personal: Default::default(),
            details: serde_json::json!({ "name": device.name, "token_id": token.id }),
        },
        now,
    )
    .await?;
    Ok(axum::Json(AgentEnrolled {
        tenant_id,
        device_id: device.id,
        token: secret.into(),
    }))
}

/// The device of a device token; other callers are refused.
fn device_of(caller: &Caller) -> ApiResult<&str> {
    caller.token()?.device_id.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "device_token_required",
            "the agent protocol needs a device token",
        )
    })
}

async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<AgentHeartbeat>,
) -> ApiResult<axum::Json<AgentConfig>> {
    let device = device_of(&caller)?;
    let version: String = req
        .version
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.+".contains(*c))
        .take(40)
        .collect();
    agents::heartbeat(&state.db.pool, device, &version, state.now()).await?;
    Ok(axum::Json(AgentConfig {
        device_id: device.to_string(),
        items: agents::items_of_device(&state.db.pool, device).await?,
    }))
}

async fn claim(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let device = device_of(&caller)?;
    let lease_ms = state.config.jobs.lease_seconds as i64 * 1000;
    let Some(c) =
        crate::db::agents::claim_for_device(&state.db.pool, device, state.now(), lease_ms).await?
    else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let (id, fence) = (c.job.id.clone(), c.fence);
    match agent_job(&state, c).await {
        Ok(job) => Ok(axum::Json(job).into_response()),
        Err(e) => {
            // The agent never learns of the job: it goes back to the queue, not to waste.
            if let Err(back) = jobs::give_back(&state.db.pool, &id, fence).await {
                tracing::warn!(job = %id, error = ?back, "giving a job back to the queue");
            }
            Err(e)
        }
    }
}

/// What an agent is told of a job it took.
async fn agent_job(state: &AppState, c: jobs::Claimed) -> ApiResult<AgentJob> {
    let item = match c.job.kind {
        JobKind::Backup => items::item_by_id(&state.db.pool, &c.job.target_id).await?,
        _ => None,
    };
    let params = match c.job.kind {
        JobKind::Retention => {
            let dry_run = c.params["dry_run"].as_bool().unwrap_or(false);
            let r = crate::jobs::agent_retention(state, &c.job.target_id, dry_run).await?;
            serde_json::to_value(r).map_err(|e| ApiError::Internal(e.to_string()))?
        }
        _ => c.params,
    };
    Ok(AgentJob {
        job: c.job,
        fence: c.fence,
        item,
        params,
    })
}

/// The job `id`, when it is a backup of one of the caller's device's items, a restore to
/// that device, or the retention or verify of a vault it maintains.
async fn own_job(state: &AppState, caller: &Caller, id: &JobId) -> ApiResult<loop_api::Job> {
    let device = device_of(caller)?;
    let job = jobs::job_by_id(&state.db.pool, id.as_str())
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mine = match job.kind {
        JobKind::Backup => items::item_by_id(&state.db.pool, &job.target_id)
            .await?
            .is_some_and(|i| i.device_id == device),
        JobKind::Restore => job.target_kind == "device" && job.target_id == device,
        JobKind::Retention | JobKind::Verify if job.target_kind == "vault" => {
            db::vaults::vault_by_id(&state.db.pool, &job.target_id)
                .await?
                .is_some_and(|v| v.maintainer_device_id.as_deref() == Some(device))
        }
        _ => false,
    };
    if mine {
        Ok(job)
    } else {
        Err(ApiError::not_found())
    }
}

fn lease_lost() -> ApiError {
    ApiError::conflict(
        "lease_lost",
        "this job is no longer held by this agent (it ended, or its lease lapsed)",
    )
}

/// Renews the claim, records progress and a log line; answers whether a cancel was asked.
async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<JobId>,
    Json(req): Json<AgentReport>,
) -> ApiResult<axum::Json<AgentLease>> {
    own_job(&state, &caller, &id).await?;
    let pool = &state.db.pool;
    let until = state.now() + state.config.jobs.lease_seconds as i64 * 1000;
    let cancel_requested = match jobs::renew(pool, id.as_str(), req.fence, until).await? {
        Held::Yes { cancel_requested } => cancel_requested,
        Held::Lost => return Err(lease_lost()),
    };
    // An agent at work reports instead of polling: it is online all the same.
    agents::seen(pool, device_of(&caller)?, state.now()).await?;
    if let Some(p) = &req.progress {
        jobs::progress(pool, id.as_str(), req.fence, p).await?;
    }
    if let Some(message) = &req.message {
        let level = match req.level.as_deref() {
            Some("warning") => "warning",
            Some("error") => "error",
            _ => "info",
        };
        let message: String = message.chars().take(2000).collect();
        jobs::log(pool, id.as_str(), req.fence, level, &message, state.now()).await?;
    }
    Ok(axum::Json(AgentLease { cancel_requested }))
}

async fn finish(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<JobId>,
    Json(req): Json<AgentFinish>,
) -> ApiResult<StatusCode> {
    let job = own_job(&state, &caller, &id).await?;
    if !matches!(
        req.state,
        JobState::Succeeded
            | JobState::SucceededWithWarnings
            | JobState::Failed
            | JobState::Cancelled
    ) {
        return Err(ApiError::bad_request(
            "a job ends succeeded, succeeded-with-warnings, failed or cancelled",
        ));
    }
    let error: Option<String> = req.error.map(|e| e.chars().take(2000).collect());
    let ended = jobs::finish(
        &state.db.pool,
        id.as_str(),
        req.fence,
        req.state,
        req.summary.as_ref(),
        error.as_deref(),
        state.now(),
    )
    .await?
        || crate::db::agents::finish_abandoned(
            &state.db.pool,
            id.as_str(),
            req.fence,
            req.state,
            req.summary.as_ref(),
            error.as_deref(),
        )
        .await?;
    if ended {
        let started = job.started_at.map_or(state.now(), |t| t.timestamp_millis());
        state.metrics.job_ended(job.kind, state.now() - started);
        state.notify_wake.notify_one();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(lease_lost())
    }
}
