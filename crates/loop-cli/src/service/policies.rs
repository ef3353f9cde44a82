//! `loop policy`.

use std::process::ExitCode;

use anyhow::Result;
use loop_api::*;

use super::api;
use crate::args::Global;
use crate::output::show;
use crate::service_args::{KeepArgs, MaintenanceArgs, PolicyCommand};

impl KeepArgs {
    fn rules(&self) -> KeepRules {
        KeepRules {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within: self.keep_within.clone(),
            tags: self.keep_tags.clone(),
        }
    }
}

impl MaintenanceArgs {
    /// `m` with what these options set ("" and 0 clear a setting).
    fn apply(&self, mut m: Maintenance) -> Maintenance {
        let schedule = |s: &Option<String>, old: Option<String>| match s.as_deref() {
            None => old,
            Some("") => None,
            Some(s) => Some(s.to_string()),
        };
        m.retention_schedule = schedule(&self.retention_schedule, m.retention_schedule);
        m.verify_schedule = schedule(&self.verify_schedule, m.verify_schedule);
        if let Some(p) = self.verify_read_data_percent {
            m.verify_read_data_percent = p;
        }
        match self.reverify_after_days {
            Some(0) => m.reverify_after_days = None,
            Some(d) => m.reverify_after_days = Some(d),
            None => {}
        }
        if let Some(d) = self.min_snapshot_age_days {
            m.min_snapshot_age_days = d;
        }
        if let Some(h) = self.deletion_grace_hours {
            m.deletion_grace_hours = h;
        }
        m
    }

    fn given(&self) -> bool {
        self.retention_schedule.is_some()
            || self.verify_schedule.is_some()
            || self.verify_read_data_percent.is_some()
            || self.reverify_after_days.is_some()
            || self.min_snapshot_age_days.is_some()
            || self.deletion_grace_hours.is_some()
    }
}

/// The keep rules that are set, as `loop forget` would spell them.
fn rules_text(k: &KeepRules) -> String {
    let mut out = Vec::new();
    for (name, n) in [
        ("last", k.last),
        ("hourly", k.hourly),
        ("daily", k.daily),
        ("weekly", k.weekly),
        ("monthly", k.monthly),
        ("yearly", k.yearly),
    ] {
        if n > 0 {
            out.push(format!("--keep-{name} {n}"));
        }
    }
    if let Some(w) = &k.within {
        out.push(format!("--keep-within {w}"));
    }
    for t in &k.tags {
        out.push(format!("--keep-tag {t}"));
    }
    out.join(" ")
}

pub(super) fn print_policy(p: &Policy) {
    let target = match (&p.vault_id, &p.item_id) {
        (Some(v), _) => format!("vault {v}"),
        (_, Some(i)) => format!("item {i}"),
        _ => format!("tenant {}", p.tenant_id),
    };
    println!(
        "{}  {target}  {}  prune: repack above {}% unused, grace {}s",
        p.id,
        rules_text(&p.keep),
        p.prune_max_unused_percent,
        p.prune_grace_seconds
    );
    let m = &p.maintenance;
    println!(
        "    a maintainer agent deletes snapshots stored {} days ago, and other objects {} hours after announcing them",
        m.min_snapshot_age_days, m.deletion_grace_hours
    );
    if let Some(s) = &m.retention_schedule {
        println!("    applied on schedule: {s}");
    }
    if let Some(s) = &m.verify_schedule {
        let skip = m
            .reverify_after_days
            .map(|d| format!(", skipped within {d} days of the last"))
            .unwrap_or_default();
        println!(
            "    verified on schedule: {s}, reading {}% of packs{skip}",
            m.verify_read_data_percent
        );
    }
}

pub(crate) fn policy(g: &Global, c: PolicyCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        PolicyCommand::List { tenant } => {
            let ps: Vec<Policy> = api.policies(tenant.as_ref())?;
            show(g, &ps, |ps| ps.iter().for_each(print_policy))
        }
        PolicyCommand::Show { id } => {
            let p: Policy = api.policy(&id)?;
            show(g, &p, print_policy)
        }
        PolicyCommand::Create {
            tenant,
            vault,
            item,
            keep,
            prune,
            maintenance,
        } => {
            let p: Policy = api.create_policy(&CreatePolicy {
                tenant_id: tenant,
                vault_id: vault,
                item_id: item,
                keep: keep.rules(),
                prune_max_unused_percent: prune.max_unused,
                prune_grace_seconds: prune.grace_seconds,
                maintenance: maintenance
                    .given()
                    .then(|| maintenance.apply(Maintenance::default())),
            })?;
            show(g, &p, |p| {
                println!("created policy {}", p.id);
                print_policy(p);
            })
        }
        PolicyCommand::Update {
            id,
            keep,
            prune,
            maintenance,
        } => {
            let rules = keep.rules();
            // The API replaces the whole maintenance: start from what the policy has.
            let m = if maintenance.given() {
                Some(maintenance.apply(api.policy(&id)?.maintenance))
            } else {
                None
            };
            let p: Policy = api.update_policy(
                &id,
                &UpdatePolicy {
                    keep: (!rules.is_empty()).then_some(rules),
                    prune_max_unused_percent: prune.max_unused,
                    prune_grace_seconds: prune.grace_seconds,
                    maintenance: m,
                },
            )?;
            show(g, &p, print_policy)
        }
        PolicyCommand::Delete { id } => {
            api.delete_policy(&id)?;
            show(g, &serde_json::json!({ "deleted": id }), |_| {
                println!("deleted policy {id}")
            })
        }
    }
}
