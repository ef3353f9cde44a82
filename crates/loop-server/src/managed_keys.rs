//! The keys of managed vaults, opened for the server's own use (the vault protocol, the
//! snapshot listing, verify jobs). Apart from `keys`, which `state` and `error` build on.

use loop_api::Vault;
use loop_repo::crypto::Key;

use crate::db::{Tx, tenants};
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
