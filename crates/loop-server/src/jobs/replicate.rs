//! The replication of a vault to its replicas (one job per vault, for all its replicas, or
//! the one its `replica_id` names) and the verify of a replica. See `crate::replication` for
//! how objects move.

use std::sync::Arc;

use loop_api::{EventKind, JobKind, JobProgress, JobTrigger, KeyCustody, ReplicaState, Vault};
use loop_repo::FileKind;

use super::{Done, JobCtx, JobError};
use crate::db::jobs::Runner;
use crate::db::notify::{self, NewEvent};
use crate::db::replicas::{self, ReplicaRow};
use crate::db::{DbResult, Tx, vaults};
use crate::destinations::Destination;
use crate::replication::{self, Place, SyncError, SyncOptions, SyncReport};
use crate::state::AppState;

/// Queues a replication of `vault` in the caller's transaction, when it has replicas (one
/// already queued or running takes it: a run goes round until nothing new arrived).
pub async fn queue_if_replicated(
    state: &AppState,
    tx: &mut Tx,
    vault: &Vault,
    trigger: JobTrigger,
) -> DbResult<Option<String>> {
    if !replicas::any(tx, &vault.id).await? {
        return Ok(None);
    }
    let id = super::queue(
        state,
        tx,
        super::Work {
            runner: Runner::Server,
            tenant_id: &vault.tenant_id,
            kind: JobKind::Replication,
            target: ("vault", &vault.id),
            trigger,
            started_by_id: None,
            params: serde_json::json!({}),
        },
    )
    .await?;
    Ok(Some(id))
}

fn vault_and_primary(
    ctx: &JobCtx,
    v: Option<Vault>,
) -> Result<(Vault, Arc<Destination>), JobError> {
    let Some(v) = v else {
        return Err(JobError::Failed("the vault was deleted".into()));
    };
    let Some(primary) = ctx.state.destinations.get(&v.destination).cloned() else {
        return Err(JobError::transient(
            "the vault's destination is not configured on this node",
            &v.destination,
        ));
    };
    Ok((v, primary))
}

/// The job's replicas: all of the vault's, or the one `replica_id` names.
async fn targets(ctx: &JobCtx, vault_id: &str) -> Result<Vec<ReplicaRow>, JobError> {
    let all = replicas::of_vault(&ctx.state.db.pool, vault_id).await?;
    Ok(match ctx.claimed.params["replica_id"].as_str() {
        Some(id) => all.into_iter().filter(|r| r.id == id).collect(),
        None => all,
    })
}

pub(super) async fn run(ctx: &JobCtx) -> Result<Done, JobError> {
    let state = &ctx.state;
    let pool = &state.db.pool;
    let vault_id = ctx.claimed.job.target_id.clone();
    let (v, primary) = vault_and_primary(ctx, vaults::vault_by_id(pool, &vault_id).await?)?;
    // Residency is asked again at every run: a tenant narrowed since a replica was added
    // gets nothing new copied there (what is there stays until the replica is removed).
    let chain = match crate::db::tenants::tenant_by_id(pool, &v.tenant_id).await? {
        Some(t) => crate::db::residency::chain(pool, &t.path).await?,
        None => return Err(JobError::Failed("the vault's tenant is gone".into())),
    };
    // Each replica's sync goes round for what arrives while it runs; what arrived while a
    // later replica was copied, or a request that joined the job meanwhile, sends the
    // replicas round again (a few passes at most).
    let mut ended: Vec<(String, Ended)> = Vec::new();
    // After the first pass: the replicas that go round again (and any added since).
    let mut again: Option<Vec<String>> = None;
    for pass in 1..=MAX_PASSES {
        // Read before the replicas and the vault's records: a request that joins the job
        // after this is answered by another pass, or by the job running again.
        let asked = ctx.asked_again().await?;
        let targets = targets(ctx, &vault_id).await?;
        let pending: Vec<&ReplicaRow> = targets
            .iter()
            .filter(|r| {
                again.as_ref().is_none_or(|ids| ids.contains(&r.id))
                    || !ended.iter().any(|(id, _)| *id == r.id)
            })
            .collect();
        if pending.len() == targets.len() {
            ctx.answering(asked);
        }
        if pending.is_empty() {
            if pass == 1 {
                ctx.log("info", "the vault has no replica to bring up to date")
                    .await?;
            }
            break;
        }
        let at_start = replication::recorded(pool, &vault_id, None).await?;
        let mut synced = Vec::new();
        for r in pending {
            ctx.check()?;
            let mut end = replicate_one(ctx, (&vault_id, &primary), &chain, r).await?;
            if let Ended::Synced { report, .. } = &mut end {
                synced.push(r);
                // The summary counts what every pass copied.
                if let Some((_, Ended::Synced { report: before, .. })) =
                    ended.iter().find(|(id, _)| *id == r.id)
                {
                    *report = before.then(report);
                }
            }
            ended.retain(|(id, _)| *id != r.id);
            ended.push((r.id.clone(), end));
        }
        if synced.is_empty() || pass == MAX_PASSES {
            break;
        }
        let arrived = (synced.len() > 1
            && replication::recorded(pool, &vault_id, None)
                .await?
                .difference(&at_start)
                .any(|o| replication::COPY_ORDER.contains(&o.0)))
            || ctx.asked_again().await? != asked;
        // A verify that found one damaged after it was brought up to date dropped its
        // wrong copies and made this job its repair.
        let damaged: Vec<String> = replicas::of_vault(pool, &vault_id)
            .await?
            .into_iter()
            .filter(|r| r.state == ReplicaState::Damaged)
            .map(|r| r.id)
            .collect();
        // The last one copied took what arrived; going again it only compares.
        let next: Vec<String> = synced
            .into_iter()
            .filter(|r| arrived || damaged.contains(&r.id))
            .map(|r| r.id.clone())
            .collect();
        if next.is_empty() {
            break;
        }
        again = Some(next);
    }
    let (mut summaries, mut failures, mut refused, mut warnings) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    for (replica_id, end) in ended {
        match end {
            Ended::Synced {
                destination,
                report,
                warned,
            } => {
                summaries.push(serde_json::json!({
                    "replica_id": replica_id, "destination": destination, "report": report,
                }));
                warnings += warned;
            }
            Ended::Failed(e) => failures.push(e),
            Ended::Refused(e) => refused.push(e),
        }
    }
    if !failures.is_empty() {
        return Err(JobError::Transient(failures.join("; ")));
    }
    if !refused.is_empty() {
        return Err(JobError::Failed(refused.join("; ")));
    }
    Ok(Done {
        summary: serde_json::json!({ "replicas": summaries }),
        warnings,
    })
}

/// Passes over a vault's replicas in one replication job.
const MAX_PASSES: u32 = 3;

/// How one replica's replication ended.
enum Ended {
    Synced {
        destination: String,
        report: SyncReport,
        warned: u32,
    },
    /// Worth another attempt (a storage error, a destination this node lacks).
    Failed(String),
    /// Refused for good (the tenant's residency).
    Refused(String),
}

/// Brings replica `r` up to the primary, unless the tenant's residency (`chain`) no longer
/// admits its destination.
async fn replicate_one(
    ctx: &JobCtx,
    (vault_id, primary): (&str, &Arc<Destination>),
    chain: &[Option<Vec<String>>],
    r: &ReplicaRow,
) -> Result<Ended, JobError> {
    let state = &ctx.state;
    let pool = &state.db.pool;
    let Some(dest) = state.destinations.get(&r.destination).cloned() else {
        let e = format!(
            "destination {} is not configured on this node",
            r.destination
        );
        replicas::failed(pool, &r.id, &e).await?;
        return Ok(Ended::Failed(e));
    };
    if !state.jurisdictions.admits(chain, &dest.jurisdiction) {
        let e = format!(
            "the tenant's residency no longer admits {} ({}): nothing is copied there; \
             remove the replica",
            r.destination, dest.jurisdiction
        );
        replicas::failed(pool, &r.id, &e).await?;
        ctx.log("error", &e).await?;
        return Ok(Ended::Refused(e));
    }
    let from = state.now();
    let opts = SyncOptions {
        transfers: state.config.replication.transfers.max(1) as usize,
        remove_vanished: true,
        bytes_per_sec: state.config.replication.bytes_per_sec,
        guard: Some(vault_id.to_string()),
    };
    let (source, target) = (
        Place::stored(primary, vault_id),
        Place::stored(&dest, vault_id),
    );
    let report = match sync_reporting(ctx, &source, &target, &opts).await? {
        Ok(report) => report,
        Err(e) => {
            // The detail (a storage error) goes to the server log; the tenant sees what.
            let incident = crate::domain::new_id("inc");
            tracing::warn!(%incident, replica = %r.id, error = %e, "replication failed");
            let shown = format!(
                "replicating to {} failed; incident {incident} is in the server log",
                r.destination
            );
            replicas::failed(pool, &r.id, &shown).await?;
            ctx.log("warning", &shown).await?;
            return Ok(Ended::Failed(shown));
        }
    };
    let mut warned = 0;
    if report.primary_missing > 0 {
        warned += 1;
        ctx.log(
            "warning",
            &format!(
                "the primary ({}) lacks {} objects the vault's records hold: it lost data; the \
                 replica at {} keeps its copies (promote it, or repair the primary)",
                primary.name, report.primary_missing, r.destination
            ),
        )
        .await?;
    }
    if report.primary_damaged > 0 {
        warned += 1;
        ctx.log(
            "warning",
            &format!(
                "the primary ({}) holds {} objects at another size than they were stored at: \
                 they are damaged there; the replica at {} keeps its copies as stored (promote \
                 it, or repair the primary)",
                primary.name, report.primary_damaged, r.destination
            ),
        )
        .await?;
    }
    replicas::synced(pool, &r.id, from, state.now()).await?;
    ctx.log(
        "info",
        &format!(
            "replica at {}: {} objects ({} bytes) copied, {} removed, {} rounds",
            r.destination,
            report.objects_copied,
            report.bytes_copied,
            report.objects_removed,
            report.rounds
        ),
    )
    .await?;
    Ok(Ended::Synced {
        destination: r.destination.clone(),
        report,
        warned,
    })
}

/// Runs [`replication::sync`], reporting its progress as the job's, and checks that the job
/// may still go on when it ends.
///
/// The sync and the reporting are polled together, never one while the other waits: a sync
/// paused in the middle of a query would hold its pooled connection while the report waited
/// for one (with a small pool, until the pool's timeout).
pub(super) async fn sync_reporting(
    ctx: &JobCtx,
    source: &Place,
    target: &Place,
    opts: &SyncOptions,
) -> Result<Result<SyncReport, SyncError>, JobError> {
    let stop = || ctx.check().map_err(|e| format!("{e:?}"));
    let (tx, mut rx) = tokio::sync::watch::channel(SyncReport::default());
    let syncing = async {
        let mut publish = move |r: &SyncReport| {
            let _ = tx.send(r.clone());
        };
        // `publish` (the sender) goes when the sync ends, which ends the reporting.
        Ok(replication::sync(
            &ctx.state.db.pool,
            source,
            target,
            opts,
            &stop,
            &mut publish,
        )
        .await)
    };
    let reporting = async {
        while rx.changed().await.is_ok() {
            let r = rx.borrow_and_update().clone();
            ctx.progress(&JobProgress {
                files_done: r.objects_copied,
                bytes_done: r.bytes_copied,
                ..Default::default()
            })
            .await?;
        }
        Ok::<_, JobError>(())
    };
    let (result, ()) = tokio::try_join!(syncing, reporting)?;
    ctx.check()?;
    Ok(result)
}

/// Verifies one replica (`replica_id`): compares it with the primary and, with
/// `read_data`, reads it. A damaged replica is marked so (reads stop using it), raises
/// `replica-damaged`, has its wrong copies dropped and a replication queued to repair it.
pub(super) async fn verify(ctx: &JobCtx) -> Result<Done, JobError> {
    let state = &ctx.state;
    let pool = &state.db.pool;
    let vault_id = ctx.claimed.job.target_id.clone();
    let (v, primary) = vault_and_primary(ctx, vaults::vault_by_id(pool, &vault_id).await?)?;
    let Some(r) = targets(ctx, &vault_id).await?.into_iter().next() else {
        return Err(JobError::Failed("the replica was removed".into()));
    };
    let Some(dest) = state.destinations.get(&r.destination).cloned() else {
        return Err(JobError::transient(
            "the replica's destination is not configured on this node",
            &r.destination,
        ));
    };
    let read_data = ctx.claimed.params["read_data"].as_bool().unwrap_or(false);
    // What arrived after the last replication began may be missing without damage.
    let young = replication::recorded(pool, &vault_id, r.synced_from).await?;
    let lagging = |kind: FileKind, name: &str| young.contains(&(kind, name.to_string()));
    let stop = || ctx.check().map_err(|e| format!("{e:?}"));
    let (source, target) = (
        Place::stored(&primary, &vault_id),
        Place::stored(&dest, &vault_id),
    );
    let stored = replication::as_stored(pool, &vault_id).await?;
    let compared =
        replication::compare(&source, &target, read_data, &stored, &lagging, &stop).await;
    // A cancel stops the comparison with an error: it is the cancel, not a failure to retry.
    ctx.check()?;
    let mut d = compared.map_err(|e| JobError::transient("comparing the replica failed", e))?;
    let young = replication::recorded(pool, &vault_id, r.synced_from).await?;
    let now_stored = replication::as_stored(pool, &vault_id).await?;
    replication::still_owed(&mut d.missing, &young, &stored, &now_stored);
    let mut problems: Vec<String> = Vec::new();
    for (what, list) in [
        ("missing", &d.missing),
        ("of another size", &d.resized),
        ("altered", &d.altered),
    ] {
        for o in list.iter().take(50) {
            ctx.log("error", &format!("{o}: {what} on the replica"))
                .await?;
        }
        if !list.is_empty() {
            problems.push(format!("{} objects {what}", list.len()));
        }
    }
    // A managed vault's replica is also read as the engine reads it, with the key.
    let mut check_errors = 0;
    if read_data && v.key_custody == KeyCustody::Managed && r.state != ReplicaState::Seeding {
        let report = super::verify::engine_check(ctx, &v, &dest, 100.0).await?;
        for e in report.errors.iter().take(50) {
            ctx.log("error", &format!("replica: {e}")).await?;
        }
        for p in report.damaged.iter().take(50) {
            ctx.log("error", &format!("replica pack {}: {}", p.pack, p.reason))
                .await?;
        }
        check_errors = report.errors.len() + report.damaged.len();
        if check_errors > 0 {
            problems.push(format!("{check_errors} findings of the engine's check"));
        }
    }
    let ok = problems.is_empty();
    replicas::verified(pool, &r.id, ok, state.now()).await?;
    // The primary's damage is not the replica's: its copies stay, and the job says so.
    for o in d.primary_damaged.iter().take(50) {
        ctx.log(
            "error",
            &format!("{o}: damaged at the primary; the replica's copy is as it was stored"),
        )
        .await?;
    }
    let summary = serde_json::json!({
        "replica_id": r.id, "destination": r.destination, "read_data": read_data, "ok": ok,
        "objects_compared": d.objects_compared, "bytes_read": d.bytes_read,
        "missing": d.missing.len(), "resized": d.resized.len(), "altered": d.altered.len(),
        "extra": d.extra.len(), "check_errors": check_errors,
        "primary_damaged": d.primary_damaged.len(),
    });
    let primary_damage = (!d.primary_damaged.is_empty()).then(|| {
        format!(
            "{} objects are damaged at the primary ({}); the replica at {} holds them as they \
             were stored: promote it, or copy them back",
            d.primary_damaged.len(),
            primary.name,
            r.destination
        )
    });
    if ok && let Some(m) = primary_damage {
        return Err(JobError::Failed(m));
    }
    if ok {
        ctx.log(
            "info",
            &format!(
                "the replica at {} matches the primary ({} objects compared{})",
                r.destination,
                d.objects_compared,
                if read_data { ", every byte read" } else { "" }
            ),
        )
        .await?;
        return Ok(Done {
            summary,
            warnings: 0,
        });
    }
    let mut message = format!(
        "the replica at {} is damaged: {}",
        r.destination,
        problems.join(", ")
    );
    if let Some(m) = primary_damage {
        message = format!("{message}; {m}");
    }
    // Wrong copies go, so the repair copies them again from the primary.
    let wrong: Vec<String> = d.resized.iter().chain(&d.altered).cloned().collect();
    replication::drop_copies(&dest, &vault_id, &wrong)
        .await
        .map_err(|e| JobError::transient("dropping the replica's damaged copies failed", e))?;
    let now = state.now();
    // Found damaged again once the copies are gone: a replication of the replica that began
    // before now may have listed them, and leaves it damaged (see `replicas::synced`).
    replicas::verified(pool, &r.id, false, now).await?;
    let mut tx = state.db.begin().await?;
    notify::raise(
        &mut tx,
        NewEvent {
            tenant_id: &v.tenant_id,
            kind: EventKind::ReplicaDamaged,
            subject: Some(("vault", &v.id)),
            message: message.clone(),
            details: summary.clone(),
            dedupe_key: Some(format!("replica-damaged:{}", ctx.id())),
        },
        None,
        now,
    )
    .await?;
    // A replication of all the vault's replicas: a backup's that joins it is answered too.
    let repair = queue_if_replicated(state, &mut tx, &v, JobTrigger::System).await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    state.jobs_wake.notify_one();
    state.notify_wake.notify_one();
    Err(JobError::Failed(match repair {
        Some(id) => format!("{message}; replication {id} repairs it"),
        None => message,
    }))
}

/// Queues the replications the schedule has due (`replication.interval_minutes` after the
/// last); once across nodes. Returns the jobs queued.
pub async fn tick(state: &AppState, now: i64) -> DbResult<Vec<String>> {
    let pool = &state.db.pool;
    let every = state.config.replication.interval_minutes.max(1) as i64 * 60_000;
    let mut queued = Vec::new();
    for (vault_id, _) in replicas::due(pool, now, 200).await? {
        let Some(v) = vaults::vault_by_id(pool, &vault_id).await? else {
            continue;
        };
        let mut tx = state.db.begin().await?;
        if !replicas::advance(&mut tx, &vault_id, now, now + every).await? {
            continue;
        }
        if let Some(id) = queue_if_replicated(state, &mut tx, &v, JobTrigger::Schedule).await? {
            queued.push(id);
        }
        tx.commit().await?;
    }
    if !queued.is_empty() {
        state.jobs_wake.notify_one();
    }
    Ok(queued)
}

/// Raises `replica-behind` for each replica that has not completed a replication for
/// `replication.behind_hours` (once per replica and last completion).
pub async fn raise_behind(state: &AppState, now: i64) -> DbResult<()> {
    let before = now - state.config.replication.behind_hours as i64 * 3_600_000;
    for (r, tenant_id) in replicas::behind(&state.db.pool, before).await? {
        let since = r.synced_at.unwrap_or(r.created_at);
        let mut tx = state.db.begin().await?;
        notify::raise(
            &mut tx,
            NewEvent {
                tenant_id: &tenant_id,
                kind: EventKind::ReplicaBehind,
                subject: Some(("vault", &r.vault_id)),
                message: format!(
                    "the replica of vault {} at {} has not completed a replication since {}",
                    r.vault_id,
                    r.destination,
                    crate::db::time(since).format("%Y-%m-%d %H:%M UTC")
                ),
                details: serde_json::json!({
                    "vault_id": r.vault_id, "replica_id": r.id, "destination": r.destination,
                    "synced_at": r.synced_at, "last_error": r.last_error,
                }),
                dedupe_key: Some(format!(
                    "replica-behind:{}:{}",
                    r.id,
                    r.synced_at.unwrap_or(0)
                )),
            },
            None,
            now,
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
