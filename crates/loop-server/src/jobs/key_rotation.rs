//! Tenant key rotation. Vault data is never re-encrypted: a managed vault's key slot wraps
//! the vault's own master key under a KEK derived from the tenant key, so rotating the
//! tenant key only means new slots.
//!
//! 1. A new tenant key is made and kept as `tenant_keys.next_wrapped`.
//! 2. Every managed vault of the tenant gets a key slot the new key opens.
//! 3. The new key becomes current; the old one is kept as `previous_wrapped`.
//! 4. Every vault is checked again for a slot of the new key, and the slots the old key
//!    opens are removed. Then the old key is forgotten.
//!
//! While a rotation is under way no managed vault is created in the tenant (see
//! `tenants::hold_current_key`), so step 2 sees every vault. Run again after a cut, the job
//! starts from the step the database shows; each step looks at the slots, not at a log.

use std::sync::Arc;

use loop_api::{JobProgress, Vault};
use loop_repo::keys::{KdfParams, Secret, SlotMeta};
use loop_repo::{Repository, Storage};

use super::{Done, JobCtx, JobError, blocking};
use crate::db::{replicas, tenants, vaults};
use crate::keys::vault_kek;
use crate::replication::{self, Place};
use crate::vault_objects::ServerStorage;
use loop_repo::crypto::Key;

pub(super) async fn run(ctx: &JobCtx) -> Result<Done, JobError> {
    let state = &ctx.state;
    let pool = &state.db.pool;
    let tenant_id = ctx.claimed.job.target_id.as_str();
    let load = || async {
        tenants::tenant_keys(pool, tenant_id).await?.ok_or_else(|| {
            JobError::Failed("the tenant's key was deleted; there is nothing to rotate".into())
        })
    };
    let open = |wrapped: &str| {
        state
            .master
            .open_tenant_key(tenant_id, wrapped)
            .map_err(|_| JobError::Failed("a tenant key does not open with the master key".into()))
    };
    let mut keys = load().await?;
    if !keys.rotating() {
        let (_, next) = state.master.new_tenant_key(tenant_id);
        tenants::begin_key_rotation(pool, tenant_id, &next).await?;
        keys = load().await?;
        ctx.log("info", "made a new tenant key").await?;
    } else {
        ctx.log("info", "continuing the rotation under way").await?;
    }
    let mut p = JobProgress::default();
    let mut added = 0;
    let mut removed = 0;
    if let Some(next) = &keys.next {
        let (from, to) = (open(&keys.current)?, open(next)?);
        let vaults = vaults::managed_vaults_of(pool, tenant_id).await?;
        p.files_total = Some(2 * vaults.len() as u64);
        for v in &vaults {
            ctx.check_held()?;
            added += update_slots(ctx, v, &from, &to, false).await?.0;
            p.files_done += 1;
            ctx.progress(&p).await?;
        }
        if !tenants::switch_tenant_key(pool, tenant_id, next).await? {
            return Err(JobError::transient(
                "the tenant key changed while it was rotated",
                tenant_id,
            ));
        }
        ctx.log(
            "info",
            &format!(
                "{} managed vaults open with the new key, which is now current",
                vaults.len()
            ),
        )
        .await?;
        keys = load().await?;
    }
    if let Some(previous) = &keys.previous {
        let (from, to) = (open(previous)?, open(&keys.current)?);
        let vaults = vaults::managed_vaults_of(pool, tenant_id).await?;
        p.files_total = Some(p.files_done + vaults.len() as u64);
        for v in &vaults {
            ctx.check_held()?;
            let (a, r) = update_slots(ctx, v, &from, &to, true).await?;
            added += a;
            removed += r;
            p.files_done += 1;
            ctx.progress(&p).await?;
        }
        // A master key rotation (`rewrap-keys`) may have wrapped the old key anew meanwhile:
        // then it is not forgotten yet, and the next attempt finds it as it is now.
        if !tenants::end_key_rotation(pool, tenant_id, previous).await? {
            return Err(JobError::transient(
                "the old tenant key was wrapped anew while it was being forgotten",
                tenant_id,
            ));
        }
        ctx.log(
            "info",
            &format!("removed {removed} key slots of the old key; the old key is forgotten"),
        )
        .await?;
    }
    Ok(Done {
        summary: serde_json::json!({ "slots_added": added, "slots_removed": removed }),
        warnings: 0,
    })
}

/// Gives vault `v` a key slot that the tenant key `to` opens (unless it has one), opening
/// it with `from` to do so; with `remove`, then removes the slots `from` opens. Returns the
/// slots added and removed.
async fn update_slots(
    ctx: &JobCtx,
    v: &Vault,
    from: &Key,
    to: &Key,
    remove: bool,
) -> Result<(u64, u64), JobError> {
    let state = &ctx.state;
    let Some(dest) = state.destinations.get(&v.destination).cloned() else {
        return Err(JobError::transient(
            "a vault's destination is not configured on this node",
            &v.destination,
        ));
    };
    // Old slots go only once the vault opened with a new one, so a retention lock does not
    // hold them.
    let storage = ServerStorage::new(state, dest.clone(), &v.id, ctx.fence())
        .map_err(|e| JobError::transient("opening a vault's destination failed", e))?
        .replacing_key_slots();
    let storage: Arc<dyn Storage> = Arc::new(storage);
    let (from, to) = (vault_kek(from, &v.id), vault_kek(to, &v.id));
    let vault_id = v.id.clone();
    let created = chrono::Utc::now().to_rfc3339();
    let opened = blocking("updating a vault's key slots failed", move || {
        let mut added = 0;
        let repo = match Repository::open(storage.clone(), Secret::RawKey(&to)) {
            Ok(repo) => repo,
            Err(loop_repo::Error::WrongPassword) => {
                let old = match Repository::open(storage.clone(), Secret::RawKey(&from)) {
                    Ok(old) => old,
                    Err(loop_repo::Error::WrongPassword) => return Ok(None),
                    Err(e) => return Err(e),
                };
                let meta = SlotMeta {
                    created,
                    host: "loop server".into(),
                    user: String::new(),
                    label: "managed".into(),
                };
                old.add_key(Secret::RawKey(&to), KdfParams::default(), &meta)?;
                added += 1;
                Repository::open(storage, Secret::RawKey(&to))?
            }
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        if remove {
            for id in repo.key_slots_opened_by(Secret::RawKey(&from))? {
                repo.remove_key(&id)?;
                removed += 1;
            }
        }
        Ok(Some((added, removed)))
    })
    .await?;
    let counts = opened.ok_or_else(|| {
        JobError::Failed(format!(
            "vault {vault_id} opens with neither the old nor the new tenant key"
        ))
    })?;
    // Every replica holds the primary's slots before the old key goes, so a replica
    // promoted later opens with the key that is current then. A replica where the tenant's
    // residency no longer admits anything new gets no new slot, only loses the old ones.
    let primary = Place::stored(&dest, &v.id);
    let chain = match tenants::tenant_by_id(&state.db.pool, &v.tenant_id).await? {
        Some(t) => crate::db::residency::chain(&state.db.pool, &t.path).await?,
        None => Vec::new(),
    };
    for r in replicas::of_vault(&state.db.pool, &v.id).await? {
        let Some(at) = state.destinations.get(&r.destination) else {
            return Err(JobError::transient(
                "a replica's destination is not configured on this node",
                &r.destination,
            ));
        };
        let copy = state.jurisdictions.admits(&chain, &at.jurisdiction);
        replication::mirror_key_slots(&primary, &Place::stored(at, &v.id), copy, remove)
            .await
            .map_err(|e| JobError::transient("copying key slots to a replica failed", e))?;
    }
    Ok(counts)
}
