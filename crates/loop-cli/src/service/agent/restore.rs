//! A restore the server asks a device for: the snapshot's files written into a directory of
//! this machine, under one of the roots its owner allows (`--restore-root`). A server, or
//! someone with the tenant's device rights, cannot write elsewhere: restoring as root into
//! `/` could install a command (a cron job, a setuid file), which only the owner grants.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use loop_api::{AgentJob, RestoreToDevice};
use loop_repo::restore::{RestoreOptions, RestoreProgress};

use super::Agent;
use crate::args::Global;

/// The directory the restore writes into, if it is under one of `roots`: absolute, without
/// `.` or `..`, and where it already exists, still under the root with every symbolic link
/// resolved. The default root is made (mode 0700) when missing.
pub(super) fn allowed_target(target: &Path, roots: &[PathBuf]) -> Result<PathBuf> {
    let plain = target.is_absolute()
        && target
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !plain {
        bail!(
            "the restore target {} is not an absolute path without . or ..",
            target.display()
        );
    }
    // The deepest part of the target that exists, with its links resolved, and the rest.
    let mut existing = target.to_path_buf();
    let mut rest = Vec::new();
    let resolved = loop {
        match existing.canonicalize() {
            Ok(p) => break p,
            // There, but not resolvable (a link to nowhere, which creating would follow).
            Err(_) if existing.symlink_metadata().is_ok() => {
                bail!("the restore target {} cannot be resolved", target.display())
            }
            Err(_) => match (existing.file_name(), existing.parent()) {
                (Some(name), Some(parent)) => {
                    rest.push(name.to_os_string());
                    existing = parent.to_path_buf();
                }
                _ => bail!("the restore target {} cannot be resolved", target.display()),
            },
        }
    };
    let resolved = rest.iter().rev().fold(resolved, |p, name| p.join(name));
    for root in roots {
        if let Ok(root) = root.canonicalize()
            && resolved.starts_with(&root)
        {
            return Ok(resolved);
        }
    }
    let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    bail!(
        "the restore target {} is outside this agent's restore roots ({}); the machine's owner \
         allows others with `loop agent run --restore-root DIR`",
        target.display(),
        shown.join(", ")
    )
}

impl Agent {
    /// A restore to this machine, as the job's parameters say: (summary, warnings).
    pub(super) fn restore(
        &self,
        g: &Global,
        job: &AgentJob,
        progress: &RestoreProgress,
    ) -> Result<(serde_json::Value, usize)> {
        let r: RestoreToDevice =
            serde_json::from_value(job.params.clone()).context("the restore's parameters")?;
        let target = allowed_target(Path::new(&r.target), &self.restore_roots)?;
        let repo = self.open_vault(g, r.vault_id.as_str(), "restore")?;
        let (id, snap) = repo.find_snapshot(&r.snapshot, &Default::default())?;
        std::fs::create_dir_all(&target)
            .with_context(|| format!("creating {}", target.display()))?;
        // Checked again on the opened target: a link swapped into its path since the check
        // above (by someone who writes under a root) cannot send the restore elsewhere.
        let within: Vec<PathBuf> = self
            .restore_roots
            .iter()
            .filter_map(|r| r.canonicalize().ok())
            .collect();
        if within.is_empty() {
            bail!("none of this agent's restore roots exists");
        }
        let opts = RestoreOptions {
            target,
            includes: r.paths.clone(),
            excludes: Vec::new(),
            verify: false,
            threads: g.threads,
            tree_fetchers: 4,
            files_per_batch: 1024,
            owner: None,
            within,
        };
        self.log(
            job,
            "info",
            &format!("restoring snapshot {} to {}", id.to_hex(), r.target),
        );
        let report = loop_repo::restore::run(&repo, &snap.tree, &opts, progress)?;
        for e in report.errors.iter().chain(&report.warnings).take(50) {
            self.log(job, "warning", e);
        }
        if !report.errors.is_empty() {
            bail!(
                "{} entries could not be restored (see the job log)",
                report.errors.len()
            );
        }
        Ok((
            serde_json::json!({
                "snapshot_id": id.to_hex(), "target": r.target, "files": report.files,
                "dirs": report.dirs, "bytes": report.bytes,
            }),
            report.warnings.len(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_allowed_only_under_a_root_once_every_link_is_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), root.join("dangling")).unwrap();
        let roots = [root.clone()];
        let real = root.canonicalize().unwrap();
        assert_eq!(
            allowed_target(&root.join("a/new/deeper"), &roots).unwrap(),
            real.join("a/new/deeper")
        );
        assert_eq!(allowed_target(&root, &roots).unwrap(), real);
        for (target, why) in [
            (root.join("out/x"), "outside"),
            (root.join("dangling/x"), "cannot be resolved"),
            (root.join("a/../../outside"), "without . or .."),
            (PathBuf::from("relative/path"), "absolute"),
            (outside.clone(), "outside"),
            (dir.path().join("rootless"), "outside"),
        ] {
            let e = allowed_target(&target, &roots).unwrap_err().to_string();
            assert!(e.contains(why), "{target:?}: {e}");
        }
    }
}
