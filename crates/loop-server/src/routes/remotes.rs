//! Remotes (other `loop server`s, each with a replication token of its own) and the sync
//! jobs that push vaults to them or pull vaults from them; run by `jobs::sync`.

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use loop_api::{
    CreateRemote, CreateSyncJob, Job, JobTrigger, KeyCustody, Remote, SyncDirection, SyncJob,
};

use super::pages::{Listing, page};
use super::residency::check_placement;
use super::tenants::TenantFilter;
use super::{Json, Path, Query, commit_audited, queue_audited};
use crate::auth::Caller;
use crate::db;
use crate::db::remotes::{self, RemoteRow};
use crate::domain::{Permission, new_id, parse_name};
use crate::error::{ApiError, ApiResult};
use crate::jobs::JobError;
use crate::state::AppState;
use crate::vaults::scoped_vault;

async fn scoped_remote(
    state: &AppState,
    caller: &Caller,
    perm: Permission,
    id: &str,
) -> ApiResult<RemoteRow> {
    caller.user()?;
    let r = remotes::remote_by_id(&state.db.pool, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller.tenant(state, perm, &r.remote.tenant_id).await?;
    Ok(r)
}

async fn scoped_sync_job(
    state: &AppState,
    caller: &Caller,
    perm: Permission,
    id: &str,
) -> ApiResult<SyncJob> {
    caller.user()?;
    let j = remotes::sync_job_by_id(&state.db.pool, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller.tenant(state, perm, &j.tenant_id).await?;
    Ok(j)
}

/// `https://HOST[:PORT]`, without a path; unless `allow_private`, not an internal address
/// written as its host (a name is checked as it is resolved, at every connection).
fn parse_url(url: &str, allow_private: bool) -> ApiResult<String> {
    let url = url.trim().trim_end_matches('/');
    let host = url.strip_prefix("https://").unwrap_or("");
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) || url.len() > 512 {
        return Err(ApiError::bad_request(
            "url must be the other server's https://HOST:PORT",
        ));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| ApiError::bad_request("url must be the other server's https://HOST:PORT"))?;
    let ip = parsed
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|h| h.parse::<std::net::IpAddr>().ok());
    if let Some(ip) = ip.filter(|ip| !allow_private && !crate::notify::webhook::is_public(*ip)) {
        return Err(ApiError::bad_request(format!(
            "{ip} is a loopback, private or reserved address; remotes are at public addresses \
             unless the server's replication.allow_private_remotes is set"
        )));
    }
    Ok(url.to_string())
}

/// 64 hex digits (colons allowed), stored lower-case without colons.
fn parse_fingerprint(f: &str) -> ApiResult<String> {
    let clean: String = f
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_lowercase();
    if clean.len() != 64 || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "fingerprint must be the SHA-256 of the other server's certificate: 64 hex digits",
        ));
    }
    Ok(clean)
}

/// A token of another server: `lpt_` and 64 hex digits.
fn parse_token(t: &str) -> ApiResult<loop_repo::crypto::Key> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    match t.strip_prefix("lpt_") {
        Some(h) if h.len() == 64 && hex::decode_to_slice(h, &mut *bytes).is_ok() => {
            Ok(loop_repo::crypto::Key::from_bytes(*bytes))
        }
        _ => Err(ApiError::bad_request(
            "token must be an API token of the other server (lpt_ and 64 hex digits)",
        )),
    }
}

/// Another server's vault ID, as it gave it.
fn parse_remote_vault(id: &str) -> ApiResult<String> {
    let id = id.trim();
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(ApiError::bad_request(
            "remote_vault_id must be the other server's vault ID",
        ));
    }
    Ok(id.to_string())
}

/// List remotes
#[utoipa::path(get, path = "/api/v1/remotes", tag = "sync", params(TenantFilter, loop_api::PageQuery),
    responses((status = 200, description = "Success", body = Vec<Remote>)))]
pub async fn list_remotes(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TenantFilter>,
    Query(p): Query<loop_api::PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Remote>> {
    let scope = caller
        .scope(&state, Permission::VaultRead, f.tenant_id.as_ref())
        .await?;
    let page = remotes::remotes_in(&state.db.pool, &scope, Some(&page(&p)?)).await?;
    Ok(Listing::new(uri, page))
}

/// Add a remote
///
/// Another `loop server` (`url`, and the `fingerprint` of its certificate unless the system's
/// roots vouch for it) and a token it issued with the `replicate` permission, naming the
/// vaults sync jobs use there. The token is kept wrapped under the master key and never
/// shown again.
#[utoipa::path(post, path = "/api/v1/remotes", tag = "sync", request_body = CreateRemote,
    responses((status = 201, description = "Created", body = Remote),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn create_remote(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateRemote>,
) -> ApiResult<(StatusCode, axum::Json<Remote>)> {
    let tenant = caller
        .tenant(&state, Permission::VaultWrite, req.tenant_id.as_str())
        .await?;
    let name = parse_name("remote name", &req.name)?;
    let url = parse_url(&req.url, state.config.replication.allow_private_remotes)?;
    let fingerprint = req
        .fingerprint
        .as_deref()
        .map(parse_fingerprint)
        .transpose()?;
    let token = parse_token(req.token.expose())?;
    let now = state.now();
    let id = new_id("rm");
    let row = RemoteRow {
        token_wrapped: state
            .master
            .wrap(&crate::keys::remote_token_context(&id), &token),
        remote: Remote {
            id,
            tenant_id: tenant.tenant.id.clone(),
            name,
            url,
            fingerprint,
            created_at: db::time(now),
        },
    };
    let mut tx = state.db.begin().await?;
    crate::auth::hold_unerased(&mut tx, &row.remote.tenant_id).await?;
    if let Err(e) = remotes::insert_remote(&mut tx, &row, now).await {
        return Err(if e.is_unique_violation() {
            ApiError::conflict("exists", "the tenant has a remote of that name")
        } else {
            e.into()
        });
    }
    let r = row.remote;
    commit_audited(
        tx,
        caller.event(
            &r.tenant_id,
            "remote.create",
            "remote",
            Some(&r.id),
            serde_json::json!({ "name": r.name, "url": r.url, "fingerprint": r.fingerprint }),
        ),
        now,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(r)))
}

/// Remove a remote
///
/// Its sync jobs go with it; what they copied stays where it is (and a later erasure of the
/// tenant names those copies as out of its reach).
#[utoipa::path(delete, path = "/api/v1/remotes/{id}", tag = "sync", params(("id" = String, Path)),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn delete_remote(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let r = scoped_remote(&state, &caller, Permission::VaultWrite, &id).await?;
    let scope = crate::domain::TenantScope::One(r.remote.tenant_id.clone());
    let jobs = remotes::sync_jobs_in(&state.db.pool, &scope, None)
        .await?
        .items;
    let copies = copies_left(
        &state,
        &r.remote.tenant_id,
        jobs.iter().filter(|j| j.remote_id == r.remote.id),
    )
    .await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    for c in &copies {
        db::erasure::insert_departed(&mut tx, c, now).await?;
    }
    remotes::delete_remote(&mut tx, &r.remote.id, now).await?;
    commit_audited(
        tx,
        caller.event(
            &r.remote.tenant_id,
            "remote.delete",
            "remote",
            Some(&r.remote.id),
            serde_json::json!({ "name": r.remote.name, "url": r.remote.url }),
        ),
        now,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List sync jobs
#[utoipa::path(get, path = "/api/v1/sync-jobs", tag = "sync", params(TenantFilter, loop_api::PageQuery),
    responses((status = 200, description = "Success", body = Vec<SyncJob>)))]
pub async fn list_sync_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TenantFilter>,
    Query(p): Query<loop_api::PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<SyncJob>> {
    let scope = caller
        .scope(&state, Permission::VaultRead, f.tenant_id.as_ref())
        .await?;
    let page = remotes::sync_jobs_in(&state.db.pool, &scope, Some(&page(&p)?)).await?;
    Ok(Listing::new(uri, page))
}

/// Create a sync job
///
/// `push` copies a vault of this server to a vault of the remote, `pull` the other way
/// (into a customer-key vault: the objects stay encrypted with the other server's keys).
/// The remote is reached first: its token must open the vault with the `replicate`
/// permission, and a push must go to a jurisdiction the tenant's residency allows (`403
/// residency`, audited). With `schedule` it runs by itself; `remove_vanished` removes from
/// the receiving vault what the sending one no longer holds (never what a retention lock
/// holds); `bytes_per_sec` limits its rate.
#[utoipa::path(post, path = "/api/v1/sync-jobs", tag = "sync", request_body = CreateSyncJob,
    responses((status = 201, description = "Created", body = SyncJob),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 403, description = "Forbidden (problem+json)", body = loop_api::Problem),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "The remote refused: a revoked token, or a vault it does not name (problem+json)", body = loop_api::Problem),
        (status = 502, description = "The remote could not be reached (problem+json)", body = loop_api::Problem)))]
pub async fn create_sync_job(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateSyncJob>,
) -> ApiResult<(StatusCode, axum::Json<SyncJob>)> {
    let remote = scoped_remote(&state, &caller, Permission::VaultWrite, &req.remote_id).await?;
    if let Some(s) = &req.schedule {
        loop_api::schedule::Schedule::parse(s)
            .map_err(|e| ApiError::bad_request(format!("schedule: {e}")))?;
    }
    if req.bytes_per_sec == Some(0) {
        return Err(ApiError::bad_request("bytes_per_sec must be positive"));
    }
    // The remote answered and refused (a revoked token, a vault gone there): nothing this
    // server can retry, so not a 5xx. Out of reach, or failing: 502.
    let unreachable = |e: JobError| match e {
        JobError::Failed(m) => ApiError::conflict("remote_refused", m),
        e => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "remote_unreachable",
            crate::jobs::sync::said(e),
        ),
    };
    let tenant = db::tenants::tenant_by_id(&state.db.pool, &remote.remote.tenant_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    // Where a push would place the tenant's data: (place, jurisdiction) at the remote.
    let mut places = Vec::new();
    let (vault, remote_vault_id) = match (&req.vault_id, &req.remote_vault_id) {
        (Some(vault_id), Some(remote_vault_id)) => {
            let v = scoped_vault(&state, &caller, Permission::VaultWrite, vault_id).await?;
            if remote.remote.tenant_id != v.tenant_id {
                return Err(ApiError::bad_request(
                    "the remote belongs to another tenant than the vault",
                ));
            }
            if req.direction == SyncDirection::Pull && v.key_custody != KeyCustody::Customer {
                return Err(ApiError::bad_request(
                    "a pull writes only into a customer-key vault: the objects it copies are \
                     encrypted with the other server's keys",
                ));
            }
            let remote_vault_id = parse_remote_vault(remote_vault_id)?;
            let jurisdiction = crate::jobs::sync::reach(&state, &remote, &remote_vault_id)
                .await
                .map_err(unreachable)?;
            places.push((remote_vault_id.clone(), jurisdiction));
            (Some(v), Some(remote_vault_id))
        }
        (None, None) => {
            // The whole tenant: every vault whose name the patterns match, by name.
            let filter =
                crate::jobs::sync::name_filter(&req.vaults).map_err(ApiError::bad_request)?;
            let theirs = crate::jobs::sync::remote_vaults(&state, &remote)
                .await
                .map_err(unreachable)?;
            places.extend(
                theirs
                    .into_iter()
                    .filter(|t| req.vaults.is_empty() || filter.is_match(&t.name))
                    .map(|t| (t.id, t.jurisdiction)),
            );
            (None, None)
        }
        _ => {
            return Err(ApiError::bad_request(
                "give vault_id and remote_vault_id for one vault, or neither for every vault \
                 of the tenant (vaults narrows it by name)",
            ));
        }
    };
    if req.direction == SyncDirection::Push {
        for (remote_vault_id, jurisdiction) in &places {
            let place = format!("{}:{remote_vault_id}", remote.remote.name);
            check_placement(
                &state,
                &caller,
                &tenant,
                (&place, jurisdiction),
                "sync_job.create",
                ("vault", vault.as_ref().map(|v| v.id.as_str())),
            )
            .await?;
        }
    }
    let jurisdiction = places.first().map(|p| p.1.clone());
    let now = state.now();
    let job = SyncJob {
        id: new_id("sj"),
        tenant_id: tenant.tenant.id.clone(),
        remote_id: remote.remote.id.clone(),
        direction: req.direction,
        vault_id: vault.map(|v| v.id),
        remote_vault_id,
        vaults: if req.vault_id.is_none() {
            req.vaults
        } else {
            Vec::new()
        },
        remove_vanished: req.remove_vanished,
        bytes_per_sec: req.bytes_per_sec,
        schedule: req.schedule,
        next_run_at: None,
        created_at: db::time(now),
    };
    let next = crate::jobs::sync::next_run(&state, &job, now).await?;
    let mut tx = state.db.begin().await?;
    crate::auth::hold_unerased(&mut tx, &job.tenant_id).await?;
    remotes::insert_sync_job(&mut tx, &job, next, now).await?;
    commit_audited(
        tx,
        caller.event(
            &job.tenant_id,
            "sync_job.create",
            "vault",
            job.vault_id.as_deref(),
            serde_json::json!({
                "sync_job_id": job.id, "direction": job.direction, "remote_id": job.remote_id,
                "remote_vault_id": job.remote_vault_id, "vaults": job.vaults,
                "jurisdiction": jurisdiction,
                "schedule": job.schedule, "remove_vanished": job.remove_vanished,
                "bytes_per_sec": job.bytes_per_sec,
            }),
        ),
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SyncJob {
            next_run_at: next.map(db::time),
            ..job
        }),
    ))
}

/// Where push sync jobs about to go copied the tenant's vaults to. What they copied stays
/// there: remembered ([`db::erasure::insert_departed`]), so that the tenant's erasure still
/// deletes those copies through the remote while it exists, and names them once it is gone.
async fn copies_left<'j>(
    state: &AppState,
    tenant_id: &str,
    jobs: impl Iterator<Item = &'j SyncJob>,
) -> ApiResult<Vec<crate::db::erasure::LocationRow>> {
    let scope = crate::domain::TenantScope::One(tenant_id.to_string());
    let vaults = db::vaults::vaults_in(&state.db.pool, &scope, None)
        .await?
        .items;
    let mut copies = Vec::new();
    for job in jobs.filter(|j| j.direction == loop_api::SyncDirection::Push) {
        copies.extend(crate::erasure::pushed_to(state, job, &vaults).await?);
    }
    Ok(copies)
}

/// Where the tenant's push sync jobs copied vault `v` to (those naming it, and those of the
/// whole tenant whose names take it in), for a deletion of `v` to remember.
pub(crate) async fn copies_of_vault(
    state: &AppState,
    v: &loop_api::Vault,
) -> ApiResult<Vec<crate::db::erasure::LocationRow>> {
    let scope = crate::domain::TenantScope::One(v.tenant_id.clone());
    let jobs = remotes::sync_jobs_in(&state.db.pool, &scope, None)
        .await?
        .items;
    let mut copies = Vec::new();
    for job in jobs.iter().filter(|j| {
        j.direction == loop_api::SyncDirection::Push
            && j.vault_id.as_ref().is_none_or(|id| id.as_str() == v.id)
    }) {
        copies.extend(crate::erasure::pushed_to(state, job, std::slice::from_ref(v)).await?);
    }
    Ok(copies)
}

/// Delete a sync job
///
/// What a push job copied stays at the remote and is remembered: the tenant's erasure still
/// erases it there.
#[utoipa::path(delete, path = "/api/v1/sync-jobs/{id}", tag = "sync", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn delete_sync_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let j = scoped_sync_job(&state, &caller, Permission::VaultWrite, &id).await?;
    let copies = copies_left(&state, &j.tenant_id, std::iter::once(&j)).await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    for c in &copies {
        db::erasure::insert_departed(&mut tx, c, now).await?;
    }
    remotes::delete_sync_job(&mut tx, &j.id, now).await?;
    commit_audited(
        tx,
        caller.event(
            &j.tenant_id,
            "sync_job.delete",
            "vault",
            j.vault_id.as_deref(),
            serde_json::json!({ "sync_job_id": j.id }),
        ),
        now,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run a sync job now
///
/// Queues a `sync` job (one already queued or running is the answer instead).
#[utoipa::path(post, path = "/api/v1/sync-jobs/{id}/run", tag = "sync", params(("id" = String, Path)),
    responses((status = 202, description = "The sync job's run", body = Job),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn run_sync_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    let j = scoped_sync_job(&state, &caller, Permission::JobWrite, &id).await?;
    let (_, actor) = caller.actor();
    let tx = state.db.begin().await?;
    let work = crate::jobs::sync::work(&j, JobTrigger::User, Some(&actor));
    queue_audited(&state, tx, work, |job_id| {
        caller.event(
            &j.tenant_id,
            "sync_job.run",
            "vault",
            j.vault_id.as_deref(),
            serde_json::json!({ "sync_job_id": j.id, "job_id": job_id }),
        )
    })
    .await
}
