//! Jobs and their logs (`jobs`, `job_log`).
//!
//! A runner *claims* a due job with a conditional update that sets its lease and raises the
//! job's fence number; only the runner whose update changed the row runs it. Every later
//! write (progress, log line, renewal, the end) names the fence it holds and changes nothing
//! when the fence moved on: a runner paused past its lease, whose job another runner took
//! over, finds its writes refused ([`Held::Lost`]). Nothing here depends on process memory,
//! so any number of server nodes may share the database.

use loop_api::{Job, JobKind, JobLogLine, JobProgress, JobQuery, JobState, JobTrigger};
use sqlx::AnyPool;

use super::page::{Page, Paged, asc, desc};
use super::tenants::in_scope_where;
use super::{DbResult, Tx, col, col_value, time};
use crate::domain::{TenantScope, new_id};

mod claiming;
mod ending;
mod row;

pub(super) use claiming::take;
pub use claiming::{ClaimReport, Claimant, Claimed, claim_due, give_back};
pub use ending::{
    Answering, MAX_RERUNS, asked_again, end_answering, fail_answering, finish, retry_at,
};
pub(super) use row::job;

/// Lines kept per job: a job that logs more keeps its first lines and a note.
pub const MAX_LOG_LINES: i64 = 1000;

/// Who runs a job: the server's job runner, or the agent of a device (backups and restores
/// of its device; the retention and verify of a customer-key vault it maintains).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    Server,
    Agent,
}

impl Runner {
    pub fn as_str(self) -> &'static str {
        match self {
            Runner::Server => "server",
            Runner::Agent => "agent",
        }
    }
}

/// A job to queue.
pub struct NewJob<'a> {
    pub runner: Runner,
    pub tenant_id: &'a str,
    pub kind: JobKind,
    pub target_kind: &'static str,
    pub target_id: &'a str,
    pub scheduled_at: i64,
    pub trigger: JobTrigger,
    pub started_by_id: Option<&'a str>,
    pub max_attempts: u32,
    pub params: serde_json::Value,
    /// Missed when not started by then.
    pub deadline_at: Option<i64>,
}

/// Inserts `j` in `state`; with `state = queued`, nothing when a job of the same kind for
/// the same target is open (the unique index `jobs_one_open`). Returns the new job's ID.
async fn insert(
    tx: &mut Tx,
    j: &NewJob<'_>,
    state: JobState,
    error: Option<&str>,
    now: i64,
) -> DbResult<Option<String>> {
    let id = new_id(loop_api::JobId::PREFIX);
    let finished = state.is_final().then_some(now);
    let inserted = sqlx::query(
        "INSERT INTO jobs (id, tenant_id, kind, target_kind, target_id, state, max_attempts,
            scheduled_at, params, trigger_kind, started_by_id, created_at, deadline_at,
            finished_at, error, runner)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(j.tenant_id)
    .bind(j.kind.as_str())
    .bind(j.target_kind)
    .bind(j.target_id)
    .bind(state.as_str())
    .bind(j.max_attempts.max(1) as i64)
    .bind(j.scheduled_at)
    .bind(j.params.to_string())
    .bind(j.trigger.as_str())
    .bind(j.started_by_id)
    .bind(now)
    .bind(j.deadline_at)
    .bind(finished)
    .bind(error)
    .bind(j.runner.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok((inserted == 1).then_some(id))
}

/// Queues `j` unless a job of the same kind for the same target is open; `None` then.
pub async fn enqueue_new(tx: &mut Tx, j: &NewJob<'_>, now: i64) -> DbResult<Option<String>> {
    insert(tx, j, JobState::Queued, None, now).await
}

/// The open (queued or running) job of `kind` for `target_id`, if any.
pub async fn open_of<'c>(
    db: impl sqlx::AnyExecutor<'c>,
    kind: JobKind,
    target_id: &str,
) -> DbResult<Option<String>> {
    let row = sqlx::query(
        "SELECT id FROM jobs WHERE target_id = $1 AND kind = $2
         AND state IN ('queued', 'running') LIMIT 1",
    )
    .bind(target_id)
    .bind(kind.as_str())
    .fetch_optional(db)
    .await?;
    row.map(|r| col(&r, "id")).transpose().map_err(Into::into)
}

/// Records work that ended without running: `missed` (its window passed) or `skipped`
/// (the same work was still running), with why.
pub async fn record_ended(
    tx: &mut Tx,
    j: &NewJob<'_>,
    state: JobState,
    error: &str,
    now: i64,
) -> DbResult<String> {
    debug_assert!(state.is_final());
    Ok(insert(tx, j, state, Some(error), now)
        .await?
        .expect("only open jobs conflict"))
}

/// Queued jobs whose deadline passed become `missed`. Returns them.
pub async fn miss_overdue(pool: &AnyPool, now: i64) -> DbResult<Vec<Job>> {
    let rows = sqlx::query(
        "SELECT * FROM jobs WHERE state = 'queued' AND deadline_at IS NOT NULL
         AND deadline_at < $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for row in rows {
        let mut j = job(&row)?;
        let r = sqlx::query(
            "UPDATE jobs SET state = 'missed', finished_at = $1, fence = fence + 1,
                error = 'it did not start within its window'
             WHERE id = $2 AND state = 'queued'",
        )
        .bind(now)
        .bind(&j.id)
        .execute(pool)
        .await?;
        if r.rows_affected() == 1 {
            j.state = JobState::Missed;
            out.push(j);
        }
    }
    Ok(out)
}

/// Queues a job in the caller's transaction, unless a job of the same kind for the same
/// target is still open (queued or running): the work is asked for once. Returns the ID of
/// the new or the open job.
pub async fn enqueue(tx: &mut Tx, j: &NewJob<'_>, now: i64) -> DbResult<String> {
    // Insert first: the unique index `jobs_one_open` refuses a second open job for the same
    // target and kind, even from another node's transaction running at the same time.
    loop {
        if let Some(id) = insert(tx, j, JobState::Queued, None, now).await? {
            return Ok(id);
        }
        // Joining counts in `asked_again` (see [`end_answering`]), except for a schedule's
        // run, which the open job answers as it stands. A person's request also brings a
        // queued job's time forward to its own ("run now" joined to a jittered backup, or to
        // a retry waiting out its backoff), and so does an event's for a job not tried yet:
        // the events of a busy vault must not cut short the backoff of a replication that
        // rides out an outage. The update holds the open job's row until the caller commits,
        // so the job's end waits for the request.
        let open = sqlx::query(
            "UPDATE jobs SET asked_again = asked_again + $3,
                scheduled_at = CASE WHEN state = 'queued' AND scheduled_at > $4
                        AND ($5 = 1 OR ($3 = 1 AND attempts = 0))
                    THEN $4 ELSE scheduled_at END
             WHERE target_id = $1 AND kind = $2 AND state IN ('queued', 'running')
             RETURNING id",
        )
        .bind(j.target_id)
        .bind(j.kind.as_str())
        .bind(i64::from(j.trigger != JobTrigger::Schedule))
        .bind(j.scheduled_at)
        .bind(i64::from(j.trigger == JobTrigger::User))
        .fetch_optional(&mut **tx)
        .await?;
        // None: the open job ended between the two statements (possible where another
        // transaction's commit is visible to the next statement); insert again.
        if let Some(row) = open {
            return Ok(col(&row, "id")?);
        }
    }
}

/// The settings job `id` was queued with (read in `tx`).
pub async fn params_of(tx: &mut Tx, id: &str) -> DbResult<serde_json::Value> {
    let params: Option<String> = sqlx::query_scalar("SELECT params FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(params
        .and_then(|p| serde_json::from_str(&p).ok())
        .unwrap_or_default())
}

/// Whether a runner still holds its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    Yes {
        cancel_requested: bool,
    },
    /// The fence moved on: another runner took the job over, or it ended.
    Lost,
}

/// Extends the lease of a held job to `until`.
pub async fn renew(pool: &AnyPool, id: &str, fence: i64, until: i64) -> DbResult<Held> {
    let r = sqlx::query(
        "UPDATE jobs SET lease_expires_at = $1
         WHERE id = $2 AND fence = $3 AND state = 'running'",
    )
    .bind(until)
    .bind(id)
    .bind(fence)
    .execute(pool)
    .await?;
    if r.rows_affected() != 1 {
        return Ok(Held::Lost);
    }
    let row = sqlx::query("SELECT cancel_requested FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(Held::Yes {
        cancel_requested: col::<i64>(&row, "cancel_requested")? != 0,
    })
}

/// Records progress; false when the job is no longer held.
pub async fn progress(pool: &AnyPool, id: &str, fence: i64, p: &JobProgress) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE jobs SET bytes_done = $1, bytes_total = $2, files_done = $3, files_total = $4
         WHERE id = $5 AND fence = $6 AND state = 'running'",
    )
    .bind(p.bytes_done as i64)
    .bind(p.bytes_total.map(|v| v as i64))
    .bind(p.files_done as i64)
    .bind(p.files_total.map(|v| v as i64))
    .bind(id)
    .bind(fence)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Appends a line to the log of the job open at `fence` (held by the caller, or queued again
/// by it); false when the job moved on. Past
/// [`MAX_LOG_LINES`] lines are dropped, and the last line kept says so.
pub async fn log(
    pool: &AnyPool,
    id: &str,
    fence: i64,
    level: &str,
    message: &str,
    now: i64,
) -> DbResult<bool> {
    let insert = || {
        sqlx::query(
            "INSERT INTO job_log (job_id, seq, at, level, message)
             SELECT $1, COALESCE((SELECT MAX(seq) FROM job_log WHERE job_id = $1), 0) + 1, $2,
                $3, CASE WHEN (SELECT COUNT(*) FROM job_log WHERE job_id = $1) = $4 - 1
                         THEN 'further lines were dropped' ELSE $5 END
             WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND fence = $6
                             AND state IN ('queued', 'running'))
               AND (SELECT COUNT(*) FROM job_log WHERE job_id = $1) < $4",
        )
        .bind(id)
        .bind(now)
        .bind(level)
        .bind(MAX_LOG_LINES)
        .bind(message)
        .bind(fence)
        .execute(pool)
    };
    // Two lines written at once (an agent's reporter and its job, say) may both take the
    // next number on PostgreSQL: the one that loses takes the one after. Each round one of
    // the writers wins, so 16 tries keep 16 writers at once.
    let mut tries = 0;
    let r = loop {
        match insert().await.map_err(super::DbError::from) {
            Err(e) if e.is_unique_violation() && tries < 16 => tries += 1,
            r => break r?,
        }
    };
    if r.rows_affected() == 1 {
        return Ok(true);
    }
    is_held(pool, id, fence).await
}

async fn is_held(pool: &AnyPool, id: &str, fence: i64) -> DbResult<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM jobs WHERE id = $1 AND fence = $2 AND state = 'running'")
            .bind(id)
            .bind(fence)
            .fetch_optional(pool)
            .await?
            .is_some(),
    )
}

/// What a cancel sets, in one statement for queued and running jobs alike (`$1`: now): a
/// queued job is cancelled; a running one is flagged (and stays flagged should its runner
/// put it back in the queue, so that it stops at once when taken again).
pub(crate) const CANCEL: &str = "cancel_requested = 1,
    finished_at = CASE WHEN state = 'queued' THEN $1 ELSE finished_at END,
    fence = CASE WHEN state = 'queued' THEN fence + 1 ELSE fence END,
    state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END";

/// Asks for a job to stop: a queued job is cancelled at once; a running one is flagged,
/// and its runner stops at its next check. Returns the state after the request.
pub async fn request_cancel(tx: &mut Tx, id: &str, now: i64) -> DbResult<Option<JobState>> {
    // One statement: a job its runner puts back in the queue (a passing failure) between
    // two would escape both.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE jobs SET {CANCEL} WHERE id = $2 AND state IN ('queued', 'running')"
    )))
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let row = sqlx::query("SELECT state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(|r| col_value(r, "state")).transpose()
}

/// Lets every lease of the server's own jobs go at once, for a node that knows it is the
/// only one (SQLite serves one process): jobs a killed run left `running` are taken over at
/// start instead of after their leases expire. Agents' jobs keep their leases: their agents
/// did not stop with the server, and report once it is back.
pub async fn expire_leases(pool: &AnyPool, now: i64) -> DbResult<u64> {
    let r = sqlx::query(
        "UPDATE jobs SET lease_expires_at = $1 WHERE state = 'running' AND lease_expires_at > $1
           AND runner = 'server'",
    )
    .bind(now)
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

pub async fn job_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<Job>> {
    let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(job).transpose()
}

/// A page of the jobs of the tenants in `scope`, newest first, narrowed by `q`.
pub async fn jobs_in(
    pool: &AnyPool,
    scope: &TenantScope,
    q: &JobQuery,
    page: &Page,
) -> DbResult<Paged<Job>> {
    let mut also = Vec::new();
    if let Some(s) = q.state {
        also.push(("j.state", s.as_str()));
    }
    if let Some(k) = q.kind {
        also.push(("j.kind", k.as_str()));
    }
    let rows = in_scope_where(
        pool,
        "SELECT j.* FROM jobs j JOIN tenants t ON t.id = j.tenant_id",
        scope,
        &also,
        &[desc("j.created_at"), asc("j.id")],
        Some(page),
    )
    .await?;
    rows.map(|r| job(&r))
}

pub async fn job_log(pool: &AnyPool, id: &str) -> DbResult<Vec<JobLogLine>> {
    let rows = sqlx::query("SELECT * FROM job_log WHERE job_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(JobLogLine {
                at: time(col(r, "at")?),
                level: col(r, "level")?,
                message: col(r, "message")?,
            })
        })
        .collect()
}

/// Deletes the log lines of jobs that ended before `before`; returns how many.
pub async fn drop_old_logs(pool: &AnyPool, before: i64) -> DbResult<u64> {
    let r = sqlx::query(
        "DELETE FROM job_log WHERE job_id IN
            (SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < $1)",
    )
    .bind(before)
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}
