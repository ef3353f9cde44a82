//! The retention and verify of a customer-key vault this device maintains: the server
//! cannot read the vault, so the agent that holds its passphrase runs them, as the server
//! would for a managed vault, within the limits the server enforces on a maintainer
//! (docs/SECURITY.md, "A maintainer agent"):
//!
//! - snapshots the server stored less than `min_snapshot_age_days` ago are kept whatever
//!   the keep rules say (the server lists them in the job's parameters and refuses their
//!   deletion anyway);
//! - prune deletes only what the server released (announced at least
//!   `deletion_grace_hours` earlier) and announces what else it would delete, so a prune's
//!   deletions happen at the first run after the grace.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use loop_agent::VaultStorage;
use loop_api::{AgentJob, AgentRetention, KeepRules};
use loop_repo::FileKind;
use loop_repo::check::{self, CheckOptions, CheckProgress, ReadData};
use loop_repo::forget;
use loop_repo::prune::{self, PruneOptions};

use super::{Agent, Watch};
use crate::args::Global;

/// Lines of each kind copied into the job log.
const LOGGED: usize = 50;

impl Agent {
    /// Forget by the policy, then a gated prune: (summary, warnings).
    /// A cancel is taken between the steps: before any snapshot is removed, and before the
    /// prune (whose work the vault's next run then does).
    pub(super) fn retention(
        &self,
        g: &Global,
        job: &AgentJob,
        watch: &Watch,
    ) -> Result<(serde_json::Value, usize)> {
        let go_on = |next: &str| {
            if watch.stopped() {
                bail!("stopped before {next}");
            }
            Ok(())
        };
        let r: AgentRetention =
            serde_json::from_value(job.params.clone()).context("the retention's parameters")?;
        let vault_id = job.job.target_id.as_str();
        if r.policy_id.is_none() && r.item_rules.is_empty() {
            self.log(
                job,
                "info",
                "no retention policy applies to this vault: every snapshot is kept",
            );
            return Ok((
                serde_json::json!({ "policy_id": null, "snapshots_removed": 0 }),
                0,
            ));
        }
        let items: Vec<(String, KeepRules)> = r
            .item_rules
            .iter()
            .map(|i| (i.item_id.clone(), i.keep.clone()))
            .collect();
        let request =
            loop_server::jobs::forget_request(r.policy_id.as_ref().map(|_| &r.keep), &items)
                .map_err(|e| anyhow::anyhow!("a policy cannot be applied: {e}"))?;
        let policy_id = r.policy_id.as_deref().unwrap_or("none");
        let repo = self.open_vault(g, vault_id, "retention")?;
        let mut plan = forget::plan(&repo, &request)?;
        let young: HashSet<&str> = r.young_snapshots.iter().map(String::as_str).collect();
        let before = plan.remove.len();
        plan.remove
            .retain(|id| !young.contains(id.to_hex().as_str()));
        let too_young = before - plan.remove.len();
        let kept = plan.kept();
        let mut warnings = 0;
        self.log(
            job,
            "info",
            &format!(
                "policy {policy_id} (and {} of items) keeps {kept} snapshots and removes {}{}",
                r.item_rules.len(),
                plan.remove.len(),
                if too_young > 0 {
                    format!(
                        "; {too_young} more are kept because the server stored them less than \
                         {} days ago",
                        r.min_snapshot_age_days
                    )
                } else {
                    String::new()
                }
            ),
        );
        for (name, e) in plan.damaged.iter().take(LOGGED) {
            warnings += 1;
            self.log(
                job,
                "warning",
                &format!("snapshot {name} cannot be read, so it is kept: {e}"),
            );
        }
        if r.dry_run {
            return Ok((
                serde_json::json!({
                    "policy_id": r.policy_id, "dry_run": true, "snapshots_kept": kept,
                    "snapshots_removed": 0, "snapshots_to_remove": plan.remove.len(),
                }),
                warnings,
            ));
        }
        go_on("removing any snapshot")?;
        let forgotten = forget::execute(&repo, &plan)?;
        let (removed, locked) = (forgotten.removed, forgotten.held);

        // Prune: only what the server released goes now; the rest is announced.
        let vault = VaultStorage::new(self.conn.clone(), vault_id, &self.token);
        let released: HashSet<(FileKind, String)> = vault
            .planned_deletions()
            .context("reading the vault's announced deletions")?
            .objects
            .into_iter()
            .filter(|o| o.released)
            .filter_map(|o| FileKind::from_name(&o.kind).map(|k| (k, o.name)))
            .collect();
        let opts = PruneOptions {
            max_unused: r.prune_max_unused_percent / 100.0,
            grace: Duration::from_secs(r.prune_grace_seconds),
        };
        go_on("the prune")?;
        let prune_plan = prune::plan(&repo, &opts)?;
        let shown = serde_json::to_value(&prune_plan).unwrap_or_default();
        // A plan with nothing to do still carries out deletions released since the last run.
        let report = if prune_plan.is_noop() && released.is_empty() {
            prune::PruneReport::default()
        } else {
            prune::execute_gated(&repo, prune_plan, &released)?
        };
        if !report.held.is_empty() {
            vault
                .announce_deletions(&report.held)
                .context("announcing the prune's deletions")?;
        }
        self.log(
            job,
            "info",
            &format!(
                "pruned: {} packs and {} index files deleted, {} packs written; {} more \
                 deletions announced, carried out by a run at least {} hours from their \
                 announcement",
                report.packs_deleted,
                report.index_files_deleted,
                report.packs_written,
                report.held.len(),
                r.deletion_grace_hours
            ),
        );
        Ok((
            serde_json::json!({
                "policy_id": r.policy_id,
                "item_policies": r.item_rules.len(),
                "snapshots_kept": kept,
                "snapshots_removed": removed.len(),
                "snapshots_too_young": too_young,
                "snapshots_locked": locked.len(),
                "objects_locked": report.objects_locked,
                "prune_plan": shown,
                "packs_deleted": report.packs_deleted,
                "packs_written": report.packs_written,
                "index_files_written": report.index_files_written,
                "index_files_deleted": report.index_files_deleted,
                "deletions_announced": report.held.len(),
            }),
            warnings,
        ))
    }

    /// The engine's check, reading the job's share of packs: (summary, warnings). Damage
    /// fails the job, with each finding in its log.
    pub(super) fn verify(
        &self,
        g: &Global,
        job: &AgentJob,
        progress: &CheckProgress,
    ) -> Result<(serde_json::Value, usize)> {
        let percent = job.params["read_data_percent"]
            .as_f64()
            .unwrap_or(10.0)
            .clamp(0.0, 100.0);
        let repo = self.open_vault(g, &job.job.target_id, "check")?;
        self.log(
            job,
            "info",
            &format!("checking the vault, reading {percent}% of its packs"),
        );
        let opts = CheckOptions {
            read_data: ReadData::percent(percent),
            threads: g.threads,
        };
        let report = check::run(&repo, &opts, progress)?;
        if progress.stop.load(Ordering::Relaxed) {
            bail!("the check was stopped before it read its share of packs");
        }
        for e in report.errors.iter().take(LOGGED) {
            self.log(job, "error", e);
        }
        for d in report.damaged.iter().take(LOGGED) {
            self.log(job, "error", &format!("pack {}: {}", d.pack, d.reason));
        }
        for w in report.warnings.iter().take(LOGGED) {
            self.log(job, "warning", w);
        }
        if !report.is_ok() {
            bail!(
                "the vault is damaged: {} errors and {} damaged packs (see the job log)",
                report.errors.len(),
                report.damaged.len()
            );
        }
        Ok((
            serde_json::json!({
                "read_data_percent": percent,
                "snapshots": report.snapshots,
                "trees": report.trees,
                "data_blobs": report.data_blobs,
                "packs": report.packs,
                "packs_read": report.packs_read,
                "errors": 0,
                "damaged_packs": 0,
                "unreferenced_packs": report.unreferenced_packs,
                "warnings": report.warnings.len(),
            }),
            report.warnings.len(),
        ))
    }
}
