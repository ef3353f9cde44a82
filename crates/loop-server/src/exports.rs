//! "Download my data": everything the service holds on one person (GDPR Art. 15 and 20),
//! as JSON files with a README in one zip file. The person asks for it, or an admin of
//! their tenant does; a job gathers it (`jobs::data_export`); it can be downloaded by the
//! person or by that admin for `privacy.export_days` (7) and is then deleted.

use loop_api::{DataExport, DataExportState, JobKind, JobTrigger, UserId};

use crate::auth::Caller;
use crate::db;
use crate::db::exports::{self, ExportRow};
use crate::domain::new_id;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The API's view of a stored archive.
pub fn view(e: &ExportRow) -> DataExport {
    let state = match (e.ready_at, e.held) {
        (None, _) => DataExportState::Preparing,
        (Some(_), true) => DataExportState::Ready,
        (Some(_), false) => DataExportState::Expired,
    };
    DataExport {
        id: e.id.clone(),
        user_id: e.user_id.clone(),
        state,
        job_id: e.job_id.clone(),
        created_at: db::time(e.created_at),
        ready_at: e.ready_at.map(db::time),
        expires_at: e.expires_at.map(db::time),
        size: e.size.map(|s| s.max(0) as u64),
        sha256: e.sha256.clone(),
        download: (state == DataExportState::Ready)
            .then(|| format!("/api/v1/data-exports/{}/archive", e.id)),
    }
}

/// Asks for an archive of `user_id`'s data (the caller's own when `None`).
pub async fn request(
    state: &AppState,
    caller: &Caller,
    user_id: Option<&str>,
) -> ApiResult<DataExport> {
    let me = caller.user()?;
    let person = match user_id {
        None => me.user.clone(),
        Some(id) if id == me.user.user.id => me.user.clone(),
        // Someone else's: only an account the caller may act on, as for any change to it
        // (an admin of the provider does not read a provider-admin's data).
        Some(id) => {
            let id = UserId::parse(id).map_err(|_| ApiError::not_found())?;
            crate::directory::account_in_reach(state, caller, &id)
                .await?
                .0
        }
    };
    if crate::person::is_erased(&person) {
        return Err(ApiError::conflict(
            "user_erased",
            "this person was erased: nothing personal is left to export",
        ));
    }
    let now = state.now();
    let (_, by) = caller.actor();
    let mut e = ExportRow {
        id: new_id("dx"),
        user_id: person.user.id.clone(),
        tenant_id: person.user.tenant_id.clone(),
        requested_by: by.clone(),
        job_id: None,
        created_at: now,
        ready_at: None,
        expires_at: None,
        size: None,
        sha256: None,
        held: false,
    };
    let mut tx = state.db.begin().await?;
    crate::person::hold_unerased(&mut tx, &e.user_id).await?;
    exports::insert(&mut tx, &e).await?;
    let work = crate::jobs::Work {
        runner: db::jobs::Runner::Server,
        tenant_id: &e.tenant_id,
        kind: JobKind::DataExport,
        target: ("data_export", &e.id),
        trigger: JobTrigger::User,
        started_by_id: Some(&by),
        params: serde_json::json!({}),
    };
    let job = crate::jobs::queue(state, &mut tx, work).await?;
    exports::set_job(&mut tx, &e.id, &job).await?;
    e.job_id = Some(job);
    let event = caller.event(
        &e.tenant_id,
        "user.data_export",
        "user",
        Some(&e.user_id),
        serde_json::json!({ "export_id": e.id }),
    );
    crate::db::audit::commit_audited(tx, event, now).await?;
    state.jobs_wake.notify_one();
    Ok(view(&e))
}

/// An archive the caller may see: of themselves, or of a user whose account they may act on
/// (a user of a tenant whose users they administer, ranking no higher than they do there).
/// Anything else is not found, or forbidden.
pub async fn visible(state: &AppState, caller: &Caller, id: &str) -> ApiResult<ExportRow> {
    let me = caller.user()?;
    let e = exports::by_id(&state.db.pool, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if e.user_id != me.user.user.id {
        let person = UserId::parse(&e.user_id).map_err(|_| ApiError::not_found())?;
        crate::directory::account_in_reach(state, caller, &person).await?;
    }
    Ok(e)
}

/// The zip file, while it is ready.
pub async fn download(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Vec<u8>> {
    let e = visible(state, caller, id).await?;
    if e.ready_at.is_none() {
        return Err(ApiError::conflict(
            "export_not_ready",
            "the archive is still being made: see its job",
        ));
    }
    // Past its period it is gone, even before the scheduler's next pass deletes it.
    let expired = e.expires_at.is_some_and(|t| t <= state.now());
    match exports::archive(&state.db.pool, id).await? {
        Some(bytes) if e.held && !expired => Ok(bytes),
        _ => Err(ApiError::new(
            axum::http::StatusCode::GONE,
            "export_expired",
            "the archive was deleted when its download period ended: ask for a new one",
        )),
    }
}
