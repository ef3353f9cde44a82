use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::check::{self, CheckOptions, CheckProgress, CheckReport, ReadData};
use crate::prune::{self, PruneOptions};
use crate::restore::{self, RestoreOptions, RestoreProgress};

/// A repository with two snapshots of two directories, each with its own data and tree packs.
struct Fixture {
    repo_dir: tempfile::TempDir,
    sources: Vec<tempfile::TempDir>,
    repo: Repository,
}

fn fixture() -> Fixture {
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = crate::testutil::local_repo(repo_dir.path());
    let mut sources = Vec::new();
    for (i, text) in ["the first directory's file\n", "a second, different file\n"]
        .iter()
        .enumerate()
    {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join(format!("f{i}.txt")), text.repeat(100 + i)).unwrap();
        crate::testutil::back_up(&repo, src.path());
        sources.push(src);
    }
    Fixture {
        repo_dir,
        sources,
        repo,
    }
}

impl Fixture {
    fn check(&self) -> CheckReport {
        let opts = CheckOptions {
            read_data: ReadData::All,
            threads: 0,
        };
        check::run(&self.repo, &opts, &CheckProgress::default()).unwrap()
    }

    fn names(&self, kind: FileKind) -> Vec<String> {
        let mut names: Vec<String> = self
            .repo
            .storage()
            .list(kind)
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        names.sort();
        names
    }

    fn path(&self, kind: FileKind, name: &str) -> PathBuf {
        self.repo_dir.path().join(kind.path(name))
    }

    fn repair(&self) -> IndexRepair {
        index(&self.repo, &IndexRepairOptions::default()).unwrap()
    }

    /// Every snapshot restored into a new directory, each file compared with its source.
    fn assert_every_snapshot_restores(&self) {
        let list = self.repo.list_snapshots().unwrap();
        assert_eq!(list.snapshots.len(), self.sources.len());
        for (_, snap) in &list.snapshots {
            let target = tempfile::tempdir().unwrap();
            let opts = RestoreOptions {
                target: target.path().to_path_buf(),
                ..Default::default()
            };
            let report =
                restore::run(&self.repo, &snap.tree, &opts, &RestoreProgress::default()).unwrap();
            assert!(report.errors.is_empty(), "{:#?}", report.errors);
            assert_eq!(report.files, 1);
            let restored = only_file(target.path());
            let name = restored.file_name().unwrap().to_owned();
            let source = self
                .sources
                .iter()
                .map(|s| s.path().join(&name))
                .find(|p| p.exists())
                .expect("a source file of that name");
            assert_eq!(
                std::fs::read(&restored).unwrap(),
                std::fs::read(source).unwrap()
            );
        }
    }
}

/// The one regular file under `dir`.
fn only_file(dir: &Path) -> PathBuf {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                found.push(e.path());
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

#[test]
fn lost_index_files_are_made_again_from_the_packs() {
    let fx = fixture();
    let packs = fx.names(FileKind::Pack);
    assert_eq!(packs.len(), 4, "a data and a tree pack per backup");
    for name in fx.names(FileKind::Index) {
        fx.repo.storage().delete(FileKind::Index, &name).unwrap();
    }
    assert!(!fx.check().is_ok(), "nothing can be found without an index");

    let report = fx.repair();
    assert_eq!(report.index_files, 0);
    assert_eq!(report.packs, 4);
    assert_eq!(report.packs_indexed, 4);
    assert_eq!(
        report.blobs_indexed,
        2 + 4,
        "two files, and a root and a directory each"
    );
    assert_eq!(report.index_files_written, 1);
    assert!(report.unreadable_packs.is_empty() && report.packs_gone.is_empty());

    let check = fx.check();
    assert!(check.is_ok(), "{check:#?}");
    assert_eq!(check.unreferenced_packs, 0);
    fx.assert_every_snapshot_restores();
    assert_eq!(fx.names(FileKind::Pack), packs, "no pack was touched");
}

#[test]
fn a_damaged_index_file_is_replaced_and_prune_runs_again() {
    let fx = fixture();
    let files = fx.names(FileKind::Index);
    let damaged = &files[0];
    let path = fx.path(FileKind::Index, damaged);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let refused = prune::plan(&fx.repo, &PruneOptions::default()).unwrap_err();
    assert!(
        refused.to_string().contains("loop repair index"),
        "{refused}"
    );

    let report = fx.repair();
    assert_eq!(report.damaged_index_files.len(), 1, "{report:#?}");
    assert_eq!(
        report.damaged_index_files[0].object,
        FileKind::Index.path(damaged)
    );
    assert_eq!(report.packs_indexed, 2, "the packs of one backup");
    assert_eq!(
        (report.index_files_written, report.index_files_deleted),
        (1, 1)
    );
    let now = fx.names(FileKind::Index);
    assert!(!now.contains(damaged), "{now:?}");
    assert!(now.contains(&files[1]), "the readable file stays: {now:?}");

    prune::plan(&fx.repo, &PruneOptions::default()).expect("prune plans again");
    assert!(fx.check().is_ok());
    fx.assert_every_snapshot_restores();
}

#[test]
fn a_pack_gone_from_storage_is_no_longer_named_and_the_rest_stays_findable() {
    let fx = fixture();
    let index = fx.repo.load_index().unwrap();
    let data_packs: Vec<Id> = index
        .pack_ids()
        .iter()
        .filter(|p| !index.is_tree_pack(p))
        .copied()
        .collect();
    assert_eq!(data_packs.len(), 2);
    let lost = data_packs[0];
    std::fs::remove_file(fx.path(FileKind::Pack, &lost.to_hex())).unwrap();
    let lost_blobs: Vec<Id> = index
        .iter()
        .filter(|l| l.pack == lost)
        .map(|l| l.entry.id)
        .collect();
    let kept_blobs: Vec<Id> = index
        .iter()
        .filter(|l| l.pack != lost)
        .map(|l| l.entry.id)
        .collect();
    let files_before = fx.names(FileKind::Index);

    let report = fx.repair();
    assert_eq!(report.packs_gone, vec![FileKind::Pack.path(&lost.to_hex())]);
    assert_eq!(report.rewritten_index_files, 1);
    assert_eq!(report.packs_indexed, 0);
    assert_eq!(
        (report.index_files_written, report.index_files_deleted),
        (1, 1)
    );
    assert_eq!(fx.names(FileKind::Index).len(), files_before.len());

    let index = fx.repo.load_index().unwrap();
    assert!(lost_blobs.iter().all(|b| !index.contains(b)));
    assert!(kept_blobs.iter().all(|b| index.contains(b)));
    assert!(index.pack_ids().iter().all(|p| *p != lost));
}

#[test]
fn a_pack_whose_trailer_fails_authentication_is_named_and_left_in_place() {
    let fx = fixture();
    for name in fx.names(FileKind::Index) {
        fx.repo.storage().delete(FileKind::Index, &name).unwrap();
    }
    let packs = fx.names(FileKind::Pack);
    let broken = &packs[1];
    let path = fx.path(FileKind::Pack, broken);
    let mut bytes = std::fs::read(&path).unwrap();
    let in_trailer = bytes.len() - 6;
    bytes[in_trailer] ^= 0x80;
    std::fs::write(&path, &bytes).unwrap();

    let report = fx.repair();
    assert_eq!(report.packs_indexed, 3);
    assert_eq!(report.unreadable_packs.len(), 1, "{report:#?}");
    assert_eq!(
        report.unreadable_packs[0].object,
        FileKind::Pack.path(broken)
    );
    assert!(
        report.unreadable_packs[0].reason.contains("authentication"),
        "{report:#?}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the pack is left as it was"
    );
    let index = fx.repo.load_index().unwrap();
    assert_eq!(index.pack_ids().len(), 3);
}

#[test]
fn a_pack_copied_under_another_name_is_not_indexed_under_it() {
    let fx = fixture();
    let packs = fx.names(FileKind::Pack);
    let copy = Id::random().to_hex();
    let bytes = std::fs::read(fx.path(FileKind::Pack, &packs[0])).unwrap();
    fx.repo.storage().put(FileKind::Pack, &copy, bytes).unwrap();

    let report = fx.repair();
    assert_eq!(report.packs_indexed, 0);
    assert_eq!(report.unreadable_packs.len(), 1, "{report:#?}");
    assert!(
        report.unreadable_packs[0].reason.contains("names pack"),
        "{report:#?}"
    );
    assert_eq!(report.index_files_written, 0);
}

#[test]
fn a_running_backups_new_pack_is_left_for_it_and_an_older_one_is_indexed() {
    let fx = fixture();
    let index = fx.repo.load_index().unwrap();
    let blob = index.iter().next().unwrap().entry.id;
    let (e, payload) = crate::testutil::stored_payload(&fx.repo, &blob);
    let (young, _) = crate::testutil::store_in_new_pack(&fx.repo, &e, &payload);
    let (old, _) = crate::testutil::store_in_new_pack(&fx.repo, &e, &payload);
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(fx.path(FileKind::Pack, &old.to_hex()))
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    let backup = Lock::acquire(&fx.repo, LockKind::Backup).unwrap();

    let report = fx.repair();
    assert_eq!(report.packs_of_running_backups, 1);
    assert_eq!(report.packs_indexed, 1);
    let index = fx.repo.load_index().unwrap();
    assert!(index.pack_ids().contains(&old));
    assert!(!index.pack_ids().contains(&young));

    drop(backup);
    let report = fx.repair();
    assert_eq!(report.packs_of_running_backups, 0);
    assert_eq!(
        report.packs_indexed, 1,
        "no backup runs: the young pack too"
    );
    assert!(fx.repo.load_index().unwrap().pack_ids().contains(&young));
}

#[test]
fn a_whole_index_is_left_as_it_is() {
    let fx = fixture();
    let before = fx.names(FileKind::Index);
    let report = fx.repair();
    assert!(!report.changed_anything(), "{report:#?}");
    assert_eq!(report.index_files, before.len());
    assert_eq!(fx.names(FileKind::Index), before);
}

#[test]
fn a_dry_run_reports_and_changes_nothing() {
    let fx = fixture();
    for name in fx.names(FileKind::Index) {
        fx.repo.storage().delete(FileKind::Index, &name).unwrap();
    }
    let report = index(&fx.repo, &IndexRepairOptions { dry_run: true }).unwrap();
    assert!(report.dry_run);
    assert_eq!(report.packs_indexed, 4);
    assert!(!report.changed_anything());
    assert!(fx.names(FileKind::Index).is_empty());
    assert!(
        fx.names(FileKind::Lock).is_empty(),
        "a dry run takes no marker"
    );
}

#[test]
fn a_storage_error_reading_an_index_file_stops_the_repair_before_any_change() {
    let fx = fixture();
    let before = fx.names(FileKind::Index);
    let hooked = crate::testutil::Hooked {
        inner: fx.repo.storage().clone(),
        read: Box::new(|_, kind, name| {
            (kind == FileKind::Index).then(|| {
                Err(Error::Storage {
                    object: FileKind::Index.path(name),
                    message: "connection reset".into(),
                })
            })
        }),
    };
    let repo = Repository::open(Arc::new(hooked), crate::keys::Secret::Passphrase(b"pw")).unwrap();

    let err = index(&repo, &IndexRepairOptions::default()).unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert_eq!(fx.names(FileKind::Index), before, "nothing deleted");
    assert!(!fx.repo.load_index().unwrap().is_empty());
}
