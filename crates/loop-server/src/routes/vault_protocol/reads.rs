//! The reading half of the vault protocol: list, size and read objects.

use crate::auth::Caller;
use crate::auth::vault_access::Op;
use crate::error::{ApiError, ApiResult};
use crate::routes::Path;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use loop_api::{ObjectEntry, VaultId};
use loop_repo::FileKind;

use crate::destinations::{Destination, StoredObject};
use object_store::{GetOptions, GetRange, ObjectStoreExt as _};

use super::{Access, access, no_such_object, object_access, parse_kind, storage_error};

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind)): Path<(VaultId, String)>,
) -> ApiResult<axum::Json<Vec<ObjectEntry>>> {
    let a = access(&state, &caller, &vault_id).await?;
    let kind = parse_kind(&kind)?;
    a.require(Op::List, kind)?;
    let objects = listing(&state, &a, kind).await?;
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

pub(super) async fn head(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind, name)): Path<(VaultId, String, String)>,
) -> ApiResult<Response> {
    let (a, kind) = object_access(&state, &caller, &vault_id, &kind, &name, Op::Read).await?;
    let rel = kind.path(&name);
    let vault = a.vault.id.clone();
    let m = from_any_place(&state, &a, (kind, &name), |d| {
        let path = d.path(&vault, &rel);
        async move { d.store.head(&path).await }
    })
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

pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind, name)): Path<(VaultId, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (a, kind) = object_access(&state, &caller, &vault_id, &kind, &name, Op::Read).await?;
    if headers.contains_key(loop_api::DIRECT_HEADER)
        && let Some(redirect) = super::direct::read_url(&a, kind, &name).await
    {
        return redirect;
    }
    let range = parse_range(&headers)?;
    let partial = range.is_some();
    let opts = GetOptions {
        range,
        ..Default::default()
    };
    let rel = kind.path(&name);
    let vault = a.vault.id.clone();
    let got = from_any_place(&state, &a, (kind, &name), |d| {
        let (path, opts) = (d.path(&vault, &rel), opts.clone());
        async move { d.store.get_opts(&path, opts).await }
    })
    .await;
    let result = match got {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Err(no_such_object()),
        // The store names no range error of its own: a range starting past the object's end
        // is the client's mistake (416); any other failure is the store's, which a client
        // tries again.
        Err(e) if partial => {
            let size = from_any_place(&state, &a, (kind, &name), |d| {
                let path = d.path(&vault, &rel);
                async move { d.store.head(&path).await }
            })
            .await
            .map(|m| m.size);
            let start = match &opts.range {
                Some(GetRange::Bounded(r)) => r.start,
                Some(GetRange::Offset(o)) => *o,
                _ => 0,
            };
            if size.is_ok_and(|size| start >= size) {
                return Err(ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "bad_range",
                    "the range is outside the object",
                ));
            }
            return Err(e.into());
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

/// The vault's healthy replicas, where reads go when the primary fails.
async fn fallbacks(state: &AppState, a: &Access) -> ApiResult<Vec<Arc<Destination>>> {
    Ok(crate::replication::fallbacks(state, &a.vault.id).await?)
}

/// `op` on object `kind`/`name` at the primary; when it fails (an error, a missing object,
/// no answer within `replication.primary_timeout_secs`), the vault has healthy replicas and
/// its records hold the object (so a deleted object never comes back from a replica that
/// has not caught up), on each replica in turn. The primary's failure is the answer when no
/// replica has the object either.
async fn from_any_place<T, F, Fut>(
    state: &AppState,
    a: &Access,
    (kind, name): (FileKind, &str),
    op: F,
) -> object_store::Result<T>
where
    F: Fn(Arc<Destination>) -> Fut,
    Fut: std::future::Future<Output = object_store::Result<T>>,
{
    let replicas = match fallbacks(state, a).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = ?e, "looking up a vault's replicas");
            Vec::new()
        }
    };
    if replicas.is_empty() {
        return op(a.dest.clone()).await;
    }
    let wait = Duration::from_secs(state.config.replication.primary_timeout_secs.max(1));
    let first = match tokio::time::timeout(wait, op(a.dest.clone())).await {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(e)) => e,
        Err(_) => object_store::Error::Generic {
            store: "primary",
            source: "no answer in time".into(),
        },
    };
    match crate::db::replicas::is_stored(&state.db.pool, &a.vault.id, kind.name(), name).await {
        Ok(true) => {}
        Ok(false) => return Err(first),
        Err(e) => {
            tracing::warn!(error = ?e, "looking up a vault's records");
            return Err(first);
        }
    }
    for r in replicas {
        if let Ok(v) = op(r.clone()).await {
            tracing::warn!(vault = %a.vault.id, primary = %a.dest.name, replica = %r.name,
                error = %first, "the primary failed a read; served from a replica");
            return Ok(v);
        }
    }
    Err(first)
}

/// The objects of `kind`: the primary's listing; for a vault with healthy replicas, a
/// replica's when the primary fails (only one that holds every object the vault's records
/// hold, and only those: a replica that is behind would hide what was written since), and
/// the objects the records hold that the primary lacks filled in from a replica.
async fn listing(state: &AppState, a: &Access, kind: FileKind) -> ApiResult<Vec<StoredObject>> {
    let replicas = fallbacks(state, a).await?;
    if replicas.is_empty() {
        return Ok(a.dest.list_kind(&a.vault.id, kind).await?);
    }
    let wait = Duration::from_secs(state.config.replication.primary_timeout_secs.max(1));
    let primary = a.dest.list_kind(&a.vault.id, kind);
    tokio::pin!(primary);
    let answered = tokio::time::timeout(wait, &mut primary).await;
    let recorded =
        crate::db::replicas::stored_names(&state.db.pool, &a.vault.id, kind.name()).await?;
    let mut objects = match answered {
        Ok(Ok(objects)) => objects,
        failed => {
            tracing::warn!(vault = %a.vault.id, primary = %a.dest.name,
                "the primary failed a listing; listing a replica");
            let timed_out = failed.is_err();
            let mut last = match failed {
                Ok(Err(e)) => e,
                _ => object_store::Error::Generic {
                    store: "primary",
                    source: "no answer in time".into(),
                },
            };
            for r in &replicas {
                match r.list_kind(&a.vault.id, kind).await {
                    Ok(listed) => {
                        let held: Vec<StoredObject> = listed
                            .into_iter()
                            .filter(|o| recorded.contains(&o.name))
                            .collect();
                        if held.len() == recorded.len() {
                            return Ok(held);
                        }
                        last = object_store::Error::Generic {
                            store: "replica",
                            source: format!(
                                "{} lacks {} of the vault's objects",
                                r.name,
                                recorded.len() - held.len()
                            )
                            .into(),
                        };
                    }
                    Err(e) => last = e,
                }
            }
            if !timed_out {
                return Err(last.into());
            }
            // No replica can stand in for a primary that is only slow (a long listing):
            // its answer is still the one to give.
            primary.await?
        }
    };
    let listed: HashSet<String> = objects.iter().map(|o| o.name.clone()).collect();
    let mut lacking: HashSet<&String> = recorded.difference(&listed).collect();
    for r in &replicas {
        if lacking.is_empty() {
            break;
        }
        tracing::warn!(vault = %a.vault.id, primary = %a.dest.name, missing = lacking.len(),
            "the primary lacks recorded objects; listing them from a replica");
        let Ok(found) = r.list_kind(&a.vault.id, kind).await else {
            continue;
        };
        for o in found {
            if lacking.remove(&o.name) {
                objects.push(o);
            }
        }
    }
    Ok(objects)
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
