//! [`ServerStorage`]: a vault as the engine's storage, for the server's own jobs (retention
//! of a managed vault). Reads go straight to the destination; every write and delete goes
//! through the same claims as the vault protocol's, so usage and quota stay exact, and is
//! fenced by the job's lease.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use loop_repo::{Error, FileKind, ObjectInfo, ObjectStorage, Result, Storage};

use super::{ChangeError, Target};
use crate::db::jobs::{self, Held};
use crate::destinations::Destination;
use crate::state::AppState;

/// The job a [`ServerStorage`] writes for. Before each change it renews the job's lease
/// under the job's fencing number; once another runner holds the job, `lost` is set and
/// nothing more is written.
pub struct Fence {
    pub job_id: String,
    pub fence: i64,
    pub lost: Arc<AtomicBool>,
}

pub struct ServerStorage {
    state: AppState,
    dest: Arc<Destination>,
    vault_id: String,
    /// Recorded as the writer of what this storage stores: `job:<id>`.
    owner: String,
    lock: super::LockRule,
    fence: Fence,
    reads: ObjectStorage,
    runtime: tokio::runtime::Handle,
}

impl ServerStorage {
    /// Call inside the server's runtime; use the storage from a blocking task.
    pub fn new(
        state: &AppState,
        dest: Arc<Destination>,
        vault_id: &str,
        fence: Fence,
    ) -> Result<ServerStorage> {
        Ok(ServerStorage {
            state: state.clone(),
            reads: dest.repo_storage(vault_id)?,
            dest,
            vault_id: vault_id.to_string(),
            owner: format!("job:{}", fence.job_id),
            lock: super::LockRule::Holds,
            fence,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// For the tenant key rotation: key slots it removes are not held by the vault's
    /// retention lock (see [`super::LockRule::SparesReplacedKeySlots`]).
    pub fn replacing_key_slots(mut self) -> ServerStorage {
        self.lock = super::LockRule::SparesReplacedKeySlots;
        self
    }

    fn target<'a>(&'a self, kind: FileKind, name: &'a str) -> Target<'a> {
        Target {
            dest: &self.dest,
            vault_id: &self.vault_id,
            kind,
            name,
        }
    }

    async fn hold(&self) -> std::result::Result<(), String> {
        if self.fence.lost.load(Ordering::Relaxed) {
            return Err("the job's runner lost its lease".into());
        }
        let until = self.state.now() + self.state.config.jobs.lease_seconds as i64 * 1000;
        match jobs::renew(
            &self.state.db.pool,
            &self.fence.job_id,
            self.fence.fence,
            until,
        )
        .await
        {
            Ok(Held::Yes { .. }) => Ok(()),
            Ok(Held::Lost) => {
                self.fence.lost.store(true, Ordering::Relaxed);
                Err("the job's runner lost its lease".into())
            }
            Err(e) => Err(format!("database: {e}")),
        }
    }

    fn change<T>(
        &self,
        kind: FileKind,
        name: &str,
        f: impl std::future::Future<Output = std::result::Result<T, ChangeError>>,
    ) -> Result<T> {
        let object = kind.path(name);
        self.runtime.block_on(async {
            self.hold().await.map_err(|message| Error::Storage {
                object: object.clone(),
                message,
            })?;
            f.await.map_err(|e| match e {
                ChangeError::Locked { until } => Error::Held {
                    object: object.clone(),
                    message: format!(
                        "kept until {}",
                        crate::db::time(until).format("%Y-%m-%d %H:%M UTC")
                    ),
                },
                e => Error::Storage {
                    object: object.clone(),
                    message: e.to_string(),
                },
            })
        })
    }
}

impl Storage for ServerStorage {
    fn location(&self) -> String {
        self.reads.location()
    }

    fn put(&self, kind: FileKind, name: &str, data: Vec<u8>) -> Result<()> {
        // The server's own writer replaces what it must (a lock marker it refreshes).
        let t = self.target(kind, name);
        self.change(
            kind,
            name,
            super::put(&self.state, t, data, &self.owner, |_| true),
        )
    }

    fn get(&self, kind: FileKind, name: &str, max: u64) -> Result<Vec<u8>> {
        self.reads.get(kind, name, max)
    }

    fn get_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.reads.get_range(kind, name, offset, len)
    }

    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        self.reads.list(kind)
    }

    fn delete(&self, kind: FileKind, name: &str) -> Result<()> {
        let t = self.target(kind, name);
        self.change(
            kind,
            name,
            super::delete(&self.state, t, |_| true, self.lock),
        )
        .map(drop)
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.reads.size(kind, name)
    }
}
