//! Claims of requests that died and that no later request took over (a client that never
//! uploads that name again): found and taken over here, so the periodic pass
//! (`vault_objects::settle_lapsed`) settles them against storage and their reservations do
//! not stay in the vault's usage.

use sqlx::AnyPool;

use super::{Claim, ObjectKey, Prior, lock_vault, new_claim_id};
use crate::db::{DbResult, col};

/// A claim whose lease lapsed, and the destination its vault's objects are at.
#[derive(Clone, Debug)]
pub struct Lapsed {
    pub vault_id: String,
    pub destination: String,
    pub kind: String,
    pub name: String,
    pub claim: String,
}

/// Up to `limit` claims whose lease lapsed before `before`, the oldest first.
pub async fn lapsed(pool: &AnyPool, before: i64, limit: i64) -> DbResult<Vec<Lapsed>> {
    let rows = sqlx::query(
        "SELECT o.vault_id, v.destination, o.kind, o.name, o.claim
         FROM vault_objects o JOIN vaults v ON v.id = o.vault_id
         WHERE o.state <> 'stored' AND o.lease_until < $1
         ORDER BY o.lease_until LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Lapsed {
                vault_id: col(r, "vault_id")?,
                destination: col(r, "destination")?,
                kind: col(r, "kind")?,
                name: col(r, "name")?,
                claim: col(r, "claim")?,
            })
        })
        .collect()
}

/// Takes over the lapsed claim `claim` on `k` (still lapsed before `before`), so that a late
/// completion of the dead request is fenced off and no other request settles it meanwhile.
/// `None` when a request took it over first.
pub async fn take_lapsed(
    pool: &AnyPool,
    k: ObjectKey<'_>,
    claim: &str,
    before: i64,
    now: i64,
    lease_ms: i64,
) -> DbResult<Option<Claim>> {
    let id = new_claim_id();
    let mut tx = pool.begin().await?;
    lock_vault(&mut tx, k.vault_id).await?;
    let taken = sqlx::query(
        "UPDATE vault_objects SET claim = $1, lease_until = $2
         WHERE vault_id = $3 AND kind = $4 AND name = $5 AND claim = $6
           AND state <> 'stored' AND lease_until < $7",
    )
    .bind(&id)
    .bind(now + lease_ms)
    .bind(k.vault_id)
    .bind(k.kind)
    .bind(k.name)
    .bind(claim)
    .bind(before)
    .execute(&mut *tx)
    .await?;
    if taken.rows_affected() == 0 {
        return Ok(None);
    }
    tx.commit().await?;
    Ok(Some(Claim {
        id,
        prior: Prior::Abandoned,
    }))
}

/// Leaves a taken-over claim lapsed as it was found (storage could not be asked): the next
/// pass, or the next request for the name, settles it.
pub async fn release(pool: &AnyPool, k: ObjectKey<'_>, claim: &Claim) -> DbResult<()> {
    sqlx::query(
        "UPDATE vault_objects SET lease_until = 0
         WHERE vault_id = $1 AND kind = $2 AND name = $3 AND claim = $4",
    )
    .bind(k.vault_id)
    .bind(k.kind)
    .bind(k.name)
    .bind(&claim.id)
    .execute(pool)
    .await?;
    Ok(())
}
