//! The keys of managed vaults, opened for the server's own use (the vault protocol, the
//! snapshot listing, verify jobs). Apart from `keys`, which `state` and `error` build on.

use loop_api::Vault;
use loop_repo::crypto::Key;

use crate::db::tenants;
use crate::error::{ApiError, ApiResult};
use crate::keys::vault_kek;
use crate::state::AppState;

/// The KEK of a managed vault, from its tenant key. Fails once the tenant key is deleted.
pub async fn managed_kek(state: &AppState, vault: &Vault) -> ApiResult<Key> {
    let wrapped = tenants::tenant_key(&state.db.pool, &vault.tenant_id)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "key_shredded",
                "the tenant key was deleted; the vault is unreadable",
            )
        })?;
    let tenant_key = state.master.open_tenant_key(&vault.tenant_id, &wrapped)?;
    Ok(vault_kek(&tenant_key, &vault.id))
}
