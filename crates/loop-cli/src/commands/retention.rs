//! `loop forget` and `loop prune`: the engine plans, these commands show and confirm.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use loop_repo::forget::{self, Decision, ForgetPlan, ForgetRequest, KeepPolicy};
use loop_repo::human_bytes;
use loop_repo::prune::{PruneOptions, PrunePlan};
use loop_repo::{Repository, prune};
use serde_json::json;

use super::filter;
use super::snapshots::warn_damaged;
use crate::args::*;
use crate::output::{human, ok, print_json};
use crate::repo_open;

fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => bail!("bad duration {s:?}: use s, m, h or d"),
    };
    Ok(Duration::from_secs(secs))
}

fn prune_options(o: &PruneOpts) -> Result<PruneOptions> {
    if !(0.0..=100.0).contains(&o.max_unused) {
        bail!("--max-unused is a percentage between 0 and 100");
    }
    Ok(PruneOptions {
        max_unused: o.max_unused / 100.0,
        grace: parse_duration(&o.grace)?,
    })
}

fn print_plan(p: &PrunePlan) {
    println!("snapshots: {}, blobs in use: {}", p.snapshots, p.used_blobs);
    println!(
        "packs: {} total, {} kept, {} to repack, {} to delete, {} unindexed to delete ({} younger than the grace period kept)",
        p.packs_total,
        p.packs_keep,
        p.packs_repack,
        p.packs_delete,
        p.orphan_packs_delete,
        p.orphan_packs_young
    );
    if p.condemned_packs_execute + p.condemned_packs_waiting > 0 {
        println!(
            "earlier plans: {} packs can be deleted now, {} wait for running backups",
            p.condemned_packs_execute, p.condemned_packs_waiting
        );
    }
    println!(
        "data: {} stored, {} unused, {} to copy, {} to free",
        human_bytes(p.bytes_total),
        human_bytes(p.bytes_unused),
        human_bytes(p.bytes_to_repack),
        human_bytes(p.bytes_to_free)
    );
}

/// Prunes, or with `dry_run` shows what a prune would do once the snapshots `forgotten`
/// (which a dry run did not remove) are gone.
fn run_prune(
    g: &Global,
    repo: &Repository,
    o: &PruneOpts,
    dry_run: bool,
    forgotten: &[loop_repo::Id],
) -> Result<()> {
    let opts = prune_options(o)?;
    let plan = if dry_run {
        prune::preview_without(repo, &opts, &forgotten.iter().copied().collect())?
    } else {
        prune::plan(repo, &opts)?
    };
    if g.json && dry_run {
        return print_json(&json!({"message_type": "prune_plan", "plan": plan}));
    }
    if human(g) {
        print_plan(&plan);
    }
    if dry_run {
        if human(g) {
            println!("dry run: nothing was changed");
        }
        return Ok(());
    }
    if plan.is_noop() {
        if g.json {
            print_json(&json!({"message_type": "prune_report", "plan": plan, "report": null}))?;
        } else if !g.quiet {
            println!("nothing to prune");
        }
        return Ok(());
    }
    let plan_json = serde_json::to_value(&plan)?;
    let report = prune::execute(repo, plan)?;
    if g.json {
        print_json(&json!({"message_type": "prune_report", "plan": plan_json, "report": report}))?;
    } else if !g.quiet {
        println!(
            "wrote {} packs and {} index files, deleted {} packs and {} index files{}",
            report.packs_written,
            report.index_files_written,
            report.packs_deleted,
            report.index_files_deleted,
            if report.packs_deferred > 0 {
                format!(
                    "; {} packs wait for running backups and go at the next prune",
                    report.packs_deferred
                )
            } else {
                String::new()
            }
        );
        if report.objects_locked > 0 {
            println!(
                "the vault's retention lock keeps {} objects; a prune after it has passed deletes them",
                report.objects_locked
            );
        }
    }
    Ok(())
}

pub(super) fn prune_cmd(g: &Global, a: PruneArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    run_prune(g, &repo, &a.opts, a.dry_run, &[])?;
    ok()
}

/// The engine's request for `loop forget`: named snapshots, or a policy with filters.
fn forget_request(a: &ForgetArgs) -> Result<ForgetRequest> {
    let policy = KeepPolicy {
        last: a.keep_last,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
        yearly: a.keep_yearly,
        tags: a.keep_tags.clone(),
        within: a
            .keep_within
            .as_deref()
            .map(forget::parse_within)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    if !a.snapshots.is_empty() {
        if !policy.is_empty() {
            bail!("name snapshots or give a policy, not both");
        }
        return Ok(ForgetRequest::Snapshots {
            specs: a.snapshots.clone(),
            filter: filter(&a.filter),
        });
    }
    if policy.is_empty() {
        bail!("no policy given: name snapshots or use --keep-* options (nothing was removed)");
    }
    Ok(ForgetRequest::Policy {
        policy,
        filter: filter(&a.filter),
    })
}

/// The policy's verdicts, group by group.
fn print_forget_plan(plan: &ForgetPlan) {
    for group in &plan.groups {
        println!(
            "snapshots of host {}, paths {}:",
            crate::output::printable(&group.host),
            crate::output::printable(&group.paths.join(" "))
        );
        for v in &group.snapshots {
            match &v.decision {
                Decision::Keep(reasons) => {
                    let why: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                    println!(
                        "  keep   {} {} ({})",
                        v.id.short(),
                        v.snapshot.time,
                        why.join(", ")
                    );
                }
                Decision::Remove => println!("  remove {} {}", v.id.short(), v.snapshot.time),
            }
        }
    }
}

fn forget_plan_json(plan: &ForgetPlan) -> Vec<serde_json::Value> {
    plan.groups
        .iter()
        .map(|group| {
            let mut keep = Vec::new();
            let mut remove = Vec::new();
            for v in &group.snapshots {
                match &v.decision {
                    Decision::Keep(reasons) => {
                        let why: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                        keep.push(json!({"id": v.id.to_hex(), "reasons": why}));
                    }
                    Decision::Remove => remove.push(v.id.to_hex()),
                }
            }
            json!({"host": group.host, "paths": group.paths, "keep": keep, "remove": remove})
        })
        .collect()
}

pub(super) fn forget_cmd(g: &Global, a: ForgetArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let request = forget_request(&a)?;
    let plan = forget::plan(&repo, &request)?;
    // A policy cannot judge a snapshot it cannot read: those are kept.
    warn_damaged(&plan.damaged);
    if human(g) {
        print_forget_plan(&plan);
    }
    let (removed, held) = if a.dry_run {
        (plan.remove.clone(), Vec::new())
    } else {
        let report = forget::execute(&repo, &plan)?;
        (report.removed, report.held)
    };
    let hex = |ids: &[loop_repo::Id]| ids.iter().map(|i| i.to_hex()).collect::<Vec<_>>();
    if g.json {
        print_json(
            &json!({"message_type": "forget", "dry_run": a.dry_run, "groups": forget_plan_json(&plan), "removed": hex(&removed), "held": hex(&held)}),
        )?;
    } else if !g.quiet {
        println!(
            "{} {} snapshots",
            if a.dry_run { "would remove" } else { "removed" },
            removed.len()
        );
        if !held.is_empty() {
            println!(
                "the vault's retention lock keeps {} snapshots; forget them again after it has passed",
                held.len()
            );
        }
    }
    if a.prune {
        run_prune(g, &repo, &a.prune_opts, a.dry_run, &removed)?;
    }
    ok()
}
