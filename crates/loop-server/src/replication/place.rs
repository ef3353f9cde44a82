//! [`Place`]: one side of a replication or a sync. A vault at a destination of this server
//! (a primary read, a replica written straight), a vault of this server written through its
//! records (a pull's target: usage, quota and retention lock apply), or a vault on another
//! `loop server` reached over its vault protocol with a replication token.

use std::sync::Arc;

use bytes::Bytes;
use loop_agent::VaultStorage;
use loop_repo::{FileKind, Storage as _};
use object_store::{ObjectStoreExt as _, PutPayload};

use super::Listing;
use crate::destinations::Destination;
use crate::state::AppState;
use crate::vault_objects::{self, ChangeError, LockRule, Target};

/// A vault somewhere objects can be listed, read, written and removed.
#[derive(Clone)]
pub struct Place {
    pub vault_id: String,
    pub at: At,
}

#[derive(Clone)]
pub enum At {
    /// Straight at a destination of this server.
    Stored(Arc<Destination>),
    /// A vault of this server written through its records, as `owner` (who may later
    /// remove what it wrote).
    Recorded {
        state: AppState,
        dest: Arc<Destination>,
        owner: String,
    },
    /// A vault on another server (blocking calls, made on the blocking pool); reads larger
    /// than `max_object` are refused.
    Remote {
        storage: Arc<VaultStorage>,
        max_object: u64,
    },
}

/// What a removal did.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// The vault's retention lock holds the object, or this writer did not write it: it
    /// stays.
    Kept,
}

impl Place {
    pub fn stored(dest: &Arc<Destination>, vault_id: &str) -> Place {
        Place {
            vault_id: vault_id.to_string(),
            at: At::Stored(dest.clone()),
        }
    }

    /// Where it is, for messages.
    pub fn name(&self) -> String {
        match &self.at {
            At::Stored(d) | At::Recorded { dest: d, .. } => d.name.clone(),
            At::Remote { storage, .. } => storage.location(),
        }
    }

    /// One object of this vault at `dest`, for the recorded changes.
    fn target<'a>(&'a self, dest: &'a Destination, kind: FileKind, name: &'a str) -> Target<'a> {
        Target {
            dest,
            vault_id: &self.vault_id,
            kind,
            name,
        }
    }

    fn dest(&self) -> Option<&Arc<Destination>> {
        match &self.at {
            At::Stored(d) | At::Recorded { dest: d, .. } => Some(d),
            At::Remote { .. } => None,
        }
    }

    async fn remote<T: Send + 'static>(
        r: &Arc<VaultStorage>,
        call: impl FnOnce(&VaultStorage) -> loop_repo::Result<T> + Send + 'static,
    ) -> loop_repo::Result<T> {
        let r = r.clone();
        tokio::task::spawn_blocking(move || call(&r))
            .await
            .unwrap_or_else(|e| {
                Err(loop_repo::Error::Storage {
                    object: String::new(),
                    message: format!("remote call: {e}"),
                })
            })
    }

    /// The vault's objects of one kind: name → size.
    pub async fn list(&self, kind: FileKind) -> Result<Listing, String> {
        if let Some(d) = self.dest() {
            let objects = d
                .list_kind(&self.vault_id, kind)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(objects.into_iter().map(|o| (o.name, o.size)).collect());
        }
        let At::Remote { storage: r, .. } = &self.at else {
            unreachable!("a place without a destination is remote")
        };
        let listed = Self::remote(r, move |s| s.list(kind))
            .await
            .map_err(|e| e.to_string())?;
        Ok(listed.into_iter().map(|o| (o.name, o.size)).collect())
    }

    /// Whether a write replaces an object held at the name: a destination of this server
    /// does (a replica is repaired so); a vault behind the vault protocol (a remote, or this
    /// server's own records for a pull) never replaces a stored object.
    pub fn replaces(&self) -> bool {
        matches!(self.at, At::Stored(_))
    }

    /// The largest object this place gives out, where it has a limit of its own (a remote).
    pub fn max_read(&self) -> Option<u64> {
        match &self.at {
            At::Remote { max_object, .. } => Some(*max_object),
            _ => None,
        }
    }

    /// One whole object; `None` when the place does not hold it.
    pub async fn get(&self, kind: FileKind, name: &str) -> Result<Option<Bytes>, String> {
        if let Some(d) = self.dest() {
            let path = d.path(&self.vault_id, &kind.path(name));
            let got = match d.store.get(&path).await {
                Ok(r) => r.bytes().await,
                Err(e) => Err(e),
            };
            return match got {
                Ok(b) => Ok(Some(b)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.to_string()),
            };
        }
        let At::Remote {
            storage: r,
            max_object: max,
        } = &self.at
        else {
            unreachable!("a place without a destination is remote")
        };
        let (name, max) = (name.to_string(), *max);
        match Self::remote(r, move |s| s.get(kind, &name, max)).await {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Writes one object (create-once places refuse to replace one they hold).
    pub async fn put(&self, kind: FileKind, name: &str, bytes: Bytes) -> Result<(), String> {
        match &self.at {
            At::Stored(d) => d
                .store
                .put(
                    &d.path(&self.vault_id, &kind.path(name)),
                    PutPayload::from_bytes(bytes),
                )
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            At::Recorded { state, dest, owner } => {
                let t = self.target(dest, kind, name);
                vault_objects::put(state, t, bytes.to_vec(), owner, |_| false)
                    .await
                    .map_err(|e| e.to_string())
            }
            At::Remote { storage: r, .. } => {
                let name = name.to_string();
                Self::remote(r, move |s| s.put(kind, &name, bytes.to_vec()))
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Removes one object (nothing to remove is removed).
    pub async fn remove(&self, kind: FileKind, name: &str) -> Result<Removal, String> {
        match &self.at {
            At::Stored(d) => {
                match d
                    .store
                    .delete(&d.path(&self.vault_id, &kind.path(name)))
                    .await
                {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(Removal::Removed),
                    Err(e) => Err(e.to_string()),
                }
            }
            At::Recorded { state, dest, owner } => {
                let t = self.target(dest, kind, name);
                let mine = |o: Option<&str>| o == Some(owner.as_str());
                match vault_objects::delete(state, t, mine, LockRule::Holds).await {
                    Ok(_) => Ok(Removal::Removed),
                    Err(ChangeError::Locked { .. } | ChangeError::Refused) => Ok(Removal::Kept),
                    Err(e) => Err(e.to_string()),
                }
            }
            At::Remote { storage: r, .. } => {
                let name = name.to_string();
                match Self::remote(r, move |s| s.delete(kind, &name)).await {
                    Ok(()) => Ok(Removal::Removed),
                    Err(loop_repo::Error::Held { .. }) => Ok(Removal::Kept),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }
}
