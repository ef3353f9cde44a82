//! Scheduled maintenance of vaults: the retention and verify schedules of the policy that
//! applies (the nearest, see `db::policies::effective`) to each managed vault, run by the
//! server, and each customer-key vault with a maintainer, run by that device's agent. Fired
//! like protected items' runs: once across nodes (a conditional update of the run's time), a
//! `skipped` record while the previous run is open, and a verify skipped as well when the
//! vault was verified successfully within `reverify_after_days`.

use loop_api::schedule::next_after_ms;
use loop_api::{AgentRetention, ItemKeepRules, JobKind, JobState, JobTrigger, KeyCustody, Policy};

use crate::db::jobs::{self, NewJob, Runner};
use crate::db::maintenance::{self as runs, Managed};
use crate::db::{DbResult, Timer, advance_timer, policies};
use crate::state::AppState;

const LEEWAY_MS: i64 = 3_600_000;

/// What one pass queued, and recorded as skipped.
#[derive(Default)]
pub struct Fired {
    pub queued: Vec<String>,
    pub skipped: Vec<String>,
}

/// Queues the due maintenance runs of every maintained vault.
pub async fn tick(state: &AppState, now: i64) -> DbResult<Fired> {
    let pool = &state.db.pool;
    let mut report = Fired::default();
    for m in runs::maintained_vaults(pool).await? {
        let policy = policies::effective(pool, &m.vault.id, &m.path)
            .await?
            .map(|(p, _)| p);
        for kind in [JobKind::Retention, JobKind::Verify] {
            vault_kind(state, &m, policy.as_ref(), kind, now, &mut report).await?;
        }
    }
    Ok(report)
}

async fn vault_kind(
    state: &AppState,
    m: &Managed,
    policy: Option<&Policy>,
    kind: JobKind,
    now: i64,
    report: &mut Fired,
) -> DbResult<()> {
    let pool = &state.db.pool;
    let schedule = policy.and_then(|p| match kind {
        JobKind::Retention => p.maintenance.retention_schedule.as_deref(),
        _ => p.maintenance.verify_schedule.as_deref(),
    });
    let stored = runs::next_run(pool, &m.vault.id, kind.as_str()).await?;
    let Some(schedule) = schedule else {
        if stored.is_some() {
            runs::set_next_run(pool, &m.vault.id, kind.as_str(), None, None).await?;
        }
        return Ok(());
    };
    let next = |after| next_after_ms(schedule, &m.time_zone, after);
    let due = match stored {
        Some((s, Some(due))) if s == schedule => due,
        Some((s, None)) if s == schedule => return Ok(()),
        // New, or the schedule changed: the first run is the next one from now.
        _ => {
            return runs::set_next_run(pool, &m.vault.id, kind.as_str(), Some(schedule), next(now))
                .await;
        }
    };
    if due > now {
        return Ok(());
    }
    let p = policy.expect("a schedule comes from a policy");
    let params = match kind {
        JobKind::Retention => serde_json::json!({ "dry_run": false }),
        _ => serde_json::json!({ "read_data_percent": p.maintenance.verify_read_data_percent }),
    };
    let runner = match m.vault.key_custody {
        KeyCustody::Managed => Runner::Server,
        _ => Runner::Agent,
    };
    let job = NewJob {
        runner,
        tenant_id: &m.vault.tenant_id,
        kind,
        target_kind: "vault",
        target_id: &m.vault.id,
        scheduled_at: now,
        trigger: JobTrigger::Schedule,
        started_by_id: None,
        max_attempts: state.config.jobs.max_attempts,
        params,
        deadline_at: None,
    };
    let fresh = match (kind, p.maintenance.reverify_after_days) {
        (JobKind::Verify, Some(days)) => runs::last_success(pool, &m.vault.id, kind.as_str())
            .await?
            // With an hour's leeway: a verify that ended a few minutes after its own time
            // still counts as N days old N daily runs later.
            .filter(|at| now + LEEWAY_MS - at < days as i64 * 86_400_000),
        _ => None,
    };
    let mut tx = state.db.begin().await?;
    let timer = Timer::VaultRun {
        vault_id: &m.vault.id,
        kind: kind.as_str(),
    };
    if !advance_timer(&mut tx, timer, due, next(now)).await? {
        return Ok(()); // another node fired it
    }
    if let Some(at) = fresh {
        let why = format!(
            "verified successfully {} days ago, within reverify_after_days",
            (now - at) / 86_400_000
        );
        let id = jobs::record_ended(&mut tx, &job, JobState::Skipped, &why, now).await?;
        report.skipped.push(id);
    } else {
        match jobs::enqueue_new(&mut tx, &job, now).await? {
            Some(id) => report.queued.push(id),
            None => {
                let why = "the previous run for this vault was still queued or running";
                let id = jobs::record_ended(&mut tx, &job, JobState::Skipped, why, now).await?;
                report.skipped.push(id);
            }
        }
    }
    tx.commit().await?;
    state.jobs_wake.notify_one();
    Ok(())
}

/// The parameters of a retention job the maintainer's agent of the customer-key vault
/// `vault_id` runs (filled in when the agent claims it, so they are the policy of that
/// moment): the policy's rules and the snapshots the server would not let it delete yet.
pub async fn agent_retention(
    state: &AppState,
    vault_id: &str,
    dry_run: bool,
) -> DbResult<AgentRetention> {
    let pool = &state.db.pool;
    let Some(v) = crate::db::vaults::vault_by_id(pool, vault_id).await? else {
        return Ok(AgentRetention::nothing(dry_run));
    };
    let found = policies::effective_for_vault(pool, &v).await?;
    let item_rules: Vec<ItemKeepRules> = policies::item_policies(pool, &v.id)
        .await?
        .into_iter()
        .map(|p| ItemKeepRules {
            item_id: p.item_id.unwrap_or_default(),
            keep: p.keep,
        })
        .collect();
    let mut r = AgentRetention::nothing(dry_run);
    if let Some((p, _)) = found {
        r.policy_id = Some(p.id);
        r.keep = p.keep;
        r.prune_max_unused_percent = p.prune_max_unused_percent;
        r.prune_grace_seconds = p.prune_grace_seconds;
        r.min_snapshot_age_days = p.maintenance.min_snapshot_age_days;
        r.deletion_grace_hours = p.maintenance.deletion_grace_hours;
    }
    let since = state.now() - r.min_snapshot_age_days as i64 * 86_400_000;
    r.young_snapshots = crate::db::deletions::snapshots_stored_after(pool, &v.id, since).await?;
    r.item_rules = item_rules;
    Ok(r)
}
