//! The jobs an erasure stops and waits for: a tenant's, or those on one vault, other than
//! erasures. A replication or sync still under way when a place is emptied would copy into
//! it afterwards; the erasure asks them to stop in the transaction that starts it, and its
//! job waits until none runs.

use loop_api::JobKind;
use sqlx::AnyPool;

use super::{DbResult, Tx, col};

/// The jobs an erasure waits for: a tenant's, or those on one vault, other than erasures.
#[derive(Clone, Copy, Debug)]
pub enum Erasing<'a> {
    Tenant(&'a str),
    Vault(&'a str),
}

impl Erasing<'_> {
    /// The condition on `jobs` (its parameter is `$1`) and the parameter: the jobs the
    /// erasure stops.
    fn filter(&self) -> (&'static str, &str) {
        match self {
            Erasing::Tenant(t) => ("tenant_id = $1", t),
            Erasing::Vault(v) => ("target_kind = 'vault' AND target_id = $1", v),
        }
    }

    /// The jobs it waits for: those it stops and, for a vault, every sync of its tenant.
    /// A sync runs on a sync job, not on the vault: one of the vault's own was stopped when
    /// its sync job went with the vault, and a tenant-wide one may be copying it. Until
    /// they end, the erasure must not empty the vault or forget its records, which a push
    /// would take for objects removed on purpose and remove at the remote too.
    fn waited(&self) -> (&'static str, &str) {
        match self {
            Erasing::Tenant(t) => ("tenant_id = $1", t),
            Erasing::Vault(v) => (
                "((target_kind = 'vault' AND target_id = $1)
                  OR (kind = 'sync' AND tenant_id IN (SELECT tenant_id FROM vaults WHERE id = $1)))",
                v,
            ),
        }
    }
}

/// The jobs that write into a vault's replicas.
pub const REPLICATING: &[JobKind] = &[JobKind::Replication, JobKind::ReplicaVerify];

const NOT_ERASURES: &str = "kind NOT IN ('tenant-erasure', 'vault-erasure', 'replica-erasure')";

/// Ends the open jobs an erasure would wait for (in the transaction that starts it), of
/// `kinds` only when given: queued ones are cancelled with `why`, running ones asked to
/// stop. Answers how many.
pub async fn cancel_open(
    tx: &mut Tx,
    of: Erasing<'_>,
    kinds: Option<&[JobKind]>,
    why: &str,
    now: i64,
) -> DbResult<u64> {
    let (filter, param) = of.filter();
    let kinds = only(kinds);
    // One statement (see `jobs::CANCEL`); the error is set first, while `state` still says
    // whether the job was queued.
    let stopped = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE jobs SET error = CASE WHEN state = 'queued' THEN $3 ELSE error END,
            {cancel}
         WHERE {filter} AND state IN ('queued', 'running') AND {NOT_ERASURES}{kinds}",
        cancel = super::jobs::CANCEL,
        filter = filter.replace("$1", "$2"),
    )))
    .bind(now)
    .bind(param)
    .bind(why)
    .execute(&mut **tx)
    .await?;
    Ok(stopped.rows_affected())
}

/// `AND kind IN (...)` for `kinds` (names of a closed set, not input), or nothing.
fn only(kinds: Option<&[JobKind]>) -> String {
    match kinds {
        Some(k) => format!(
            " AND kind IN ({})",
            k.iter()
                .map(|k| format!("'{}'", k.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    }
}

/// The jobs an erasure waits for (of `kinds` only when given) that the server still runs:
/// (ID, kind).
pub async fn still_running(
    pool: &AnyPool,
    of: Erasing<'_>,
    kinds: Option<&[JobKind]>,
) -> DbResult<Vec<(String, String)>> {
    let (filter, param) = of.waited();
    let kinds = only(kinds);
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, kind FROM jobs
         WHERE {filter} AND state = 'running' AND runner = 'server' AND {NOT_ERASURES}{kinds}
         ORDER BY id"
    )))
    .bind(param)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((col(r, "id")?, col(r, "kind")?)))
        .collect()
}
