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
use loop_api::{ObjectEntry, VaultId};
use object_store::{GetOptions, GetRange, ObjectStoreExt as _};

use super::{access, no_such_object, object_access, parse_kind, storage_error};

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind)): Path<(VaultId, String)>,
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

pub(super) async fn head(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind, name)): Path<(VaultId, String, String)>,
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
