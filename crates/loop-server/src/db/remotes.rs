//! Remotes (`remotes`: other servers a tenant syncs with, their tokens wrapped under the
//! master key) and sync jobs (`sync_jobs`: a vault pushed to or pulled from a remote).

use loop_api::{Remote, SyncDirection, SyncJob};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::page::{Page, Paged, asc};
use super::tenants::in_scope_where;
use super::{DbResult, Tx, col, col_json, col_value, opt_time, time};
use crate::domain::TenantScope;

/// A remote as stored: what the API shows, and the wrapped token.
pub struct RemoteRow {
    pub remote: Remote,
    pub token_wrapped: String,
}

fn remote(row: &AnyRow) -> DbResult<RemoteRow> {
    Ok(RemoteRow {
        remote: Remote {
            id: col(row, "id")?,
            tenant_id: col(row, "tenant_id")?,
            name: col(row, "name")?,
            url: col(row, "url")?,
            fingerprint: col(row, "fingerprint")?,
            created_at: time(col(row, "created_at")?),
        },
        token_wrapped: col(row, "token_wrapped")?,
    })
}

pub async fn insert_remote(tx: &mut Tx, r: &RemoteRow, now: i64) -> DbResult<()> {
    let m = &r.remote;
    sqlx::query(
        "INSERT INTO remotes (id, tenant_id, name, url, fingerprint, token_wrapped, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&m.id)
    .bind(&m.tenant_id)
    .bind(&m.name)
    .bind(&m.url)
    .bind(&m.fingerprint)
    .bind(&r.token_wrapped)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn remote_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<RemoteRow>> {
    let row = sqlx::query("SELECT * FROM remotes WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(remote).transpose()
}

/// The remotes of the tenants in `scope`, by tenant and name.
pub async fn remotes_in(
    pool: &AnyPool,
    scope: &TenantScope,
    page: Option<&Page>,
) -> DbResult<Paged<Remote>> {
    let rows = in_scope_where(
        pool,
        "SELECT r.* FROM remotes r JOIN tenants t ON t.id = r.tenant_id",
        scope,
        &[],
        &[asc("t.path"), asc("r.name"), asc("r.id")],
        page,
    )
    .await?;
    rows.map(|r| remote(&r).map(|r| r.remote))
}

/// Ends the runs of the sync jobs `which` selects (a condition on `sync_jobs`, its
/// parameter `$2`), before those sync jobs are removed: queued runs are cancelled, running
/// ones asked to stop (`$1`: now).
async fn end_runs(tx: &mut Tx, which: &str, param: &str, now: i64) -> DbResult<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE jobs SET error = CASE WHEN state = 'queued' THEN $3 ELSE error END,
            {cancel}
         WHERE kind = 'sync' AND target_kind = 'sync-job' AND state IN ('queued', 'running')
           AND target_id IN (SELECT id FROM sync_jobs WHERE {which})",
        cancel = super::jobs::CANCEL,
    )))
    .bind(now)
    .bind(param)
    .bind("the sync job was deleted")
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes a remote and its sync jobs (whose runs end).
pub async fn delete_remote(tx: &mut Tx, id: &str, now: i64) -> DbResult<()> {
    end_runs(tx, "remote_id = $2", id, now).await?;
    sqlx::query("DELETE FROM sync_jobs WHERE remote_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM remotes WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes every remote (and sync job) of a tenant; answers how many remotes went.
pub async fn delete_of_tenant(tx: &mut Tx, tenant_id: &str) -> DbResult<u64> {
    sqlx::query("DELETE FROM sync_jobs WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    let done = sqlx::query("DELETE FROM remotes WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// Removes the tenant's sync jobs (its remotes stay: the erasure reaches the copies there
/// through them); answers how many.
pub async fn delete_sync_jobs_of_tenant(tx: &mut Tx, tenant_id: &str) -> DbResult<u64> {
    let done = sqlx::query("DELETE FROM sync_jobs WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

fn sync_job(row: &AnyRow) -> DbResult<SyncJob> {
    Ok(SyncJob {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        remote_id: col(row, "remote_id")?,
        direction: col_value::<SyncDirection>(row, "direction")?,
        vault_id: col(row, "vault_id")?,
        remote_vault_id: col(row, "remote_vault_id")?,
        vaults: col_json(row, "vault_filter")?,
        remove_vanished: col::<i64>(row, "remove_vanished")? != 0,
        bytes_per_sec: col::<Option<i64>>(row, "bytes_per_sec")?.map(|b| b.max(0) as u64),
        schedule: col(row, "schedule")?,
        next_run_at: opt_time(col(row, "next_run_at")?),
        created_at: time(col(row, "created_at")?),
    })
}

pub async fn insert_sync_job(
    tx: &mut Tx,
    j: &SyncJob,
    next_run_at: Option<i64>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO sync_jobs (id, tenant_id, remote_id, direction, vault_id, remote_vault_id,
            vault_filter, remove_vanished, bytes_per_sec, schedule, next_run_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&j.id)
    .bind(&j.tenant_id)
    .bind(&j.remote_id)
    .bind(j.direction.as_str())
    .bind(&j.vault_id)
    .bind(&j.remote_vault_id)
    .bind(serde_json::Value::from(j.vaults.clone()).to_string())
    .bind(j.remove_vanished as i64)
    .bind(j.bytes_per_sec.map(|b| b.min(i64::MAX as u64) as i64))
    .bind(&j.schedule)
    .bind(next_run_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn sync_job_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<SyncJob>> {
    let row = sqlx::query("SELECT * FROM sync_jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(sync_job).transpose()
}

/// The sync jobs of the tenants in `scope`, by tenant and creation.
pub async fn sync_jobs_in(
    pool: &AnyPool,
    scope: &TenantScope,
    page: Option<&Page>,
) -> DbResult<Paged<SyncJob>> {
    let rows = in_scope_where(
        pool,
        "SELECT s.* FROM sync_jobs s JOIN tenants t ON t.id = s.tenant_id",
        scope,
        &[],
        &[asc("t.path"), asc("s.created_at"), asc("s.id")],
        page,
    )
    .await?;
    rows.map(|r| sync_job(&r))
}

/// Removes a sync job (its runs end).
pub async fn delete_sync_job(tx: &mut Tx, id: &str, now: i64) -> DbResult<()> {
    end_runs(tx, "id = $2", id, now).await?;
    sqlx::query("DELETE FROM sync_jobs WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes the sync jobs of a vault being deleted (their runs end).
pub async fn delete_sync_jobs_of_vault(tx: &mut Tx, vault_id: &str, now: i64) -> DbResult<()> {
    end_runs(tx, "vault_id = $2", vault_id, now).await?;
    sqlx::query("DELETE FROM sync_jobs WHERE vault_id = $1")
        .bind(vault_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sync jobs whose next run is due at `now`, oldest first.
pub async fn due(pool: &AnyPool, now: i64, limit: i64) -> DbResult<Vec<SyncJob>> {
    let rows = sqlx::query(
        "SELECT * FROM sync_jobs WHERE next_run_at IS NOT NULL AND next_run_at <= $1
         ORDER BY next_run_at, id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(sync_job).collect()
}
