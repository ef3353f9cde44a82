//! Rows that hold the next run of scheduled work: moved on once across nodes, and listed
//! per tenant when its time zone changes.

use super::{DbResult, Tx, col};

/// A scheduled thing whose next run time is kept in a row: a protected item's backups, a
/// sync job's runs, a target's summaries, a vault's maintenance of one kind.
pub enum Timer<'a> {
    Item(&'a str),
    Sync(&'a str),
    Summary(&'a str),
    VaultRun { vault_id: &'a str, kind: &'a str },
}

/// Moves a timer's next run from `due` to `next`, if it still is `due`: of several nodes
/// that saw the run due, exactly one moves it on (and fires the run, in the same
/// transaction). False when another node did first.
pub async fn advance_timer(
    tx: &mut Tx,
    timer: Timer<'_>,
    due: i64,
    next: Option<i64>,
) -> DbResult<bool> {
    let (sql, id, kind) = match timer {
        Timer::Item(id) => (
            "UPDATE protected_items SET next_run_at = $1 WHERE id = $2 AND next_run_at = $3",
            id,
            None,
        ),
        Timer::Sync(id) => (
            "UPDATE sync_jobs SET next_run_at = $1 WHERE id = $2 AND next_run_at = $3",
            id,
            None,
        ),
        Timer::Summary(id) => (
            "UPDATE notify_targets SET summary_next_at = $1 WHERE id = $2 AND summary_next_at = $3",
            id,
            None,
        ),
        Timer::VaultRun { vault_id, kind } => (
            "UPDATE vault_runs SET next_run_at = $1
             WHERE vault_id = $2 AND next_run_at = $3 AND kind = $4",
            vault_id,
            Some(kind),
        ),
    };
    let mut q = sqlx::query(sql).bind(next).bind(id).bind(due);
    if let Some(k) = kind {
        q = q.bind(k);
    }
    Ok(q.execute(&mut **tx).await?.rows_affected() == 1)
}

/// A tenant's scheduled run not yet due: which row, the schedule its time was computed
/// from, and the time.
pub struct PendingTimer {
    /// `item`, `sync`, `vault_run` or `summary`.
    pub table: &'static str,
    /// The item's, sync job's or vault's ID.
    pub id: String,
    /// A vault run's kind (`retention`, `verify`); empty otherwise.
    pub kind: String,
    pub schedule: String,
    pub next_run_at: i64,
}

/// The runs of `tenant_id`'s items, sync jobs and vaults' maintenance, and its targets'
/// summaries, due after `now`.
pub async fn pending_timers(tx: &mut Tx, tenant_id: &str, now: i64) -> DbResult<Vec<PendingTimer>> {
    let queries = [
        (
            "item",
            "SELECT id, '' AS kind, schedule, next_run_at FROM protected_items
             WHERE tenant_id = $1 AND next_run_at > $2 AND schedule IS NOT NULL",
        ),
        (
            "sync",
            "SELECT id, '' AS kind, schedule, next_run_at FROM sync_jobs
             WHERE tenant_id = $1 AND next_run_at > $2 AND schedule IS NOT NULL",
        ),
        (
            "vault_run",
            "SELECT r.vault_id AS id, r.kind, r.schedule, r.next_run_at FROM vault_runs r
             JOIN vaults v ON v.id = r.vault_id
             WHERE v.tenant_id = $1 AND r.next_run_at > $2",
        ),
        // Summaries come at 07:00 (daily) or Monday 07:00 (weekly), in the tenant's zone.
        (
            "summary",
            "SELECT id, '' AS kind,
                CASE summary WHEN 'weekly' THEN 'mon 07:00' ELSE '07:00' END AS schedule,
                summary_next_at AS next_run_at FROM notify_targets
             WHERE tenant_id = $1 AND summary_next_at > $2 AND deleted_at IS NULL
               AND summary IN ('daily', 'weekly')",
        ),
    ];
    let mut out = Vec::new();
    for (table, sql) in queries {
        let rows = sqlx::query(sql)
            .bind(tenant_id)
            .bind(now)
            .fetch_all(&mut **tx)
            .await?;
        for r in &rows {
            out.push(PendingTimer {
                table,
                id: col(r, "id")?,
                kind: col(r, "kind")?,
                schedule: col(r, "schedule")?,
                next_run_at: col(r, "next_run_at")?,
            });
        }
    }
    Ok(out)
}
