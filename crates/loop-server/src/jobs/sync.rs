//! A sync job's run: a vault of this server pushed to a vault of another `loop server`, or
//! pulled from one, over that server's vault protocol with the remote's replication token.
//! Objects move as stored (encrypted) in the replication's order (`crate::replication`),
//! so the receiving vault names nothing it lacks at any moment and its server never needs a
//! key. A push is checked against the tenant's residency with the jurisdiction the other
//! server reports for its vault; a pull writes through this server's records of the vault
//! (usage, quota, retention lock), as the job `sync:<sync job>`, and may later remove only
//! what it wrote.

use std::sync::Arc;

use loop_agent::VaultStorage;
use loop_api::{
    ActorKind, JobTrigger, KeyCustody, Outcome, SyncDirection, SyncJob, TokenPermission, Vault,
};

use super::remote::remote_error;
pub(crate) use super::remote::{connect, remote_vaults, said};
use super::{Done, JobCtx, JobError};
use crate::db::audit::NewEvent;
use crate::db::remotes::{self, RemoteRow};
use crate::db::{Timer, advance_timer, residency, tenants, vaults};
use crate::domain::TenantScope;
use crate::replication::{At, Place, SyncOptions};
use crate::state::AppState;

/// Vault names a tenant-wide sync job syncs: `patterns` (globs), or every name when empty.
pub fn name_filter(patterns: &[String]) -> Result<globset::GlobSet, String> {
    let mut b = globset::GlobSetBuilder::new();
    for p in patterns {
        b.add(globset::Glob::new(p).map_err(|e| format!("vault pattern {p:?}: {e}"))?);
    }
    b.build().map_err(|e| e.to_string())
}

/// Opens the other server's vault with the remote's token, which must hold `replicate`;
/// answers with the jurisdiction that server reports for the vault ("" when it does not).
/// A remote out of reach (after the requests' own retries) is worth another attempt; one
/// that refuses is not.
pub(super) async fn open(
    state: &AppState,
    storage: &Arc<VaultStorage>,
    remote: &RemoteRow,
    remote_vault_id: &str,
) -> Result<String, JobError> {
    let (s, node) = (storage.clone(), state.node_id.clone());
    let name = &remote.remote.name;
    let session = tokio::task::spawn_blocking(move || s.open("sync", &node))
        .await
        .map_err(|e| JobError::Failed(e.to_string()))?
        .map_err(|e| {
            remote_error(name, e, |e| {
                format!(
                    "the remote {name} refused vault {remote_vault_id}: {e} (a revoked or \
                     expired token, or one that does not name the vault)"
                )
            })
        })?;
    if !session.can(TokenPermission::Replicate) {
        return Err(JobError::Failed(format!(
            "the remote {name}'s token lacks the replicate permission"
        )));
    }
    Ok(session.jurisdiction.unwrap_or_default())
}

/// Reaches the remote's vault as a sync job would (a new sync job is checked so): the
/// jurisdiction it reports, or why it cannot be reached.
pub async fn reach(
    state: &AppState,
    remote: &RemoteRow,
    remote_vault_id: &str,
) -> Result<String, JobError> {
    let storage = connect(state, remote, remote_vault_id).await?;
    let opened = open(state, &storage, remote, remote_vault_id).await;
    let _ = tokio::task::spawn_blocking(move || drop(storage)).await;
    opened
}

pub(super) async fn run(ctx: &JobCtx) -> Result<Done, JobError> {
    let pool = &ctx.state.db.pool;
    let Some(job) = remotes::sync_job_by_id(pool, &ctx.claimed.job.target_id).await? else {
        return Err(JobError::Failed("the sync job was deleted".into()));
    };
    let Some(remote) = remotes::remote_by_id(pool, &job.remote_id).await? else {
        return Err(JobError::Failed("the remote was deleted".into()));
    };
    // A pull would grow a tenant that may not (a push only copies out).
    if job.direction == SyncDirection::Pull
        && crate::db::billing::suspended(pool, &job.tenant_id).await?
    {
        return Err(JobError::Failed(
            "the subscription is suspended: nothing is pulled into its vaults until it is paid"
                .into(),
        ));
    }
    let (pairs, mut warnings) = match (&job.vault_id, &job.remote_vault_id) {
        (Some(v), Some(r)) => {
            let Some(vault) = vaults::vault_by_id(pool, v).await? else {
                return Err(JobError::Failed("the vault was deleted".into()));
            };
            (vec![(vault, r.clone())], 0)
        }
        _ => matched(ctx, &job, &remote).await?,
    };
    let whole_tenant = job.vault_id.is_none();
    let mut summaries = Vec::new();
    let (mut failures, mut worth_another) = (Vec::new(), false);
    for (vault, remote_vault_id) in pairs {
        ctx.check()?;
        let storage = connect(&ctx.state, &remote, &remote_vault_id).await?;
        let result = run_with(
            ctx,
            &job,
            &remote,
            &vault,
            &remote_vault_id,
            storage.clone(),
        )
        .await;
        // The last handle on the blocking client goes on the blocking pool.
        let _ = tokio::task::spawn_blocking(move || drop(storage)).await;
        match result {
            Ok(done) => {
                warnings += done.warnings;
                summaries.push(done.summary);
            }
            Err(e @ (JobError::Cancelled | JobError::LeaseLost)) => return Err(e),
            Err(e) if !whole_tenant => return Err(e),
            Err(e) => {
                worth_another |= matches!(e, JobError::Transient(_));
                let m = said(e);
                ctx.log("error", &format!("vault {}: {m}", vault.name))
                    .await?;
                failures.push(format!("{}: {m}", vault.name));
            }
        }
    }
    if !failures.is_empty() {
        // One vault that may copy on another attempt makes the run worth one (the vaults
        // already copied are only compared again); only refusals end it for good.
        let m = failures.join("; ");
        return Err(if worth_another {
            JobError::Transient(m)
        } else {
            JobError::Failed(m)
        });
    }
    if whole_tenant {
        return Ok(Done {
            summary: serde_json::json!({ "sync_job_id": job.id, "vaults": summaries }),
            warnings,
        });
    }
    Ok(Done {
        summary: summaries.pop().unwrap_or_default(),
        warnings,
    })
}

/// The vault pairs of a tenant-wide sync job: each vault of the tenant (push) or of the
/// remote (pull) whose name the job's patterns match, with the vault of the same name on
/// the other side; one without its counterpart is a warning.
async fn matched(
    ctx: &JobCtx,
    job: &SyncJob,
    remote: &RemoteRow,
) -> Result<(Vec<(Vault, String)>, u32), JobError> {
    let filter = name_filter(&job.vaults).map_err(JobError::Failed)?;
    let wanted = |name: &str| job.vaults.is_empty() || filter.is_match(name);
    let theirs = remote_vaults(&ctx.state, remote).await?;
    let ours = vaults::vaults_in(
        &ctx.state.db.pool,
        &TenantScope::One(job.tenant_id.clone()),
        None,
    )
    .await?
    .items;
    let (mut pairs, mut missing) = (Vec::new(), Vec::new());
    match job.direction {
        SyncDirection::Push => {
            for v in ours.into_iter().filter(|v| wanted(&v.name)) {
                match theirs.iter().find(|t| t.name == v.name) {
                    Some(t) => pairs.push((v, t.id.clone())),
                    None => missing.push(format!(
                        "{} has no vault {} there",
                        remote.remote.name, v.name
                    )),
                }
            }
        }
        SyncDirection::Pull => {
            for t in theirs.iter().filter(|t| wanted(&t.name)) {
                match ours.iter().find(|v| v.name == t.name) {
                    Some(v) => pairs.push((v.clone(), t.id.clone())),
                    None => missing.push(format!(
                        "no vault {} here to pull {}'s into (make a customer-key vault of that name)",
                        t.name, remote.remote.name
                    )),
                }
            }
        }
    }
    for m in &missing {
        ctx.log("warning", m).await?;
    }
    Ok((pairs, missing.len() as u32))
}

/// Syncs one vault of this server with one of the remote.
async fn run_with(
    ctx: &JobCtx,
    job: &SyncJob,
    remote: &RemoteRow,
    vault: &Vault,
    remote_vault_id: &str,
    storage: Arc<VaultStorage>,
) -> Result<Done, JobError> {
    let state = &ctx.state;
    let Some(dest) = state.destinations.get(&vault.destination).cloned() else {
        return Err(JobError::transient(
            "the vault's destination is not configured on this node",
            &vault.destination,
        ));
    };
    let jurisdiction = open(state, &storage, remote, remote_vault_id).await?;
    ctx.log(
        "info",
        &format!(
            "{} vault {} {} {} vault {} (jurisdiction {})",
            job.direction,
            vault.id,
            if job.direction == SyncDirection::Push {
                "to"
            } else {
                "from"
            },
            remote.remote.name,
            remote_vault_id,
            if jurisdiction.is_empty() {
                "not reported"
            } else {
                &jurisdiction
            },
        ),
    )
    .await?;
    if job.direction == SyncDirection::Push {
        admitted(ctx, job, remote, (vault, remote_vault_id), &jurisdiction).await?;
    }
    let remote_place = Place {
        vault_id: remote_vault_id.to_string(),
        at: At::Remote {
            storage,
            max_object: state.config.limits.object_bytes,
        },
    };
    let (source, target, guard) = match job.direction {
        SyncDirection::Push => (
            Place::stored(&dest, &vault.id),
            remote_place,
            Some(vault.id.clone()),
        ),
        SyncDirection::Pull => {
            if vault.key_custody != KeyCustody::Customer {
                return Err(JobError::Failed(
                    "a pull writes only into a customer-key vault: the objects it copies are \
                     encrypted with the other server's keys"
                        .into(),
                ));
            }
            let local = Place {
                vault_id: vault.id.clone(),
                at: At::Recorded {
                    state: state.clone(),
                    dest: dest.clone(),
                    owner: format!("sync:{}", job.id),
                },
            };
            (remote_place, local, None)
        }
    };
    let opts = SyncOptions {
        transfers: state.config.replication.transfers.max(1) as usize,
        remove_vanished: job.remove_vanished,
        bytes_per_sec: job.bytes_per_sec,
        guard,
    };
    let report = super::replicate::sync_reporting(ctx, &source, &target, &opts)
        .await?
        .map_err(|e| JobError::transient("the sync failed", e))?;
    let mut warnings = 0;
    if report.primary_missing > 0 {
        warnings += 1;
        ctx.log(
            "warning",
            &format!(
                "vault {} lacks {} objects its records hold: the remote keeps its copies",
                vault.id, report.primary_missing
            ),
        )
        .await?;
    }
    if report.target_differs > 0 {
        warnings += 1;
        let there = match job.direction {
            SyncDirection::Push => format!("the remote's vault {remote_vault_id}"),
            SyncDirection::Pull => format!("vault {}", vault.id),
        };
        ctx.log(
            "warning",
            &format!(
                "{} objects {there} holds at another size were left as they are: a vault never \
                 replaces a stored object (that copy is damaged, or another writer wrote it; \
                 check that vault): {}",
                report.target_differs,
                report.differing.join(", ")
            ),
        )
        .await?;
    }
    if report.objects_kept > 0 {
        ctx.log(
            "info",
            &format!(
                "{} objects the sending vault no longer holds stay: a retention lock holds \
                 them, or another writer wrote them",
                report.objects_kept
            ),
        )
        .await?;
    }
    ctx.log(
        "info",
        &format!(
            "{} objects ({} bytes) copied, {} removed, {} rounds",
            report.objects_copied, report.bytes_copied, report.objects_removed, report.rounds
        ),
    )
    .await?;
    if job.direction == SyncDirection::Pull && report.objects_copied + report.objects_removed > 0 {
        // What a pull brought in goes on to the vault's own replicas.
        let mut tx = state.db.begin().await?;
        super::replicate::queue_if_replicated(state, &mut tx, vault, JobTrigger::Event).await?;
        tx.commit().await.map_err(crate::db::DbError::from)?;
        state.jobs_wake.notify_one();
    }
    Ok(Done {
        summary: serde_json::json!({
            "sync_job_id": job.id, "direction": job.direction, "remote_id": remote.remote.id,
            "vault_id": vault.id, "remote_vault_id": remote_vault_id,
            "jurisdiction": jurisdiction, "report": report,
        }),
        warnings,
    })
}

/// A push only goes where the tenant's residency allows; a refusal is audited and ends the
/// job.
async fn admitted(
    ctx: &JobCtx,
    job: &SyncJob,
    remote: &RemoteRow,
    (vault, remote_vault_id): (&Vault, &str),
    jurisdiction: &str,
) -> Result<(), JobError> {
    let state = &ctx.state;
    let tenant_id = vault.tenant_id.as_str();
    let Some(tenant) = tenants::tenant_by_id(&state.db.pool, tenant_id).await? else {
        return Err(JobError::Failed("the tenant was deleted".into()));
    };
    let chain = residency::chain(&state.db.pool, &tenant.path).await?;
    if state.jurisdictions.admits(&chain, jurisdiction) {
        return Ok(());
    }
    let allowed = state.jurisdictions.effective(&chain);
    let mut tx = state.db.begin().await?;
    crate::db::audit::append(
        &mut tx,
        NewEvent {
            tenant_id: tenant_id.to_string(),
            actor_kind: ActorKind::System,
            actor_id: Some(ctx.id().to_string()),
            action: "sync.push",
            object_kind: "vault",
            object_id: Some(vault.id.clone()),
            outcome: Outcome::Failure,
            personal: Default::default(),
            details: serde_json::json!({
                "reason": "residency", "sync_job_id": job.id, "remote_id": remote.remote.id,
                "remote_vault_id": remote_vault_id, "jurisdiction": jurisdiction,
                "allowed": allowed,
            }),
        },
        state.now(),
    )
    .await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    Err(JobError::Failed(format!(
        "the remote's vault {} is in jurisdiction {}, which this tenant's residency does not \
         allow: nothing was pushed",
        remote_vault_id,
        if jurisdiction.is_empty() {
            "(not reported)"
        } else {
            jurisdiction
        }
    )))
}

/// Queues the sync jobs whose schedule has a run due; once across nodes. Returns the jobs
/// queued.
pub async fn tick(state: &AppState, now: i64) -> crate::db::DbResult<Vec<String>> {
    let pool = &state.db.pool;
    let mut queued = Vec::new();
    for job in remotes::due(pool, now, 200).await? {
        let Some(was) = job.next_run_at.map(|t| t.timestamp_millis()) else {
            continue;
        };
        let next = next_run(state, &job, now).await?;
        let mut tx = state.db.begin().await?;
        if !advance_timer(&mut tx, Timer::Sync(&job.id), was, next).await? {
            continue;
        }
        let work = work(&job, JobTrigger::Schedule, None);
        queued.push(super::queue(state, &mut tx, work).await?);
        tx.commit().await?;
    }
    if !queued.is_empty() {
        state.jobs_wake.notify_one();
    }
    Ok(queued)
}

/// The next run of a scheduled sync job after `now`, in its tenant's time zone.
pub async fn next_run(
    state: &AppState,
    job: &SyncJob,
    now: i64,
) -> crate::db::DbResult<Option<i64>> {
    let Some(text) = job.schedule.as_deref() else {
        return Ok(None);
    };
    let tz = tenants::tenant_by_id(&state.db.pool, &job.tenant_id)
        .await?
        .map_or_else(|| "UTC".to_string(), |t| t.tenant.time_zone);
    // A schedule or zone that does not read was refused when the job was made.
    Ok(loop_api::schedule::next_after_ms(text, &tz, now))
}

/// A run of `job` to queue (one already queued or running takes it).
pub fn work<'a>(
    job: &'a SyncJob,
    trigger: JobTrigger,
    started_by: Option<&'a str>,
) -> super::Work<'a> {
    super::Work {
        runner: crate::db::jobs::Runner::Server,
        tenant_id: &job.tenant_id,
        kind: loop_api::JobKind::Sync,
        target: ("sync-job", &job.id),
        trigger,
        started_by_id: started_by,
        params: serde_json::json!({ "direction": job.direction, "vault_id": job.vault_id }),
    }
}
