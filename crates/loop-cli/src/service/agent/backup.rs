//! A backup job: the item's pre-command, the backup of its paths into its vault (at the
//! item's upload limit, or this agent's when lower), its post-command, and the summary the
//! job ends with.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use loop_api::AgentJob;
use loop_repo::backup::{self, BackupOptions, BackupProgress};

use super::Agent;
use crate::args::Global;
use crate::repo_open::{hostname, username};

impl Agent {
    /// Runs a pre- or post-command of the item, when this device allows commands.
    fn command(&self, job: &AgentJob, what: &str, cmd: Option<&str>) -> Result<()> {
        let Some(cmd) = cmd else { return Ok(()) };
        if !self.allow_commands {
            self.log(
                job,
                "warning",
                &format!("the {what} was not run: this agent runs no commands (--allow-commands)"),
            );
            return Ok(());
        }
        let status = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .status()
            .with_context(|| format!("starting the {what}"))?;
        if !status.success() {
            bail!("the {what} failed ({status})");
        }
        self.log(job, "info", &format!("the {what} ran"));
        Ok(())
    }

    /// The backup of the job's item: (summary, warnings).
    pub(super) fn back_up(
        &self,
        g: &Global,
        job: &AgentJob,
        progress: &BackupProgress,
    ) -> Result<(serde_json::Value, usize)> {
        let item = job.item.as_ref().context("a backup job without its item")?;
        self.command(job, "pre-command", item.pre_command.as_deref())?;
        let mut limits = crate::repo_open::limits(g);
        if let Some(kib) = item.upload_limit_kib {
            limits = limits.upload_at_most(kib.into());
            let now = limits.upload.as_ref().map_or(0, |p| p.kib());
            let whose = if now < u64::from(kib) {
                "this agent's --limit-upload, below the item's"
            } else {
                "the item's limit"
            };
            self.log(
                job,
                "info",
                &format!("uploading at most {now} KiB/s ({whose})"),
            );
        }
        let result = (|| {
            let repo = self.open_vault_at(g, &item.vault_id, "backup", limits)?;
            let mut tags = item.tags.clone();
            tags.push(format!("item:{}", item.id));
            let opts = BackupOptions {
                paths: item.paths.iter().map(PathBuf::from).collect(),
                excludes: item.excludes.clone(),
                one_file_system: item.one_file_system,
                tags,
                host: hostname(),
                user: username(),
                threads: g.threads,
                ..Default::default()
            };
            Ok::<_, anyhow::Error>(backup::run(&repo, opts, progress)?)
        })();
        let post = self.command(job, "post-command", item.post_command.as_deref());
        let r = result?;
        post?;
        let warnings = r.unreadable.len() + r.warnings.len();
        for w in r.unreadable.iter().chain(&r.warnings).take(50) {
            self.log(job, "warning", w);
        }
        let summary = r.snapshot.summary.clone().unwrap_or_default();
        Ok((
            serde_json::json!({
                "snapshot_id": r.snapshot_id.map(|i| i.to_hex()),
                "files": summary.total_files_processed,
                "bytes": summary.total_bytes_processed,
                "unreadable": r.unreadable.len(),
            }),
            warnings,
        ))
    }
}
