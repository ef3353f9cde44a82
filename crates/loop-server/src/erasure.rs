//! Tenant erasure (DESIGN.md's erasure sequence), one operation whether a provider-admin
//! (`POST /api/v1/tenants/{id}/erase`) or the subscription lifecycle starts it: first the keys
//! are destroyed, so the tenant's backups are unreadable at once wherever copies of their
//! objects remain; then the tenant-erasure job (`jobs::erase_tenant`) deletes every object at
//! every place, verifies each place empty and issues the deletion certificate.
//!
//! [`erase_tenant`] is safe to run again: a second run finds the database part done, deletes
//! whatever key slots an interrupted first run left on storage, and queues the job again only
//! when it is neither under way nor done.

use futures_util::TryStreamExt as _;
use loop_api::{
    ActorKind, JobKind, JobTrigger, Outcome, SyncDirection, TenantErasure, TenantStatus,
    VaultErasure,
};
use object_store::ObjectStoreExt as _;

use crate::auth::Caller;
use crate::db::audit::{self, NewEvent, Personal};
use crate::db::erasure::LocationRow;
use crate::db::tenants::{self, TenantRow};
use crate::db::vaults;
use crate::domain::TenantScope;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Who erases: a person through the API, or the system (a job, the lifecycle timer).
#[derive(Clone, Debug)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
    pub personal: Personal,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            id: None,
            personal: Personal::default(),
        }
    }

    fn event(&self, tenant_id: &str, action: &'static str, details: serde_json::Value) -> NewEvent {
        NewEvent {
            tenant_id: tenant_id.to_string(),
            actor_kind: self.kind,
            actor_id: self.id.clone(),
            action,
            object_kind: "tenant",
            object_id: Some(tenant_id.to_string()),
            outcome: Outcome::Success,
            personal: self.personal.clone(),
            details,
        }
    }
}

impl From<&Caller> for Actor {
    fn from(c: &Caller) -> Actor {
        let (kind, id) = c.actor();
        Actor {
            kind,
            id: Some(id),
            personal: c.personal(),
        }
    }
}

/// Erases `tenant`. In one audited transaction: deletes its tenant key (managed vaults are
/// unreadable from then on), marks it erased, revokes its tokens, ends its users' sessions
/// and disables them, stops its sync jobs, marks every vault deleted (a retention lock does
/// not hold: this is the lock's one documented exception), records every place each vault's
/// objects are held (its destination, its replicas', the vaults on other servers its push
/// sync jobs copied to) and queues the tenant-erasure job that deletes them all, verifies
/// each place empty and issues the deletion certificate (`jobs::erase_tenant`). Then it
/// deletes every key slot at each of this server's places at once (customer-key vaults
/// become unreadable, managed vaults stay so even against an old database backup and the
/// master key), and records what it deleted.
///
/// The caller checks who may do this. Run it where a dropped request cannot stop it halfway
/// (the route spawns it); if it fails halfway, running it again finishes the work.
pub async fn erase_tenant(
    state: &AppState,
    tenant: &TenantRow,
    actor: &Actor,
) -> ApiResult<TenantErasure> {
    // Each attempt that finds a vault or push sync job made meanwhile starts over; once the
    // tenant is erased none can be made, so this ends unless the tenant keeps gaining them.
    for _ in 0..ERASE_ATTEMPTS {
        if let Some(done) = erase_tenant_once(state, tenant, actor).await? {
            return Ok(done);
        }
    }
    Err(ApiError::conflict(
        "tenant_changing",
        "the tenant kept gaining vaults or sync jobs while it was erased; erase it again",
    ))
}

const ERASE_ATTEMPTS: usize = 5;

/// [`erase_tenant`], once: `None` when a vault or push sync job was made after the places
/// were read (nothing is changed then).
async fn erase_tenant_once(
    state: &AppState,
    tenant: &TenantRow,
    actor: &Actor,
) -> ApiResult<Option<TenantErasure>> {
    let pool = &state.db.pool;
    let tenant_id = &tenant.tenant.id;
    let scope = TenantScope::One(tenant_id.clone());
    let vaults = vaults::vaults_in(pool, &scope, None).await?.items;
    // Read before the transaction (whose first statement writes): who hears of the
    // certificate, and where the push sync jobs copied to.
    let notify = crate::db::billing::billing_contacts(pool, tenant_id).await?;
    let pushes: Vec<_> = crate::db::remotes::sync_jobs_in(pool, &scope, None)
        .await?
        .items
        .into_iter()
        .filter(|j| j.direction == SyncDirection::Push)
        .collect();
    let mut copies = Vec::new();
    for job in &pushes {
        copies.extend(pushed_to(state, job, &vaults).await?);
    }
    // Copies whose sync job or remote was removed since they were made: erased through the
    // remote while it exists, else named as out of reach. One copy is one place, however
    // many jobs reached it.
    copies.extend(crate::db::erasure::departed_of(pool, tenant_id).await?);
    let mut seen = std::collections::HashSet::new();
    copies.retain(|c| {
        seen.insert((
            c.vault_id.clone(),
            c.place.clone(),
            c.remote_vault_id.clone(),
        ))
    });
    // Vaults deleted before: their own erasure may not have finished (or failed for good),
    // so each is a place of this one too (an emptied place is found empty). Not twice when
    // this runs again.
    let recorded: std::collections::HashSet<String> =
        crate::db::erasure::locations_of(pool, tenant_id)
            .await?
            .into_iter()
            .map(|l| l.vault_id)
            .collect();
    let deleted: Vec<_> = vaults::deleted_vaults_of(pool, tenant_id)
        .await?
        .into_iter()
        .filter(|v| !recorded.contains(&v.id))
        .collect();
    // Replicas removed before, likewise (a place already recorded is not recorded twice),
    // also at a destination no longer configured here: the job tries it, and names it as
    // out of reach if no node has it, unless its own erasure found it empty.
    let removed_replicas: Vec<LocationRow> =
        crate::db::erasure::removed_replicas_of(pool, tenant_id)
            .await?
            .into_iter()
            .filter_map(|r| {
                let d = state.destinations.get(&r.destination);
                if d.is_none() && r.erased {
                    return None;
                }
                let jurisdiction = d.map(|d| d.jurisdiction.clone());
                Some(location(
                    tenant_id,
                    &r.vault_id,
                    "destination",
                    &r.destination,
                    jurisdiction,
                ))
            })
            .collect();
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let key_destroyed = tenants::delete_tenant_key(&mut tx, tenant_id).await?;
    tenants::set_tenant_status(&mut tx, tenant_id, TenantStatus::Erased).await?;
    // That took the tenant's row: a vault or push sync job made after the reads above, and
    // before this, is seen now; one made after is refused (`tenants::hold_unerased`).
    let ids = |v: Vec<&str>| -> Vec<String> {
        let mut v: Vec<String> = v.into_iter().map(str::to_string).collect();
        v.sort();
        v
    };
    let read_then = (
        ids(vaults.iter().map(|v| v.id.as_str()).collect()),
        ids(pushes.iter().map(|j| j.id.as_str()).collect()),
    );
    if crate::db::erasure::places_made(&mut tx, tenant_id).await? != read_then {
        return Ok(None);
    }
    let (tokens, sessions, users) = tenants::lock_out_tenant(&mut tx, tenant_id, now).await?;
    let targets = crate::db::notify::erase_targets_of(&mut tx, tenant_id, now).await?;
    let sync_jobs = crate::db::remotes::delete_sync_jobs_of_tenant(&mut tx, tenant_id).await?;
    // A replication or sync under way would copy on after its places were emptied: each is
    // asked to stop, and the erasure job waits until it has.
    let jobs_cancelled = crate::db::stopping::cancel_open(
        &mut tx,
        crate::db::stopping::Erasing::Tenant(tenant_id),
        None,
        "the tenant was erased",
        now,
    )
    .await?;
    // Nothing is invoiced for an erased tenant (a termination by its lifecycle ended it
    // already).
    if crate::db::billing::terminate_for_erasure(&mut tx, tenant_id, now).await? {
        let mut e = actor.event(
            tenant_id,
            "subscription.terminate",
            serde_json::json!({ "reason": loop_api::LifecycleReason::Erased }),
        );
        e.object_kind = "subscription";
        e.object_id = Some(tenant_id.to_string());
        audit::append(&mut tx, e, now).await?;
    }
    let vault_ids: Vec<&str> = vaults.iter().map(|v| v.id.as_str()).collect();
    audit::append(
        &mut tx,
        actor.event(
            tenant_id,
            "tenant.erase",
            serde_json::json!({
                "tenant_key_destroyed": key_destroyed, "tokens_revoked": tokens,
                "sessions_ended": sessions, "users_disabled": users, "vault_ids": vault_ids,
                "sync_jobs_removed": sync_jobs, "jobs_cancelled": jobs_cancelled,
                "notify_targets_removed": targets,
            }),
        ),
        now,
    )
    .await?;
    for v in &vaults {
        vaults::mark_vault_deleted(&mut tx, &v.id, now).await?;
        unhook_vault(state, &mut tx, v).await?;
        let mut places = vec![v.destination.clone()];
        for r in crate::db::replicas::delete_of_vault(&mut tx, &v.id).await? {
            places.push(r.destination);
        }
        for place in &places {
            let jurisdiction = state
                .destinations
                .get(place)
                .map(|d| d.jurisdiction.clone());
            let l = location(tenant_id, &v.id, "destination", place, jurisdiction);
            crate::db::erasure::insert_location(&mut tx, &l).await?;
        }
        let mut e = actor.event(
            tenant_id,
            "vault.delete",
            serde_json::json!({
                "reason": "tenant erased", "places": places,
                "retention_lock_overridden": v.retention_lock_days.unwrap_or(0) > 0,
            }),
        );
        e.object_kind = "vault";
        e.object_id = Some(v.id.clone());
        audit::append(&mut tx, e, now).await?;
    }
    for v in &deleted {
        let jurisdiction = state
            .destinations
            .get(&v.destination)
            .map(|d| d.jurisdiction.clone());
        let l = location(
            tenant_id,
            &v.id,
            "destination",
            &v.destination,
            jurisdiction,
        );
        crate::db::erasure::insert_location(&mut tx, &l).await?;
    }
    for l in copies.iter().chain(&removed_replicas) {
        crate::db::erasure::insert_location(&mut tx, l).await?;
    }
    let open = crate::db::jobs::open_of(&mut *tx, JobKind::TenantErasure, tenant_id).await?;
    let done = crate::db::erasure::certificate_of(&mut *tx, tenant_id).await?;
    let erasure_job_id = match (open, done) {
        (Some(j), _) => Some(j),
        (None, Some(_)) => None,
        (None, None) => {
            let work = crate::jobs::Work {
                runner: crate::db::jobs::Runner::Server,
                tenant_id,
                kind: JobKind::TenantErasure,
                target: ("tenant", tenant_id),
                trigger: JobTrigger::Event,
                started_by_id: actor.id.as_deref(),
                params: serde_json::json!({ "notify": notify }),
            };
            Some(crate::jobs::queue(state, &mut tx, work).await?)
        }
    };
    tx.commit().await.map_err(crate::db::DbError::from)?;
    state.jobs_wake.notify_one();

    // Tokens are revoked by now, so no new upload of a key slot starts while these are
    // listed; one already under way stops at its next claim renewal, and the erasure job,
    // which waits for it, deletes it if it landed.
    let mut erased: Vec<VaultErasure> = Vec::new();
    for l in crate::db::erasure::locations_of(pool, tenant_id).await? {
        if l.kind != "destination" {
            continue;
        }
        let at = match erased.iter().position(|e| e.vault_id == l.vault_id) {
            Some(at) => at,
            None => {
                let vault = vaults::deleted_vault(pool, &l.vault_id).await?;
                erased.push(VaultErasure {
                    vault_id: l.vault_id.clone(),
                    key_custody: vault
                        .as_ref()
                        .map_or(loop_api::KeyCustody::Managed, |v| v.key_custody),
                    // Places come by name; the vault's own is the one it was made at.
                    destination: vault.map_or(l.place.clone(), |v| v.destination),
                    key_slots_deleted: Vec::new(),
                    replica_destinations: Vec::new(),
                    destinations_not_reached: Vec::new(),
                });
                erased.len() - 1
            }
        };
        let e = &mut erased[at];
        // Not configured on this node: the erasure job deletes everything there, key slots
        // too, on a node that has it (or names it as out of reach).
        let Some(dest) = state.destinations.get(&l.place) else {
            tracing::warn!(tenant = %tenant_id, vault = %l.vault_id, destination = %l.place,
                "erasing a tenant: a place of its vault is not configured on this node");
            e.destinations_not_reached.push(l.place.clone());
            continue;
        };
        let prefix = object_store::path::Path::from(dest.vault_prefix(&l.vault_id) + "/keys");
        let slots: Vec<_> = dest.store.list(Some(&prefix)).try_collect().await?;
        for slot in &slots {
            match dest.store.delete(&slot.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if l.place != e.destination {
            e.replica_destinations.push(l.place.clone());
        }
        if e.key_slots_deleted.is_empty() {
            e.key_slots_deleted.extend(
                slots
                    .iter()
                    .map(|s| s.location.filename().unwrap_or_default().to_string()),
            );
        }
    }
    let mut tx = state.db.begin().await?;
    audit::append(
        &mut tx,
        actor.event(
            tenant_id,
            "tenant.erase_key_slots",
            serde_json::json!({ "vaults": erased }),
        ),
        state.now(),
    )
    .await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    Ok(Some(TenantErasure {
        tenant_id: tenant_id.clone(),
        tenant_key_destroyed: key_destroyed,
        tokens_revoked: tokens,
        sessions_ended: sessions,
        users_disabled: users,
        vaults: erased,
        erasure_job_id,
    }))
}

fn location(
    tenant_id: &str,
    vault_id: &str,
    kind: &str,
    place: &str,
    jurisdiction: Option<String>,
) -> LocationRow {
    LocationRow {
        id: crate::domain::new_id("el"),
        tenant_id: tenant_id.to_string(),
        vault_id: vault_id.to_string(),
        kind: kind.to_string(),
        place: place.to_string(),
        jurisdiction,
        remote_vault_id: None,
        remote_url: None,
        objects_deleted: 0,
        bytes_deleted: 0,
        objects_left: None,
        verified_at: None,
        note: None,
    }
}

/// After a tenant's erasure: once its deletion certificate was issued and mailed, its
/// people are erased as on their own request (`person::erase`, by the system), so nothing of
/// them stays but pseudonyms in the audit log and the billing details the invoices were
/// issued with (kept for the books). Returns how many people were erased.
pub async fn forget_people(state: &AppState) -> ApiResult<u64> {
    let mut n = 0;
    let mail_goes_out = state.mailer.configured();
    for id in crate::db::erasure::people_to_forget(&state.db.pool, mail_goes_out).await? {
        let Some(u) = crate::db::users::user_by_id(&state.db.pool, &id).await? else {
            continue;
        };
        let event = NewEvent {
            tenant_id: u.user.tenant_id.clone(),
            actor_kind: ActorKind::System,
            actor_id: None,
            action: "user.erase",
            object_kind: "user",
            object_id: Some(id),
            outcome: loop_api::Outcome::Success,
            personal: Personal::default(),
            details: serde_json::json!({}),
        };
        crate::person::erase(state, &u, event).await?;
        n += 1;
    }
    Ok(n)
}

/// The vaults on another server that push sync job `job` copied the tenant's `vaults` to:
/// the one it names, or (a job of the whole tenant) each vault there of the same name. A
/// remote that cannot be listed now is recorded without its vault, and the certificate
/// says so.
pub(crate) async fn pushed_to(
    state: &AppState,
    job: &loop_api::SyncJob,
    vaults: &[loop_api::Vault],
) -> ApiResult<Vec<LocationRow>> {
    let Some(remote) = crate::db::remotes::remote_by_id(&state.db.pool, &job.remote_id).await?
    else {
        return Ok(Vec::new());
    };
    let copy = |vault_id: &str, remote_vault: Option<String>, note: Option<String>| {
        let mut l = location(&job.tenant_id, vault_id, "remote", &remote.remote.id, None);
        l.remote_vault_id = remote_vault;
        l.remote_url = Some(remote.remote.url.clone());
        l.note = note;
        l
    };
    if let (Some(v), Some(r)) = (&job.vault_id, &job.remote_vault_id) {
        return Ok(vec![copy(v, Some(r.clone()), None)]);
    }
    let wanted = crate::jobs::sync::name_filter(&job.vaults).map_err(ApiError::Internal)?;
    let ours = vaults
        .iter()
        .filter(|v| job.vaults.is_empty() || wanted.is_match(&v.name));
    Ok(
        match crate::jobs::sync::remote_vaults(state, &remote).await {
            Ok(theirs) => ours
                .filter_map(|v| {
                    theirs
                        .iter()
                        .find(|t| t.name == v.name)
                        .map(|t| copy(&v.id, Some(t.id.clone()), None))
                })
                .collect(),
            Err(e) => {
                let why = crate::jobs::sync::said(e);
                ours.map(|v| {
                    copy(
                        &v.id,
                        None,
                        Some(format!("the remote could not be listed: {why}")),
                    )
                })
                .collect()
            }
        },
    )
}

/// In the transaction that marked vault `v` deleted: removes what would still use it (its
/// policy, protected items, maintainer, sync jobs) and queues the erasure of each of its
/// replicas (the IDs of those jobs). The caller queues the erasure of the vault itself.
pub async fn retire_vault(
    state: &AppState,
    tx: &mut crate::db::Tx,
    v: &loop_api::Vault,
    started_by: &str,
) -> ApiResult<Vec<String>> {
    unhook_vault(state, tx, v).await?;
    // Its jobs end; the erasures wait until they have.
    crate::db::stopping::cancel_open(
        tx,
        crate::db::stopping::Erasing::Vault(&v.id),
        None,
        "the vault was deleted",
        state.now(),
    )
    .await?;
    Ok(crate::routes::replicas::erase_all(state, tx, v, started_by).await?)
}

/// Removes what would still use a vault being deleted: its policy, protected items,
/// maintainer and sync jobs.
async fn unhook_vault(
    state: &AppState,
    tx: &mut crate::db::Tx,
    v: &loop_api::Vault,
) -> ApiResult<()> {
    crate::db::policies::delete_vault_policy(tx, &v.id).await?;
    crate::db::items::delete_items_of(tx, "vault_id", &v.id).await?;
    crate::db::deletions::set_maintainer(tx, &v.id, None, state.now()).await?;
    crate::db::remotes::delete_sync_jobs_of_vault(tx, &v.id, state.now()).await?;
    Ok(())
}
