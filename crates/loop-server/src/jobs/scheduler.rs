//! The scheduler: turns protected items' schedules into backup jobs.
//!
//! Each node ticks ([`run_scheduler`], every `jobs.scheduler_seconds`); a tick ([`tick`])
//! first marks queued runs whose window passed as `missed`, then fires every item whose
//! next run is due, then the due maintenance of managed vaults (`super::maintenance`), then
//! sweeps the staging objects of expired direct uploads (`vault_objects::direct`) and settles
//! the object claims of requests that died (`vault_objects::settle_lapsed`). Firing
//! moves the item's `next_run_at` on with a conditional update, so of several nodes
//! exactly one fires each run, and queues the run in the same transaction:
//!
//! - due and within its window: a `backup` job, due at its time plus a random delay of up
//!   to `jitter_seconds`, missed if not started `window_seconds` after its time;
//! - the same item still has a run open: a `skipped` record instead (skip-if-running);
//! - its window passed before any node fired it (every node was down): a `missed` record,
//!   and, when the next run is more than a window away, a catch-up run at once.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use loop_api::schedule::{Schedule, Tz, next_after_ms, parse_time_zone};
use loop_api::{JobKind, JobState, JobTrigger, ProtectedItem};
use rand::RngExt as _;

use crate::db::jobs::{self, NewJob};
use crate::db::{DbResult, Timer, Tx, advance_timer, items, tenants};
use crate::state::AppState;

/// Moves every run of tenant `tenant_id` not yet due at `now` (its items', sync jobs' and
/// vaults' maintenance, its targets' summaries) to the next time of its schedule in the tenant's new `time_zone`,
/// in the transaction that changes the zone. A run already due keeps its time, so it fires
/// (or is recorded missed) as it would have. Returns how many moved.
pub async fn rezone(tx: &mut Tx, tenant_id: &str, time_zone: &str, now: i64) -> DbResult<usize> {
    let mut moved = 0;
    for t in crate::db::pending_timers(tx, tenant_id, now).await? {
        let next = next_after_ms(&t.schedule, time_zone, now);
        if next == Some(t.next_run_at) {
            continue;
        }
        let timer = match t.table {
            "item" => Timer::Item(&t.id),
            "sync" => Timer::Sync(&t.id),
            "summary" => Timer::Summary(&t.id),
            _ => Timer::VaultRun {
                vault_id: &t.id,
                kind: &t.kind,
            },
        };
        if advance_timer(tx, timer, t.next_run_at, next).await? {
            moved += 1;
        }
    }
    Ok(moved)
}

/// Items fired per tick at most; the rest wait for the next tick.
const PER_TICK: u32 = 1000;

/// What one tick did.
#[derive(Debug, Default)]
pub struct TickReport {
    /// Jobs queued: backups (catch-up runs included) and vaults' scheduled maintenance.
    pub queued: Vec<String>,
    /// Runs recorded as skipped: the previous run was still open, or (a verify) the vault
    /// was verified recently enough.
    pub skipped: Vec<String>,
    /// Runs recorded as missed, or queued runs that became missed.
    pub missed: Vec<String>,
    /// Running agent jobs whose agent stopped renewing their lease.
    pub abandoned: Vec<String>,
    /// Direct uploads whose URL expired: their staging objects removed.
    pub staging_swept: usize,
    /// Claims of requests that died, no later request took over, settled against what
    /// storage holds (`vault_objects::settle_lapsed`).
    pub claims_settled: usize,
    /// Sessions ended more than `session.ended_data_days` ago that lost their IP address,
    /// browser and device.
    pub session_data_cleared: u64,
    /// Audit events older than `privacy.audit_personal_days` whose IP address and browser
    /// were removed.
    pub audit_personal_cleared: u64,
    /// Personal-data archives whose download period ended, deleted.
    pub exports_expired: u64,
    /// Records of mail that finished more than `privacy.mail_days` ago, deleted.
    pub mail_forgotten: u64,
}

/// The next run of `item` strictly after `after`, in its tenant's time zone; `None` when it
/// has no schedule (or one that no longer reads, which is logged).
pub fn next_run(item: &ProtectedItem, time_zone: &str, after: DateTime<Utc>) -> Option<i64> {
    Schedules::default().next_run(item, time_zone, after)
}

/// Parsed schedules and time zones by their text, for passes over many items that share a
/// few of each (parsing costs more than finding the next time).
#[derive(Default)]
pub struct Schedules {
    parsed: HashMap<String, Option<Schedule>>,
    zones: HashMap<String, Tz>,
}

impl Schedules {
    /// [`next_run`], parsing each schedule and zone once.
    pub fn next_run(
        &mut self,
        item: &ProtectedItem,
        time_zone: &str,
        after: DateTime<Utc>,
    ) -> Option<i64> {
        let text = item.schedule.as_deref()?;
        let schedule = self
            .parsed
            .entry(text.to_string())
            .or_insert_with(|| match Schedule::parse(text) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(item = %item.id, error = %e, "an item's schedule does not read");
                    None
                }
            })
            .as_ref()?;
        let tz = *self.zones.entry(time_zone.to_string()).or_insert_with(|| {
            parse_time_zone(time_zone)
                .or_else(|_| parse_time_zone("UTC"))
                .expect("UTC is a time zone")
        });
        schedule.next_after(after, tz).map(|t| t.timestamp_millis())
    }
}

fn backup_job<'a>(item: &'a ProtectedItem, due: i64, params: serde_json::Value) -> NewJob<'a> {
    NewJob {
        runner: crate::db::jobs::Runner::Agent,
        tenant_id: &item.tenant_id,
        kind: JobKind::Backup,
        target_kind: "item",
        target_id: &item.id,
        scheduled_at: due,
        trigger: JobTrigger::Schedule,
        started_by_id: None,
        max_attempts: 1,
        params,
        deadline_at: Some(due + item.window_seconds as i64 * 1000),
    }
}

/// Queues a run of `item` at `at`, or records it as skipped when a run is still open.
async fn queue_run(
    tx: &mut Tx,
    item: &ProtectedItem,
    at: i64,
    params: serde_json::Value,
    now: i64,
    report: &mut TickReport,
) -> DbResult<()> {
    let job = backup_job(item, at, params);
    match jobs::enqueue_new(tx, &job, now).await? {
        Some(id) => report.queued.push(id),
        None => {
            let id = jobs::record_ended(
                tx,
                &job,
                JobState::Skipped,
                "the previous run of this item was still queued or running",
                now,
            )
            .await?;
            report.skipped.push(id);
        }
    }
    Ok(())
}

/// One round of the scheduler at the state's clock.
pub async fn tick(state: &AppState) -> DbResult<TickReport> {
    let pool = &state.db.pool;
    let now = state.now();
    let mut report = TickReport::default();
    for j in jobs::miss_overdue(pool, now).await? {
        tracing::warn!(job = %j.id, item = %j.target_id, "a scheduled run missed its window");
        report.missed.push(j.id);
    }
    for id in crate::db::agents::abandon_lapsed_agent_jobs(pool, now).await? {
        tracing::warn!(job = %id, "an agent stopped reporting on its job; abandoned");
        report.abandoned.push(id);
    }
    let now_time = crate::db::time(now);
    let mut zones: HashMap<String, String> = Default::default();
    let mut schedules = Schedules::default();
    for item in items::due(pool, now, PER_TICK).await? {
        let Some(due) = item.next_run_at.map(|t| t.timestamp_millis()) else {
            continue;
        };
        if !zones.contains_key(&item.tenant_id) {
            let tz = tenants::tenant_by_id(pool, &item.tenant_id)
                .await?
                .map(|t| t.tenant.time_zone)
                .unwrap_or_else(|| "UTC".into());
            zones.insert(item.tenant_id.clone(), tz);
        }
        let next = schedules.next_run(&item, &zones[&item.tenant_id], now_time);
        let window = item.window_seconds as i64 * 1000;
        let mut tx = state.db.begin().await?;
        if !advance_timer(&mut tx, Timer::Item(&item.id), due, next).await? {
            // Another node fired it.
            continue;
        }
        if now - due <= window {
            let jitter = if item.jitter_seconds > 0 {
                rand::rng().random_range(0..=item.jitter_seconds as i64 * 1000)
            } else {
                0
            };
            let at = (due + jitter).min(due + window);
            queue_run(&mut tx, &item, at, serde_json::json!({}), now, &mut report).await?;
        } else {
            let id = jobs::record_ended(
                &mut tx,
                &backup_job(&item, due, serde_json::json!({})),
                JobState::Missed,
                "no server was running when it was due",
                now,
            )
            .await?;
            report.missed.push(id);
            if next.is_none_or(|n| n - now > window) {
                let params = serde_json::json!({ "catch_up": true, "missed_at": due });
                queue_run(&mut tx, &item, now, params, now, &mut report).await?;
            }
        }
        tx.commit().await?;
    }
    let fired = super::maintenance::tick(state, now).await?;
    report.queued.extend(fired.queued);
    report.skipped.extend(fired.skipped);
    report
        .queued
        .extend(super::replicate::tick(state, now).await?);
    report.queued.extend(super::sync::tick(state, now).await?);
    report.staging_swept = crate::vault_objects::direct::sweep(state).await?;
    report.claims_settled = crate::vault_objects::settle_lapsed(state).await?;
    let keep_ms = state.config.session.ended_data_days as i64 * 86_400_000;
    report.session_data_cleared =
        crate::db::sessions::clear_ended_personal(pool, now - keep_ms).await?;
    let keep_ms = state.config.privacy.audit_personal_days as i64 * 86_400_000;
    report.audit_personal_cleared =
        crate::db::audit::clear_personal_before(pool, now - keep_ms).await?;
    report.exports_expired = crate::db::exports::expire(pool, now).await?;
    let keep_ms = state.config.privacy.mail_days as i64 * 86_400_000;
    report.mail_forgotten = crate::db::outbox::forget_finished(pool, now - keep_ms).await?;
    if report.session_data_cleared > 0
        || report.audit_personal_cleared > 0
        || report.exports_expired > 0
        || report.mail_forgotten > 0
    {
        crate::db::scrub(&state.db).await?;
    }
    Ok(report)
}

/// Ticks every `jobs.scheduler_seconds` until the task is dropped.
pub async fn run_scheduler(state: AppState) {
    let every = std::time::Duration::from_secs(state.config.jobs.scheduler_seconds.max(1));
    loop {
        if let Err(e) = tick(&state).await {
            tracing::warn!(error = %e, "scheduler tick");
        }
        if let Err(e) = crate::billing::tick(&state).await {
            tracing::warn!(error = ?e, "subscription lifecycle tick");
        }
        tokio::time::sleep(every).await;
    }
}
