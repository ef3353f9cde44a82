//! Claiming: a runner takes a due job (or one whose runner disappeared) under a new fence,
//! and gives back one it could not tell its claimant of.

use loop_api::{Job, JobKind};
use sqlx::AnyPool;

use super::row::job;
use crate::db::{DbResult, col};

/// Puts an agent's job that was just taken (under `fence`) back in the queue, as it was
/// before: its claimant could not be told of it (the answer failed), so it would otherwise
/// wait out its lease and be abandoned unrun.
pub async fn give_back(pool: &AnyPool, id: &str, fence: i64) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL,
            fence = fence + 1, attempts = attempts - 1, node = NULL
         WHERE id = $1 AND fence = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(fence)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A job a runner holds, with the fence its writes name.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub job: Job,
    pub fence: i64,
    pub params: serde_json::Value,
    /// The job was running under another runner whose lease expired.
    pub taken_over: bool,
}

/// What [`claim_due`] found besides the jobs it claimed.
#[derive(Debug, Default)]
pub struct ClaimReport {
    pub claimed: Vec<Claimed>,
    /// Jobs whose runner disappeared once too often, now `abandoned`.
    pub abandoned: Vec<String>,
}

/// Claims up to `limit` due jobs for `owner` that the server runs (an agent claims its
/// own, see `db::agents`): queued ones whose time has come, and running
/// ones whose lease expired (their runner disappeared). A job that was taken over this way
/// `max_attempts` times is abandoned instead, unless it must finish
/// ([`JobKind::must_finish`]): that one is taken over again.
pub async fn claim_due(
    pool: &AnyPool,
    owner: Claimant<'_>,
    now: i64,
    lease_ms: i64,
    limit: u32,
) -> DbResult<ClaimReport> {
    let mut report = ClaimReport::default();
    if limit == 0 {
        return Ok(report);
    }
    let candidates = sqlx::query(
        "SELECT id, kind, fence, state, attempts, max_attempts FROM jobs
         WHERE runner = 'server'
           AND ((state = 'queued' AND scheduled_at <= $1)
             OR (state = 'running' AND lease_expires_at <= $1))
         ORDER BY scheduled_at, created_at LIMIT $2",
    )
    .bind(now)
    .bind(limit as i64 * 2)
    .fetch_all(pool)
    .await?;
    for c in candidates {
        if report.claimed.len() >= limit as usize {
            break;
        }
        let id: String = col(&c, "id")?;
        let fence: i64 = col(&c, "fence")?;
        let was_running = col::<String>(&c, "state")? == "running";
        let must_finish = col::<String>(&c, "kind")?
            .parse::<JobKind>()
            .is_ok_and(JobKind::must_finish);
        let exhausted =
            col::<i64>(&c, "attempts")? >= col::<i64>(&c, "max_attempts")? && !must_finish;
        if was_running && exhausted {
            let done = sqlx::query(
                "UPDATE jobs SET state = 'abandoned', finished_at = $1, lease_owner = NULL,
                    lease_expires_at = NULL, fence = fence + 1,
                    error = 'its runner disappeared during its last attempt (jobs.max_attempts)'
                 WHERE id = $2 AND fence = $3 AND state = 'running' AND lease_expires_at <= $1",
            )
            .bind(now)
            .bind(&id)
            .bind(fence)
            .execute(pool)
            .await?;
            if done.rows_affected() == 1 {
                report.abandoned.push(id);
            }
            continue;
        }
        if let Some(c) = take(pool, owner, now, lease_ms, &id, fence, was_running).await? {
            report.claimed.push(c);
        }
    }
    Ok(report)
}

/// Who claims a job: a runner (named by the lease) of a server node (named in the job
/// record).
#[derive(Clone, Copy, Debug)]
pub struct Claimant<'a> {
    pub runner: &'a str,
    /// None for an agent.
    pub node: Option<&'a str>,
}

/// Claims the job `id` seen at `fence` for `owner`, if it still is due or its lease still
/// lapsed: of several runners that saw the job, exactly one changes the row.
pub(in crate::db) async fn take(
    pool: &AnyPool,
    owner: Claimant<'_>,
    now: i64,
    lease_ms: i64,
    id: &str,
    fence: i64,
    was_running: bool,
) -> DbResult<Option<Claimed>> {
    let taken = sqlx::query(
        "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires_at = $2,
            fence = fence + 1, attempts = attempts + 1,
            started_at = COALESCE(started_at, $3), node = $6
         WHERE id = $4 AND fence = $5
           AND ((state = 'queued' AND scheduled_at <= $3)
             OR (state = 'running' AND lease_expires_at <= $3))",
    )
    .bind(owner.runner)
    .bind(now + lease_ms)
    .bind(now)
    .bind(id)
    .bind(fence)
    .bind(owner.node)
    .execute(pool)
    .await?;
    if taken.rows_affected() != 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?;
    let params: String = col(&row, "params")?;
    Ok(Some(Claimed {
        job: job(&row)?,
        fence: fence + 1,
        params: serde_json::from_str(&params).unwrap_or_default(),
        taken_over: was_running,
    }))
}
