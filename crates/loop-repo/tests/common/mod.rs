//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use loop_repo::backup::BackupOptions;
use loop_repo::keys::{KdfParams, Secret};
use loop_repo::{FileKind, InitOptions, ObjectStorage, Repository, S3Options};

/// A new repository in `dir` (fast key derivation).
pub fn repo_at(dir: &Path) -> Repository {
    let storage =
        Arc::new(ObjectStorage::open(dir.to_str().unwrap(), &S3Options::default(), true).unwrap());
    let opts = InitOptions {
        kdf: KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        ..Default::default()
    };
    Repository::init(storage, Secret::Passphrase(b"pw"), &opts).unwrap()
}

/// Backup options for `path` on host `h`.
pub fn opts(path: &Path) -> BackupOptions {
    BackupOptions {
        paths: vec![path.to_path_buf()],
        host: "h".into(),
        ..Default::default()
    }
}

/// Every object in the repository, as (kind, name).
pub fn objects(repo: &Repository) -> std::collections::BTreeSet<(String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for kind in [
        FileKind::Snapshot,
        FileKind::Index,
        FileKind::Pack,
        FileKind::Plan,
    ] {
        for o in repo.storage().list(kind).unwrap() {
            out.insert((format!("{kind:?}"), o.name));
        }
    }
    out
}

/// A check that reads every pack.
pub fn read_everything(repo: &Repository) -> loop_repo::check::CheckReport {
    let opts = loop_repo::check::CheckOptions {
        read_data: loop_repo::check::ReadData::All,
        threads: 1,
    };
    loop_repo::check::run(repo, &opts, &Default::default()).unwrap()
}
