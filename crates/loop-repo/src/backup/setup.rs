//! Setup: check the options, take the backup lock, load the index, pick the parent snapshot.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{BackupOptions, ParentChoice};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::Index;
use crate::locks::{Lock, LockKind};
use crate::repo::Repository;
use crate::snapshot::{Snapshot, SnapshotFilter};
use crate::tree::{Name, Tree};

/// What a run starts from, besides the index.
pub(super) struct Setup {
    /// The paths to back up, absolute and normalized.
    pub(super) roots: Vec<PathBuf>,
    /// The snapshot's `paths`: the roots, or `/name` for standard input.
    pub(super) paths: Vec<String>,
    /// Held until the snapshot is saved; none for a dry run, which writes nothing.
    pub(super) lock: Option<Lock>,
    /// Index files that could not be read.
    pub(super) index_warnings: Vec<String>,
    pub(super) parent: Option<Id>,
    /// The parent snapshot's root tree, when it can be read.
    pub(super) parent_root: Option<Tree>,
}

impl Setup {
    pub(super) fn prepare(repo: &Repository, opts: &BackupOptions) -> Result<(Setup, Index)> {
        if opts.paths.is_empty() && opts.stdin.is_none() {
            return Err(Error::Invalid(
                "nothing to back up: name at least one path".into(),
            ));
        }
        let roots: Vec<PathBuf> = opts
            .paths
            .iter()
            .map(|p| absolute(p))
            .collect::<Result<_>>()?;
        let mut seen_names = HashSet::new();
        for p in &roots {
            std::fs::symlink_metadata(p).map_err(|e| Error::io(p, e))?;
            if !seen_names.insert(root_name(p)) {
                return Err(Error::Invalid(format!(
                    "two paths have the same last component as {}; back them up separately",
                    p.display()
                )));
            }
        }
        let paths: Vec<String> = match &opts.stdin {
            Some(s) => vec![format!("/{}", s.name)],
            None => roots.iter().map(|p| p.display().to_string()).collect(),
        };
        if let Some(s) = &opts.stdin
            && !Name(s.name.as_bytes().to_vec()).is_safe_component()
        {
            return Err(Error::Invalid(format!(
                "--stdin-filename {:?} must be a plain file name",
                s.name
            )));
        }

        let lock = if opts.dry_run {
            None
        } else {
            Some(Lock::acquire(repo, LockKind::Backup)?)
        };
        // Packs a pending prune will delete are not deduplicated against (see prune.rs).
        let (condemned, plan_warnings) = crate::prune::condemned_packs(repo)?;
        let (index, mut index_warnings) = repo.load_index_lenient(&condemned)?;
        index_warnings.extend(plan_warnings);
        let parent = find_parent(repo, opts, &paths)?;
        let parent_root = match &parent {
            Some((_, s)) => repo.load_tree(&index, &s.tree).ok(),
            None => None,
        };
        let setup = Setup {
            roots,
            paths,
            lock,
            index_warnings,
            parent: parent.map(|(id, _)| id),
            parent_root,
        };
        Ok((setup, index))
    }
}

/// A backed-up path's name in the snapshot's root tree: its last component, `root` for `/`.
pub(super) fn root_name(path: &Path) -> Vec<u8> {
    path.file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_else(|| b"root".to_vec())
}

/// Absolute, normalized form of a backup path (no symlink resolution of the last component).
fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

fn find_parent(
    repo: &Repository,
    opts: &BackupOptions,
    paths: &[String],
) -> Result<Option<(Id, Snapshot)>> {
    match &opts.parent {
        ParentChoice::None => Ok(None),
        ParentChoice::Id(id) => Ok(Some((*id, repo.load_snapshot(id)?))),
        ParentChoice::Auto => {
            let filter = SnapshotFilter {
                hosts: vec![opts.host.clone()],
                ..Default::default()
            };
            Ok(repo
                .list_snapshots()?
                .snapshots
                .into_iter()
                .rev()
                .find(|(_, s)| filter.matches(s) && s.paths == paths))
        }
    }
}
