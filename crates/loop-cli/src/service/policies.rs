//! `loop policy`.

use std::process::ExitCode;

use anyhow::Result;
use loop_api::*;

use super::api;
use crate::args::Global;
use crate::output::show;
use crate::service_args::{KeepArgs, PolicyCommand};

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
    let target = match &p.vault_id {
        Some(v) => format!("vault {v}"),
        None => format!("tenant {}", p.tenant_id),
    };
    println!(
        "{}  {target}  {}  prune: repack above {}% unused, grace {}s",
        p.id,
        rules_text(&p.keep),
        p.prune_max_unused_percent,
        p.prune_grace_seconds
    );
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
            keep,
            prune,
        } => {
            let p: Policy = api.create_policy(&CreatePolicy {
                tenant_id: tenant,
                vault_id: vault,
                keep: keep.rules(),
                prune_max_unused_percent: prune.max_unused,
                prune_grace_seconds: prune.grace_seconds,
            })?;
            show(g, &p, |p| {
                println!("created policy {}", p.id);
                print_policy(p);
            })
        }
        PolicyCommand::Update { id, keep, prune } => {
            let rules = keep.rules();
            let p: Policy = api.update_policy(
                &id,
                &UpdatePolicy {
                    keep: (!rules.is_empty()).then_some(rules),
                    prune_max_unused_percent: prune.max_unused,
                    prune_grace_seconds: prune.grace_seconds,
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
