//! Snapshots a retention job is about to remove (`retention_removals`), recorded before it
//! removes any. The job puts each one that went in the audit log and drops the records in
//! the same transaction; when it is cut off part-way, the vault's next retention run finds
//! the records and does it for the job.

use sqlx::AnyPool;

use super::{DbResult, Tx, col};

/// A snapshot a job set out to remove, under a policy (none: items' policies only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    pub snapshot: String,
    pub job_id: String,
    pub policy_id: Option<String>,
}

/// Records that `job_id` is about to remove `snapshots` of the vault.
pub async fn record(
    pool: &AnyPool,
    tenant_id: &str,
    vault_id: &str,
    job_id: &str,
    policy_id: Option<&str>,
    snapshots: &[String],
) -> DbResult<()> {
    let mut tx = pool.begin().await?;
    for s in snapshots {
        // A record left by an earlier job names the job that set out first.
        sqlx::query(
            "INSERT INTO retention_removals (vault_id, snapshot, tenant_id, job_id, policy_id)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(vault_id)
        .bind(s)
        .bind(tenant_id)
        .bind(job_id)
        .bind(policy_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Every removal recorded for the vault and not settled yet.
pub async fn of_vault(pool: &AnyPool, vault_id: &str) -> DbResult<Vec<Removal>> {
    let rows = sqlx::query(
        "SELECT snapshot, job_id, policy_id FROM retention_removals
         WHERE vault_id = $1 ORDER BY snapshot",
    )
    .bind(vault_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Removal {
                snapshot: col(r, "snapshot")?,
                job_id: col(r, "job_id")?,
                policy_id: col(r, "policy_id")?,
            })
        })
        .collect()
}

/// Drops the records of `snapshots` (each went and is audited, or is still there).
pub async fn settle(tx: &mut Tx, vault_id: &str, snapshots: &[String]) -> DbResult<()> {
    for s in snapshots {
        sqlx::query("DELETE FROM retention_removals WHERE vault_id = $1 AND snapshot = $2")
            .bind(vault_id)
            .bind(s)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
