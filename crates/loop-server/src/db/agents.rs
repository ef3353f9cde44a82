//! Enrolment codes, what agents report about their devices, and the jobs agents run.

use loop_api::{JobState, ProtectedItem};
use sqlx::AnyPool;

use super::jobs::{Claimed, take};
use super::{DbResult, Tx, col};

pub async fn insert_code(
    tx: &mut Tx,
    code_hash: &str,
    tenant_id: &str,
    created_by: &str,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO enrolment_codes (code_hash, tenant_id, created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(code_hash)
    .bind(tenant_id)
    .bind(created_by)
    .bind(now)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Uses up a code that is unused and unexpired; returns its tenant. Of two redemptions at
/// once, one gets the tenant.
pub async fn redeem_code(tx: &mut Tx, code_hash: &str, now: i64) -> DbResult<Option<String>> {
    let used = sqlx::query(
        "UPDATE enrolment_codes SET used_at = $1
         WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(code_hash)
    .execute(&mut **tx)
    .await?;
    if used.rows_affected() != 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT tenant_id FROM enrolment_codes WHERE code_hash = $1")
        .bind(code_hash)
        .fetch_one(&mut **tx)
        .await?;
    Ok(Some(col(&row, "tenant_id")?))
}

/// Records the device a code made.
pub async fn code_made_device(tx: &mut Tx, code_hash: &str, device_id: &str) -> DbResult<()> {
    sqlx::query("UPDATE enrolment_codes SET device_id = $1 WHERE code_hash = $2")
        .bind(device_id)
        .bind(code_hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The device was heard from now, running this agent version.
pub async fn heartbeat(pool: &AnyPool, device_id: &str, version: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE devices SET last_seen_at = $1, agent_version = $2 WHERE id = $3")
        .bind(now)
        .bind(version)
        .bind(device_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The device was heard from now (a job report: an agent at work sends no heartbeat).
pub async fn seen(pool: &AnyPool, device_id: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2")
        .bind(now)
        .bind(device_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The protected items of a device.
pub async fn items_of_device(pool: &AnyPool, device_id: &str) -> DbResult<Vec<ProtectedItem>> {
    let rows = sqlx::query("SELECT id FROM protected_items WHERE device_id = $1 ORDER BY name")
        .bind(device_id)
        .fetch_all(pool)
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: String = col(&r, "id")?;
        if let Some(i) = super::items::item_by_id(pool, &id).await? {
            out.push(i);
        }
    }
    Ok(out)
}

// ---- the jobs agents run: backups of their device's items, restores to it ----

/// Claims the next due job of `device_id` for its agent (a backup of one of its items, a
/// restore to it, or the retention or verify of a customer-key vault it maintains): a
/// queued job whose time has come and whose window has not passed.
pub async fn claim_for_device(
    pool: &AnyPool,
    device_id: &str,
    now: i64,
    lease_ms: i64,
) -> DbResult<Option<Claimed>> {
    let candidates = sqlx::query(
        "SELECT j.id, j.fence FROM jobs j
           LEFT JOIN protected_items i ON j.target_kind = 'item' AND i.id = j.target_id
           LEFT JOIN vaults v ON j.target_kind = 'vault' AND v.id = j.target_id
         WHERE j.runner = 'agent'
           AND (i.device_id = $1 OR v.maintainer_device_id = $1
             OR (j.target_kind = 'device' AND j.target_id = $1))
           AND j.state = 'queued' AND j.scheduled_at <= $2 AND (j.deadline_at IS NULL OR j.deadline_at >= $2)
         ORDER BY j.scheduled_at, j.created_at LIMIT 5",
    )
    .bind(device_id)
    .bind(now)
    .fetch_all(pool)
    .await?;
    let owner = super::jobs::Claimant {
        runner: device_id,
        node: None,
    };
    for c in candidates {
        let (id, fence): (String, i64) = (col(&c, "id")?, col(&c, "fence")?);
        if let Some(claimed) = take(pool, owner, now, lease_ms, &id, fence, false).await? {
            return Ok(Some(claimed));
        }
    }
    Ok(None)
}

/// Agent jobs whose agent stopped renewing their lease (killed, cut off) are `abandoned`;
/// an item's next run backs up what this one did not. Returns them.
pub async fn abandon_lapsed_agent_jobs(pool: &AnyPool, now: i64) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT id FROM jobs WHERE runner = 'agent' AND state = 'running'
         AND lease_expires_at <= $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: String = col(&r, "id")?;
        let done = sqlx::query(
            "UPDATE jobs SET state = 'abandoned', finished_at = $1, lease_owner = NULL,
                lease_expires_at = NULL, fence = fence + 1,
                error = 'its agent stopped reporting (killed, or cut off from the server)'
             WHERE id = $2 AND state = 'running' AND lease_expires_at <= $1",
        )
        .bind(now)
        .bind(&id)
        .execute(pool)
        .await?;
        if done.rows_affected() == 1 {
            out.push(id);
        }
    }
    Ok(out)
}

/// Ends an agent job that was `abandoned` while its agent held fence `fence` (its lease
/// lapsed while the agent was cut off from the server) with the outcome the agent reports
/// once it is back. Nobody else ever runs an agent job, so the late report is the truth;
/// false when the job is not such a job.
pub async fn finish_abandoned(
    pool: &AnyPool,
    id: &str,
    fence: i64,
    state: JobState,
    summary: Option<&serde_json::Value>,
    error: Option<&str>,
) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE jobs SET state = $1, summary = $2, error = $3
         WHERE id = $4 AND fence = $5 + 1 AND state = 'abandoned'
           AND runner = 'agent'",
    )
    .bind(state.as_str())
    .bind(summary.map(|s| s.to_string()))
    .bind(error)
    .bind(id)
    .bind(fence)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}
