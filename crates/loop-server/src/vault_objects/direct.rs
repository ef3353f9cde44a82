//! The staging objects of direct uploads (`routes::vault_protocol::direct`): removed when an
//! upload completes, and swept once its URL has expired.

use std::time::Duration;

use object_store::ObjectStoreExt as _;
use object_store::path::Path as StorePath;

use crate::db::direct;
use crate::destinations::Destination;
use crate::state::AppState;

/// Staging objects are swept this long after their URL expired (a completion that started
/// just before may still be reading them).
const SWEEP_GRACE: Duration = Duration::from_secs(600);

/// An upload is completed at most this long after its URL expired, so every completion has
/// at least the rest of [`SWEEP_GRACE`] before the sweep removes what it reads.
pub const COMPLETE_GRACE: Duration = Duration::from_secs(300);

/// The copy of an upload's staging object that the server checks: no URL reaches it.
pub fn checked_path(dest: &Destination, vault_id: &str, upload_id: &str) -> StorePath {
    dest.staging_path(vault_id, &format!("{upload_id}.checked"))
}

/// Deletes staging objects; one that is already gone is fine, a failure is logged (the
/// sweep tries again once the upload's URL has expired).
pub async fn remove_staging(dest: &Destination, paths: &[&StorePath]) {
    for p in paths {
        match dest.store.delete(p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(object = %p, error = %e, "removing a staging object"),
        }
    }
}

/// Removes the staging objects of uploads whose URL expired (what a URL used after its
/// upload completed, or an upload never completed, left), and forgets the uploads. Returns
/// how many it swept.
pub async fn sweep(state: &AppState) -> crate::db::DbResult<usize> {
    let before = state.now() - SWEEP_GRACE.as_millis() as i64;
    let expired = direct::expired(&state.db.pool, before, 1000).await?;
    for (u, destination) in &expired {
        if let Some(dest) = state.destinations.get(destination) {
            let staging = dest.staging_path(&u.vault_id, &u.id);
            let checked = checked_path(dest, &u.vault_id, &u.id);
            remove_staging(dest, &[&staging, &checked]).await;
        }
        direct::forget(&state.db.pool, &u.id).await?;
    }
    Ok(expired.len())
}
