//! How a write claim ends: its object stored (and counted), or the claim given back.

use sqlx::AnyPool;

use super::{
    Claim, ObjectKey, Prior, adjust, delete_row, lock_vault, mark_stored, row, set_on_claim,
};
use crate::db::{DbResult, col};

/// The upload of a held write claim is stored (its BLAKE3 hash, hex, is `hash`) at `now`: the
/// row says so, records `now` as the object's arrival (a replaced object's age starts again)
/// and the replaced object's bytes are given back. False when the claim was taken over
/// meanwhile (fenced off).
pub async fn complete_write(
    pool: &AnyPool,
    k: ObjectKey<'_>,
    claim: &Claim,
    (len, hash): (u64, &str),
    destination: &str,
    now: i64,
) -> DbResult<Completion> {
    let mut tx = pool.begin().await?;
    lock_vault(&mut tx, k.vault_id).await?;
    let Some(r) = row(&mut tx, k).await?.filter(|r| r.claim == claim.id) else {
        return Ok(Completion::TakenOver);
    };
    // Promotion changes the vault's row, which `lock_vault` holds: the object went to the
    // destination the vault had when the write began, which must still be its primary.
    let at = sqlx::query("SELECT destination FROM vaults WHERE id = $1")
        .bind(k.vault_id)
        .fetch_optional(&mut *tx)
        .await?;
    if at
        .map(|r| col::<String>(&r, "destination"))
        .transpose()?
        .as_deref()
        != Some(destination)
    {
        return Ok(Completion::Moved);
    }
    mark_stored(&mut tx, k, &claim.id, len).await?;
    sqlx::query(
        "UPDATE vault_objects SET blake3 = $1, created_at = $2
         WHERE vault_id = $3 AND kind = $4 AND name = $5 AND claim = $6",
    )
    .bind(hash)
    .bind(now)
    .bind(k.vault_id)
    .bind(k.kind)
    .bind(k.name)
    .bind(&claim.id)
    .execute(&mut *tx)
    .await?;
    adjust(
        &mut tx,
        k.vault_id,
        len as i64 - (r.size + r.reserved) as i64,
    )
    .await?;
    tx.commit().await?;
    Ok(Completion::Stored)
}

/// How [`complete_write`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Completion {
    Stored,
    /// Another request took the claim over: the row is not this write's.
    TakenOver,
    /// The vault's primary moved (a promotion) while the object was written to the old
    /// one: not recorded; the claim is still this write's to abort.
    Moved,
}

/// The upload of a held write claim failed: storage is unchanged, so the row goes back to
/// what it was (stored, or gone) and the reservation is given back.
pub async fn abort_write(pool: &AnyPool, k: ObjectKey<'_>, claim: &Claim) -> DbResult<()> {
    let mut tx = pool.begin().await?;
    lock_vault(&mut tx, k.vault_id).await?;
    let Some(r) = row(&mut tx, k).await?.filter(|r| r.claim == claim.id) else {
        return Ok(());
    };
    match claim.prior {
        Prior::Stored { created_at, .. } => {
            sqlx::query(
                "UPDATE vault_objects SET state = 'stored', reserved = 0, created_at = $1
                 WHERE vault_id = $2 AND kind = $3 AND name = $4 AND claim = $5",
            )
            .bind(created_at)
            .bind(k.vault_id)
            .bind(k.kind)
            .bind(k.name)
            .bind(&claim.id)
            .execute(&mut *tx)
            .await?;
            adjust(&mut tx, k.vault_id, -(r.reserved as i64)).await?;
        }
        Prior::Unknown => {
            delete_row(&mut tx, k, &claim.id).await?;
            adjust(&mut tx, k.vault_id, -((r.size + r.reserved) as i64)).await?;
        }
        // A dead request's claim, taken over: what it left in storage is still unknown (it
        // may have finished, or a dead delete may not have run). The row stays, lapsed, for
        // the settling of lapsed claims to ask storage; only this claim's reservation goes.
        Prior::Abandoned => {
            set_on_claim(&mut tx, k, &claim.id, "reserved = 0, lease_until = 0").await?;
            adjust(&mut tx, k.vault_id, -(r.reserved as i64)).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
