//! How a held job ends: recorded as ended, put back for another attempt, or (for a job that
//! answers the requests joining it) run again under its ID.

use loop_api::{JobState, JobTrigger};
use sqlx::AnyPool;

use crate::db::{Db, DbResult, Tx, col};
use crate::domain::new_id;

/// Ends a held job in the final `state`; false when it is no longer held.
pub async fn finish(
    pool: &AnyPool,
    id: &str,
    fence: i64,
    state: JobState,
    summary: Option<&serde_json::Value>,
    error: Option<&str>,
    now: i64,
) -> DbResult<bool> {
    debug_assert!(state.is_final());
    let summary = summary.map(|s| s.to_string());
    let r = ending(state, summary, error, now, id, fence)
        .execute(pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// The statement that ends held job `id` (under `fence`) in `state`.
fn ending<'q>(
    state: JobState,
    summary: Option<String>,
    error: Option<&'q str>,
    now: i64,
    id: &'q str,
    fence: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "UPDATE jobs SET state = $1, summary = $2, error = $3, finished_at = $4,
            lease_owner = NULL, lease_expires_at = NULL, fence = fence + 1
         WHERE id = $5 AND fence = $6 AND state = 'running'",
    )
    .bind(state.as_str())
    .bind(summary)
    .bind(error)
    .bind(now)
    .bind(id)
    .bind(fence)
}

/// How many requests joined the job `id` while it was open; a job that answers requests
/// reads it before it looks at its work.
pub async fn asked_again(pool: &AnyPool, id: &str) -> DbResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT asked_again FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?
            .unwrap_or(0),
    )
}

/// How [`end_answering`] left a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answering {
    /// Its end is recorded.
    Ended,
    /// A request joined it after its last look (`asked_again` moved on from what it read):
    /// it is queued again under the same ID, due now, and its run is not counted as an
    /// attempt.
    AskedAgain,
    /// Asked again after [`MAX_RERUNS`] runs again: its end is recorded, and the new job
    /// queued for those requests (named in its summary as `continued_by`).
    Continued(String),
    /// No longer held by this runner.
    Lost,
}

/// How often a job runs again under its ID for requests that joined it as it ended; then
/// a new job takes them, so a vault written without pause still sees its jobs end.
pub const MAX_RERUNS: i64 = 5;

/// Records the end of a held job that read `asked_again` as `seen` before its last look at
/// its work, unless a request joined it since (and no cancel was asked for): then it runs
/// again, see [`Answering`].
pub async fn end_answering(
    db: &Db,
    id: &str,
    fence: i64,
    state: JobState,
    summary: &serde_json::Value,
    seen: i64,
    now: i64,
) -> DbResult<Answering> {
    debug_assert!(state.is_final());
    let end = |summary: String| {
        sqlx::query(
            "UPDATE jobs SET state = $1, summary = $2, error = NULL, finished_at = $3,
                lease_owner = NULL, lease_expires_at = NULL, fence = fence + 1
             WHERE id = $4 AND fence = $5 AND state = 'running'
               AND (asked_again = $6 OR cancel_requested <> 0 OR $6 IS NULL)",
        )
        .bind(state.as_str())
        .bind(summary)
        .bind(now)
        .bind(id)
        .bind(fence)
    };
    let ended = end(summary.to_string())
        .bind(Some(seen))
        .execute(&db.pool)
        .await?;
    if ended.rows_affected() == 1 {
        return Ok(Answering::Ended);
    }
    let again = sqlx::query(
        "UPDATE jobs SET state = 'queued', scheduled_at = $1, lease_owner = NULL,
            lease_expires_at = NULL, fence = fence + 1, attempts = attempts - 1,
            reruns = reruns + 1
         WHERE id = $2 AND fence = $3 AND state = 'running' AND reruns < $4",
    )
    .bind(now)
    .bind(id)
    .bind(fence)
    .bind(MAX_RERUNS)
    .execute(&db.pool)
    .await?;
    if again.rows_affected() == 1 {
        return Ok(Answering::AskedAgain);
    }
    // Ended, with a new job for the requests, in one transaction: the new one can be queued
    // once this one is no longer open.
    let next = new_id(loop_api::JobId::PREFIX);
    let mut summary = summary.clone();
    if let Some(o) = summary.as_object_mut() {
        o.insert(
            "continued_by".into(),
            serde_json::Value::from(next.as_str()),
        );
    }
    let mut tx = db.begin().await?;
    let ended = end(summary.to_string())
        .bind(None::<i64>)
        .execute(&mut *tx)
        .await?;
    if ended.rows_affected() != 1 {
        return Ok(Answering::Lost);
    }
    queue_continuation(&mut tx, id, &next, now).await?;
    tx.commit().await?;
    Ok(Answering::Continued(next))
}

/// Records that a held job which answers the requests joining it failed for good, with
/// `error`. A request that joined it after its last look (it read `asked_again` as `seen`)
/// is not dropped with it: unless a cancel was asked for, a new job is queued for it in the
/// same transaction, named in the failed job's summary as `continued_by`. (A replication
/// that fails for one replica still owes the others what a backup asked for.)
pub async fn fail_answering(
    db: &Db,
    id: &str,
    fence: i64,
    error: &str,
    seen: i64,
    now: i64,
) -> DbResult<Answering> {
    let mut tx = db.begin().await?;
    // Ended first: from then on no request joins it (they queue a job of their own), so
    // what it reads next is every request that did.
    let ended = ending(JobState::Failed, None, Some(error), now, id, fence)
        .execute(&mut *tx)
        .await?;
    if ended.rows_affected() != 1 {
        return Ok(Answering::Lost);
    }
    let row = sqlx::query(
        "SELECT asked_again, CAST(cancel_requested AS BIGINT) AS cancel FROM jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let (asked, cancel): (i64, i64) = (col(&row, "asked_again")?, col(&row, "cancel")?);
    if asked == seen || cancel != 0 {
        tx.commit().await?;
        return Ok(Answering::Ended);
    }
    let next = new_id(loop_api::JobId::PREFIX);
    sqlx::query("UPDATE jobs SET summary = $1 WHERE id = $2")
        .bind(serde_json::json!({ "continued_by": next }).to_string())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    queue_continuation(&mut tx, id, &next, now).await?;
    tx.commit().await?;
    Ok(Answering::Continued(next))
}

/// Queues job `next`, due now, for the requests that joined job `id` as it ended: the same
/// work, triggered by an event.
async fn queue_continuation(tx: &mut Tx, id: &str, next: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO jobs (id, tenant_id, kind, target_kind, target_id, state, max_attempts,
            scheduled_at, params, trigger_kind, created_at, runner)
         SELECT $1, tenant_id, kind, target_kind, target_id, 'queued', max_attempts, $2,
            params, $3, $2, runner
         FROM jobs WHERE id = $4",
    )
    .bind(next)
    .bind(now)
    .bind(JobTrigger::Event.as_str())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Puts a held job back in the queue for another attempt at `at`; false when it is no
/// longer held.
pub async fn retry_at(
    pool: &AnyPool,
    id: &str,
    fence: i64,
    at: i64,
    error: &str,
) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE jobs SET state = 'queued', scheduled_at = $1, error = $2, lease_owner = NULL,
            lease_expires_at = NULL, fence = fence + 1
         WHERE id = $3 AND fence = $4 AND state = 'running'",
    )
    .bind(at)
    .bind(error)
    .bind(id)
    .bind(fence)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}
