//! Tenant erasure, after its keys were destroyed (`crate::erasure::erase_tenant`): every
//! object of every vault of the tenant deleted at every place it was held (each vault's
//! destination, each replica's, each vault on another server a push sync job copied to),
//! each place listed again and found empty, and then a deletion certificate: per place what
//! was deleted, what the listing afterwards found, when and how; its SHA-256 goes into the
//! tenant's audit chain and the certificate to the customer's former administrators.
//!
//! Resumable: each place keeps its counts, a place already verified is not touched again,
//! and a run cut off halfway continues where the last one stopped. Not cancellable.

use futures_util::TryStreamExt as _;
use loop_api::{ActorKind, JobProgress, Outcome};
use serde_json::{Value, json};

use super::{Done, JobCtx, JobError};
use crate::db::audit::{self, NewEvent, Personal};
use crate::db::erasure::{self, CertificateRow, LocationRow};
use crate::db::outbox::{self, MailKind};
use crate::db::stopping::Erasing;
use crate::db::{objects, remotes, tenants, vaults};
use crate::replication::{At, Place};

pub(super) async fn run(ctx: &JobCtx) -> Result<Done, JobError> {
    let state = &ctx.state;
    let pool = &state.db.pool;
    let tenant_id = ctx.claimed.job.target_id.clone();
    let Some(tenant) = tenants::tenant_by_id(pool, &tenant_id).await? else {
        return Err(JobError::Failed("the tenant is gone".into()));
    };
    if tenant.tenant.status != loop_api::TenantStatus::Erased {
        return Err(JobError::Failed(
            "the tenant's keys are not destroyed, so nothing of it is deleted".into(),
        ));
    }
    super::wait_for_stopped(ctx, Erasing::Tenant(&tenant_id), None).await?;
    let mut p = JobProgress::default();
    // A place that fails for now is tried again later, after the others: one cannot hold
    // back the erasure of the rest.
    let mut again = None;
    for loc in erasure::locations_of(pool, &tenant_id).await? {
        if loc.verified_at.is_some() {
            continue;
        }
        ctx.check_held()?;
        let done = match loc.kind.as_str() {
            "destination" => at_destination(ctx, &loc).await,
            _ => at_remote(ctx, &loc)
                .await
                .or_else(|e| out_of_reach(ctx.claimed.job.attempts, e)),
        };
        let (deleted, left, note) = match done {
            Ok(done) => done,
            Err(JobError::Transient(m)) => {
                ctx.log(
                    "warning",
                    &format!("{} of vault {}: {m}", place_name(&loc), loc.vault_id),
                )
                .await?;
                again.get_or_insert(m);
                continue;
            }
            Err(e) => return Err(e),
        };
        p.files_done += deleted.0;
        p.bytes_done += deleted.1;
        ctx.progress(&p).await?;
        erasure::verified(pool, &loc.id, left, note.as_deref(), state.now()).await?;
        let what = left.map_or("not known".to_string(), |n| n.to_string());
        ctx.log(
            if left == Some(0) { "info" } else { "warning" },
            &format!(
                "{} of vault {}: {} objects ({} bytes) deleted, {what} left{}",
                place_name(&loc),
                loc.vault_id,
                deleted.0,
                deleted.1,
                note.map(|n| format!(" ({n})")).unwrap_or_default()
            ),
        )
        .await?;
    }
    if let Some(m) = again {
        return Err(JobError::Transient(m));
    }
    let locations = erasure::locations_of(pool, &tenant_id).await?;
    for v in locations
        .iter()
        .map(|l| l.vault_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
    {
        objects::forget_vault(pool, v).await?;
    }
    let complete = locations.iter().all(|l| l.objects_left == Some(0));
    certify(ctx, &tenant, &locations, complete).await?;
    // The remotes served the erasure of the copies there; nothing uses them any more.
    let mut tx = state.db.begin().await?;
    remotes::delete_of_tenant(&mut tx, &tenant_id).await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    Ok(Done {
        summary: json!({
            "places": locations.len(), "complete": complete,
            "objects_deleted": locations.iter().map(|l| l.objects_deleted).sum::<u64>(),
            "bytes_deleted": locations.iter().map(|l| l.bytes_deleted).sum::<u64>(),
        }),
        warnings: u32::from(!complete),
    })
}

/// What a place's erasure did: ((objects, bytes) deleted, objects a listing afterwards found
/// (None: it could not be listed), why something is left).
type PlaceResult = ((u64, u64), Option<u64>, Option<String>);

/// Attempts of the erasure after which a remote still out of reach, or a destination no
/// node running it has, is taken for gone: with the runner's backoff (30 s doubling, at
/// most an hour) about a day.
const REMOTE_ATTEMPTS: u32 = 24;

/// A remote that refuses (its token revoked, the vault gone there) will answer no better
/// later, and one out of reach (or a destination not configured) for [`REMOTE_ATTEMPTS`]
/// attempts is taken for gone: either copy is recorded as outside this server's reach, not
/// listed (the certificate says so), so that the erasure ends and the tenant's people are
/// forgotten.
fn out_of_reach(attempts: u32, e: JobError) -> Result<PlaceResult, JobError> {
    let note = match e {
        JobError::Failed(m) => format!("{m}: the copy there is outside this server's reach"),
        JobError::Transient(m) if attempts >= REMOTE_ATTEMPTS => format!(
            "not reached in {attempts} attempts ({m}): the copy there is outside this \
             server's reach"
        ),
        e => return Err(e),
    };
    Ok(((0, 0), None, Some(note)))
}

fn place_name(l: &LocationRow) -> String {
    match (&l.remote_url, &l.remote_vault_id) {
        (Some(url), Some(v)) => format!("{url} (vault {v})"),
        _ => l.place.clone(),
    }
}

/// Deletes everything under the vault's prefix at one of this server's destinations (as a
/// vault's erasure does), then lists it again: ((objects, bytes) deleted, left, note). What
/// a failed pass deleted is counted before the job tries again.
async fn at_destination(ctx: &JobCtx, loc: &LocationRow) -> Result<PlaceResult, JobError> {
    let Some(dest) = ctx.state.destinations.get(&loc.place) else {
        // Another node may have it, so it is tried again; one that no node has (it was
        // removed from the configuration) is out of reach, like a remote that is gone.
        return out_of_reach(
            ctx.claimed.job.attempts,
            JobError::transient("the destination is not configured on this node", &loc.place),
        );
    };
    let pool = &ctx.state.db.pool;
    let p = match super::erase_vault::erase_at(ctx, dest, &loc.vault_id).await {
        Ok(p) => p,
        Err((p, e)) => {
            erasure::add_deleted(pool, &loc.id, p.files_done, p.bytes_done).await?;
            return Err(e);
        }
    };
    erasure::add_deleted(pool, &loc.id, p.files_done, p.bytes_done).await?;
    let prefix = object_store::path::Path::from(dest.vault_prefix(&loc.vault_id));
    let left = dest
        .store
        .list(Some(&prefix))
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| JobError::transient("listing the vault's objects failed", e))?
        .len() as u64;
    Ok((
        (p.files_done, p.bytes_done),
        Some(left),
        (left > 0).then(|| "objects kept arriving".to_string()),
    ))
}

/// Deletes every object of the copy on another server through its vault protocol, with the
/// remote's token (every kind a replication writes there; lock markers are that server's
/// clients'); what that server's retention lock keeps is reported, not forced.
async fn at_remote(ctx: &JobCtx, loc: &LocationRow) -> Result<PlaceResult, JobError> {
    let pool = &ctx.state.db.pool;
    let (Some(remote), Some(remote_vault)) = (
        remotes::remote_by_id(pool, &loc.place).await?,
        loc.remote_vault_id.as_deref(),
    ) else {
        let why = loc.note.clone().unwrap_or_else(|| {
            "the remote was removed before the erasure: its copy is outside this server's reach"
                .into()
        });
        return Ok(((0, 0), None, Some(why)));
    };
    let storage = match super::sync::connect(&ctx.state, &remote, remote_vault).await {
        Ok(s) => s,
        Err(e) => {
            return Err(JobError::transient(
                "reaching the remote failed",
                format!("{e:?}"),
            ));
        }
    };
    // A refusal stays one (see `out_of_reach`); anything else is worth another attempt.
    let jurisdiction = super::sync::open(&ctx.state, &storage, &remote, remote_vault)
        .await
        .map_err(|e| match e {
            JobError::Failed(m) => JobError::Failed(m),
            e => JobError::transient("opening the remote's vault failed", super::sync::said(e)),
        })?;
    if !jurisdiction.is_empty() {
        erasure::set_jurisdiction(pool, &loc.id, &jurisdiction).await?;
    }
    let place = Place {
        vault_id: remote_vault.to_string(),
        at: At::Remote {
            storage: storage.clone(),
            max_object: 0,
        },
    };
    let listed = |place: Place| async move {
        let mut all = Vec::new();
        for kind in crate::replication::LIST_ORDER {
            let l = place
                .list(kind)
                .await
                .map_err(|e| JobError::transient("listing the remote's vault failed", e))?;
            all.extend(l.into_iter().map(|(name, size)| (kind, name, size)));
        }
        Ok::<_, JobError>(all)
    };
    let (mut objects, mut bytes, mut kept) = (0, 0, 0);
    for (kind, name, size) in listed(place.clone()).await? {
        ctx.check_held()?;
        match place
            .remove(kind, &name)
            .await
            .map_err(|e| JobError::transient("deleting at the remote failed", e))?
        {
            crate::replication::Removal::Removed => {
                objects += 1;
                bytes += size;
            }
            crate::replication::Removal::Kept => kept += 1,
        }
    }
    erasure::add_deleted(pool, &loc.id, objects, bytes).await?;
    let left = listed(place).await?.len() as u64;
    let _ = tokio::task::spawn_blocking(move || drop(storage)).await;
    let note = (left > 0).then(|| {
        if kept > 0 {
            format!("the other server kept {kept} objects (its retention lock)")
        } else {
            "objects are left at the other server".to_string()
        }
    });
    Ok(((objects, bytes), Some(left), note))
}

/// The certificate, hashed into the tenant's audit chain, and mailed.
async fn certify(
    ctx: &JobCtx,
    tenant: &tenants::TenantRow,
    locations: &[LocationRow],
    complete: bool,
) -> Result<(), JobError> {
    let state = &ctx.state;
    let pool = &state.db.pool;
    if erasure::certificate_of(pool, &tenant.tenant.id)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let now = state.now();
    let erased_at = audit_time(ctx, &tenant.tenant.id).await?;
    let mut places = Vec::new();
    for l in locations {
        let vault = vaults::deleted_vault(pool, &l.vault_id).await?;
        // A place that could not be listed afterwards was not verified: no time, no method,
        // and its note says why.
        let listed = l.objects_left.is_some();
        places.push(json!({
            "vault_id": l.vault_id,
            "vault_name": vault.as_ref().map(|v| v.name.clone()),
            "key_custody": vault.as_ref().map(|v| v.key_custody),
            "kind": l.kind,
            "place": place_name(l),
            "jurisdiction": l.jurisdiction,
            "objects_deleted": l.objects_deleted,
            "bytes_deleted": l.bytes_deleted,
            "objects_left": l.objects_left,
            "verified_at": l.verified_at.filter(|_| listed).map(crate::db::time),
            "verified_by": listed.then_some(match l.kind.as_str() {
                "destination" => "a listing of every object under the vault's prefix at the destination",
                _ => "a listing of every object kind of the vault through the other server's vault protocol",
            }),
            "note": l.note,
        }));
    }
    let body = json!({
        "certificate": "loop-backup-deletion-certificate/1",
        "id": crate::domain::new_id("dc"),
        "tenant_id": tenant.tenant.id,
        "tenant_name": tenant.tenant.name,
        "keys_destroyed_at": erased_at.map(crate::db::time),
        "issued_at": crate::db::time(now),
        "complete": complete,
        "places": places,
        "outside_reach": "copies of key slots or data made outside this service (a download, a \
                          customer's own copy, another server this service has no token for) are \
                          outside this certificate",
    });
    let text = serde_json::to_string_pretty(&body).map_err(|e| JobError::Failed(e.to_string()))?;
    let sha256 = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        text.as_bytes(),
    ));
    let cert = CertificateRow {
        id: body["id"].as_str().unwrap_or_default().to_string(),
        tenant_id: tenant.tenant.id.clone(),
        issued_at: now,
        body: text,
        sha256: sha256.clone(),
    };
    let notify: Vec<String> = ctx.claimed.params["notify"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut tx = state.db.begin().await?;
    if !erasure::insert_certificate(&mut tx, &cert).await? {
        return Ok(());
    }
    audit::append(
        &mut tx,
        NewEvent {
            tenant_id: tenant.tenant.id.clone(),
            actor_kind: ActorKind::System,
            actor_id: None,
            action: "tenant.erasure_certificate",
            object_kind: "tenant",
            object_id: Some(tenant.tenant.id.clone()),
            outcome: if complete {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            personal: Personal::default(),
            details: json!({
                "certificate_id": cert.id, "sha256": sha256, "complete": complete,
                "places": locations.len(),
                "objects_deleted": locations.iter().map(|l| l.objects_deleted).sum::<u64>(),
            }),
        },
        now,
    )
    .await?;
    let params = json!({ "certificate_id": cert.id, "tenant_id": tenant.tenant.id });
    for user in &notify {
        outbox::enqueue_with(&mut tx, MailKind::DeletionDone, user, &params, now).await?;
    }
    tx.commit().await.map_err(crate::db::DbError::from)?;
    state.mail_wake.notify_one();
    Ok(())
}

/// When the tenant's keys were destroyed (its first `tenant.erase` event).
async fn audit_time(ctx: &JobCtx, tenant_id: &str) -> Result<Option<i64>, JobError> {
    Ok(audit::first_of(&ctx.state.db.pool, tenant_id, "tenant.erase").await?)
}
