//! The vault protocol: what `loop` uses as a repository backend (docs/PROTOCOL.md).
//!
//! ```text
//! POST   /vaults/{vault}/v1/open                 start: permissions and (managed) key
//! GET    /vaults/{vault}/v1/{kind}               list objects of a kind (JSON)
//! GET    /vaults/{vault}/v1/{kind}/{name}        read, whole or `Range: bytes=a-b`
//! HEAD   /vaults/{vault}/v1/{kind}/{name}        size
//! PUT    /vaults/{vault}/v1/{kind}/{name}        write (streamed; checked before commit)
//! DELETE /vaults/{vault}/v1/{kind}/{name}        delete
//! ```
//!
//! Every request carries `Authorization: Bearer <token>`. Token permissions decide what is
//! allowed ([`allowed`]); a vault outside the token's scope answers 404.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{StreamExt as _, TryStreamExt as _};
use loop_api::{ObjectEntry, Token, Vault, VaultOpenRequest, VaultOpenResponse};
use loop_repo::FileKind;
use loop_repo::format::HEADER_LEN;
use loop_repo::pack::PACK_HEADER_LEN;
use object_store::{GetOptions, GetRange, ObjectStoreExt as _, PutPayload, WriteMultipart};

use super::{Json, Path, commit_audited};
use crate::auth::Caller;
use crate::db::{identity, vaults};
use crate::destinations::Destination;
use crate::domain::TokenPermission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The vault routes. Object bodies are streamed and bounded by `limits.object_bytes`; the one
/// JSON body (`open`) keeps the JSON limit.
pub fn router(json_limit: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/vaults/{vault}/v1/open",
            post(open).layer(axum::extract::DefaultBodyLimit::max(json_limit)),
        )
        .route("/vaults/{vault}/v1/{kind}", get(list))
        .route(
            "/vaults/{vault}/v1/{kind}/{name}",
            get(read).head(head).put(write).delete(remove),
        )
}

/// Objects up to this size are received into memory and written in one request; larger
/// ones are streamed as a multipart upload in parts of this size.
const PART_SIZE: usize = 8 * 1024 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    List,
    Read,
    Write,
    Overwrite,
    Delete,
}

/// The permission table of the vault protocol.
///
/// - backup: read the repository's config, keys, indexes, locks and prune plans (it needs
///   them to encrypt and deduplicate); write packs, indexes, snapshots and locks; delete
///   locks. It cannot list or read snapshots or packs, overwrite anything, or delete
///   anything but a lock.
/// - restore: read and list everything; write and delete locks.
/// - manage: everything, including deletion (forget, prune) and key slots.
pub fn allowed(perms: &[TokenPermission], op: Op, kind: FileKind) -> bool {
    use FileKind::*;
    let has = |p| perms.contains(&p);
    if has(TokenPermission::Manage) {
        return true;
    }
    let backup = has(TokenPermission::Backup);
    let restore = has(TokenPermission::Restore);
    match (op, kind) {
        (Op::List | Op::Read, Config | Key | Index | Lock | Plan) => backup || restore,
        (Op::List | Op::Read, Snapshot | Pack) => restore,
        (Op::Write, Pack | Index | Snapshot) => backup,
        (Op::Write | Op::Overwrite | Op::Delete, Lock) => backup || restore,
        _ => false,
    }
}

fn parse_kind(s: &str) -> ApiResult<FileKind> {
    FileKind::from_name(s).ok_or_else(ApiError::not_found)
}

fn check_name(kind: FileKind, name: &str) -> ApiResult<()> {
    let ok = match kind {
        FileKind::Config => name == "config",
        _ => {
            name.len() == 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}

/// The token's view of one vault.
struct Access {
    vault: Vault,
    token: Token,
    perms: Vec<TokenPermission>,
    dest: std::sync::Arc<Destination>,
}

async fn access(state: &AppState, caller: &Caller, vault_id: &str) -> ApiResult<Access> {
    let token = caller.token()?.clone();
    let vault = vaults::vault_by_id(&state.db.pool, vault_id)
        .await?
        .filter(|v| v.tenant_id == token.tenant_id)
        .filter(|v| token.vault_ids.is_empty() || token.vault_ids.contains(&v.id))
        .ok_or_else(ApiError::not_found)?;
    let dest = state
        .destinations
        .get(&vault.destination)
        .ok_or_else(|| ApiError::Internal(format!("destination {} is gone", vault.destination)))?
        .clone();
    let perms = token
        .permissions
        .iter()
        .filter_map(|p| TokenPermission::parse(p).ok())
        .collect();
    Ok(Access {
        vault,
        token,
        perms,
        dest,
    })
}

/// The token's view of one vault, for operation `op` on the object `kind`/`name` (parsed
/// and checked here).
async fn object_access(
    state: &AppState,
    caller: &Caller,
    vault_id: &str,
    kind: &str,
    name: &str,
    op: Op,
) -> ApiResult<(Access, FileKind)> {
    let a = access(state, caller, vault_id).await?;
    let kind = parse_kind(kind)?;
    check_name(kind, name)?;
    a.require(op, kind)?;
    Ok((a, kind))
}

impl Access {
    fn require(&self, op: Op, kind: FileKind) -> ApiResult<()> {
        if allowed(&self.perms, op, kind) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_denied",
                "this token's permissions do not allow this",
            ))
        }
    }

    fn path(&self, kind: FileKind, name: &str) -> object_store::path::Path {
        self.dest.path(&self.vault.id, &kind.path(name))
    }
}

fn no_such_object() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_such_object", "no such object")
}

fn storage_error(e: object_store::Error) -> ApiError {
    match e {
        object_store::Error::NotFound { .. } => no_such_object(),
        other => other.into(),
    }
}

/// Start using a vault: records the token's use and returns its permissions and, for a
/// managed vault, the key that opens the vault's key slot.
async fn open(
    State(state): State<AppState>,
    caller: Caller,
    Path(vault_id): Path<String>,
    Json(req): Json<VaultOpenRequest>,
) -> ApiResult<axum::Json<VaultOpenResponse>> {
    let a = access(&state, &caller, &vault_id).await?;
    let key = if a.vault.key_custody == "managed" {
        Some(hex::encode(
            super::vaults::managed_kek(&state, &a.vault).await?.expose(),
        ))
    } else {
        None
    };
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
            .take(64)
            .collect()
    };
    let now = state.now();
    let mut tx = state.db.begin().await?;
    identity::touch_token(&mut tx, &a.token.id, now).await?;
    commit_audited(
        tx,
        caller.event(
            &a.vault.tenant_id,
            "vault.open",
            "vault",
            Some(&a.vault.id),
            serde_json::json!({
                "operation": clean(&req.operation),
                "host": req.host.as_deref().map(clean),
                "permissions": a.token.permissions,
                "device_id": a.token.device_id,
            }),
        ),
        now,
    )
    .await?;
    if let Some(d) = &a.token.device_id {
        identity::touch_device(&state.db.pool, d, now).await?;
    }
    Ok(axum::Json(VaultOpenResponse {
        vault_id: a.vault.id,
        permissions: a.token.permissions,
        key_custody: a.vault.key_custody,
        key,
    }))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind)): Path<(String, String)>,
) -> ApiResult<axum::Json<Vec<ObjectEntry>>> {
    let a = access(&state, &caller, &vault_id).await?;
    let kind = parse_kind(&kind)?;
    a.require(Op::List, kind)?;
    let prefix = match kind {
        FileKind::Config => None,
        k => Some(object_store::path::Path::from(
            a.dest.vault_prefix(&a.vault.id) + "/" + k.dir(),
        )),
    };
    let Some(prefix) = prefix else {
        return Ok(axum::Json(
            match a.dest.store.head(&a.path(kind, "config")).await {
                Ok(m) => vec![ObjectEntry {
                    name: "config".into(),
                    size: m.size,
                    modified: m.last_modified,
                }],
                Err(object_store::Error::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(e.into()),
            },
        ));
    };
    let mut out = Vec::new();
    let mut stream = a.dest.store.list(Some(&prefix));
    while let Some(m) = stream.try_next().await? {
        let Some(name) = m.location.filename() else {
            continue;
        };
        if check_name(kind, name).is_ok() {
            out.push(ObjectEntry {
                name: name.to_string(),
                size: m.size,
                modified: m.last_modified,
            });
        }
    }
    Ok(axum::Json(out))
}

fn size_headers(size: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert("x-loop-object-size", HeaderValue::from(size));
    h
}

async fn head(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let (a, kind) = object_access(&state, &caller, &vault_id, &kind, &name, Op::Read).await?;
    let m = a
        .dest
        .store
        .head(&a.path(kind, &name))
        .await
        .map_err(storage_error)?;
    Ok((StatusCode::OK, size_headers(m.size)).into_response())
}

/// Parses `bytes=a-b` or `bytes=a-` (one range).
fn parse_range(h: &HeaderMap) -> ApiResult<Option<GetRange>> {
    let Some(v) = h.get(header::RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "bad_range",
            "only one byte range, bytes=a-b or bytes=a-, is supported",
        )
    };
    let s = v.to_str().map_err(|_| bad())?;
    let spec = s.strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.parse().map_err(|_| bad())?;
    if b.is_empty() {
        return Ok(Some(GetRange::Offset(start)));
    }
    let end: u64 = b.parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    Ok(Some(match end.checked_add(1) {
        Some(stop) => GetRange::Bounded(start..stop),
        // bytes=a-18446744073709551615: everything from a.
        None => GetRange::Offset(start),
    }))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (a, kind) = object_access(&state, &caller, &vault_id, &kind, &name, Op::Read).await?;
    let range = parse_range(&headers)?;
    let partial = range.is_some();
    let opts = GetOptions {
        range,
        ..Default::default()
    };
    let result = match a.dest.store.get_opts(&a.path(kind, &name), opts).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Err(no_such_object()),
        Err(e @ object_store::Error::Generic { .. }) if partial => {
            tracing::debug!(error = %e, "range read failed");
            return Err(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "bad_range",
                "the range is outside the object",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let size = result.meta.size;
    let r = result.range.clone();
    let mut h = size_headers(r.end - r.start);
    h.insert("x-loop-object-size", HeaderValue::from(size));
    let status = if partial {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!(
                "bytes {}-{}/{size}",
                r.start,
                r.end.saturating_sub(1)
            ))
            .expect("ASCII"),
        );
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    // Streamed: a pack is never held whole in the server's memory.
    let body = match result.payload {
        object_store::GetResultPayload::File(file, _) => Body::from_stream(file_stream(file, r)),
        object_store::GetResultPayload::Stream(s) => Body::from_stream(s),
    };
    Ok((status, h, body).into_response())
}

/// Reads `range` of a local file in 1 MiB pieces on the blocking pool. (`object_store`'s own
/// stream reads 8 KiB per blocking call, which made a 16 MiB range cost 2,048 thread
/// hand-offs.)
fn file_stream(
    file: std::fs::File,
    range: std::ops::Range<u64>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    const PIECE: u64 = 1 << 20;
    let file = std::sync::Arc::new(file);
    futures_util::stream::try_unfold(range.start, move |pos| {
        let file = file.clone();
        let end = range.end;
        async move {
            if pos >= end {
                return Ok(None);
            }
            let len = (end - pos).min(PIECE) as usize;
            let buf = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt as _;
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, pos).map(|()| buf)
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(Some((bytes::Bytes::from(buf), pos + len as u64)))
        }
    })
}

/// Structural checks a stored object must pass before it is committed.
fn check_object(
    kind: FileKind,
    name: &str,
    head: &[u8],
    tail: &[u8],
    size: u64,
) -> Result<(), String> {
    let magic = kind.magic();
    magic.check(name, head).map_err(|e| e.to_string())?;
    if kind == FileKind::Pack {
        if size < (PACK_HEADER_LEN + 4) as u64 || head.len() < PACK_HEADER_LEN {
            return Err("a pack is shorter than its header and trailer length".into());
        }
        if hex::encode(&head[HEADER_LEN..PACK_HEADER_LEN]) != name {
            return Err("the pack ID inside the pack differs from its name".into());
        }
        let trailer_len = u32::from_le_bytes(tail.try_into().map_err(|_| "short pack")?) as u64;
        if trailer_len + (PACK_HEADER_LEN as u64) + 4 > size {
            return Err("the pack's trailer length points outside the pack".into());
        }
    }
    Ok(())
}

fn reject(reason: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "object_rejected", reason)
}

/// The largest object of each kind a client may store. Packs, indexes, snapshots and plans
/// are bounded by `limits.object_bytes`; markers, key slots and the config are small (the
/// engine reads them with these bounds), which also bounds what a backup token can do by
/// rewriting its own markers.
fn max_object(kind: FileKind, limit: u64) -> u64 {
    match kind {
        FileKind::Lock | FileKind::Key => 64 * 1024,
        FileKind::Config => 1024 * 1024,
        _ => limit,
    }
}

async fn write(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind, name)): Path<(String, String, String)>,
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
    let path = a.path(kind, &name);
    // Packs are large and never replaced by backups: they stream without the object lock.
    let _guard = if kind == FileKind::Pack {
        None
    } else {
        Some(state.object_lock(path.as_ref()).lock().await)
    };
    let previous = match a.dest.store.head(&path).await {
        Ok(m) => Some(m.size),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if previous.is_some() {
        a.require(Op::Overwrite, kind).map_err(|_| {
            ApiError::conflict(
                "object_exists",
                "the object exists and this token cannot replace it",
            )
        })?;
    }
    if !vaults::reserve(&state.db.pool, &a.vault.id, len).await? {
        return Err(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "quota_exceeded",
            "the vault's quota does not allow this upload",
        ));
    }
    let result = receive(&a, kind, &name, &path, len, &want_hash, body).await;
    if let Err(e) = result {
        vaults::release(&state.db.pool, &a.vault.id, len).await?;
        return Err(e);
    }
    if let Some(old) = previous {
        vaults::release(&state.db.pool, &a.vault.id, old).await?;
    }
    audit_change(&state, &caller, &a, kind, &name, true, len).await?;
    Ok(StatusCode::CREATED.into_response())
}

/// What is tracked of an upload while it streams: length, hash, first and last bytes.
struct Arrival {
    hasher: blake3::Hasher,
    head: Vec<u8>,
    tail: Vec<u8>,
    received: u64,
    len: u64,
}

impl Arrival {
    fn observe(&mut self, chunk: &[u8]) -> ApiResult<()> {
        self.received += chunk.len() as u64;
        if self.received > self.len {
            return Err(reject("the body is longer than Content-Length"));
        }
        self.hasher.update(chunk);
        if self.head.len() < PACK_HEADER_LEN {
            let take = (PACK_HEADER_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.tail
            .extend_from_slice(&chunk[chunk.len().saturating_sub(4)..]);
        let excess = self.tail.len().saturating_sub(4);
        self.tail.drain(..excess);
        Ok(())
    }
}

/// Streams the body to storage, checking size, hash and structure before the object
/// becomes visible. Small objects are buffered and written in one request.
async fn receive(
    a: &Access,
    kind: FileKind,
    name: &str,
    path: &object_store::path::Path,
    len: u64,
    want_hash: &str,
    body: Body,
) -> ApiResult<()> {
    let mut stream = body.into_data_stream();
    let mut check = Arrival {
        hasher: blake3::Hasher::new(),
        head: Vec::with_capacity(PACK_HEADER_LEN),
        tail: Vec::with_capacity(8),
        received: 0,
        len,
    };
    let finish = |c: &Arrival| -> ApiResult<()> {
        if c.received != len {
            return Err(reject("the body is shorter than Content-Length"));
        }
        if c.hasher.finalize().to_hex().as_str() != want_hash {
            return Err(reject("the body does not match its BLAKE3 hash"));
        }
        let keep = if kind == FileKind::Pack {
            PACK_HEADER_LEN
        } else {
            HEADER_LEN
        };
        let h = &c.head[..c.head.len().min(keep)];
        check_object(kind, name, h, &c.tail, len).map_err(reject)
    };
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
        a.dest.store.put(path, PutPayload::from(buf)).await?;
        return Ok(());
    }
    let upload = a.dest.store.put_multipart(path).await?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let outcome: ApiResult<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(body_error)?;
            check.observe(&chunk)?;
            w.wait_for_capacity(2).await?;
            w.put(chunk);
        }
        finish(&check)
    }
    .await;
    match outcome {
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

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind, name)): Path<(String, String, String)>,
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
    let path = a.path(kind, &name);
    let _guard = state.object_lock(path.as_ref()).lock().await;
    let size = match a.dest.store.head(&path).await {
        Ok(m) => m.size,
        Err(object_store::Error::NotFound { .. }) => {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        Err(e) => return Err(e.into()),
    };
    a.dest.store.delete(&path).await?;
    vaults::release(&state.db.pool, &a.vault.id, size).await?;
    audit_change(&state, &caller, &a, kind, &name, false, size).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Records a stored or deleted snapshot, key slot or config. Packs, indexes, markers and
/// plans are not recorded one by one: the snapshot that makes them reachable is.
async fn audit_change(
    state: &AppState,
    caller: &Caller,
    a: &Access,
    kind: FileKind,
    name: &str,
    stored: bool,
    size: u64,
) -> ApiResult<()> {
    let (action, object_kind) = match (kind, stored) {
        (FileKind::Snapshot, true) => ("snapshot.create", "snapshot"),
        (FileKind::Snapshot, false) => ("snapshot.delete", "snapshot"),
        (FileKind::Key, true) => ("vault.key_add", "key_slot"),
        (FileKind::Key, false) => ("vault.key_delete", "key_slot"),
        (FileKind::Config, true) => ("vault.config_write", "vault"),
        (FileKind::Config, false) => ("vault.config_delete", "vault"),
        _ => return Ok(()),
    };
    let now = state.now();
    let tx = state.db.begin().await?;
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
    .inspect_err(|e| {
        tracing::error!(vault = %a.vault.id, object = %name, error = ?e,
            "storage changed but its audit event failed")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenPermission::*;

    #[test]
    fn a_backup_token_appends_but_never_reads_or_deletes_data() {
        let p = [Backup];
        assert!(allowed(&p, Op::Write, FileKind::Pack));
        assert!(allowed(&p, Op::Write, FileKind::Snapshot));
        assert!(allowed(&p, Op::Read, FileKind::Index));
        for kind in [FileKind::Pack, FileKind::Snapshot] {
            assert!(!allowed(&p, Op::Read, kind));
            assert!(!allowed(&p, Op::List, kind));
            assert!(!allowed(&p, Op::Delete, kind));
            assert!(!allowed(&p, Op::Overwrite, kind));
        }
        assert!(!allowed(&p, Op::Write, FileKind::Key));
        assert!(!allowed(&p, Op::Write, FileKind::Config));
        assert!(!allowed(&p, Op::Delete, FileKind::Index));
    }

    #[test]
    fn a_restore_token_reads_but_does_not_write_data() {
        let p = [Restore];
        assert!(allowed(&p, Op::Read, FileKind::Pack));
        assert!(allowed(&p, Op::List, FileKind::Snapshot));
        assert!(!allowed(&p, Op::Write, FileKind::Pack));
        assert!(!allowed(&p, Op::Delete, FileKind::Snapshot));
        assert!(allowed(&p, Op::Write, FileKind::Lock));
    }

    #[test]
    fn packs_are_checked_for_magic_id_and_trailer() {
        let id = "ab".repeat(32);
        let mut pack = loop_repo::format::Magic::Pack.header().to_vec();
        pack.extend_from_slice(&hex::decode(&id).unwrap());
        pack.extend_from_slice(&[0u8; 100]);
        pack.extend_from_slice(&50u32.to_le_bytes());
        let size = pack.len() as u64;
        let tail = &pack[pack.len() - 4..];
        assert!(check_object(FileKind::Pack, &id, &pack[..40], tail, size).is_ok());
        assert!(check_object(FileKind::Pack, &"cd".repeat(32), &pack[..40], tail, size).is_err());
        assert!(
            check_object(
                FileKind::Pack,
                &id,
                &pack[..40],
                &9999u32.to_le_bytes(),
                size
            )
            .is_err()
        );
        assert!(check_object(FileKind::Index, &id, &pack[..8], tail, size).is_err());
    }
}
