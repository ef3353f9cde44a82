//! Jobs: a tenant's recent jobs; one job with its progress and log, followed live (server-sent
//! events, read by the console's one small script; without scripts the page shows the job as
//! it was when loaded); cancel; back up an item now (from the dashboard).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use loop_api::{Job, JobLogLine, JobQuery, JobState, Language, TenantId};
use maud::{Markup, html};

use super::catalogue::M;
use super::layout::{document, scroll, time, token};
use super::reader::{Done, NoFields, Posted, Viewer};
use crate::auth::Caller;
use crate::domain::{Permission, TenantScope};
use crate::error::{ApiError, ApiResult};
use crate::jobs::control;
use crate::notify::email::size;
use crate::state::AppState;
use crate::zone::Zone;

/// Jobs a tenant's list shows (its newest).
const LISTED: u32 = 100;

/// How often a job's page hears how its job is doing.
const EVERY: Duration = Duration::from_secs(1);

fn state_word(s: JobState) -> M {
    match s {
        JobState::Queued => M::JobQueued,
        JobState::Running => M::JobRunning,
        JobState::Succeeded => M::JobSucceeded,
        JobState::SucceededWithWarnings => M::JobWarned,
        JobState::Failed => M::JobFailed,
        JobState::Cancelled => M::JobCancelled,
        JobState::Missed => M::JobMissed,
        JobState::Skipped => M::JobSkipped,
        JobState::Abandoned => M::JobAbandoned,
    }
}

fn state_class(s: JobState) -> &'static str {
    match s {
        JobState::Succeeded => "badge ok",
        JobState::SucceededWithWarnings => "badge warning",
        JobState::Failed | JobState::Missed | JobState::Abandoned => "badge failed",
        _ => "badge none",
    }
}

fn state_badge(lang: Language, s: JobState) -> Markup {
    html! { span #job-state class=(state_class(s)) { (state_word(s).text(lang)) } }
}

/// What has been done so far, in words.
fn done_text(lang: Language, j: &Job) -> String {
    let p = &j.progress;
    let total = |t: Option<u64>, f: fn(u64) -> String| t.map(f).unwrap_or_else(|| "?".into());
    M::JobDone.fill(
        lang,
        &[
            &p.files_done.to_string(),
            &total(p.files_total, |n| n.to_string()),
            &size(p.bytes_done),
            &total(p.bytes_total, size),
        ],
    )
}

/// `GET /t/{tenant}/jobs`: the tenant's newest jobs.
pub async fn list(State(state): State<AppState>, v: Viewer, Path(id): Path<String>) -> Response {
    let shown = async {
        let t = v.caller.tenant(&state, Permission::JobRead, &id).await?;
        let q = JobQuery {
            tenant_id: TenantId::parse(&t.tenant.id).ok(),
            state: None,
            kind: None,
        };
        let page = crate::db::page::Page {
            after: None,
            limit: LISTED,
        };
        let jobs = crate::db::jobs::jobs_in(
            &state.db.pool,
            &TenantScope::One(t.tenant.id.clone()),
            &q,
            &page,
        )
        .await?
        .items;
        let title = M::JobsOf.fill(v.lang, &[&t.tenant.name]);
        let content = html! {
            (v.tenant_menu(&t))
            @if jobs.is_empty() {
                p { (v.t(M::NoJobs)) }
            } @else {
                (scroll(&title, html! { table {
                    thead { tr {
                        th scope="col" { (v.t(M::Job)) }
                        th scope="col" { (v.t(M::State)) }
                        th scope="col" { (v.t(M::Started)) }
                        th scope="col" { (v.t(M::Finished)) }
                    } }
                    tbody {
                        @for j in &jobs {
                            tr data-job=(j.id) {
                                th scope="row" { a href={"/jobs/" (j.id)} { (j.kind) " " (j.target_kind) } }
                                td { span class=(state_class(j.state)) { (v.t(state_word(j.state))) } }
                                td { @if let Some(s) = j.started_at { (v.time(s)) } }
                                td { @if let Some(f) = j.finished_at { (v.time(f)) } }
                            }
                        }
                    }
                } }))
            }
        };
        Ok(document(StatusCode::OK, &v.frame(), &title, content))
    };
    shown
        .await
        .unwrap_or_else(|e: ApiError| super::failed(v.lang, e))
}

fn log_rows(zone: Zone, lines: &[JobLogLine]) -> Markup {
    html! {
        @for l in lines {
            tr { td { (time(zone, l.at)) } td { (l.level) } td { (l.message) } }
        }
    }
}

/// `GET /jobs/{id}`: the job, its progress and its log.
pub async fn show(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Response {
    let shown = async {
        let j = control::scoped_job(&state, &v.caller, Permission::JobRead, &id).await?;
        let t = v
            .caller
            .tenant(&state, Permission::JobRead, &j.tenant_id)
            .await?;
        let log = crate::db::jobs::job_log(&state.db.pool, &j.id).await?;
        let can_cancel = v.caller.can(Permission::JobWrite, &t.path) && !j.state.is_final();
        let title = M::JobTitle.fill(v.lang, &[&j.kind.to_string()]);
        let p = &j.progress;
        let content = html! {
            (v.tenant_menu(&t))
            @if done.done.as_deref() == Some("cancel") {
                p.status role="status" { (v.t(M::CancelAsked)) }
            }
            div #job data-events=[(!j.state.is_final()).then(|| format!("/jobs/{}/events?from={}", j.id, log.len()))] {
                dl.facts {
                    dt { (v.t(M::State)) } dd { (state_badge(v.lang, j.state)) }
                    dt { (v.t(M::Target)) } dd { (j.target_kind) " " (j.target_id) }
                    dt { (v.t(M::Started)) } dd #job-started { @if let Some(s) = j.started_at { (v.time(s)) } }
                    dt { (v.t(M::Finished)) } dd #job-ended { @if let Some(f) = j.finished_at { (v.time(f)) } }
                    dt { (v.t(M::Progress)) }
                    dd {
                        progress #job-progress aria-labelledby="job-done"
                            max=(p.bytes_total.unwrap_or(0).max(1))
                            value=[p.bytes_total.map(|_| p.bytes_done)] {}
                        " " span #job-done { (done_text(v.lang, &j)) }
                    }
                    // Shown when the job fails, also while the page follows it.
                    div #job-failed hidden[j.error.is_none()] {
                        dt { (v.t(M::Error)) } dd #job-error { (j.error.as_deref().unwrap_or_default()) }
                    }
                }
                h2 #log-h { (v.t(M::Log)) }
                (scroll(v.t(M::Log), html! { table aria-labelledby="log-h" {
                    thead { tr {
                        th scope="col" { (v.t(M::Time)) }
                        th scope="col" { (v.t(M::Level)) }
                        th scope="col" { (v.t(M::Message)) }
                    } }
                    tbody #job-log { (log_rows(v.zone, &log)) }
                } }))
            }
            @if can_cancel {
                form #job-cancel method="post" action={"/jobs/" (j.id) "/cancel"} {
                    (token(&v.csrf))
                    p { button type="submit" { (v.t(M::CancelJob)) } }
                }
            }
            script src=(super::assets::SCRIPT.as_str()) {}
        };
        Ok(document(StatusCode::OK, &v.frame(), &title, content))
    };
    shown
        .await
        .unwrap_or_else(|e: ApiError| super::failed(v.lang, e))
}

/// What an event tells a job's page: the state in words, the progress, the log lines it has
/// not shown yet, and whether the job ended (the page stops listening then).
#[derive(serde::Serialize)]
struct Update<'a> {
    state: &'static str,
    class: &'static str,
    done: String,
    bytes_done: u64,
    bytes_total: Option<u64>,
    started: Option<String>,
    ended: Option<String>,
    error: Option<&'a str>,
    log: Vec<[String; 3]>,
    last: bool,
}

/// The log lines a job's page already shows.
#[derive(Debug, Default, serde::Deserialize)]
pub struct From {
    #[serde(default)]
    from: usize,
}

/// `GET /jobs/{id}/events?from=N`: the job's progress as server-sent events, one a second
/// while it changes, until it ends; log lines from the `N`th on.
pub async fn events(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    axum::extract::Query(from): axum::extract::Query<From>,
) -> Response {
    let j = match control::scoped_job(&state, &v.caller, Permission::JobRead, &id).await {
        Ok(j) => j,
        Err(e) => return super::failed(v.lang, e),
    };
    let (lang, zone) = (v.lang, v.zone);
    let caller = v.caller.clone();
    let stream = futures_util::stream::unfold(
        (state, j.id, from.from, None::<String>, false),
        move |(state, id, shown, last_sent, ended)| {
            let caller = caller.clone();
            async move {
                if ended {
                    return None;
                }
                let (event, shown, sent, ended) = loop {
                    // A session signed out (or run out) meanwhile, or a reader whose role
                    // was taken away, hears no more.
                    match still_allowed(&state, &caller, &id).await {
                        Ok(true) => {}
                        Ok(false) => return None,
                        Err(e) => {
                            tracing::warn!(job = %id, error = ?e, "job events stopped");
                            return None;
                        }
                    }
                    match update(&state, &id, lang, zone, shown).await {
                        Ok((json, shown, ended)) if Some(&json) != last_sent.as_ref() || ended => {
                            break (
                                Event::default().event("job").data(json.clone()),
                                shown,
                                json,
                                ended,
                            );
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(job = %id, error = ?e, "job events stopped");
                            return None;
                        }
                    }
                    tokio::time::sleep(EVERY).await;
                };
                Some((
                    Ok::<_, Infallible>(event),
                    (state, id, shown, Some(sent), ended),
                ))
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Whether `caller` may still follow job `id`: its session open, and job-read on the job's
/// tenant with the roles it holds now.
async fn still_allowed(state: &AppState, caller: &Caller, id: &str) -> ApiResult<bool> {
    let session = &caller.user()?.session.session.id;
    if !still_signed_in(state, session).await? {
        return Ok(false);
    }
    let now = caller.with_current_roles(state).await?;
    Ok(control::scoped_job(state, &now, Permission::JobRead, id)
        .await
        .is_ok())
}

/// Whether the session is still open: not ended, not expired, not idle too long.
async fn still_signed_in(state: &AppState, session: &str) -> ApiResult<bool> {
    let now = state.now();
    Ok(
        match crate::db::sessions::session_by_id(&state.db.pool, session).await? {
            Some(s) => {
                s.session.ended_at.is_none()
                    && s.session.expires_at.timestamp_millis() > now
                    && s.session.last_seen_at.timestamp_millis() + s.idle_ms > now
            }
            None => false,
        },
    )
}

async fn update(
    state: &AppState,
    id: &str,
    lang: Language,
    zone: Zone,
    shown: usize,
) -> ApiResult<(String, usize, bool)> {
    let j = crate::jobs::queued(state, id).await?;
    let log = crate::db::jobs::job_log(&state.db.pool, id).await?;
    let fresh = log
        .iter()
        .skip(shown)
        .map(|l| [zone.text(l.at), l.level.clone(), l.message.clone()])
        .collect();
    let last = j.state.is_final();
    let u = Update {
        state: state_word(j.state).text(lang),
        class: state_class(j.state),
        done: done_text(lang, &j),
        bytes_done: j.progress.bytes_done,
        bytes_total: j.progress.bytes_total,
        started: j.started_at.map(|s| zone.text(s)),
        ended: j.finished_at.map(|f| zone.text(f)),
        error: j.error.as_deref(),
        log: fresh,
        last,
    };
    let json = serde_json::to_string(&u).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((json, log.len().max(shown), last))
}

/// `POST /jobs/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> Response {
    match control::cancel(&state, &v.caller, &id).await {
        Ok(j) => Redirect::to(&format!("/jobs/{}?done=cancel", j.id)).into_response(),
        Err(e) => super::failed(v.lang, e),
    }
}

/// `POST /items/{id}/run`: a backup of the item now; its job's page follows it.
pub async fn run_item(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> Response {
    match control::run_item(&state, &v.caller, &id).await {
        Ok(j) => Redirect::to(&format!("/jobs/{}", j.id)).into_response(),
        Err(e) => super::failed(v.lang, e),
    }
}
