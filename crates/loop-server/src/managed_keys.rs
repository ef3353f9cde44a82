//! The keys of managed vaults, opened for the server's own use (the vault protocol, the
//! snapshot listing, verify jobs). Apart from `keys`, which `state` and `error` build on.

use std::sync::Arc;

use loop_api::Vault;
use loop_repo::Repository;
use loop_repo::crypto::Key;
use loop_repo::keys::Secret;

use crate::db::{Tx, tenants};
use crate::destinations::Destination;
use crate::error::{ApiError, ApiResult};
use crate::keys::vault_kek;
use crate::state::AppState;

fn key_shredded() -> ApiError {
    ApiError::conflict(
        "key_shredded",
        "the tenant key was deleted; the vault is unreadable",
    )
}

/// The KEK of a managed vault, from its tenant key. Fails once the tenant key is deleted.
pub async fn managed_kek(state: &AppState, vault: &Vault) -> ApiResult<Key> {
    let wrapped = tenants::tenant_key(&state.db.pool, &vault.tenant_id)
        .await?
        .ok_or_else(key_shredded)?;
    let tenant_key = state.master.open_tenant_key(&vault.tenant_id, &wrapped)?;
    Ok(vault_kek(&tenant_key, &vault.id))
}

fn rotating() -> ApiError {
    ApiError::conflict(
        "key_rotation",
        "the tenant's key is being rotated; create the vault once its tenant-key-rotation job \
         has ended",
    )
}

/// The key a new managed vault is created under: its KEK, and the wrapped tenant key to
/// hold with [`hold_new_vault_key`]. Refused while the tenant's key is being rotated.
pub async fn new_vault_kek(state: &AppState, vault: &Vault) -> ApiResult<(Key, String)> {
    let keys = tenants::tenant_keys(&state.db.pool, &vault.tenant_id)
        .await?
        .ok_or_else(key_shredded)?;
    if keys.rotating() {
        return Err(rotating());
    }
    let tenant_key = state
        .master
        .open_tenant_key(&vault.tenant_id, &keys.current)?;
    Ok((vault_kek(&tenant_key, &vault.id), keys.current))
}

/// In the transaction that records the new vault: fails when a rotation started since
/// [`new_vault_kek`], which would not know the vault.
pub async fn hold_new_vault_key(tx: &mut Tx, vault: &Vault, wrapped: &str) -> ApiResult<()> {
    if tenants::hold_current_key(tx, &vault.tenant_id, wrapped).await? {
        Ok(())
    } else {
        Err(rotating())
    }
}

/// Before managed vault `vault`'s replica at `dest` becomes its primary: refused while the
/// tenant's key is being rotated, and when the replica does not open with the current tenant
/// key (promoted, the vault would be unreadable).
pub async fn check_promotable(
    state: &AppState,
    vault: &Vault,
    dest: &Destination,
) -> ApiResult<()> {
    let keys = tenants::tenant_keys(&state.db.pool, &vault.tenant_id)
        .await?
        .ok_or_else(key_shredded)?;
    if keys.rotating() {
        return Err(ApiError::conflict(
            "key_rotation",
            "the tenant's key is being rotated; promote the replica once its \
             tenant-key-rotation job has ended",
        ));
    }
    let tenant_key = state
        .master
        .open_tenant_key(&vault.tenant_id, &keys.current)?;
    let kek = vault_kek(&tenant_key, &vault.id);
    let storage = dest
        .repo_storage(&vault.id)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let opened = tokio::task::spawn_blocking(move || {
        Repository::open(Arc::new(storage), Secret::RawKey(&kek)).map(drop)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let why = match opened {
        Ok(()) => return Ok(()),
        Err(loop_repo::Error::WrongPassword) => {
            "its key slots do not open with the tenant's current key; replicate the vault, \
             then promote"
        }
        Err(e) => {
            tracing::warn!(vault = %vault.id, destination = %dest.name, error = %e,
                "a replica to promote could not be opened");
            "it could not be opened; verify the replica, then promote"
        }
    };
    Err(ApiError::conflict(
        "replica_not_ready",
        format!(
            "the replica at {} cannot become the primary: {why}",
            dest.name
        ),
    ))
}
