//! A vault as the caller may see it: the one lookup every route on a vault goes through.

use loop_api::{Vault, VaultId};

use crate::auth::Caller;
use crate::db::vaults;
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `v` with the jurisdiction of its destination filled in.
pub(super) fn with_jurisdiction(state: &AppState, mut v: Vault) -> Vault {
    if let Some(d) = state.destinations.get(&v.destination) {
        v.jurisdiction = d.jurisdiction.clone();
    }
    v
}

/// The vault `id`, when the caller holds `perm` on its tenant; otherwise 404 (or 403 inside
/// the caller's scope), as for every object of a tenant.
pub(super) async fn scoped_vault(
    state: &AppState,
    caller: &Caller,
    perm: Permission,
    id: &VaultId,
) -> ApiResult<Vault> {
    caller.user()?;
    let v = vaults::vault_by_id(&state.db.pool, id.as_str())
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller.tenant(state, perm, &v.tenant_id).await?;
    Ok(with_jurisdiction(state, v))
}
