//! Vault erasure: deletes every object of a deleted vault at its destination, then the
//! vault's object records; and replica erasure: every object of a removed replica at its
//! destination. They are the only ways those objects are removed, so they cannot be
//! cancelled. Run again after a cut, they list what is left and delete that.

use futures_util::TryStreamExt as _;
use loop_api::JobProgress;
use object_store::ObjectStoreExt as _;

use super::{Done, JobCtx, JobError};
use crate::db::stopping::{Erasing, REPLICATING};
use crate::db::{objects, vaults};
use crate::destinations::Destination;

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
    let dest = destination(ctx, &v.destination)?;
    super::wait_for_stopped(ctx, Erasing::Vault(vault_id), None).await?;
    let p = erase_at(ctx, dest, vault_id).await.map_err(|(_, e)| e)?;
    objects::forget_vault(&state.db.pool, vault_id).await?;
    done(ctx, p, "the vault holds nothing any more").await
}

/// Erases a removed replica: job target (`replica-location`, `VAULT/DESTINATION`), params
/// `vault_id`, `destination`.
pub(super) async fn run_replica(ctx: &JobCtx) -> Result<Done, JobError> {
    let params = &ctx.claimed.params;
    let (Some(vault_id), Some(name)) =
        (params["vault_id"].as_str(), params["destination"].as_str())
    else {
        return Err(JobError::Failed("the job does not name the replica".into()));
    };
    // Never erase a place the vault lives again (a replica added back, a promotion).
    let pool = &ctx.state.db.pool;
    let primary = vaults::vault_by_id(pool, vault_id)
        .await?
        .map(|v| v.destination);
    let replicas = crate::db::replicas::of_vault(pool, vault_id).await?;
    if primary.as_deref() == Some(name) || replicas.iter().any(|r| r.destination == name) {
        return Err(JobError::Failed(format!(
            "the vault lives at {name} again, so nothing there is erased"
        )));
    }
    let dest = destination(ctx, name)?;
    // A replication under way copies into every replica it set out with.
    super::wait_for_stopped(ctx, Erasing::Vault(vault_id), Some(REPLICATING)).await?;
    let p = erase_at(ctx, dest, vault_id).await.map_err(|(_, e)| e)?;
    done(
        ctx,
        p,
        "the replica's destination holds nothing of the vault any more",
    )
    .await
}

fn destination<'a>(ctx: &'a JobCtx, name: &str) -> Result<&'a Destination, JobError> {
    ctx.state
        .destinations
        .get(name)
        .map(|d| &**d)
        .ok_or_else(|| {
            // Another node may have it; this one cannot reach it.
            JobError::transient("the destination is not configured on this node", name)
        })
}

async fn done(ctx: &JobCtx, p: JobProgress, what: &str) -> Result<Done, JobError> {
    ctx.progress(&p).await?;
    ctx.log(
        "info",
        &format!(
            "erased {} objects ({} bytes); {what}",
            p.files_done, p.bytes_done
        ),
    )
    .await?;
    Ok(Done {
        summary: serde_json::json!({
            "objects_deleted": p.files_done, "bytes_deleted": p.bytes_done,
        }),
        warnings: 0,
    })
}

/// How long an erasure waits for uploads and deletes under way in a closed vault before it
/// tries again later. Each stops at its next lease renewal (a third of
/// `limits.claim_lease_secs`) or once the part it is receiving has arrived.
const CHANGES_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Waits until no request is changing an object of the vault, when the vault is closed
/// (deleted, or its tenant erased): an upload authorised before it closed could otherwise
/// store its object after the erasure's last listing, where nothing would ever remove it. A
/// live vault (a removed replica's erasure) does not wait: its changes go to its primary.
async fn changes_stopped(ctx: &JobCtx, vault_id: &str) -> Result<(), JobError> {
    let pool = &ctx.state.db.pool;
    if !objects::closed(pool, vault_id).await? {
        return Ok(());
    }
    super::wait_out(ctx, CHANGES_WAIT, || async {
        let n = objects::changes_under_way(pool, vault_id, ctx.state.now()).await?;
        Ok((n > 0).then(|| {
            (
                format!("waiting for {n} uploads or deletes under way to stop"),
                format!("{n} uploads or deletes in the vault are still under way"),
            )
        }))
    })
    .await
}

/// Deletes every object under the vault's prefix at `dest`, listing again until a listing
/// finds nothing. On failure, what was deleted before it comes with the error (a tenant's
/// erasure counts it for its certificate).
pub(super) async fn erase_at(
    ctx: &JobCtx,
    dest: &Destination,
    vault_id: &str,
) -> Result<JobProgress, (JobProgress, JobError)> {
    let prefix = object_store::path::Path::from(dest.vault_prefix(vault_id));
    let mut p = JobProgress::default();
    if let Err(e) = changes_stopped(ctx, vault_id).await {
        return Err((p, e));
    }
    for round in 1..=MAX_ROUNDS {
        let objects: Vec<_> = match dest.store.list(Some(&prefix)).try_collect().await {
            Ok(o) => o,
            Err(e) => {
                return Err((
                    p,
                    JobError::transient("listing the vault's objects failed", e),
                ));
            }
        };
        if objects.is_empty() {
            return Ok(p);
        }
        let size: u64 = objects.iter().map(|o| o.size).sum();
        p.files_total = Some(p.files_done + objects.len() as u64);
        p.bytes_total = Some(p.bytes_done + size);
        let logged = async {
            ctx.progress(&p).await?;
            ctx.log(
                "info",
                &format!(
                    "round {round}: {} objects ({size} bytes) to delete",
                    objects.len()
                ),
            )
            .await
        };
        if let Err(e) = logged.await {
            return Err((p, e));
        }
        for (i, o) in objects.iter().enumerate() {
            let step = async {
                ctx.check_held()?;
                match dest.store.delete(&o.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(JobError::transient("deleting an object failed", e)),
                }
            };
            if let Err(e) = step.await {
                return Err((p, e));
            }
            p.files_done += 1;
            p.bytes_done += o.size;
            if i % 256 == 255
                && let Err(e) = ctx.progress(&p).await
            {
                return Err((p, e));
            }
        }
    }
    let e = JobError::transient("objects kept arriving in the deleted vault", vault_id);
    Err((p, e))
}
