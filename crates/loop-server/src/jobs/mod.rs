//! The job runner: claims due jobs from the database and runs them, apart from the request
//! handlers.
//!
//! Handlers only queue jobs ([`queue`], in the transaction of the change that asks for the
//! work) and wake the runner. Each node runs [`run_jobs`]: it claims due jobs with a lease
//! (see `db::jobs`), runs up to `jobs.concurrency` at once, renews each lease every third
//! of its length, and records the end. A job whose runner dies is taken over by any node
//! once its lease expires; a runner that lost its lease stops at its next write, which the
//! fence refuses. Transient failures (storage or database errors) are retried with a
//! growing delay; a failure that retrying cannot fix ends the job as failed.
//!
//! Every kind of job is written to be run again from the start after a cut: it looks at
//! what is left to do, not at what it did before.

pub mod control;
mod data_export;
mod erase_tenant;
mod erase_vault;
mod key_rotation;
mod maintenance;
mod remote;
pub mod replicate;
pub use maintenance::agent_retention;
pub use retention::{forget_request, keep_policy};
mod retention;
pub mod scheduler;
mod sweep;
pub mod sync;
pub mod verify;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use loop_api::{JobKind, JobProgress, JobState, JobTrigger};

use crate::db::jobs::{self, Answering, Claimed, Held, NewJob};
use crate::db::{DbError, Tx};
use crate::state::AppState;
use crate::vault_objects::Fence;

/// The first retry waits this long; each further one twice as long, up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 30_000;
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// Why a job stopped before it was done.
#[derive(Debug)]
pub enum JobError {
    /// A cancel was asked for.
    Cancelled,
    /// Another runner holds the job now: stop without writing anything.
    LeaseLost,
    /// Worth another attempt (storage or database unreachable, a timeout). The message is
    /// shown to the tenant: it names what failed, never internal detail (that goes to the
    /// server log with the incident ID the message carries).
    Transient(String),
    /// Retrying would not help.
    Failed(String),
}

impl JobError {
    /// A transient failure whose detail goes to the server log only.
    pub fn transient(what: &str, detail: impl std::fmt::Display) -> JobError {
        let incident = crate::domain::new_id("inc");
        tracing::warn!(%incident, error = %detail, "{what}");
        JobError::Transient(format!("{what}; incident {incident} is in the server log"))
    }
}

impl From<DbError> for JobError {
    fn from(e: DbError) -> JobError {
        JobError::transient("the database failed", e)
    }
}

/// Runs `f` on a blocking thread; an engine error is transient (storage or a lost lease).
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> loop_repo::Result<T> + Send + 'static,
) -> Result<T, JobError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(JobError::transient(what, e)),
        Err(e) => Err(JobError::transient(what, e)),
    }
}

/// What a finished job reports.
pub struct Done {
    pub summary: serde_json::Value,
    /// Lines logged at `warning`: the job ends as succeeded with warnings.
    pub warnings: u32,
}

/// The running job, as its kind sees it.
pub struct JobCtx {
    pub state: AppState,
    pub claimed: Claimed,
    stop: Arc<Stop>,
    /// The job's `asked_again` as it read it before its last look at all of its work, when
    /// it answers the requests that join it (see [`JobCtx::answering`]).
    answered: std::sync::Mutex<Option<i64>>,
}

#[derive(Default)]
struct Stop {
    cancel: AtomicBool,
    /// Shared with the job's [`Fence`], which sets it when a write finds the job taken over.
    lost: Arc<AtomicBool>,
}

impl JobCtx {
    pub fn id(&self) -> &str {
        &self.claimed.job.id
    }

    /// What a [`crate::vault_objects::ServerStorage`] of this job checks before each change.
    pub fn fence(&self) -> Fence {
        Fence {
            job_id: self.id().to_string(),
            fence: self.claimed.fence,
            lost: self.stop.lost.clone(),
        }
    }

    /// Err when the job should stop now: cancelled, or its lease lost.
    pub fn check(&self) -> Result<(), JobError> {
        if self.stop.lost.load(Ordering::Relaxed) {
            Err(JobError::LeaseLost)
        } else if self.stop.cancel.load(Ordering::Relaxed) {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// How many requests have joined the job so far.
    pub async fn asked_again(&self) -> Result<i64, JobError> {
        Ok(jobs::asked_again(&self.state.db.pool, self.id()).await?)
    }

    /// For a job that answers every request that joins it: `seen` is what
    /// [`JobCtx::asked_again`] said before the job last looked at all of its work. When a
    /// request joined after that, the job runs again (under its ID) instead of ending.
    pub fn answering(&self, seen: i64) {
        *self.answered.lock().unwrap_or_else(|e| e.into_inner()) = Some(seen);
    }

    /// Err when another runner holds the job now; for work that must not be cancelled.
    pub fn check_held(&self) -> Result<(), JobError> {
        if self.stop.lost.load(Ordering::Relaxed) {
            Err(JobError::LeaseLost)
        } else {
            Ok(())
        }
    }

    /// Appends a line to the job's log (`info`, `warning` or `error`).
    pub async fn log(&self, level: &str, message: &str) -> Result<(), JobError> {
        let held = jobs::log(
            &self.state.db.pool,
            self.id(),
            self.claimed.fence,
            level,
            message,
            self.state.now(),
        )
        .await?;
        self.held(held)
    }

    pub async fn progress(&self, p: &JobProgress) -> Result<(), JobError> {
        let held = jobs::progress(&self.state.db.pool, self.id(), self.claimed.fence, p).await?;
        self.held(held)
    }

    fn held(&self, held: bool) -> Result<(), JobError> {
        if !held {
            self.stop.lost.store(true, Ordering::Relaxed);
        }
        self.check()
    }
}

/// Work to queue as a job.
pub struct Work<'a> {
    /// The server, but for the retention and verify of a customer-key vault (its
    /// maintainer's agent).
    pub runner: jobs::Runner,
    pub tenant_id: &'a str,
    pub kind: JobKind,
    /// What it works on: (`vault`, ID), (`destination`, name), ...
    pub target: (&'static str, &'a str),
    pub trigger: JobTrigger,
    /// The user or token, for [`JobTrigger::User`].
    pub started_by_id: Option<&'a str>,
    /// The kind's parameters.
    pub params: serde_json::Value,
}

/// Queues a job in the caller's transaction (see [`jobs::enqueue`]), due now; call
/// [`AppState::jobs_wake`]`.notify_one()` after the commit.
pub async fn queue(state: &AppState, tx: &mut Tx, w: Work<'_>) -> Result<String, DbError> {
    let now = state.now();
    jobs::enqueue(
        tx,
        &NewJob {
            runner: w.runner,
            tenant_id: w.tenant_id,
            kind: w.kind,
            target_kind: w.target.0,
            target_id: w.target.1,
            scheduled_at: now,
            trigger: w.trigger,
            started_by_id: w.started_by_id,
            max_attempts: state.config.jobs.max_attempts,
            params: w.params,
            deadline_at: None,
        },
        now,
    )
    .await
}

/// Refuses (`409 job_open`) when `id`, the job a request to queue `asked` was answered with,
/// is a job already open with other settings: joining it would do other work than was
/// asked for (a restore of another snapshot, a dry run for a real one).
pub async fn refuse_other_settings(
    tx: &mut Tx,
    id: &str,
    asked: &serde_json::Value,
) -> crate::error::ApiResult<()> {
    if jobs::params_of(tx, id).await? == *asked {
        return Ok(());
    }
    Err(crate::error::ApiError::conflict(
        "job_open",
        format!(
            "job {id} is queued or running here with other settings: wait for it to end, or \
             cancel it, then ask again"
        ),
    ))
}

/// The job `id` as it is now; a job the caller just made cannot be missing.
pub async fn queued(state: &AppState, id: &str) -> crate::error::ApiResult<loop_api::Job> {
    jobs::job_by_id(&state.db.pool, id)
        .await?
        .ok_or_else(|| crate::error::ApiError::Internal(format!("job {id} vanished")))
}

/// Runs due jobs until the task is dropped: at once when woken, else every
/// `jobs.poll_seconds`.
pub async fn run_jobs(state: AppState) {
    let cfg = state.config.jobs.clone();
    if cfg.concurrency == 0 {
        tracing::info!("jobs.concurrency is 0: this node runs no jobs");
        return;
    }
    let poll = Duration::from_secs(cfg.poll_seconds.max(1));
    let slots = Arc::new(tokio::sync::Semaphore::new(cfg.concurrency as usize));
    let mut last_log_sweep: Option<i64> = None;
    loop {
        let now = state.now();
        if last_log_sweep.is_none_or(|t| now - t >= 3_600_000) {
            last_log_sweep = Some(now);
            let before = now - cfg.log_days as i64 * 86_400_000;
            if let Err(e) = jobs::drop_old_logs(&state.db.pool, before).await {
                tracing::warn!(error = %e, "dropping old job logs");
            }
        }
        let free = slots.available_permits() as u32;
        match jobs::claim_due(
            &state.db.pool,
            jobs::Claimant {
                runner: &state.runner_id,
                node: Some(&state.node_id),
            },
            now,
            cfg.lease_seconds as i64 * 1000,
            free,
        )
        .await
        {
            Ok(report) => {
                for id in report.abandoned {
                    tracing::warn!(job = %id, "job abandoned: its runner disappeared during its last attempt");
                }
                for claimed in report.claimed {
                    let permit = slots
                        .clone()
                        .try_acquire_owned()
                        .expect("claimed only free slots");
                    let state = state.clone();
                    tokio::spawn(async move {
                        run_one(&state, claimed).await;
                        drop(permit);
                        // A slot is free: look for more work now.
                        state.jobs_wake.notify_one();
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "looking for due jobs"),
        }
        tokio::select! {
            _ = state.jobs_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Runs one claimed job to its end, renewing its lease meanwhile.
async fn run_one(state: &AppState, claimed: Claimed) {
    let (id, fence, kind) = (claimed.job.id.clone(), claimed.fence, claimed.job.kind);
    let stop = Arc::new(Stop::default());
    stop.cancel
        .store(claimed.job.cancel_requested, Ordering::Relaxed);
    let ctx = JobCtx {
        state: state.clone(),
        claimed,
        stop: stop.clone(),
        answered: std::sync::Mutex::new(None),
    };
    tracing::info!(job = %id, kind = %kind, attempt = ctx.claimed.job.attempts, "job started");
    if ctx.claimed.taken_over {
        let _ = ctx
            .log(
                "warning",
                "the previous runner disappeared; continuing where it left off",
            )
            .await;
    }
    // Aborted when dropped: a job that panics lets its lease lapse, so that another runner
    // takes it over, instead of holding it for as long as this process lives.
    let renewer = AbortOnDrop(tokio::spawn(renew_lease(
        state.clone(),
        id.clone(),
        fence,
        stop.clone(),
    )));
    let result = match kind {
        JobKind::VaultErasure => erase_vault::run(&ctx).await,
        JobKind::StagingSweep => sweep::run(&ctx).await,
        JobKind::Verify => verify::run(&ctx).await,
        JobKind::Retention => retention::run(&ctx).await,
        JobKind::TenantKeyRotation => key_rotation::run(&ctx).await,
        JobKind::Replication => replicate::run(&ctx).await,
        JobKind::ReplicaVerify => replicate::verify(&ctx).await,
        JobKind::ReplicaErasure => erase_vault::run_replica(&ctx).await,
        JobKind::TenantErasure => erase_tenant::run(&ctx).await,
        JobKind::DataExport => data_export::run(&ctx).await,
        JobKind::Sync => sync::run(&ctx).await,
        JobKind::Backup | JobKind::Restore => Err(JobError::Failed(
            "this job runs on a device's agent, not on the server".into(),
        )),
    };
    drop(renewer);
    let now = state.now();
    let pool = &state.db.pool;
    // A retry is not an end: its run time is not a job's duration.
    let mut ended = true;
    let recorded = match result {
        Ok(done) => {
            let end = if done.warnings > 0 {
                JobState::SucceededWithWarnings
            } else {
                JobState::Succeeded
            };
            let answered = *ctx.answered.lock().unwrap_or_else(|e| e.into_inner());
            match answered {
                None => {
                    tracing::info!(job = %id, kind = %kind, state = %end, "job ended");
                    jobs::finish(pool, &id, fence, end, Some(&done.summary), None, now).await
                }
                Some(seen) => {
                    let (recorded, runs_again) = end_answered(&ctx, end, &done, seen, now).await;
                    ended = !runs_again;
                    recorded
                }
            }
        }
        Err(JobError::LeaseLost) => {
            tracing::warn!(job = %id, "job lease lost to another runner; stopped");
            return;
        }
        Err(JobError::Cancelled) => {
            tracing::info!(job = %id, "job cancelled");
            jobs::finish(pool, &id, fence, JobState::Cancelled, None, None, now).await
        }
        Err(JobError::Transient(msg))
            if ctx.claimed.job.attempts < max_attempts(state) || kind.must_finish() =>
        {
            ended = false;
            let wait = backoff_ms(
                FIRST_BACKOFF_MS,
                MAX_BACKOFF_MS,
                ctx.claimed.job.attempts as i64,
            );
            // Past the attempts another job gets, one that must finish says so as an error.
            let (level, line) = if ctx.claimed.job.attempts < max_attempts(state) {
                ("warning", format!("{msg}; trying again later"))
            } else {
                let every = MAX_BACKOFF_MS / 60_000;
                let line = format!(
                    "{msg}; attempt {}: this job must finish, so it is tried again (at most \
                     {every} minutes apart) until it does",
                    ctx.claimed.job.attempts
                );
                ("error", line)
            };
            let _ = ctx.log(level, &line).await;
            jobs::retry_at(pool, &id, fence, now + wait, &msg).await
        }
        Err(JobError::Transient(msg) | JobError::Failed(msg)) => {
            let _ = ctx.log("error", &msg).await;
            tracing::warn!(job = %id, kind = %kind, error = %msg, "job failed");
            let answered = *ctx.answered.lock().unwrap_or_else(|e| e.into_inner());
            match answered {
                None => {
                    jobs::finish(pool, &id, fence, JobState::Failed, None, Some(&msg), now).await
                }
                // Requests that joined it as it failed get a job of their own.
                Some(seen) => jobs::fail_answering(&state.db, &id, fence, &msg, seen, now)
                    .await
                    .map(|a| a != jobs::Answering::Lost),
            }
        }
    };
    match recorded {
        Ok(true) if ended => {
            let started = ctx
                .claimed
                .job
                .started_at
                .map_or(now, |t| t.timestamp_millis());
            state.metrics.job_ended(kind, now - started);
            state.notify_wake.notify_one();
        }
        Ok(true) => {}
        Ok(false) => tracing::warn!(job = %id, "job lease lost before its end was recorded"),
        Err(e) => tracing::warn!(job = %id, error = %e, "recording the end of a job"),
    }
}

/// Records the end of a job that answers the requests joining it (see
/// [`JobCtx::answering`]): whether it was recorded (false: the job was lost), and whether
/// the job runs again instead.
async fn end_answered(
    ctx: &JobCtx,
    end: JobState,
    done: &Done,
    seen: i64,
    now: i64,
) -> (Result<bool, DbError>, bool) {
    let (id, fence, kind) = (ctx.id(), ctx.claimed.fence, ctx.claimed.job.kind);
    let db = &ctx.state.db;
    match jobs::end_answering(db, id, fence, end, &done.summary, seen, now).await {
        Ok(Answering::Ended) => {
            tracing::info!(job = %id, kind = %kind, state = %end, "job ended");
            (Ok(true), false)
        }
        Ok(Answering::AskedAgain) => {
            tracing::info!(job = %id, kind = %kind, "job asked for again as it ended: it runs again");
            let line = "asked for again after its last look: it runs again";
            let _ = jobs::log(&db.pool, id, fence + 1, "info", line, now).await;
            (Ok(true), true)
        }
        Ok(Answering::Continued(next)) => {
            tracing::info!(job = %id, kind = %kind, state = %end, next = %next,
                "job ended; a new job takes what was asked for as it ended");
            (Ok(true), false)
        }
        Ok(Answering::Lost) => (Ok(false), false),
        Err(e) => (Err(e), false),
    }
}

fn max_attempts(state: &AppState) -> u32 {
    state.config.jobs.max_attempts
}

/// A task that ends when this handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease every third of its length until aborted; flags the job when the lease
/// is lost or a cancel was asked for.
async fn renew_lease(state: AppState, id: String, fence: i64, stop: Arc<Stop>) {
    let lease_ms = state.config.jobs.lease_seconds as i64 * 1000;
    let every = Duration::from_millis((lease_ms / 3).max(100) as u64);
    loop {
        tokio::time::sleep(every).await;
        match jobs::renew(&state.db.pool, &id, fence, state.now() + lease_ms).await {
            Ok(Held::Yes { cancel_requested }) => {
                if cancel_requested {
                    stop.cancel.store(true, Ordering::Relaxed);
                }
            }
            Ok(Held::Lost) => {
                stop.lost.store(true, Ordering::Relaxed);
                return;
            }
            // The database is away: keep working, and try again; if it stays away, the
            // lease runs out and the fence refuses this runner's writes.
            Err(e) => tracing::warn!(job = %id, error = %e, "renewing a job lease"),
        }
    }
}

/// How long an erasure waits for the jobs it asked to stop before it tries again later. A job
/// notices it was asked at its next lease renewal (a third of `jobs.lease_seconds`) and after
/// the copies it has under way.
const STOP_WAIT: Duration = Duration::from_secs(600);

/// Waits until none of the jobs an erasure of `of` must outlast runs on this server's nodes:
/// the erasure asked them to stop, and a replication or sync still under way would copy into
/// a place after it was found empty. (Jobs of devices cannot: their tokens are revoked, or
/// they do not write where the erasure deletes.)
pub(super) async fn wait_for_stopped(
    ctx: &JobCtx,
    of: crate::db::stopping::Erasing<'_>,
    kinds: Option<&[JobKind]>,
) -> Result<(), JobError> {
    wait_out(ctx, STOP_WAIT, || async move {
        let running = crate::db::stopping::still_running(&ctx.state.db.pool, of, kinds).await?;
        if running.is_empty() {
            return Ok(None);
        }
        let named: Vec<String> = running
            .iter()
            .map(|(id, kind)| format!("{kind} {id}"))
            .collect();
        let named = named.join(", ");
        Ok(Some((
            format!("waiting for jobs that would copy into its places to stop: {named}"),
            format!("jobs that would copy into its places are still running: {named}"),
        )))
    })
    .await
}

/// Polls `under_way` every 250 ms until it finds nothing, for an erasure that must outlast
/// what it finds: the first line of each pair it answers goes to the job's log once (what
/// is waited for), the second is the error once `limit` has passed (what is still under
/// way; transient, so the erasure is tried again later).
pub(super) async fn wait_out<F, Fut>(
    ctx: &JobCtx,
    limit: Duration,
    mut under_way: F,
) -> Result<(), JobError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<(String, String)>, JobError>>,
{
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        let Some((waiting, still)) = under_way().await? else {
            return Ok(());
        };
        if started.elapsed() > limit {
            return Err(JobError::Transient(still));
        }
        if !told {
            ctx.log("info", &waiting).await?;
            told = true;
        }
        ctx.check_held()?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The wait after the `attempts`-th failed try: `first_ms`, doubling each time, at most
/// `max_ms`. Jobs and the mail outbox retry by it.
pub(crate) fn backoff_ms(first_ms: i64, max_ms: i64, attempts: i64) -> i64 {
    let doublings = attempts.clamp(1, 20) - 1;
    first_ms.saturating_mul(1 << doublings).min(max_ms)
}

#[cfg(test)]
mod tests;
