//! Tenant erasure, step one of the erasure sequence (DESIGN.md): destroy the keys, so the
//! tenant's backups are unreadable at once, wherever copies of their objects remain.
//!
//! [`erase_tenant`] is the one entry point, called by `POST /api/v1/tenants/{id}/erase` and
//! meant to be called by the erasure job that later deletes the objects themselves. It is
//! safe to run again: a second run finds the database part done and deletes whatever key
//! slots an interrupted first run left on storage.

use futures_util::TryStreamExt as _;
use loop_api::{ActorKind, Outcome, TenantErasure, TenantStatus, VaultErasure};
use object_store::ObjectStoreExt as _;

use crate::auth::Caller;
use crate::db::audit::{self, NewEvent, Personal};
use crate::db::tenants::{self, TenantRow};
use crate::db::vaults;
use crate::domain::TenantScope;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Who erases: a person through the API, or the system (a job, the lifecycle timer).
#[derive(Clone, Debug)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
    pub personal: Personal,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            id: None,
            personal: Personal::default(),
        }
    }

    fn event(&self, tenant_id: &str, action: &'static str, details: serde_json::Value) -> NewEvent {
        NewEvent {
            tenant_id: tenant_id.to_string(),
            actor_kind: self.kind,
            actor_id: self.id.clone(),
            action,
            object_kind: "tenant",
            object_id: Some(tenant_id.to_string()),
            outcome: Outcome::Success,
            personal: self.personal.clone(),
            details,
        }
    }
}

impl From<&Caller> for Actor {
    fn from(c: &Caller) -> Actor {
        let (kind, id) = c.actor();
        Actor {
            kind,
            id: Some(id),
            personal: c.personal(),
        }
    }
}

/// Erases `tenant`: in one audited transaction, deletes its tenant key (managed vaults are
/// unreadable from then on), marks it erased, revokes its tokens, ends its users' sessions
/// and disables them; then deletes every key slot of each of its vaults at its destination
/// (customer-key vaults become unreadable, and managed vaults stay so even against an old
/// database backup and the master key), and records what it deleted.
///
/// The caller checks who may do this. Run it where a dropped request cannot stop it halfway
/// (the route spawns it); if it fails halfway, running it again finishes the work.
pub async fn erase_tenant(
    state: &AppState,
    tenant: &TenantRow,
    actor: &Actor,
) -> ApiResult<TenantErasure> {
    let tenant_id = &tenant.tenant.id;
    let vaults = vaults::vaults_in(&state.db.pool, &TenantScope::One(tenant_id.clone()), None)
        .await?
        .items;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let key_destroyed = tenants::delete_tenant_key(&mut tx, tenant_id).await?;
    tenants::set_tenant_status(&mut tx, tenant_id, TenantStatus::Erased).await?;
    let (tokens, sessions, users) = tenants::lock_out_tenant(&mut tx, tenant_id, now).await?;
    // Nothing is synced for it any more; the other servers' tokens go with the remotes.
    let remotes = crate::db::remotes::delete_of_tenant(&mut tx, tenant_id).await?;
    let vault_ids: Vec<&str> = vaults.iter().map(|v| v.id.as_str()).collect();
    audit::append(
        &mut tx,
        actor.event(
            tenant_id,
            "tenant.erase",
            serde_json::json!({
                "tenant_key_destroyed": key_destroyed, "tokens_revoked": tokens,
                "sessions_ended": sessions, "users_disabled": users, "vault_ids": vault_ids,
                "remotes_removed": remotes,
            }),
        ),
        now,
    )
    .await?;
    crate::routes::commit(tx).await?;

    // Tokens are revoked by now, so no new key slot can arrive while these are listed.
    let mut erased = Vec::new();
    for v in &vaults {
        let replicas = crate::db::replicas::of_vault(&state.db.pool, &v.id).await?;
        let mut deleted = Vec::new();
        // The primary's slots, then every replica's copies of them.
        let places = std::iter::once(&v.destination).chain(replicas.iter().map(|r| &r.destination));
        for (n, place) in places.enumerate() {
            let dest = state.destinations.get(place).ok_or_else(|| {
                ApiError::Internal(format!(
                    "erasing tenant {tenant_id}: destination {place} of vault {} is not configured",
                    v.id
                ))
            })?;
            let prefix = object_store::path::Path::from(dest.vault_prefix(&v.id) + "/keys");
            let slots: Vec<_> = dest.store.list(Some(&prefix)).try_collect().await?;
            for slot in slots {
                match dest.store.delete(&slot.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                if n == 0 {
                    deleted.push(slot.location.filename().unwrap_or_default().to_string());
                }
            }
        }
        erased.push(VaultErasure {
            vault_id: v.id.clone(),
            key_custody: v.key_custody,
            destination: v.destination.clone(),
            key_slots_deleted: deleted,
            replica_destinations: replicas.into_iter().map(|r| r.destination).collect(),
        });
    }
    let mut tx = state.db.begin().await?;
    audit::append(
        &mut tx,
        actor.event(
            tenant_id,
            "tenant.erase_key_slots",
            serde_json::json!({ "vaults": erased }),
        ),
        state.now(),
    )
    .await?;
    crate::routes::commit(tx).await?;
    Ok(TenantErasure {
        tenant_id: tenant_id.clone(),
        tenant_key_destroyed: key_destroyed,
        tokens_revoked: tokens,
        sessions_ended: sessions,
        users_disabled: users,
        vaults: erased,
    })
}

/// In the transaction that marked vault `v` deleted: removes what would still use it (its
/// policy, protected items, maintainer, sync jobs) and queues the erasure of each of its
/// replicas (the IDs of those jobs). The caller queues the erasure of the vault itself.
pub async fn retire_vault(
    state: &AppState,
    tx: &mut crate::db::Tx,
    v: &loop_api::Vault,
    started_by: &str,
) -> ApiResult<Vec<String>> {
    crate::db::policies::delete_vault_policy(tx, &v.id).await?;
    crate::db::items::delete_items_of(tx, "vault_id", &v.id).await?;
    crate::db::deletions::set_maintainer(tx, &v.id, None, state.now()).await?;
    crate::db::remotes::delete_sync_jobs_of_vault(tx, &v.id).await?;
    Ok(crate::routes::replicas::erase_all(state, tx, v, started_by).await?)
}
