//! Recomputing vaults' usage from what their destinations hold (`loop server reconcile`).
//!
//! The server counts every byte it stores or deletes (`db::objects`), so usage drifts only
//! when storage changes behind its back: objects removed by hand, a destination restored
//! from a backup, or a vault written before the server recorded objects. A reconcile lists
//! each vault's objects, records the ones the database did not know, drops the rows of the
//! ones that are gone, and sets `used_bytes` to the sum. It is safe while clients work.

use std::collections::HashMap;

use loop_repo::FileKind;

use crate::config::Config;
use crate::db::objects::{self, Reconciled};
use crate::db::{Db, DbError, vaults};
use crate::destinations::{Destination, DestinationError, Destinations};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Destination(#[from] DestinationError),
    #[error("no vault {0}")]
    NoVault(String),
    #[error("vault {vault}: destination {destination} is not configured")]
    NoDestination { vault: String, destination: String },
    #[error("vault {vault}: listing destination {destination}: {source}")]
    Storage {
        vault: String,
        destination: String,
        source: object_store::Error,
    },
}

/// One vault's outcome.
#[derive(Clone, Debug)]
pub struct VaultReconciled {
    pub vault_id: String,
    pub tenant_id: String,
    pub objects: usize,
    pub change: Reconciled,
}

/// Reconciles one vault (`vault`) or every vault, with the database and destinations of
/// `config`.
pub async fn reconcile(
    config: &Config,
    vault: Option<&str>,
) -> Result<Vec<VaultReconciled>, ReconcileError> {
    let db = Db::connect_with(&config.database_url(), &config.database).await?;
    let destinations = Destinations::open(&config.destinations())?;
    let targets = match vault {
        Some(id) => vec![
            vaults::vault_by_id(&db.pool, id)
                .await?
                .ok_or_else(|| ReconcileError::NoVault(id.to_string()))?,
        ],
        None => vaults::all_vaults(&db.pool).await?,
    };
    let mut out = Vec::new();
    for v in targets {
        let dest =
            destinations
                .get(&v.destination)
                .ok_or_else(|| ReconcileError::NoDestination {
                    vault: v.id.clone(),
                    destination: v.destination.clone(),
                })?;
        let (objects, change) = reconcile_vault(&db.pool, dest, &v.id).await?;
        tracing::info!(vault = %v.id, before = change.used_before, after = change.used_after,
            recorded = change.recorded, dropped = change.dropped, "reconciled vault usage");
        out.push(VaultReconciled {
            vault_id: v.id,
            tenant_id: v.tenant_id,
            objects,
            change,
        });
    }
    Ok(out)
}

/// Reconciles one vault at `dest`: (objects listed, what changed).
pub async fn reconcile_vault(
    pool: &sqlx::AnyPool,
    dest: &Destination,
    vault_id: &str,
) -> Result<(usize, Reconciled), ReconcileError> {
    // Rows first, then the listing: a row that changes in between is left alone.
    let before = objects::recorded(pool, vault_id).await?;
    let listing = listed(dest, vault_id).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let change = objects::reconcile(pool, vault_id, &before, &listing, now).await?;
    Ok((listing.len(), change))
}

/// How many of the objects the vault's records hold as stored `dest` lacks (lock markers and
/// prune plans aside, which come and go): what reconciling the vault with `dest` would drop.
pub async fn lacking_at(
    pool: &sqlx::AnyPool,
    dest: &Destination,
    vault_id: &str,
) -> Result<usize, ReconcileError> {
    let before = objects::recorded(pool, vault_id).await?;
    let listing = listed(dest, vault_id).await?;
    Ok(before
        .iter()
        .filter(|o| o.state == "stored")
        .filter(|o| o.kind != FileKind::Lock.name() && o.kind != FileKind::Plan.name())
        .filter(|o| !listing.contains_key(&(o.kind.clone(), o.name.clone())))
        .count())
}

/// Every object of the vault at `dest`: (kind, name) → size.
async fn listed(
    dest: &Destination,
    vault_id: &str,
) -> Result<HashMap<(String, String), u64>, ReconcileError> {
    let mut listing = HashMap::new();
    for kind in FileKind::ALL {
        let found =
            dest.list_kind(vault_id, kind)
                .await
                .map_err(|source| ReconcileError::Storage {
                    vault: vault_id.to_string(),
                    destination: dest.name.clone(),
                    source,
                })?;
        for o in found {
            listing.insert((kind.name().to_string(), o.name), o.size);
        }
    }
    Ok(listing)
}
