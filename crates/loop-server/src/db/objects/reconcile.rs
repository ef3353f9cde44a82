//! Reconciling a vault's rows with what its storage holds: the rows as a reconcile reads
//! them first, and the changes that make them agree with a listing taken after.

use sqlx::AnyPool;

use super::{ObjectKey, lock_vault, mark_stored, new_claim_id};
use crate::db::{DbResult, col};

/// One row, as a reconcile sees it before it lists storage.
#[derive(Clone, Debug)]
pub struct RecordedObject {
    pub kind: String,
    pub name: String,
    pub state: String,
    pub size: u64,
    pub claim: String,
    pub lease_until: i64,
}

/// Every row of a vault.
pub async fn recorded(pool: &AnyPool, vault_id: &str) -> DbResult<Vec<RecordedObject>> {
    let rows = sqlx::query(
        "SELECT kind, name, state, size, claim, lease_until FROM vault_objects
         WHERE vault_id = $1",
    )
    .bind(vault_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RecordedObject {
                kind: col(r, "kind")?,
                name: col(r, "name")?,
                state: col(r, "state")?,
                size: col::<i64>(r, "size")?.max(0) as u64,
                claim: col(r, "claim")?,
                lease_until: col(r, "lease_until")?,
            })
        })
        .collect()
}

/// What [`reconcile`] changed in one vault.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub used_before: u64,
    pub used_after: u64,
    /// Objects storage holds that no row recorded.
    pub recorded: usize,
    /// Rows of objects storage no longer holds.
    pub dropped: usize,
    /// Rows whose size differed from storage's.
    pub resized: usize,
}

/// Makes the rows of a vault agree with `listing` (kind, name → size, listed after `before`
/// was read), then sets `used_bytes` to their sum. A row whose claim changed since `before`
/// belongs to a request that ran meanwhile and is left alone, as is any claim still leased:
/// so a reconcile is safe while clients upload and delete.
pub async fn reconcile(
    pool: &AnyPool,
    vault_id: &str,
    before: &[RecordedObject],
    listing: &std::collections::HashMap<(String, String), u64>,
    now: i64,
) -> DbResult<Reconciled> {
    let mut out = Reconciled::default();
    let mut tx = pool.begin().await?;
    lock_vault(&mut tx, vault_id).await?;
    let used: i64 = col(
        &sqlx::query("SELECT used_bytes FROM vaults WHERE id = $1")
            .bind(vault_id)
            .fetch_one(&mut *tx)
            .await?,
        "used_bytes",
    )?;
    out.used_before = used.max(0) as u64;
    let mut known = std::collections::HashSet::new();
    for r in before {
        known.insert((r.kind.clone(), r.name.clone()));
        if r.state != "stored" && r.lease_until > now {
            continue;
        }
        let k = ObjectKey {
            vault_id,
            kind: &r.kind,
            name: &r.name,
        };
        match listing.get(&(r.kind.clone(), r.name.clone())) {
            Some(&size) if r.state != "stored" || size != r.size => {
                out.resized += mark_stored(&mut tx, k, &r.claim, size).await? as usize;
            }
            Some(_) => {}
            None => {
                let gone = sqlx::query(
                    "DELETE FROM vault_objects
                     WHERE vault_id = $1 AND kind = $2 AND name = $3 AND claim = $4",
                )
                .bind(k.vault_id)
                .bind(k.kind)
                .bind(k.name)
                .bind(&r.claim)
                .execute(&mut *tx)
                .await?;
                out.dropped += gone.rows_affected() as usize;
            }
        }
    }
    for ((kind, name), size) in listing {
        if known.contains(&(kind.clone(), name.clone())) {
            continue;
        }
        // A row made since `before` was read is a live request's: it stays as it is.
        let added = sqlx::query(
            "INSERT INTO vault_objects (vault_id, kind, name, size, reserved, state,
                owner_token, claim, lease_until, created_at)
             VALUES ($1, $2, $3, $4, 0, 'stored', NULL, $5, 0, $6)
             ON CONFLICT (vault_id, kind, name) DO NOTHING",
        )
        .bind(vault_id)
        .bind(kind)
        .bind(name)
        .bind(*size as i64)
        .bind(new_claim_id())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        out.recorded += added.rows_affected() as usize;
    }
    sqlx::query(
        "UPDATE vaults SET used_bytes = (SELECT COALESCE(SUM(size + reserved), 0)
            FROM vault_objects WHERE vault_id = $1) WHERE id = $1",
    )
    .bind(vault_id)
    .execute(&mut *tx)
    .await?;
    let used: i64 = col(
        &sqlx::query("SELECT used_bytes FROM vaults WHERE id = $1")
            .bind(vault_id)
            .fetch_one(&mut *tx)
            .await?,
        "used_bytes",
    )?;
    out.used_after = used.max(0) as u64;
    tx.commit().await?;
    Ok(out)
}
