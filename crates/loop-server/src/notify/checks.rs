//! The checks that raise events from what they find. Each event carries a dedupe key, so
//! whichever node finds a thing first raises it, once: a job's end, an item's missed run,
//! a device's quiet spell, a vault's day over 90%, a target's summary.

use loop_api::schedule::next_after_ms;
use loop_api::{EventKind, Job, JobState, SummaryPeriod};

use crate::db::notify::{self, NewEvent};
use crate::db::{DbResult, Timer, advance_timer, devices, items, tenants, time, vaults, watch};
use crate::jobs::scheduler::Schedules;
use crate::state::AppState;

/// Jobs ended this long ago at most are looked at (older ones were looked at before).
const LOOK_BACK_MS: i64 = 24 * 3_600_000;
const PAGE: u32 = 200;

/// Raises the event of each job that ended failed, abandoned, missed or with warnings.
pub async fn ended_jobs(state: &AppState) -> DbResult<()> {
    loop {
        let now = state.now();
        let jobs = watch::ended_jobs_unreported(&state.db.pool, now - LOOK_BACK_MS, PAGE).await?;
        let full = jobs.len() as u32 == PAGE;
        for j in jobs {
            job_event(state, &j, now).await?;
        }
        if !full {
            return Ok(());
        }
    }
}

/// The name of what a job worked on, and its device's name when it has one.
async fn job_target(state: &AppState, j: &Job) -> DbResult<(String, Option<String>)> {
    let pool = &state.db.pool;
    let device_name = |id: String| async move {
        DbResult::Ok(devices::device_by_id(pool, &id).await?.map(|d| d.name))
    };
    Ok(match j.target_kind.as_str() {
        "item" => match items::item_by_id(pool, &j.target_id).await? {
            Some(i) => (i.name, device_name(i.device_id).await?),
            None => (j.target_id.clone(), None),
        },
        "device" => {
            let name = device_name(j.target_id.clone()).await?;
            (name.clone().unwrap_or_else(|| j.target_id.clone()), name)
        }
        "vault" => {
            let v = match vaults::vault_by_id(pool, &j.target_id).await? {
                Some(v) => Some(v),
                None => vaults::deleted_vault(pool, &j.target_id).await?,
            };
            (v.map_or_else(|| j.target_id.clone(), |v| v.name), None)
        }
        _ => (j.target_id.clone(), None),
    })
}

async fn job_event(state: &AppState, j: &Job, now: i64) -> DbResult<()> {
    let kind = match j.state {
        JobState::Failed | JobState::Abandoned => EventKind::JobFailed,
        JobState::SucceededWithWarnings => EventKind::JobWarnings,
        JobState::Missed => EventKind::JobMissed,
        _ => return Ok(()),
    };
    let (target_name, device_name) = job_target(state, j).await?;
    let message = format!(
        "{} of {} {}{}",
        j.kind,
        target_name,
        j.state,
        j.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    raise(
        state,
        NewEvent {
            tenant_id: &j.tenant_id,
            kind,
            subject: Some(("job", &j.id)),
            message,
            details: serde_json::json!({
                "job_id": j.id, "job_kind": j.kind, "state": j.state, "error": j.error,
                "target_kind": j.target_kind, "target_id": j.target_id,
                "target_name": target_name, "device_name": device_name,
                "finished_at": j.finished_at.map(|t| t.timestamp_millis()),
            }),
            dedupe_key: Some(format!("job:{}", j.id)),
        },
        None,
        now,
    )
    .await
}

/// The checks that run every `notify.check_seconds`.
pub async fn periodic(state: &AppState) -> DbResult<()> {
    let now = state.now();
    missed_items(state, now).await?;
    quiet_devices(state, now).await?;
    full_vaults(state, now).await?;
    crate::jobs::replicate::raise_behind(state, now).await?;
    summaries(state, now).await?;
    let keep = state.config.notify.keep_days as i64 * 86_400_000;
    notify::drop_old(&state.db.pool, now - keep, now).await?;
    Ok(())
}

/// Raises one event in its own transaction.
async fn raise(state: &AppState, e: NewEvent<'_>, to: Option<&str>, now: i64) -> DbResult<()> {
    let mut tx = state.db.begin().await?;
    notify::raise(&mut tx, e, to, now).await?;
    tx.commit().await?;
    Ok(())
}

/// An item is missed when the first run its schedule asked for after its last success (or
/// after it was made) has not succeeded a window plus the grace after its time.
async fn missed_items(state: &AppState, now: i64) -> DbResult<()> {
    let grace = state.config.notify.missed_grace_minutes as i64 * 60_000;
    let mut schedules = Schedules::default();
    for w in watch::scheduled_items(&state.db.pool).await? {
        let since = w
            .last_success
            .unwrap_or_else(|| w.item.created_at.timestamp_millis());
        let Some(expected) = schedules.next_run(&w.item, &w.time_zone, time(since)) else {
            continue;
        };
        if now <= expected + w.item.window_seconds as i64 * 1000 + grace {
            continue;
        }
        let device = devices::device_by_id(&state.db.pool, &w.item.device_id)
            .await?
            .map_or_else(|| w.item.device_id.clone(), |d| d.name);
        let e = NewEvent {
            tenant_id: &w.item.tenant_id,
            kind: EventKind::ItemMissed,
            subject: Some(("item", &w.item.id)),
            message: format!(
                "no successful backup of {} on {device} since it was due",
                w.item.name
            ),
            details: serde_json::json!({
                "item_id": w.item.id, "item_name": w.item.name, "device_id": w.item.device_id,
                "device_name": device, "expected_at": expected,
                "last_success_at": w.last_success,
            }),
            dedupe_key: Some(format!("item-missed:{}:{expected}", w.item.id)),
        };
        raise(state, e, None, now).await?;
    }
    Ok(())
}

async fn quiet_devices(state: &AppState, now: i64) -> DbResult<()> {
    let quiet = state.config.notify.device_offline_hours as i64 * 3_600_000;
    for d in watch::silent_devices(&state.db.pool, now - quiet).await? {
        let seen = d.last_seen_at.map(|t| t.timestamp_millis()).unwrap_or(0);
        let e = NewEvent {
            tenant_id: &d.tenant_id,
            kind: EventKind::DeviceOffline,
            subject: Some(("device", &d.id)),
            message: format!(
                "device {} has not been heard from since it was last seen",
                d.name
            ),
            details: serde_json::json!({
                "device_id": d.id, "device_name": d.name, "last_seen_at": seen,
            }),
            dedupe_key: Some(format!("device-offline:{}:{seen}", d.id)),
        };
        raise(state, e, None, now).await?;
    }
    Ok(())
}

/// A vault over 90% of its quota raises an event once a day while it stays there.
async fn full_vaults(state: &AppState, now: i64) -> DbResult<()> {
    let day = now.div_euclid(86_400_000);
    for v in watch::vaults_near_quota(&state.db.pool).await? {
        let quota = v.quota_bytes.unwrap_or(0);
        let e = NewEvent {
            tenant_id: &v.tenant_id,
            kind: EventKind::VaultQuota,
            subject: Some(("vault", &v.id)),
            message: format!(
                "vault {} holds {} of its {} bytes quota",
                v.name, v.used_bytes, quota
            ),
            details: serde_json::json!({
                "vault_id": v.id, "vault_name": v.name, "used_bytes": v.used_bytes,
                "quota_bytes": quota,
            }),
            dedupe_key: Some(format!("vault-quota:{}:{day}", v.id)),
        };
        raise(state, e, None, now).await?;
    }
    Ok(())
}

/// When a target's next summary is due after `after`: 07:00 every day, or every Monday,
/// in the tenant's time zone.
pub fn next_summary(period: SummaryPeriod, time_zone: &str, after: i64) -> Option<i64> {
    let text = match period {
        SummaryPeriod::Off => return None,
        SummaryPeriod::Daily => "07:00",
        SummaryPeriod::Weekly => "mon 07:00",
    };
    next_after_ms(text, time_zone, after)
}

async fn summaries(state: &AppState, now: i64) -> DbResult<()> {
    let pool = &state.db.pool;
    for row in notify::summaries_due(pool, now, PAGE).await? {
        let t = &row.target;
        let Some(due) = row.summary_next_at else {
            continue;
        };
        let Some(tenant) = tenants::tenant_by_id(pool, &t.tenant_id).await? else {
            continue;
        };
        let next = next_summary(t.summary, &tenant.tenant.time_zone, now);
        let days = if t.summary == SummaryPeriod::Weekly {
            7
        } else {
            1
        };
        let from = due - days * 86_400_000;
        // More than a period behind (the target was paused, or no node ran): a summary of
        // a period long past would arrive at once and report days nobody asked about. The
        // timer moves to the latest time already come, whose summary (of the period just
        // ended) the next pass sends, or else to the next time.
        let period = days * 86_400_000;
        if now - due > period {
            let tz = &tenant.tenant.time_zone;
            let latest =
                next_summary(t.summary, tz, now - period).filter(|at| *at <= now && *at > due);
            let mut tx = state.db.begin().await?;
            if advance_timer(&mut tx, Timer::Summary(&t.id), due, latest.or(next)).await? {
                tx.commit().await?;
            }
            continue;
        }
        let s = watch::summary(
            pool,
            &tenant.path,
            &t.tenant_id,
            t.include_children,
            from,
            due,
        )
        .await?;
        let items: Vec<_> = s
            .items
            .iter()
            .map(|(name, device, state, at)| {
                serde_json::json!({
                    "name": name, "device": device, "last_state": state, "last_at": at,
                })
            })
            .collect();
        let vaults: Vec<_> = s
            .vaults
            .iter()
            .map(|v| {
                serde_json::json!({
                    "name": v.name, "used_bytes": v.used_bytes, "quota_bytes": v.quota_bytes,
                })
            })
            .collect();
        let mut tx = state.db.begin().await?;
        if !advance_timer(&mut tx, Timer::Summary(&t.id), due, next).await? {
            continue; // another node made this one
        }
        notify::raise(
            &mut tx,
            NewEvent {
                tenant_id: &t.tenant_id,
                kind: EventKind::SummaryReport,
                subject: Some(("target", &t.id)),
                message: format!(
                    "{} summary: {} backups succeeded, {} failed",
                    t.summary, s.succeeded, s.failed
                ),
                details: serde_json::json!({
                    "period": t.summary, "from": from, "to": due, "items": items,
                    "vaults": vaults, "succeeded": s.succeeded, "failed": s.failed,
                }),
                dedupe_key: Some(format!("summary:{}:{due}", t.id)),
            },
            Some(&t.id),
            now,
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
