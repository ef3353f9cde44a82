//! Vaults as their readers see them, for the API and the console alike:
//!
//! - [`scoped_vault`]: the one lookup every request about a vault goes through;
//! - [`replica_view`]: a replica with its lag;
//! - [`reader`]: a managed vault's snapshots read on the server (list, directories, search);
//! - [`opened`]: an opened managed vault, the ones a node keeps, and the walk over a tree;
//! - [`archive`]: a file or a directory of a snapshot streamed as it is read (.zip, .tar.zst).

pub mod archive;
pub mod opened;
pub mod reader;

use loop_api::{Replica, ReplicaState, Vault, VaultId};

use crate::auth::Caller;
use crate::db::replicas::{self, ReplicaRow};
use crate::db::{time, vaults};
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The largest directory listing (a tree's JSON) the server loads from a managed vault to
/// answer a request (a listing, a search, a download): about 650,000 entries. A vault's
/// writer could store a tree of up to 4 GiB, and requests come in any number; the server
/// takes no more than this of its memory for one (the request fails, the log says why;
/// `loop` reads such a directory on a machine of its own). Its jobs (retention, verify), few at a time, load
/// what the engine loads.
pub const TREE_LIMIT: usize = 256 << 20;

/// `v` with the jurisdiction of its destination filled in.
pub fn with_jurisdiction(state: &AppState, mut v: Vault) -> Vault {
    if let Some(d) = state.destinations.get(&v.destination) {
        v.jurisdiction = d.jurisdiction.clone();
    }
    v
}

/// The vault `id`, when the caller holds `perm` on its tenant; otherwise 404 (or 403 inside
/// the caller's scope), as for every object of a tenant.
pub async fn scoped_vault(
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

/// [`scoped_vault`] for an ID as a page's address carries it: one that is not an ID names
/// nothing (404).
pub async fn scoped_vault_text(
    state: &AppState,
    caller: &Caller,
    perm: Permission,
    id: &str,
) -> ApiResult<Vault> {
    let id = VaultId::parse(id).map_err(|_| ApiError::not_found())?;
    scoped_vault(state, caller, perm, &id).await
}

/// A replica as its readers see it: where it is, and what it may lack (the objects and bytes
/// the vault received since the last complete replication began; everything while seeding).
pub async fn replica_view(state: &AppState, r: ReplicaRow) -> ApiResult<Replica> {
    let since = if r.state == ReplicaState::Seeding {
        None
    } else {
        r.synced_from
    };
    let (objects_behind, bytes_behind) = replicas::lag(&state.db.pool, &r.vault_id, since).await?;
    Ok(Replica {
        jurisdiction: state
            .destinations
            .get(&r.destination)
            .map(|d| d.jurisdiction.clone())
            .unwrap_or_default(),
        id: r.id,
        vault_id: r.vault_id,
        destination: r.destination,
        state: r.state,
        created_at: time(r.created_at),
        synced_at: r.synced_at.map(time),
        objects_behind,
        bytes_behind,
        verified_at: r.verified_at.map(time),
        verify_ok: r.verify_ok,
        last_error: r.last_error,
    })
}
