//! Direct transfers: on a destination with `direct = true`, packs travel between clients and
//! the store with presigned URLs instead of through the server.
//!
//! An upload has two requests around the client's own `PUT` to the store:
//!
//! 1. `POST .../data/{name}/direct` `{size, hash}`: the same permission and size checks as a
//!    proxied upload; the answer is a URL that writes only `staging/UPLOAD` (a fresh random
//!    name per upload). S3 presigned `PUT`s cannot bound the body's length, so a holder of
//!    the URL can write any amount there until it expires; nothing of it is counted or
//!    visible in the vault, and the sweep deletes it.
//! 2. `POST .../data/{name}/direct/complete` `{upload_id}`: the server claims the pack's name
//!    exactly as a proxied upload does (create-once, quota reserved), copies the staging
//!    object to a second name no URL reaches, checks that copy as it checks a proxied body
//!    (length, BLAKE3 hash, structure), and only then copies it into place and counts it.
//!
//! A URL used again writes only its staging name, never a stored object; staging objects
//! are deleted when the upload completes, and again by `vault_objects::direct::sweep` once
//! the URL has expired.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use loop_api::{CompleteDirectUpload, DirectUpload, DirectUploadRequest, VaultId};
use loop_repo::FileKind;
use object_store::ObjectStoreExt as _;
use object_store::path::Path as StorePath;
use object_store::signer::{HeaderMap, Method};

use super::changes::{Arrival, max_object, reject};
use super::{Access, Op, object_access};
use crate::auth::Caller;
use crate::db::direct::{self, DirectUpload as Row};
use crate::error::{ApiError, ApiResult};
use crate::routes::{Json, Path};
use crate::state::AppState;
use crate::vault_objects::direct::{COMPLETE_GRACE, checked_path, remove_staging};
use crate::vault_objects::{self, ChangeError, LeaseKeeper};

fn unavailable() -> ApiError {
    ApiError::conflict(
        "direct_unavailable",
        "this vault's destination takes packs through the server only",
    )
}

/// A promotion moved the vault since the upload began: its URL wrote to the old primary.
fn moved_since() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "upload_expired",
        "the vault moved to another destination since this upload began; upload the pack \
         again",
    )
}

fn no_such_upload() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_such_upload",
        "no such direct upload of this object by this token",
    )
}

pub(super) async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind, name)): Path<(VaultId, String, String)>,
    Json(req): Json<DirectUploadRequest>,
) -> ApiResult<(StatusCode, axum::Json<DirectUpload>)> {
    let (a, kind) = object_access(&state, &caller, &vault_id, &kind, &name, Op::Write).await?;
    if kind != FileKind::Pack {
        return Err(ApiError::bad_request("only packs are uploaded directly"));
    }
    if !a.dest.direct() {
        return Err(unavailable());
    }
    let max = max_object(kind, state.config.limits.object_bytes);
    if req.size > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "object_too_large",
            format!("objects of this kind are at most {max} bytes"),
        ));
    }
    let hash = req.hash.to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "hash must be the BLAKE3 hash of the pack, 64 hex digits",
        ));
    }
    // Refused now rather than after the upload; the completion reserves the bytes for real.
    if a.vault
        .quota_bytes
        .is_some_and(|q| a.vault.used_bytes.saturating_add(req.size) > q)
    {
        return Err(ChangeError::OverQuota.into());
    }
    let id = crate::domain::new_id("du");
    let staging = a.dest.staging_path(&a.vault.id, &id);
    let (url, valid) = a
        .dest
        .presign(Method::PUT, &staging, HeaderMap::new())
        .await
        .ok_or_else(unavailable)??;
    let now = state.now();
    let expires_at = now + valid.as_millis() as i64;
    direct::insert(
        &state.db.pool,
        &Row {
            id: id.clone(),
            vault_id: a.vault.id.clone(),
            kind: kind.name().into(),
            name: name.clone(),
            token_id: a.token.id.clone(),
            size: req.size,
            hash,
            expires_at,
            completed_at: None,
            destination: Some(a.dest.name.clone()),
        },
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(DirectUpload {
            upload_id: id,
            url: url.to_string(),
            headers: Default::default(),
            expires_at: crate::db::time(expires_at),
        }),
    ))
}

pub(super) async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    Path((vault_id, kind, name)): Path<(VaultId, String, String)>,
    Json(req): Json<CompleteDirectUpload>,
) -> ApiResult<Response> {
    let (a, kind) = object_access(&state, &caller, &vault_id, &kind, &name, Op::Write).await?;
    let upload = direct::find(
        &state.db.pool,
        &req.upload_id,
        &a.vault.id,
        kind.name(),
        &name,
        &a.token.id,
    )
    .await?
    .ok_or_else(no_such_upload)?;
    let moved = upload
        .destination
        .as_deref()
        .is_some_and(|d| d != a.dest.name);
    if upload.completed_at.is_some() {
        // A completion sent again: it stands if the first one stored the pack. One that a
        // promotion ended (it stored the pack where the vault no longer is) is told to upload
        // again, as a completion after the promotion is.
        return match a.dest.store.head(&a.path(kind, &name)).await {
            Ok(_) => Ok(StatusCode::CREATED.into_response()),
            Err(object_store::Error::NotFound { .. }) if moved => Err(moved_since()),
            Err(object_store::Error::NotFound { .. }) => Err(no_such_upload()),
            Err(e) => Err(e.into()),
        };
    }
    if state.now() > upload.expires_at + COMPLETE_GRACE.as_millis() as i64 {
        // The sweep may already be removing what it uploaded: upload again.
        return Err(ApiError::new(
            StatusCode::GONE,
            "upload_expired",
            "this upload's URL expired before it was completed; upload the pack again",
        ));
    }
    if moved {
        return Err(moved_since());
    }
    // As for proxied uploads: a cancelled request cannot leave the claim or quota behind.
    tokio::spawn(store_upload(state, a, kind, name, upload)).await?
}

async fn store_upload(
    state: AppState,
    a: Access,
    kind: FileKind,
    name: String,
    upload: Row,
) -> ApiResult<Response> {
    let t = a.target(kind, &name);
    let staging = a.dest.staging_path(&a.vault.id, &upload.id);
    let checked = checked_path(&a.dest, &a.vault.id, &upload.id);
    let claim = match vault_objects::claim_write(&state, t, upload.size, &a.token.id, |owner| {
        a.may_change(kind, owner)
    })
    .await
    {
        // Another request holds the name for a moment, the database or the destination
        // failed for one, or the quota leaves no room until a prune or a larger quota: the
        // upload stays, to be completed again (a 5xx, which clients retry) until its URL
        // expires. Ending it here would answer the client's retry with 404.
        Err(
            e @ (ChangeError::Busy
            | ChangeError::OverQuota
            | ChangeError::Storage(_)
            | ChangeError::Db(_)),
        ) => {
            return Err(e.into());
        }
        claim => claim,
    };
    let moved = match &claim {
        Ok(claim) => {
            let keeper = LeaseKeeper::start(&state, t.key(), claim);
            let moved =
                move_into_place(&a, kind, &name, &upload, &staging, &checked, &keeper).await;
            drop(keeper);
            moved
        }
        Err(_) => Ok(()),
    };
    if let (Ok(claim), Err(e)) = (&claim, &moved)
        && e.status().is_server_error()
    {
        // The destination failed part-way, not the upload: the name and quota are given
        // back, and the uploaded pack stays to be completed again.
        vault_objects::abort_write(&state, t, claim).await?;
        remove_staging(&a.dest, &[&checked]).await;
        return moved.map(|()| StatusCode::CREATED.into_response());
    }
    // Otherwise this upload is over (stored, or refused for good): a new attempt starts a
    // new one.
    direct::complete(&state.db.pool, &upload.id, state.now()).await?;
    remove_staging(&a.dest, &[&staging, &checked]).await;
    let claim = claim?;
    if let Err(e) = moved {
        vault_objects::abort_write(&state, t, &claim).await?;
        return Err(e);
    }
    match vault_objects::complete_write(&state, t, &claim, upload.size, &upload.hash).await {
        // Stored where the vault no longer is (promoted meanwhile): not recorded, and the
        // pack goes again to the new primary, by a new upload.
        Err(ChangeError::Moved) => Err(moved_since()),
        done => {
            done?;
            Ok(StatusCode::CREATED.into_response())
        }
    }
}

/// Checks a copy of the staging object that no URL reaches (so what is checked is what is
/// stored), then copies it to the pack's name.
async fn move_into_place(
    a: &Access,
    kind: FileKind,
    name: &str,
    upload: &Row,
    staging: &StorePath,
    checked: &StorePath,
    keeper: &LeaseKeeper,
) -> ApiResult<()> {
    let store = &a.dest.store;
    match store.head(staging).await {
        Ok(m) if m.size == upload.size => {}
        Ok(_) => {
            return Err(reject(
                "the uploaded pack's length differs from the announced one",
            ));
        }
        Err(object_store::Error::NotFound { .. }) => {
            return Err(reject("the pack did not arrive at the destination"));
        }
        Err(e) => return Err(e.into()),
    }
    store.copy(staging, checked).await?;
    let mut check = Arrival::new(kind, upload.size);
    let mut body = store.get(checked).await?.into_stream();
    while let Some(chunk) = body.next().await {
        check.observe(&chunk?)?;
        keeper.check()?;
    }
    check.verify(kind, name, &upload.hash)?;
    keeper.check()?;
    store.copy(checked, &a.path(kind, name)).await?;
    Ok(())
}

/// A presigned URL for reading a pack, for a client that asked for one.
pub(super) async fn read_url(
    a: &Access,
    kind: FileKind,
    name: &str,
) -> Option<ApiResult<Response>> {
    if kind != FileKind::Pack {
        return None;
    }
    let signed = a
        .dest
        .presign(Method::GET, &a.path(kind, name), HeaderMap::new())
        .await?;
    Some(signed.map_err(ApiError::from).map(|(url, _)| {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(axum::http::header::LOCATION, url.to_string())],
        )
            .into_response()
    }))
}
