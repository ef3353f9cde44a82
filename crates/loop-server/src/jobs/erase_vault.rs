//! Vault erasure: deletes every object of a deleted vault at its destination, then the
//! vault's object records. It is the only way a deleted vault's objects are removed, so it
//! cannot be cancelled. Run again after a cut, it lists what is left and deletes that.

use futures_util::TryStreamExt as _;
use loop_api::JobProgress;
use object_store::ObjectStoreExt as _;

use super::{Done, JobCtx, JobError};
use crate::db::{objects, vaults};

/// Listings taken before the vault is found empty: an upload that was already under way
/// when the vault was deleted may land after the first listing.
const MAX_ROUNDS: u32 = 5;

pub(super) async fn run(ctx: &JobCtx) -> Result<Done, JobError> {
    let state = &ctx.state;
    let vault_id = ctx.claimed.job.target_id.as_str();
    let Some(v) = vaults::deleted_vault(&state.db.pool, vault_id).await? else {
        return Err(JobError::Failed(
            "the vault is not deleted, so nothing of it is erased".into(),
        ));
    };
    let Some(dest) = state.destinations.get(&v.destination) else {
        // Another node may have it; this one cannot reach it.
        return Err(JobError::transient(
            "the vault's destination is not configured on this node",
            &v.destination,
        ));
    };
    let prefix = object_store::path::Path::from(dest.vault_prefix(vault_id));
    let mut p = JobProgress::default();
    for round in 1..=MAX_ROUNDS {
        ctx.check_held()?;
        let objects: Vec<_> = dest
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| JobError::transient("listing the vault's objects failed", e))?;
        if objects.is_empty() {
            objects::forget_vault(&state.db.pool, vault_id).await?;
            ctx.progress(&p).await?;
            ctx.log(
                "info",
                &format!(
                    "erased {} objects ({} bytes); the vault holds nothing any more",
                    p.files_done, p.bytes_done
                ),
            )
            .await?;
            return Ok(Done {
                summary: serde_json::json!({
                    "objects_deleted": p.files_done, "bytes_deleted": p.bytes_done,
                }),
                warnings: 0,
            });
        }
        let size: u64 = objects.iter().map(|o| o.size).sum();
        p.files_total = Some(p.files_done + objects.len() as u64);
        p.bytes_total = Some(p.bytes_done + size);
        ctx.progress(&p).await?;
        ctx.log(
            "info",
            &format!(
                "round {round}: {} objects ({size} bytes) to delete",
                objects.len()
            ),
        )
        .await?;
        for (i, o) in objects.iter().enumerate() {
            ctx.check_held()?;
            match dest.store.delete(&o.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(JobError::transient("deleting an object failed", e)),
            }
            p.files_done += 1;
            p.bytes_done += o.size;
            if i % 256 == 255 {
                ctx.progress(&p).await?;
            }
        }
    }
    Err(JobError::transient(
        "objects kept arriving in the deleted vault",
        vault_id,
    ))
}
