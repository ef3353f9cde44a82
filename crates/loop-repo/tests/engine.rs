//! The engine as a library: backup, browse, prune, on a local repository.

use std::path::Path;
use std::sync::Arc;

use loop_repo::backup::{self, BackupOptions, BackupProgress};
use loop_repo::keys::{KdfParams, Secret};
use loop_repo::prune::{self, PruneOptions};
use loop_repo::{InitOptions, ObjectStorage, Repository, S3Options, browse};

fn repo_at(dir: &Path) -> Repository {
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

fn opts(path: &Path) -> BackupOptions {
    BackupOptions {
        paths: vec![path.to_path_buf()],
        host: "h".into(),
        ..Default::default()
    }
}

#[test]
fn backup_lists_and_dedups_and_prune_keeps_what_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a"), vec![7u8; 3_000_000]).unwrap();
    std::fs::write(src.join("sub/b"), b"bee").unwrap();
    let repo = repo_at(&tmp.path().join("repo"));

    let r1 = backup::run(&repo, opts(&src), &BackupProgress::default()).unwrap();
    assert!(r1.unreadable.is_empty());
    let s1 = r1.snapshot.summary.unwrap();
    assert_eq!(s1.files_new, 2);
    assert!(
        s1.data_added_packed < 100_000,
        "3 MB of one byte compresses: {}",
        s1.data_added_packed
    );

    let index = repo.load_index().unwrap();
    let mut paths = Vec::new();
    browse::walk(&repo, &index, &r1.snapshot.tree, "", &mut |p, _| {
        paths.push(p.to_string());
        Ok(())
    })
    .unwrap();
    assert_eq!(paths, vec!["/src", "/src/a", "/src/sub", "/src/sub/b"]);

    let r2 = backup::run(&repo, opts(&src), &BackupProgress::default()).unwrap();
    let s2 = r2.snapshot.summary.unwrap();
    assert_eq!(s2.files_unmodified, 2);
    assert_eq!(s2.data_blobs, 0);
    assert_eq!(
        r2.snapshot.tree, r1.snapshot.tree,
        "an unchanged tree has the same ID"
    );

    let popts = PruneOptions {
        grace: std::time::Duration::ZERO,
        ..Default::default()
    };
    let plan = prune::plan(&repo, &popts).unwrap();
    assert!(plan.is_noop(), "{plan:?}");
    assert_eq!(repo.list_snapshots().unwrap().snapshots.len(), 2);
}

#[test]
fn diff_reports_type_content_and_metadata_changes() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("gone")).unwrap();
    std::fs::write(src.join("gone/inner"), b"x").unwrap();
    std::fs::write(src.join("becomes-dir"), b"file").unwrap();
    std::fs::write(src.join("edited"), b"one").unwrap();
    std::fs::write(src.join("chmodded"), b"same").unwrap();
    let repo = repo_at(&tmp.path().join("repo"));
    let a = backup::run(&repo, opts(&src), &BackupProgress::default())
        .unwrap()
        .snapshot
        .tree;

    std::fs::remove_dir_all(src.join("gone")).unwrap();
    std::fs::remove_file(src.join("becomes-dir")).unwrap();
    std::fs::create_dir(src.join("becomes-dir")).unwrap();
    std::fs::write(src.join("becomes-dir/new"), b"n").unwrap();
    std::fs::write(src.join("edited"), b"two").unwrap();
    std::fs::set_permissions(src.join("chmodded"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let b = backup::run(&repo, opts(&src), &BackupProgress::default())
        .unwrap()
        .snapshot
        .tree;

    let index = repo.load_index().unwrap();
    let changes: Vec<(char, String)> = browse::diff(&repo, &index, &a, &b)
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.path))
        .collect();
    let expect = |k: char, p: &str| (k, p.to_string());
    assert!(
        changes.contains(&expect('T', "/src/becomes-dir")),
        "{changes:?}"
    );
    assert!(
        changes.contains(&expect('+', "/src/becomes-dir/new")),
        "{changes:?}"
    );
    assert!(changes.contains(&expect('M', "/src/edited")), "{changes:?}");
    assert!(
        changes.contains(&expect('U', "/src/chmodded")),
        "{changes:?}"
    );
    assert!(changes.contains(&expect('-', "/src/gone")), "{changes:?}");
    assert!(
        changes.contains(&expect('-', "/src/gone/inner")),
        "{changes:?}"
    );
    assert!(
        browse::diff(&repo, &index, &a, &a).unwrap().is_empty(),
        "a tree equals itself"
    );
}

#[test]
fn a_repository_whose_key_slots_are_deleted_says_so_instead_of_blaming_the_passphrase() {
    // Crypto-shredding leaves config, packs and snapshots behind; the one thing missing
    // is every key slot, and the right passphrase must then fail with that reason.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    drop(repo_at(&dir));
    let open = || {
        let storage =
            ObjectStorage::open(dir.to_str().unwrap(), &S3Options::default(), false).unwrap();
        Repository::open(Arc::new(storage), Secret::Passphrase(b"pw"))
    };
    assert!(open().is_ok());
    std::fs::remove_dir_all(dir.join("keys")).unwrap();
    let err = open().err().expect("no key slot opens nothing").to_string();
    assert!(err.contains("has no key slot"), "{err}");
}
