//! Writes and deletes of vault objects: every change claims the object's row first
//! (`db::objects`), so each name is create-once, a lock marker belongs to its writer and a
//! vault's usage is what it stores; uploads are checked before they become visible.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use loop_api::JobTrigger;
use loop_api::VaultId;
use loop_repo::format::HEADER_LEN;
use loop_repo::pack::EnvelopeProbe;
use loop_repo::{FileKind, Id};
use object_store::{ObjectStoreExt as _, PutPayload, WriteMultipart};

use super::{Access, Op, allowed, object_access};
use crate::auth::Caller;
use crate::domain::TokenPermission;
use crate::error::{ApiError, ApiResult};
use crate::routes::{Path, commit_audited};
use crate::state::AppState;
use crate::vault_objects::{self, ChangeError, LeaseKeeper, Target};

/// Objects up to this size are received into memory and written in one request; larger
/// ones are streamed as a multipart upload in parts of this size.
const PART_SIZE: usize = 8 * 1024 * 1024;

pub(super) fn reject(reason: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "object_rejected", reason)
}

/// The largest object of each kind a client may store. Packs, indexes, snapshots and plans
/// are bounded by `limits.object_bytes`; markers, key slots and the config are small (the
/// engine reads them with these bounds), which also bounds what a backup token can do by
/// rewriting its own markers.
pub(super) fn max_object(kind: FileKind, limit: u64) -> u64 {
    match kind {
        FileKind::Lock | FileKind::Key => 64 * 1024,
        FileKind::Config => 1024 * 1024,
        _ => limit,
    }
}

pub(super) async fn write(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind, name)): Path<(VaultId, String, String)>,
    req: Request,
) -> ApiResult<Response> {
    let (a, kind) = object_access(&state, &caller, &vault_id, &kind, &name, Op::Write).await?;
    let headers = req.headers();
    let len: u64 = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                "send Content-Length",
            )
        })?;
    let max = max_object(kind, state.config.limits.object_bytes);
    if len > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "object_too_large",
            format!("objects of this kind are at most {max} bytes"),
        ));
    }
    let want_hash = headers
        .get(loop_api::CONTENT_HASH_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() == 64)
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "send {} with the body's BLAKE3 hash",
                loop_api::CONTENT_HASH_HEADER
            ))
        })?;
    let body = req.into_body();
    // The upload, its accounting and its audit event run as their own task: a client that
    // cancels the request (an HTTP/2 reset) cannot stop the server half-way, so a reserved
    // quota is always given back and a stored snapshot is always recorded.
    let job = tokio::spawn(store_object(
        state, caller, a, kind, name, len, want_hash, body,
    ));
    job.await?
}

impl Access {
    pub(super) fn target<'a>(&'a self, kind: FileKind, name: &'a str) -> Target<'a> {
        Target {
            dest: &self.dest,
            vault_id: &self.vault.id,
            kind,
            name,
        }
    }

    /// Whether this token may remove, as a replication token, an object `owner` wrote: one
    /// that a replication token of the tenant wrote.
    pub(super) fn replicated(&self, owner: Option<&str>) -> bool {
        owner.is_some_and(|o| self.replicators.iter().any(|r| r == o))
    }

    /// Whether this token may replace or remove a stored object that `owner` wrote: a
    /// manage token anything, a backup or restore token only the lock markers it wrote.
    pub(super) fn may_change(&self, kind: FileKind, owner: Option<&str>) -> bool {
        self.perms.contains(&TokenPermission::Manage)
            || (kind == FileKind::Lock
                && allowed(&self.perms, Op::Delete, kind)
                && owner == Some(self.token.id.as_str()))
    }
}

/// Another request holds the object for a moment: clients retry.
fn object_busy() -> ApiError {
    ApiError::conflict(
        "object_busy",
        "another request is writing or deleting this object; try again",
    )
    .retry_after(1)
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> ApiError {
        match e {
            ChangeError::Busy => object_busy(),
            ChangeError::Moved => ApiError::conflict(
                "vault_moved",
                "the vault moved to another destination while this object was sent; send it \
                 again",
            )
            .retry_after(1),
            ChangeError::Exists => ApiError::conflict(
                "object_exists",
                "the object exists and this token cannot replace it",
            ),
            ChangeError::Refused => ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_denied",
                "only the token that wrote this object, or a manage token, may remove it",
            ),
            ChangeError::OverQuota => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "quota_exceeded",
                "the vault's quota does not allow this upload",
            ),
            ChangeError::Locked { until } => ApiError::new(
                StatusCode::FORBIDDEN,
                "retention_locked",
                format!(
                    "the vault's retention lock keeps this object until {}",
                    crate::db::time(until).format("%Y-%m-%d %H:%M UTC")
                ),
            ),
            ChangeError::Storage(e) => e.into(),
            ChangeError::Db(e) => e.into(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn store_object(
    state: AppState,
    caller: Caller,
    a: Access,
    kind: FileKind,
    name: String,
    len: u64,
    want_hash: String,
    body: Body,
) -> ApiResult<Response> {
    let t = a.target(kind, &name);
    let claim = vault_objects::claim_write(&state, t, len, &a.token.id, |owner| {
        a.may_change(kind, owner)
    })
    .await?;
    let keeper = LeaseKeeper::start(&state, t.key(), &claim);
    let received = receive(&a, kind, &name, &t.path(), len, &want_hash, body, &keeper).await;
    drop(keeper);
    if let Err(e) = received {
        vault_objects::abort_write(&state, t, &claim).await?;
        return Err(e);
    }
    vault_objects::complete_write(&state, t, &claim, len, &want_hash).await?;
    audit_change(&state, &caller, &a, kind, &name, true, len).await?;
    Ok(StatusCode::CREATED.into_response())
}

/// What is tracked of an upload while it streams: length, hash, and what its structural
/// check reads (the header; for a pack, what [`EnvelopeProbe`] keeps).
pub(super) struct Arrival {
    hasher: blake3::Hasher,
    head: Vec<u8>,
    pack: Option<EnvelopeProbe>,
    received: u64,
    len: u64,
}

impl Arrival {
    pub(super) fn new(kind: FileKind, len: u64) -> Arrival {
        Arrival {
            hasher: blake3::Hasher::new(),
            head: Vec::with_capacity(HEADER_LEN),
            pack: (kind == FileKind::Pack).then(EnvelopeProbe::default),
            received: 0,
            len,
        }
    }

    pub(super) fn observe(&mut self, chunk: &[u8]) -> ApiResult<()> {
        self.received += chunk.len() as u64;
        if self.received > self.len {
            return Err(reject("the body is longer than Content-Length"));
        }
        self.hasher.update(chunk);
        if self.head.len() < HEADER_LEN {
            let take = (HEADER_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        if let Some(probe) = &mut self.pack {
            probe.observe(chunk);
        }
        Ok(())
    }

    /// Once every byte arrived: the length, the hash the client announced and the structure.
    pub(super) fn verify(&self, kind: FileKind, name: &str, want_hash: &str) -> ApiResult<()> {
        if self.received != self.len {
            return Err(reject("the body is shorter than Content-Length"));
        }
        if self.hasher.finalize().to_hex().as_str() != want_hash {
            return Err(reject("the body does not match its BLAKE3 hash"));
        }
        self.check_structure(kind, name).map_err(reject)
    }

    /// Structural checks a stored object must pass before it is committed: the header every
    /// object starts with, and for a pack what can be checked without the key.
    fn check_structure(&self, kind: FileKind, name: &str) -> Result<(), String> {
        match &self.pack {
            Some(probe) => {
                let id = Id::parse(name).map_err(|e| e.to_string())?;
                probe.check(&id).map_err(|e| e.to_string())
            }
            None => kind
                .magic()
                .check(name, &self.head)
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }
}

/// Streams the body to storage, checking size, hash and structure before the object
/// becomes visible. Small objects are buffered and written in one request.
#[allow(clippy::too_many_arguments)]
async fn receive(
    a: &Access,
    kind: FileKind,
    name: &str,
    path: &object_store::path::Path,
    len: u64,
    want_hash: &str,
    body: Body,
    keeper: &LeaseKeeper,
) -> ApiResult<()> {
    let mut stream = body.into_data_stream();
    let mut check = Arrival::new(kind, len);
    let finish = |c: &Arrival| c.verify(kind, name, want_hash);
    let body_error = |e: axum::Error| {
        tracing::debug!(error = %e, "upload body");
        reject("the upload was interrupted")
    };
    if len <= PART_SIZE as u64 {
        let mut buf = Vec::with_capacity(len as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(body_error)?;
            check.observe(&chunk)?;
            buf.extend_from_slice(&chunk);
        }
        finish(&check)?;
        keeper.check()?;
        a.dest.store.put(path, PutPayload::from(buf)).await?;
        return Ok(());
    }
    let upload = a.dest.store.put_multipart(path).await?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let outcome: ApiResult<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(body_error)?;
            check.observe(&chunk)?;
            keeper.check()?;
            w.wait_for_capacity(2).await?;
            w.put(chunk);
        }
        finish(&check)
    }
    .await;
    match outcome.and_then(|()| Ok(keeper.check()?)) {
        Ok(()) => {
            w.finish().await?;
            Ok(())
        }
        Err(e) => {
            if let Err(abort) = w.abort().await {
                tracing::warn!(error = %abort, "aborting a rejected upload");
            }
            Err(e)
        }
    }
}

pub(super) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind, name)): Path<(VaultId, String, String)>,
) -> ApiResult<Response> {
    let (a, kind) = object_access(&state, &caller, &vault_id, &kind, &name, Op::Delete).await?;
    // As for uploads: a cancelled request cannot leave a deletion unaccounted or unrecorded.
    tokio::spawn(delete_object(state, caller, a, kind, name)).await?
}

async fn delete_object(
    state: AppState,
    caller: Caller,
    a: Access,
    kind: FileKind,
    name: String,
) -> ApiResult<Response> {
    let t = a.target(kind, &name);
    // A maintainer deletes within its limits (checked first); anyone else as `may_change`
    // says. Lock markers are whose they are for every token.
    let limited = a.is_maintainer() && kind != FileKind::Lock;
    if limited && let Err(refused) = super::maintain::may_delete(&state, &a, kind, &name).await {
        // A deletion sent again (its answer was lost) finds its announcement gone with the
        // object: nothing to delete is a 204, as for any token.
        if vault_objects::gone(&state, t).await? {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        return Err(refused);
    }
    let deleted = vault_objects::delete(
        &state,
        t,
        |owner| limited || a.may_change(kind, owner) || a.replicated(owner),
        vault_objects::LockRule::Holds,
    )
    .await?;
    if let Some(size) = deleted {
        crate::db::deletions::forget(&state.db.pool, &a.vault.id, kind.name(), &name).await?;
        audit_change(&state, &caller, &a, kind, &name, false, size).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Records a stored or deleted snapshot, key slot or config. Packs, indexes, markers and
/// plans are not recorded one by one: the snapshot that makes them reachable is. A stored or
/// deleted snapshot or prune plan (a backup's or a prune's last step) also queues the
/// replication of a replicated vault.
async fn audit_change(
    state: &AppState,
    caller: &Caller,
    a: &Access,
    kind: FileKind,
    name: &str,
    stored: bool,
    size: u64,
) -> ApiResult<()> {
    let action = match (kind, stored) {
        (FileKind::Snapshot, true) => Some(("snapshot.create", "snapshot")),
        (FileKind::Snapshot, false) => Some(("snapshot.delete", "snapshot")),
        (FileKind::Key, true) => Some(("vault.key_add", "key_slot")),
        (FileKind::Key, false) => Some(("vault.key_delete", "key_slot")),
        (FileKind::Config, true) => Some(("vault.config_write", "vault")),
        (FileKind::Config, false) => Some(("vault.config_delete", "vault")),
        _ => None,
    };
    let replicate = matches!(kind, FileKind::Snapshot | FileKind::Plan);
    if action.is_none() && !replicate {
        return Ok(());
    }
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let queued = if replicate {
        crate::jobs::replicate::queue_if_replicated(state, &mut tx, &a.vault, JobTrigger::Event)
            .await?
    } else {
        None
    };
    let done = match action {
        Some((action, object_kind)) => {
            commit_audited(
                tx,
                caller.event(
                    &a.vault.tenant_id,
                    action,
                    object_kind,
                    Some(name),
                    serde_json::json!({ "vault_id": a.vault.id, "size": size }),
                ),
                now,
            )
            .await
        }
        None => crate::routes::commit(tx).await,
    };
    done.inspect_err(|e| {
        tracing::error!(vault = %a.vault.id, object = %name, error = ?e,
            "storage changed but its audit event failed")
    })?;
    if queued.is_some() {
        state.jobs_wake.notify_one();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use loop_repo::crypto::Key;
    use loop_repo::pack::{BlobKind, PackWriter};

    /// Runs an upload's structural check on `bytes`, arriving in small chunks.
    fn check(kind: FileKind, name: &str, bytes: &[u8]) -> Result<(), String> {
        let mut arrival = Arrival::new(kind, bytes.len() as u64);
        for chunk in bytes.chunks(7) {
            arrival.observe(chunk).map_err(|_| "observe")?;
        }
        arrival.check_structure(kind, name)
    }

    #[test]
    fn packs_are_checked_for_magic_id_and_trailer() {
        let mut writer = PackWriter::new(&Key::generate(), 1024);
        writer.add(BlobKind::Data, Id([1; 32]), &[0u8; 100], 100);
        let (id, pack, _) = writer.finish();
        let id = id.to_hex();
        assert_eq!(check(FileKind::Pack, &id, &pack), Ok(()));
        assert_eq!(
            check(FileKind::Pack, &"cd".repeat(32), &pack),
            Err("the pack ID inside the pack differs from its name".into())
        );
        let mut long_trailer = pack.clone();
        let end = long_trailer.len();
        long_trailer[end - 4..].copy_from_slice(&9999u32.to_le_bytes());
        assert_eq!(
            check(FileKind::Pack, &id, &long_trailer),
            Err("the pack's trailer length points outside the pack".into())
        );
        assert_eq!(
            check(FileKind::Pack, &id, &pack[..40]),
            Err("a pack is shorter than its header and trailer length".into())
        );
        let err = check(FileKind::Index, &id, &pack).unwrap_err();
        assert!(err.contains("bad magic"), "{err}");
    }
}
