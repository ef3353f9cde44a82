//! Prune beside backups and other prunes: what a backup saved is never deleted under it, and a
//! plan is carried out only on the repository it was made for.

use std::path::Path;

mod common;

use common::{opts, read_everything, repo_at};
use loop_repo::backup::{self, BackupProgress};
use loop_repo::prune::{self, PruneOptions};
use loop_repo::{FileKind, Repository};

fn no_grace() -> PruneOptions {
    PruneOptions {
        grace: std::time::Duration::ZERO,
        ..Default::default()
    }
}

/// Bytes that do not compress, so the file is stored as data blobs of its own.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn backup(repo: &Repository, src: &Path) -> backup::BackupResult {
    backup::run(repo, opts(src), &BackupProgress::default()).unwrap()
}

/// A repository and a source directory holding `files`, in a new temporary directory.
fn setup(files: &[(&str, Vec<u8>)]) -> (tempfile::TempDir, std::path::PathBuf, Repository) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for (name, bytes) in files {
        std::fs::write(src.join(name), bytes).unwrap();
    }
    let repo = repo_at(&tmp.path().join("repo"));
    (tmp, src, repo)
}

fn assert_whole(repo: &Repository) {
    let check = read_everything(repo);
    assert!(check.is_ok(), "{:?}", check.errors);
}

#[test]
fn a_backup_that_ends_while_prune_plans_keeps_everything_it_uses() {
    let (_tmp, src, repo) = setup(&[("a", noise(300_000, 1))]);
    let first = backup(&repo, &src);
    repo.remove_snapshot(&first.snapshot_id.unwrap()).unwrap();

    // Prune plans while nothing uses the packs; a backup of the same files then runs to its
    // end, storing nothing new because those packs hold everything it needs.
    let plan = prune::plan(&repo, &no_grace()).unwrap();
    assert!(plan.packs_delete > 0, "{plan:?}");
    let second = backup(&repo, &src);
    assert_eq!(second.snapshot.summary.unwrap().data_blobs, 0);

    let report = prune::execute(&repo, plan).unwrap();
    assert_eq!(report.packs_deleted, 0, "{report:?}");
    assert_whole(&repo);

    // A later prune sees the snapshot: it keeps what it uses and frees nothing it needs.
    prune::execute(&repo, prune::plan(&repo, &no_grace()).unwrap()).unwrap();
    assert_whole(&repo);
    assert!(repo.storage().list(FileKind::Plan).unwrap().is_empty());
    assert_eq!(read_everything(&repo).snapshots, 1);
}

#[test]
fn a_plan_another_prune_overtook_is_refused() {
    let (_tmp, src, repo) = setup(&[("kept", noise(200_000, 5)), ("dropped", noise(200_000, 7))]);
    let first = backup(&repo, &src);
    std::fs::remove_file(src.join("dropped")).unwrap();
    backup(&repo, &src);
    repo.remove_snapshot(&first.snapshot_id.unwrap()).unwrap();

    // Two prunes plan; the one that repacks everything with unused bytes runs first.
    let repack_all = PruneOptions {
        max_unused: 0.0,
        ..no_grace()
    };
    let eager = prune::plan(&repo, &repack_all).unwrap();
    let lazy = prune::plan(
        &repo,
        &PruneOptions {
            max_unused: 1.0,
            ..no_grace()
        },
    )
    .unwrap();
    assert!(eager.packs_repack > 0, "{eager:?}");
    assert_eq!(lazy.packs_repack, 0, "{lazy:?}");
    prune::execute(&repo, eager).unwrap();
    let before = repo.storage().list(FileKind::Index).unwrap().len();

    let err = prune::execute(&repo, lazy).unwrap_err().to_string();
    assert!(err.contains("another prune"), "{err}");
    assert_eq!(repo.storage().list(FileKind::Index).unwrap().len(), before);
    assert_whole(&repo);
}

#[test]
fn after_a_pack_vanishes_under_a_backup_the_next_prune_lets_backups_store_it_again() {
    let (_tmp, src, repo) = setup(&[("a", noise(300_000, 9))]);
    let first = backup(&repo, &src);
    repo.remove_snapshot(&first.snapshot_id.unwrap()).unwrap();
    // Its packs go as a prune with no grace would take them from a running backup.
    for p in repo.storage().list(FileKind::Pack).unwrap() {
        repo.storage().delete(FileKind::Pack, &p.name).unwrap();
    }
    std::fs::write(src.join("b"), b"something new").unwrap();

    let failed = backup::run(&repo, opts(&src), &BackupProgress::default()).unwrap_err();
    assert!(
        failed.to_string().contains("missing from storage"),
        "{failed}"
    );
    prune::execute(&repo, prune::plan(&repo, &no_grace()).unwrap()).unwrap();
    let again = backup(&repo, &src);
    assert!(
        again.snapshot.summary.unwrap().data_blobs >= 2,
        "a is stored again"
    );
    assert_whole(&repo);
}
