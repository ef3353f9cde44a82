//! Jobs: what the service did and does on its own, with their logs; cancel.

use axum::extract::OriginalUri;
use axum::extract::State;
use loop_api::PageQuery;
use loop_api::{Job, JobId, JobLogLine, JobQuery};

use super::pages::{Listing, page};
use super::{Path, Query};
use crate::auth::Caller;
use crate::db::jobs;
use crate::domain::Permission;
use crate::error::ApiResult;
use crate::state::AppState;

/// The job `id`, when the caller may `perm` on its tenant (else 404 or 403).
async fn scoped_job(
    state: &AppState,
    caller: &Caller,
    perm: Permission,
    id: &JobId,
) -> ApiResult<Job> {
    crate::jobs::control::scoped_job(state, caller, perm, id.as_str()).await
}

/// List jobs
///
/// Newest first, over the tenants the caller can see (or one of them).
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobQuery, PageQuery),
    responses((status = 200, description = "Success", body = Vec<Job>)))]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<JobQuery>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Job>> {
    let scope = caller
        .scope(&state, Permission::JobRead, q.tenant_id.as_ref())
        .await?;
    let page = jobs::jobs_in(&state.db.pool, &scope, &q, &page(&p)?).await?;
    Ok(Listing::new(uri, page))
}

/// Show a job
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = JobId, Path)),
    responses((status = 200, description = "Success", body = Job)))]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<JobId>,
) -> ApiResult<axum::Json<Job>> {
    Ok(axum::Json(
        scoped_job(&state, &caller, Permission::JobRead, &id).await?,
    ))
}

/// A job's log
///
/// Its lines in order; kept `jobs.log_days` days after the job ended.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/log", tag = "jobs", params(("id" = JobId, Path)),
    responses((status = 200, description = "Success", body = Vec<JobLogLine>)))]
pub async fn job_log(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<JobId>,
) -> ApiResult<axum::Json<Vec<JobLogLine>>> {
    scoped_job(&state, &caller, Permission::JobRead, &id).await?;
    Ok(axum::Json(
        jobs::job_log(&state.db.pool, id.as_str()).await?,
    ))
}

/// Cancel a job
///
/// A queued job is cancelled at once; a running one stops at its runner's next check
/// (`cancel_requested` until then). An erasure (of a vault, a replica or a tenant) or a
/// tenant key rotation cannot be cancelled, and a job that ended cannot either (409).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = JobId, Path)),
    responses((status = 200, description = "The job after the request", body = Job),
        (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<JobId>,
) -> ApiResult<axum::Json<Job>> {
    Ok(axum::Json(
        crate::jobs::control::cancel(&state, &caller, id.as_str()).await?,
    ))
}
