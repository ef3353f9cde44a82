//! Retention of a managed vault: the engine's forget plan for the policy that applies to the
//! vault, then prune, run by the server with the key it holds. Every object it writes or
//! deletes goes through the vault's object claims ([`ServerStorage`]), so the vault's usage
//! stays exact, and every removed snapshot is in the audit log.
//!
//! Cut off at any point, it is safe to run again: forget removes snapshot objects one by
//! one (what is gone stays gone, the rest is judged again) and prune is the engine's
//! two-phase prune. The snapshots it is about to remove are recorded first
//! ([`removals`]): those a run cut off removed are audited by the vault's next run.

use std::collections::HashSet;
use std::sync::Arc;

use loop_api::{
    ActorKind, DEFAULT_PRUNE_GRACE_SECONDS, DEFAULT_PRUNE_MAX_UNUSED_PERCENT, JobProgress,
    KeepRules, KeyCustody, Outcome,
};
use loop_repo::forget::{self, ForgetRequest, KeepPolicy};
use loop_repo::keys::Secret;
use loop_repo::prune::{self, PruneOptions};
use loop_repo::{Repository, Storage};

use super::{Done, JobCtx, JobError, blocking};
use crate::db::audit::NewEvent;
use crate::db::removals::{self, Removal};
use crate::db::{policies, tenants, vaults};
use crate::vault_objects::ServerStorage;

/// Removed snapshots named one by one in the job log.
const LOGGED: usize = 50;

/// The engine's keep policy for a policy's rules (the server's retention and a maintainer
/// agent's apply the same).
pub fn keep_policy(rules: &KeepRules) -> Result<KeepPolicy, String> {
    Ok(KeepPolicy {
        last: rules.last,
        hourly: rules.hourly,
        daily: rules.daily,
        weekly: rules.weekly,
        monthly: rules.monthly,
        yearly: rules.yearly,
        tags: rules.tags.clone(),
        within: rules
            .within
            .as_deref()
            .map(forget::parse_within)
            .transpose()?,
    })
}

/// What a retention forgets: the snapshots the vault's keep rules do not keep (none when
/// `vault` is none), except those of items with rules of their own (`(item ID, rules)`),
/// which those judge.
pub fn forget_request(
    vault: Option<&KeepRules>,
    items: &[(String, KeepRules)],
) -> Result<ForgetRequest, String> {
    Ok(ForgetRequest::Policies {
        default: vault.map(keep_policy).transpose()?.unwrap_or_default(),
        by_tag: items
            .iter()
            .map(|(id, rules)| Ok((format!("item:{id}"), keep_policy(rules)?)))
            .collect::<Result<_, String>>()?,
    })
}

/// The open repository. Its storage owns a runtime of its own, which must not be dropped on
/// an async thread: it is dropped on a blocking thread.
struct OpenRepo(Option<Arc<Repository>>);

impl OpenRepo {
    fn get(&self) -> Arc<Repository> {
        self.0.clone().expect("held until dropped")
    }
}

impl Drop for OpenRepo {
    fn drop(&mut self) {
        if let Some(repo) = self.0.take() {
            tokio::task::spawn_blocking(move || drop(repo));
        }
    }
}

pub(super) async fn run(ctx: &JobCtx) -> Result<Done, JobError> {
    let state = &ctx.state;
    let pool = &state.db.pool;
    let vault_id = ctx.claimed.job.target_id.clone();
    let Some(v) = vaults::vault_by_id(pool, &vault_id).await? else {
        return Err(JobError::Failed("the vault was deleted".into()));
    };
    if v.key_custody != KeyCustody::Managed {
        return Err(JobError::Failed(
            "the server cannot read a vault whose key the customer holds".into(),
        ));
    }
    let Some(tenant) = tenants::tenant_by_id(pool, &v.tenant_id).await? else {
        return Err(JobError::Failed("the vault's tenant is gone".into()));
    };
    let found = policies::effective(pool, &v.id, &tenant.path).await?;
    let items = policies::item_policies(pool, &v.id).await?;
    if found.is_none() && items.is_empty() {
        ctx.log(
            "info",
            "no retention policy applies to this vault: every snapshot is kept",
        )
        .await?;
        return Ok(Done {
            summary: serde_json::json!({ "policy_id": null, "snapshots_removed": 0 }),
            warnings: 0,
        });
    }
    let item_rules: Vec<(String, KeepRules)> = items
        .iter()
        .map(|p| (p.item_id.clone().unwrap_or_default(), p.keep.clone()))
        .collect();
    let request = forget_request(found.as_ref().map(|(p, _)| &p.keep), &item_rules)
        .map_err(|e| JobError::Failed(format!("a policy cannot be applied: {e}")))?;
    let policy = found.as_ref().map(|(p, _)| p);
    let policy_id = policy.map(|p| p.id.clone());
    let source = found.as_ref().map_or("items", |(_, s)| s.as_str());
    let dry_run = ctx.claimed.params["dry_run"].as_bool().unwrap_or(false);
    let kek = crate::managed_keys::managed_kek(state, &v)
        .await
        .map_err(|_| JobError::Failed("the vault's key is gone; it cannot be read".into()))?;
    let Some(dest) = state.destinations.get(&v.destination).cloned() else {
        return Err(JobError::transient(
            "the vault's destination is not configured on this node",
            &v.destination,
        ));
    };
    let storage = ServerStorage::new(state, dest, &v.id, ctx.fence())
        .map_err(|e| JobError::transient("opening the vault's destination failed", e))?;
    let storage: Arc<dyn Storage> = Arc::new(storage);
    let (repo, plan) = blocking("reading the vault's snapshots failed", move || {
        let repo = Repository::open(storage, Secret::RawKey(&kek))?;
        let plan = forget::plan(&repo, &request)?;
        Ok((OpenRepo(Some(Arc::new(repo))), plan))
    })
    .await?;
    catch_up(ctx, &repo, &v.tenant_id, &v.id).await?;
    let kept = plan.kept();
    let mut warnings = 0;
    ctx.log(
        "info",
        &format!(
            "{} keeps {kept} snapshots and removes {}{}",
            match &policy_id {
                Some(id) => format!("policy {id} (attached to the {source})"),
                None => "no vault policy".into(),
            },
            plan.remove.len(),
            if items.is_empty() {
                String::new()
            } else {
                format!(" ({} items judged by policies of their own)", items.len())
            }
        ),
    )
    .await?;
    for (name, e) in &plan.damaged {
        warnings += 1;
        ctx.log(
            "warning",
            &format!("snapshot {name} cannot be read, so it is kept: {e}"),
        )
        .await?;
    }
    for id in plan.remove.iter().take(LOGGED) {
        let verb = if dry_run { "would remove" } else { "removing" };
        ctx.log("info", &format!("{verb} snapshot {}", id.to_hex()))
            .await?;
    }
    if dry_run {
        return Ok(Done {
            summary: serde_json::json!({
                "policy_id": policy_id, "dry_run": true, "snapshots_kept": kept,
                "snapshots_removed": 0, "snapshots_to_remove": plan.remove.len(),
            }),
            warnings,
        });
    }
    ctx.check()?;
    let to_remove: Vec<String> = plan.remove.iter().map(|id| id.to_hex()).collect();
    removals::record(
        pool,
        &v.tenant_id,
        &v.id,
        ctx.id(),
        policy_id.as_deref(),
        &to_remove,
    )
    .await?;
    let by_this_run = |snapshot: String| Removal {
        snapshot,
        job_id: ctx.id().to_string(),
        policy_id: policy_id.clone(),
    };
    let forget_repo = repo.get();
    let removed = blocking("removing snapshots failed", move || {
        forget::execute(&forget_repo, &plan)
    })
    .await;
    // What was removed is recorded even when a later removal failed (when the vault cannot
    // be listed either, the next run does it).
    let (removed, locked) = match removed {
        Ok(report) => (report.removed, report.held),
        Err(e) => {
            if let Some(present) = snapshots_in(&repo).await {
                let gone: Vec<Removal> = to_remove
                    .iter()
                    .filter(|s| !present.contains(*s))
                    .map(|s| by_this_run(s.clone()))
                    .collect();
                audit_removed(ctx, &v.tenant_id, &v.id, &gone, &to_remove).await?;
            }
            return Err(e);
        }
    };
    let audited: Vec<Removal> = removed.iter().map(|id| by_this_run(id.to_hex())).collect();
    audit_removed(ctx, &v.tenant_id, &v.id, &audited, &to_remove).await?;
    if !locked.is_empty() {
        ctx.log(
            "info",
            &format!(
                "the vault's retention lock keeps {} of the snapshots to remove; a later run \
                 removes them once it has passed",
                locked.len()
            ),
        )
        .await?;
    }
    ctx.progress(&JobProgress {
        files_done: removed.len() as u64,
        files_total: Some(removed.len() as u64),
        ..Default::default()
    })
    .await?;
    ctx.check()?;
    let opts = PruneOptions {
        max_unused: policy.map_or(DEFAULT_PRUNE_MAX_UNUSED_PERCENT, |p| {
            p.prune_max_unused_percent
        }) / 100.0,
        grace: std::time::Duration::from_secs(
            policy.map_or(DEFAULT_PRUNE_GRACE_SECONDS, |p| p.prune_grace_seconds),
        ),
    };
    let prune_repo = repo.get();
    let (prune_plan, report) = blocking("pruning the vault failed", move || {
        let plan = prune::plan(&prune_repo, &opts)?;
        let shown = serde_json::to_value(&plan).unwrap_or_default();
        let report = prune::execute(&prune_repo, plan)?;
        Ok((shown, report))
    })
    .await?;
    ctx.log(
        "info",
        &format!(
            "pruned: {} packs deleted, {} written, {} index files rewritten{}",
            report.packs_deleted,
            report.packs_written,
            report.index_files_written,
            if report.packs_deferred > 0 {
                format!(
                    "; {} packs wait for running backups and go at the next run",
                    report.packs_deferred
                )
            } else {
                String::new()
            },
        ),
    )
    .await?;
    if report.objects_locked > 0 {
        ctx.log(
            "info",
            &format!(
                "the vault's retention lock keeps {} objects prune would delete; a later run \
                 deletes them once it has passed",
                report.objects_locked
            ),
        )
        .await?;
    }
    // The replicas follow what it removed.
    let mut tx = state.db.begin().await?;
    super::replicate::queue_if_replicated(state, &mut tx, &v, loop_api::JobTrigger::Event).await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    state.jobs_wake.notify_one();
    Ok(Done {
        summary: serde_json::json!({
            "policy_id": policy_id,
            "policy_source": source,
            "item_policies": items.len(),
            "snapshots_kept": kept,
            "snapshots_removed": removed.len(),
            "snapshots_locked": locked.len(),
            "prune_plan": prune_plan,
            "objects_locked": report.objects_locked,
            "packs_deleted": report.packs_deleted,
            "packs_written": report.packs_written,
            "index_files_written": report.index_files_written,
            "index_files_deleted": report.index_files_deleted,
            "packs_deferred": report.packs_deferred,
        }),
        warnings,
    })
}

/// The names of the vault's snapshots; None when they cannot be listed.
async fn snapshots_in(repo: &OpenRepo) -> Option<HashSet<String>> {
    let repo = repo.get();
    tokio::task::spawn_blocking(move || {
        let listed = repo.storage().list(loop_repo::FileKind::Snapshot).ok()?;
        Some(listed.into_iter().map(|o| o.name).collect())
    })
    .await
    .ok()
    .flatten()
}

/// Puts in the audit log the snapshots an earlier run set out to remove and removed, but
/// was cut off before it said so (its server killed); the records of the rest are dropped,
/// as this run judges them again.
async fn catch_up(
    ctx: &JobCtx,
    repo: &OpenRepo,
    tenant_id: &str,
    vault_id: &str,
) -> Result<(), JobError> {
    let recorded = removals::of_vault(&ctx.state.db.pool, vault_id).await?;
    if recorded.is_empty() {
        return Ok(());
    }
    let Some(present) = snapshots_in(repo).await else {
        return Ok(());
    };
    let settled: Vec<String> = recorded.iter().map(|r| r.snapshot.clone()).collect();
    let gone: Vec<Removal> = recorded
        .into_iter()
        .filter(|r| !present.contains(&r.snapshot))
        .collect();
    if !gone.is_empty() {
        ctx.log(
            "info",
            &format!(
                "{} snapshots removed by a run that was cut off are recorded in the audit log now",
                gone.len()
            ),
        )
        .await?;
    }
    audit_removed(ctx, tenant_id, vault_id, &gone, &settled).await
}

/// One `snapshot.delete` event per removed snapshot, by the job that removed it (a system
/// actor); the records of `settled` are dropped in the same transaction.
async fn audit_removed(
    ctx: &JobCtx,
    tenant_id: &str,
    vault_id: &str,
    removed: &[Removal],
    settled: &[String],
) -> Result<(), JobError> {
    let state = &ctx.state;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    for r in removed {
        crate::db::audit::append(
            &mut tx,
            NewEvent {
                tenant_id: tenant_id.to_string(),
                actor_kind: ActorKind::System,
                actor_id: Some(r.job_id.clone()),
                action: "snapshot.delete",
                object_kind: "snapshot",
                object_id: Some(r.snapshot.clone()),
                outcome: Outcome::Success,
                personal: Default::default(),
                details: serde_json::json!({
                    "vault_id": vault_id, "job_id": r.job_id, "policy_id": r.policy_id,
                }),
            },
            now,
        )
        .await?;
    }
    removals::settle(&mut tx, vault_id, settled).await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    Ok(())
}
