//! Changes to vault objects, for every writer: the vault protocol's handlers and the server's
//! own jobs. Every change claims the object's row first (`db::objects`), so each name is
//! create-once, a lock marker belongs to its writer and a vault's usage is what it stores,
//! whoever writes.
//!
//! A writer is named by an *owner* (a token ID, or `job:<id>` for a job of the server) and a
//! rule that says which stored objects it may replace or remove (`may_change(owner)`).

pub mod direct;
mod storage;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use loop_repo::FileKind;
use object_store::ObjectStoreExt as _;
use object_store::PutPayload;
use object_store::path::Path as StorePath;

pub use storage::{Fence, ServerStorage};

use crate::db::objects::{self, Claim, Claimed, ObjectKey, Prior};
pub use crate::db::retention_lock::LockRule;
use crate::db::{DbError, DbResult};
use crate::destinations::Destination;
use crate::state::AppState;

/// Why a change was not made. Nothing was changed in storage or in the rows.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// Another writer holds the object for a moment: try again.
    #[error("another writer is changing this object")]
    Busy,
    /// The vault's primary moved (a promotion) while the object was written to the old one:
    /// nothing is recorded, and sent again it goes to the new one.
    #[error("the vault moved to another destination while the object was written")]
    Moved,
    /// The object is stored and this writer may not replace it.
    #[error("the object exists and this writer cannot replace it")]
    Exists,
    /// The object is stored and this writer may not remove it.
    #[error("this writer may not remove the object")]
    Refused,
    #[error("the vault's quota does not allow this object")]
    OverQuota,
    /// The vault's retention lock holds the object until then (ms since the epoch).
    #[error("the vault's retention lock holds this object")]
    Locked { until: i64 },
    #[error("storage: {0}")]
    Storage(#[from] object_store::Error),
    #[error("database: {0}")]
    Db(#[from] DbError),
}

/// How many times a change re-claims an object after settling what storage holds.
const CLAIM_ROUNDS: usize = 3;
/// How long a change waits for another writer's claim on the same object (a marker
/// rewritten by two threads, a retried upload) before it answers [`ChangeError::Busy`].
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// One object of one vault at its destination.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub dest: &'a Destination,
    pub vault_id: &'a str,
    pub kind: FileKind,
    pub name: &'a str,
}

impl<'a> Target<'a> {
    pub fn key(&self) -> ObjectKey<'a> {
        ObjectKey {
            vault_id: self.vault_id,
            kind: self.kind.name(),
            name: self.name,
        }
    }

    pub fn path(&self) -> StorePath {
        self.dest.path(self.vault_id, &self.kind.path(self.name))
    }
}

fn lease_ms(state: &AppState) -> i64 {
    state.config.limits.claim_lease_secs as i64 * 1000
}

/// Claims an object, waiting out short-lived claims of other writers.
async fn claim_waiting<F, Fut>(mut attempt: F) -> Result<Claimed, ChangeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = DbResult<Claimed>>,
{
    let start = tokio::time::Instant::now();
    loop {
        match attempt().await? {
            Claimed::Busy if start.elapsed() < BUSY_WAIT => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return Ok(other),
        }
    }
}

/// Claims `t` for writing `len` bytes as `owner`. A row left by a dead writer, or an object
/// stored before rows were kept, is settled against storage first.
pub async fn claim_write(
    state: &AppState,
    t: Target<'_>,
    len: u64,
    owner: &str,
    may_change: impl Fn(Option<&str>) -> bool,
) -> Result<Claim, ChangeError> {
    let path = t.path();
    for _ in 0..CLAIM_ROUNDS {
        let claimed = claim_waiting(|| {
            objects::claim_write(
                &state.db.pool,
                t.key(),
                len,
                owner,
                &may_change,
                state.now(),
                lease_ms(state),
            )
        })
        .await?;
        let c = match claimed {
            Claimed::Yes(c) => c,
            Claimed::Refused { .. } => return Err(ChangeError::Exists),
            Claimed::Busy | Claimed::Absent => return Err(ChangeError::Busy),
            Claimed::OverQuota => return Err(ChangeError::OverQuota),
            Claimed::Locked { until } => return Err(ChangeError::Locked { until }),
        };
        if matches!(c.prior, Prior::Stored { .. }) {
            return Ok(c);
        }
        // No row, or a dead writer's: storage says whether the object exists.
        let found = match t.dest.store.head(&path).await {
            Ok(m) => Some(m.size),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => {
                objects::abort_write(&state.db.pool, t.key(), &c).await?;
                return Err(e.into());
            }
        };
        if found.is_none() && c.prior == Prior::Unknown {
            return Ok(c);
        }
        let counted = c.prior == Prior::Unknown;
        objects::settle(&state.db.pool, t.key(), &c, found, counted).await?;
    }
    Err(ChangeError::Busy)
}

/// Records a written object of BLAKE3 hash `hash` (hex); [`ChangeError::Busy`] when the
/// claim was taken over meanwhile (the write happened after another writer's settle: that
/// writer decides).
pub async fn complete_write(
    state: &AppState,
    t: Target<'_>,
    claim: &Claim,
    len: u64,
    hash: &str,
) -> Result<(), ChangeError> {
    let done = objects::complete_write(
        &state.db.pool,
        t.key(),
        claim,
        (len, hash),
        &t.dest.name,
        state.now(),
    )
    .await?;
    match done {
        objects::Completion::Stored => Ok(()),
        objects::Completion::TakenOver => {
            tracing::error!(vault = %t.vault_id, object = %t.name,
                "a write finished after its claim was taken over");
            Err(ChangeError::Busy)
        }
        // Written where the vault no longer is: sent again, it goes to the new primary.
        objects::Completion::Moved => {
            abort_write(state, t, claim).await?;
            Err(ChangeError::Moved)
        }
    }
}

pub async fn abort_write(state: &AppState, t: Target<'_>, claim: &Claim) -> DbResult<()> {
    objects::abort_write(&state.db.pool, t.key(), claim).await
}

/// Writes a whole object held in memory.
pub async fn put(
    state: &AppState,
    t: Target<'_>,
    data: Vec<u8>,
    owner: &str,
    may_change: impl Fn(Option<&str>) -> bool,
) -> Result<(), ChangeError> {
    let len = data.len() as u64;
    let hash = blake3::hash(&data).to_hex();
    let claim = claim_write(state, t, len, owner, may_change).await?;
    let keeper = LeaseKeeper::start(state, t.key(), &claim);
    let written = match keeper.check() {
        Ok(()) => t
            .dest
            .store
            .put(&t.path(), PutPayload::from(data))
            .await
            .map(drop)
            .map_err(ChangeError::from),
        Err(e) => Err(e),
    };
    drop(keeper);
    if let Err(e) = written {
        abort_write(state, t, &claim).await?;
        return Err(e);
    }
    complete_write(state, t, &claim, len, &hash).await
}

/// Whether the object is gone: no row, and storage does not have it.
pub async fn gone(state: &AppState, t: Target<'_>) -> Result<bool, ChangeError> {
    if objects::has_row(&state.db.pool, t.key()).await? {
        return Ok(false);
    }
    match t.dest.store.head(&t.path()).await {
        Ok(_) => Ok(false),
        Err(object_store::Error::NotFound { .. }) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Deletes an object. `Ok(None)` when there was nothing to delete; else the size it had.
pub async fn delete(
    state: &AppState,
    t: Target<'_>,
    may_change: impl Fn(Option<&str>) -> bool,
    lock: LockRule,
) -> Result<Option<u64>, ChangeError> {
    let path = t.path();
    let pool = &state.db.pool;
    let mut claimed = claim_waiting(|| {
        objects::claim_delete(
            pool,
            t.key(),
            &may_change,
            lock,
            state.now(),
            lease_ms(state),
        )
    })
    .await?;
    if let Claimed::Absent = claimed {
        // No row: an object stored before rows were kept, or nothing at all.
        let size = match t.dest.store.head(&path).await {
            Ok(m) => m.size,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if !may_change(None) {
            return Err(ChangeError::Refused);
        }
        if lock == LockRule::Holds
            && let Some(until) = crate::db::retention_lock::unrecorded_held_until(
                pool,
                t.vault_id,
                t.kind.name(),
                state.now(),
            )
            .await?
        {
            return Err(ChangeError::Locked { until });
        }
        claimed =
            objects::claim_unrecorded_delete(pool, t.key(), size, state.now(), lease_ms(state))
                .await?;
    }
    let claim = match claimed {
        Claimed::Yes(c) => c,
        Claimed::Refused { .. } => return Err(ChangeError::Refused),
        Claimed::Absent => return Ok(None),
        Claimed::Busy | Claimed::OverQuota => return Err(ChangeError::Busy),
        Claimed::Locked { until } => return Err(ChangeError::Locked { until }),
    };
    let keeper = LeaseKeeper::start(state, t.key(), &claim);
    let deleted = t.dest.store.delete(&path).await;
    drop(keeper);
    match deleted {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => {
            objects::abort_delete(pool, t.key(), &claim).await?;
            return Err(e.into());
        }
    }
    Ok(Some(objects::complete_delete(pool, t.key(), &claim).await?))
}

/// A claim is settled by [`settle_lapsed`] this long after its lease lapsed: a request that
/// is alive renews its lease every third of it, so one this late is gone.
const SETTLE_AFTER: Duration = Duration::from_secs(600);
/// Claims settled per pass at most; the rest wait for the next pass.
const SETTLE_PER_PASS: i64 = 1000;

/// Settles the claims of requests that died and that no request took over since (the
/// client never uploaded that name again): storage is asked what it holds, an object found
/// is recorded as stored at its size, one not found loses its row, and either way the dead
/// request's reservation leaves the vault's usage. A claim storage cannot be asked about
/// stays for the next pass. Returns how many were settled.
pub async fn settle_lapsed(state: &AppState) -> DbResult<usize> {
    let pool = &state.db.pool;
    let now = state.now();
    let before = now - SETTLE_AFTER.as_millis() as i64;
    let mut settled = 0;
    for l in objects::lapsed(pool, before, SETTLE_PER_PASS).await? {
        let (Some(dest), Some(kind)) = (
            state.destinations.get(&l.destination),
            FileKind::from_name(&l.kind),
        ) else {
            continue;
        };
        let t = Target {
            dest,
            vault_id: &l.vault_id,
            kind,
            name: &l.name,
        };
        let taken =
            objects::take_lapsed(pool, t.key(), &l.claim, before, now, lease_ms(state)).await?;
        let Some(claim) = taken else { continue };
        let found = match t.dest.store.head(&t.path()).await {
            Ok(m) => Some(m.size),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => {
                tracing::warn!(vault = %t.vault_id, object = %t.name, error = %e,
                    "settling a lapsed claim: storage did not answer");
                objects::release(pool, t.key(), &claim).await?;
                continue;
            }
        };
        objects::settle(pool, t.key(), &claim, found, false).await?;
        settled += 1;
    }
    Ok(settled)
}

/// Renews a claim's lease for as long as the change holding it runs (a third of the lease
/// at a time), so only a change whose server died ever loses its claim. Stops on drop.
///
/// It also notices when the vault closes (deleted, or its tenant erased): the change then
/// fails its next [`LeaseKeeper::check`], before it stores anything, while the lease is
/// still renewed until the change has stopped, so the vault's erasure waits for it
/// ([`objects::changes_under_way`]) and finds whatever landed before.
pub struct LeaseKeeper {
    lost: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseKeeper {
    pub fn start(state: &AppState, key: ObjectKey<'_>, claim: &Claim) -> LeaseKeeper {
        let lease_ms = lease_ms(state);
        let lost = Arc::new(AtomicBool::new(false));
        let (state, claim, flag) = (state.clone(), claim.clone(), lost.clone());
        let (vault_id, kind, name) = (
            key.vault_id.to_string(),
            key.kind.to_string(),
            key.name.to_string(),
        );
        let every = Duration::from_millis((lease_ms / 3).max(1) as u64);
        let task = tokio::spawn(async move {
            let key = ObjectKey {
                vault_id: &vault_id,
                kind: &kind,
                name: &name,
            };
            loop {
                tokio::time::sleep(every).await;
                let until = state.now() + lease_ms;
                match objects::renew(&state.db.pool, key, &claim, until).await {
                    Ok(true) => {
                        if objects::closed(&state.db.pool, key.vault_id)
                            .await
                            .unwrap_or(false)
                        {
                            flag.store(true, Ordering::Relaxed);
                        }
                    }
                    Ok(false) => {
                        flag.store(true, Ordering::Relaxed);
                        return;
                    }
                    // Tried again next round; the lease has two more rounds to go.
                    Err(e) => tracing::warn!(error = %e, "renewing an object claim"),
                }
            }
        });
        LeaseKeeper { lost, task }
    }

    /// Fails once another writer took the claim over, or the vault closed.
    pub fn check(&self) -> Result<(), ChangeError> {
        if self.lost.load(Ordering::Relaxed) {
            Err(ChangeError::Busy)
        } else {
            Ok(())
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}
