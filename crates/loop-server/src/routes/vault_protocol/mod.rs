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

mod changes;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use changes::{remove, write};
use loop_api::{
    KeyCustody, ObjectEntry, SecretText, Token, Vault, VaultOpenRequest, VaultOpenResponse,
};
use loop_repo::FileKind;
use object_store::{GetOptions, GetRange, ObjectStoreExt as _};

use super::{Json, Path, commit_audited};
use crate::auth::Caller;
use crate::db::{devices, tokens, vaults};
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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    List,
    Read,
    Write,
    Delete,
}

/// The permission table of the vault protocol.
///
/// - backup: read the repository's config, keys, indexes, locks and prune plans (it needs
///   them to encrypt and deduplicate); list packs (their names are in the indexes it reads;
///   a backup checks that the packs it relies on exist before it saves a snapshot); write
///   packs, indexes, snapshots and locks. It cannot list or read snapshots, read packs,
///   or overwrite or delete anything but the lock markers it wrote itself.
/// - restore: read and list everything; write locks, and rewrite or delete its own.
/// - manage: everything, including deletion (forget, prune), key slots and anyone's lock.
///
/// Which marker is whose is decided per object ([`Access::may_change`]), not here.
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
        (Op::List, Pack) => backup || restore,
        (Op::List | Op::Read, Snapshot | Pack) => restore,
        (Op::Write, Pack | Index | Snapshot) => backup,
        (Op::Write | Op::Delete, Lock) => backup || restore,
        _ => false,
    }
}

fn parse_kind(s: &str) -> ApiResult<FileKind> {
    FileKind::from_name(s).ok_or_else(ApiError::not_found)
}

fn check_name(kind: FileKind, name: &str) -> ApiResult<()> {
    if crate::destinations::valid_name(kind, name) {
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
    let perms = token.permissions.clone();
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
    let key = if a.vault.key_custody == KeyCustody::Managed {
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
    tokens::touch_token(&mut tx, &a.token.id, now).await?;
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
        devices::touch_device(&state.db.pool, d, now).await?;
    }
    Ok(axum::Json(VaultOpenResponse {
        vault_id: a.vault.id,
        permissions: a.token.permissions,
        key_custody: a.vault.key_custody,
        key: key.map(SecretText::from),
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
    let objects = a.dest.list_kind(&a.vault.id, kind).await?;
    Ok(axum::Json(
        objects
            .into_iter()
            .map(|o| ObjectEntry {
                name: o.name,
                size: o.size,
                modified: o.modified,
            })
            .collect(),
    ))
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
        assert!(
            allowed(&p, Op::List, FileKind::Pack),
            "names only, as in the indexes"
        );
        assert!(!allowed(&p, Op::List, FileKind::Snapshot));
        for kind in [FileKind::Pack, FileKind::Snapshot] {
            assert!(!allowed(&p, Op::Read, kind));
            assert!(!allowed(&p, Op::Delete, kind));
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
}
