//! A tenant's dashboard: the open problems first, then every protected item with its last
//! result and age, devices online, storage against quota, stored bytes over time and job
//! outcomes per day. Each part shows only what the reader's roles let them read.
//!
//! An item's health: **failed** when its last backup failed (or was abandoned), **missed**
//! when its last run was missed, **warning** when it succeeded with warnings, was cancelled
//! or skipped, or when a scheduled item has had no good backup for two days; **OK** otherwise;
//! an item that never ran is "not run yet".

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use loop_api::Language;
use maud::{Markup, html};

use super::catalogue::M;
use super::chart;
use super::layout::{document, scroll, token};
use super::reader::Viewer;
use crate::db::dashboard::{self as q, ItemHealth};
use crate::domain::Permission;
use crate::error::ApiResult;
use crate::metrics::ONLINE_MS;
use crate::state::AppState;

const DAY_MS: i64 = 86_400_000;
/// A scheduled item without a good backup for this long needs attention.
const STALE_MS: i64 = 2 * DAY_MS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    Failed,
    Missed,
    Warning,
    NotRun,
    Ok,
}

impl Health {
    fn of(i: &ItemHealth, now: i64) -> Health {
        let stale = i.scheduled && i.last_ok_at.is_none_or(|at| now - at > STALE_MS);
        match i.last.as_ref().map(|(s, _)| s.as_str()) {
            None => Health::NotRun,
            Some("failed" | "abandoned") => Health::Failed,
            Some("missed") => Health::Missed,
            Some("succeeded-with-warnings" | "cancelled" | "skipped") => Health::Warning,
            Some(_) if stale => Health::Warning,
            Some(_) => Health::Ok,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Health::Failed => "failed",
            Health::Missed => "missed",
            Health::Warning => "warning",
            Health::NotRun => "none",
            Health::Ok => "ok",
        }
    }

    fn word(self) -> M {
        match self {
            Health::Failed => M::HealthFailed,
            Health::Missed => M::HealthMissed,
            Health::Warning => M::HealthWarning,
            Health::NotRun => M::HealthNone,
            Health::Ok => M::HealthOk,
        }
    }

    fn is_problem(self) -> bool {
        self < Health::NotRun
    }
}

/// How long ago `at` was, in the reader's words.
pub fn ago(lang: Language, now: i64, at: Option<i64>) -> String {
    let Some(at) = at else {
        return M::Never.text(lang).to_string();
    };
    let mins = (now - at).max(0) / 60_000;
    match mins {
        m if m < 120 => M::AgoMinutes.fill(lang, &[&m.to_string()]),
        m if m < 48 * 60 => M::AgoHours.fill(lang, &[&(m / 60).to_string()]),
        m => M::AgoDays.fill(lang, &[&(m / (24 * 60)).to_string()]),
    }
}

/// `GET /`: the reader's own tenant's dashboard.
pub async fn start(v: Viewer) -> Response {
    Redirect::to(&format!("/t/{}", v.user().user.user.tenant_id)).into_response()
}

/// `GET /t/{tenant}`: the dashboard of a tenant the reader may see (anyone else's: 404).
pub async fn show(State(state): State<AppState>, v: Viewer, Path(id): Path<String>) -> Response {
    match render(&state, &v, &id).await {
        Ok(r) => r,
        Err(e) => super::failed(v.lang, e),
    }
}

async fn render(state: &AppState, v: &Viewer, id: &str) -> ApiResult<Response> {
    let t = v.caller.tenant(state, Permission::TenantRead, id).await?;
    let can = |p| v.caller.can(p, &t.path);
    let now = state.now();
    let lang = v.lang;
    let pool = &state.db.pool;
    let items = if can(Permission::JobRead) {
        let mut items: Vec<(Health, ItemHealth)> = q::items(pool, id)
            .await?
            .into_iter()
            .map(|i| (Health::of(&i, now), i))
            .collect();
        items.sort_by_key(|(h, _)| *h);
        Some(items)
    } else {
        None
    };
    let devices = match can(Permission::DeviceRead) {
        true => Some(q::devices(pool, id, now - ONLINE_MS).await?),
        false => None,
    };
    let storage = match can(Permission::VaultRead) {
        true => {
            let since = day_of(now - 29 * DAY_MS);
            Some((
                q::storage(pool, id).await?,
                q::stored_per_day(pool, id, &since).await?,
            ))
        }
        false => None,
    };
    let outcomes = match can(Permission::JobRead) {
        true => Some(per_day(
            &q::outcomes_per_day(pool, id, now - 13 * DAY_MS).await?,
            now,
        )),
        false => None,
    };
    let content = html! {
        (v.tenant_menu(&t))
        @if let Some(items) = &items {
            @let problems: Vec<_> = items.iter().filter(|(h, _)| h.is_problem()).collect();
            section aria-labelledby="problems" {
                h2 #problems { (v.t(M::Problems)) }
                @if problems.is_empty() {
                    p.allgood { (v.t(M::NoProblems)) }
                } @else {
                    ul.problems {
                        @for (h, i) in &problems {
                            li { (badge(lang, *h)) " " strong { (i.name) } " · " (i.device) " · "
                                 (v.t(M::LastSuccess)) ": " (ago(lang, now, i.last_ok_at)) }
                        }
                    }
                }
            }
        }
        div.cards {
            @if let Some((n, online)) = devices {
                section.card aria-labelledby="devices" {
                    h2 #devices { (v.t(M::Devices)) }
                    p.big { (M::DevicesOnline.fill(lang, &[&online.to_string(), &n.to_string()])) }
                }
            }
            @if let Some(((used, quota), _)) = &storage {
                section.card aria-labelledby="storage" {
                    h2 #storage { (v.t(M::Storage)) }
                    (storage_use(lang, *used, *quota))
                }
            }
        }
        @if let Some(items) = &items {
            section aria-labelledby="items" {
                h2 #items { (v.t(M::ProtectedItems)) }
                @if items.is_empty() {
                    p { (v.t(M::NoItems)) }
                } @else {
                    (items_table(v, items, now, can(Permission::JobWrite) && can(Permission::DeviceRead)))
                }
            }
        }
        @if let Some((_, days)) = &storage {
            section aria-labelledby="stored" {
                h2 #stored { (v.t(M::StoredOverTime)) }
                (chart::stored(lang, "stored-chart", days))
            }
        }
        @if let Some(days) = &outcomes {
            section aria-labelledby="outcomes" {
                h2 #outcomes { (v.t(M::JobsPerDay)) }
                (chart::outcomes(lang, "jobs-chart", days))
            }
        }
    };
    let title = format!("{} · {}", v.t(M::Dashboard), t.tenant.name);
    Ok(document(StatusCode::OK, &v.frame(), &title, content))
}

fn badge(lang: Language, h: Health) -> Markup {
    html! { span class={"badge " (h.class())} { (h.word().text(lang)) } }
}

fn items_table(v: &Viewer, items: &[(Health, ItemHealth)], now: i64, can_run: bool) -> Markup {
    let lang = v.lang;
    html! {
        (scroll(v.t(M::ProtectedItems), html! {
            table {
                thead { tr {
                    th scope="col" { (v.t(M::Item)) }
                    th scope="col" { (v.t(M::Device)) }
                    th scope="col" { (v.t(M::LastResult)) }
                    th scope="col" { (v.t(M::LastSuccess)) }
                    @if can_run { th scope="col" { span.visually-hidden { (v.t(M::BackUpNow)) } } }
                } }
                tbody {
                    @for (h, i) in items {
                        tr data-item=(i.id) {
                            th scope="row" { (i.name) }
                            td { (i.device) }
                            td { (badge(lang, *h)) " " (ago(lang, now, i.last.as_ref().map(|l| l.1))) }
                            td { (ago(lang, now, i.last_ok_at)) }
                            @if can_run {
                                td {
                                    form.inline method="post" action={"/items/" (i.id) "/run"} {
                                        (token(&v.csrf))
                                        button type="submit" aria-label={(v.t(M::BackUpNow)) ": " (i.name)} { (v.t(M::BackUpNow)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }))
    }
}

fn storage_use(lang: Language, used: i64, quota: Option<i64>) -> Markup {
    let size = |b: i64| crate::notify::email::size(b.max(0) as u64);
    match quota {
        Some(q) if q > 0 => html! {
            p.big { (M::StorageOf.fill(lang, &[&size(used), &size(q)])) }
            meter min="0" max=(q) value=(used.min(q)) high=((q as f64 * 0.9) as i64)
                aria-label=(M::Storage.text(lang)) {}
        },
        _ => html! { p.big { (M::NoQuota.fill(lang, &[&size(used)])) } },
    }
}

/// `YYYY-MM-DD` of the day `ms` falls in (UTC, as usage days are kept).
fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// The last 14 days, oldest first, each with its [succeeded, failed, other] counts.
fn per_day(rows: &[(i64, String, i64)], now: i64) -> Vec<(String, [i64; 3])> {
    let today = now / DAY_MS;
    (today - 13..=today)
        .map(|d| {
            let mut c = [0i64; 3];
            for (_, state, n) in rows.iter().filter(|r| r.0 == d) {
                let k = match state.as_str() {
                    "succeeded" | "succeeded-with-warnings" => 0,
                    "failed" | "abandoned" | "missed" => 1,
                    _ => 2,
                };
                c[k] += n;
            }
            (day_of(d * DAY_MS)[5..].to_string(), c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(last: Option<&str>, ok_hours_ago: Option<i64>, scheduled: bool) -> ItemHealth {
        let now = 100 * DAY_MS;
        ItemHealth {
            id: "i".into(),
            name: "n".into(),
            device: "d".into(),
            scheduled,
            last: last.map(|s| (s.to_string(), now - 3_600_000)),
            last_ok_at: ok_hours_ago.map(|h| now - h * 3_600_000),
        }
    }

    #[test]
    fn health_follows_the_last_result_and_its_age() {
        let now = 100 * DAY_MS;
        let h = |i: ItemHealth| Health::of(&i, now);
        assert_eq!(h(item(Some("succeeded"), Some(1), true)), Health::Ok);
        assert_eq!(h(item(Some("succeeded"), Some(49), true)), Health::Warning);
        assert_eq!(h(item(Some("succeeded"), Some(49), false)), Health::Ok);
        assert_eq!(h(item(Some("failed"), Some(1), true)), Health::Failed);
        assert_eq!(h(item(Some("abandoned"), None, true)), Health::Failed);
        assert_eq!(h(item(Some("missed"), Some(1), true)), Health::Missed);
        assert_eq!(
            h(item(Some("succeeded-with-warnings"), Some(1), true)),
            Health::Warning
        );
        assert_eq!(h(item(None, None, true)), Health::NotRun);
        // Problems come first.
        assert!(Health::Failed < Health::Missed && Health::Warning < Health::Ok);
        assert!(!Health::NotRun.is_problem() && Health::Warning.is_problem());
    }

    #[test]
    fn outcomes_are_counted_per_day_for_the_last_fourteen() {
        let now = 20_000 * DAY_MS + 5;
        let rows = vec![
            (20_000, "succeeded".to_string(), 3),
            (20_000, "missed".to_string(), 1),
            (19_990, "cancelled".to_string(), 2),
            (19_980, "failed".to_string(), 9),
        ];
        let days = per_day(&rows, now);
        assert_eq!(days.len(), 14);
        assert_eq!(days[13].1, [3, 1, 0]);
        assert_eq!(days[3].1, [0, 0, 2]);
        assert_eq!(days.iter().map(|d| d.1.iter().sum::<i64>()).sum::<i64>(), 6);
    }

    #[test]
    fn ages_read_in_minutes_hours_or_days() {
        let now = 10 * DAY_MS;
        assert_eq!(ago(Language::En, now, Some(now - 5 * 60_000)), "5 min ago");
        assert_eq!(
            ago(Language::Nl, now, Some(now - 3 * 3_600_000)),
            "3 u geleden"
        );
        assert_eq!(ago(Language::En, now, Some(now - 3 * DAY_MS)), "3 days ago");
        assert_eq!(ago(Language::En, now, None), "never");
    }
}
