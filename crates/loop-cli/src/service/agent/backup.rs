//! A backup job: the item's pre-command, the backup of its paths into its vault (at the
//! item's upload limit, or this agent's when lower), its post-command, and the summary the
//! job ends with.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use loop_api::AgentJob;
use loop_repo::backup::{self, BackupOptions, BackupProgress};

use super::Agent;
use crate::args::Global;
use crate::repo_open::{hostname, username};

/// How often a running pre- or post-command is looked at (has it ended, was the job
/// cancelled).
const COMMAND_POLL: Duration = Duration::from_millis(100);

impl Agent {
    /// Runs a pre- or post-command of the item, when this device allows commands: true when it
    /// ran, false when it was skipped (a warning in the job's log). A cancel of the job stops
    /// it, with everything it started (its process group).
    fn command(
        &self,
        job: &AgentJob,
        what: &str,
        cmd: Option<&str>,
        progress: &BackupProgress,
    ) -> Result<bool> {
        let Some(cmd) = cmd else { return Ok(true) };
        if !self.allow_commands {
            self.log(
                job,
                "warning",
                &format!("the {what} was not run: this agent runs no commands (--allow-commands)"),
            );
            return Ok(false);
        }
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting the {what}"))?;
        let status = loop {
            if let Some(status) = child.try_wait().with_context(|| format!("the {what}"))? {
                break status;
            }
            if progress.cancel.load(Ordering::Relaxed) {
                let group = rustix::process::Pid::from_child(&child);
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
                let _ = child.wait();
                bail!("the {what} was stopped: the job was cancelled");
            }
            std::thread::sleep(COMMAND_POLL);
        };
        if !status.success() {
            bail!("the {what} failed ({status})");
        }
        self.log(job, "info", &format!("the {what} ran"));
        Ok(true)
    }

    /// The backup of the job's item: (summary, warnings).
    pub(super) fn back_up(
        &self,
        g: &Global,
        job: &AgentJob,
        progress: &BackupProgress,
    ) -> Result<(serde_json::Value, usize)> {
        let item = job.item.as_ref().context("a backup job without its item")?;
        let pre = self.command(job, "pre-command", item.pre_command.as_deref(), progress)?;
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
        let post = self.command(job, "post-command", item.post_command.as_deref(), progress);
        let r = result?;
        let post = post?;
        // A command not run is a warning: the job did not do all its item asks.
        let skipped = usize::from(!pre) + usize::from(!post);
        // As `loop backup` warns: what was read of a file that changed meanwhile is stored,
        // and may not be one state of it.
        let changed = r
            .changed_while_reading
            .iter()
            .map(|p| format!("{p} changed while it was read"));
        let warnings =
            r.unreadable.len() + r.changed_while_reading.len() + r.warnings.len() + skipped;
        for w in r
            .unreadable
            .iter()
            .cloned()
            .chain(changed)
            .chain(r.warnings.iter().cloned())
            .take(50)
        {
            self.log(job, "warning", &w);
        }
        let summary = r.snapshot.summary.clone().unwrap_or_default();
        Ok((
            serde_json::json!({
                "snapshot_id": r.snapshot_id.map(|i| i.to_hex()),
                "files": summary.total_files_processed,
                "bytes": summary.total_bytes_processed,
                "unreadable": r.unreadable.len(),
                "changed_while_reading": r.changed_while_reading.len(),
            }),
            warnings,
        ))
    }
}
