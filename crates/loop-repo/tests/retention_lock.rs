//! Forget and prune against a store that refuses to delete what a retention lock holds
//! (as `loop server` refuses with `retention_locked`): they keep going, report what stayed,
//! leave a repository that checks whole after every run, and finish once the lock lifts.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use common::{objects, opts, read_everything, repo_at};
use loop_repo::backup::{self, BackupProgress};
use loop_repo::forget::{self, ForgetRequest, KeepPolicy};
use loop_repo::keys::Secret;
use loop_repo::prune::{self, PruneOptions};
use loop_repo::{Error, FileKind, ObjectInfo, ObjectStorage, Repository, S3Options, Storage};

/// Local storage whose deletes of the objects in `held` are refused as a lock would.
struct LockedStorage {
    inner: ObjectStorage,
    held: Mutex<HashSet<(FileKind, String)>>,
}

impl LockedStorage {
    /// Holds every object of `kinds` stored now.
    fn hold(&self, kinds: &[FileKind]) {
        let mut held = self.held.lock().unwrap();
        held.clear();
        for &kind in kinds {
            for o in self.inner.list(kind).unwrap() {
                held.insert((kind, o.name));
            }
        }
    }
}

impl Storage for LockedStorage {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn put(&self, kind: FileKind, name: &str, data: Vec<u8>) -> loop_repo::Result<()> {
        self.inner.put(kind, name, data)
    }
    fn get(&self, kind: FileKind, name: &str, max: u64) -> loop_repo::Result<Vec<u8>> {
        self.inner.get(kind, name, max)
    }
    fn get_range(&self, k: FileKind, n: &str, off: u64, len: u64) -> loop_repo::Result<Vec<u8>> {
        self.inner.get_range(k, n, off, len)
    }
    fn list(&self, kind: FileKind) -> loop_repo::Result<Vec<ObjectInfo>> {
        self.inner.list(kind)
    }
    fn delete(&self, kind: FileKind, name: &str) -> loop_repo::Result<()> {
        if self
            .held
            .lock()
            .unwrap()
            .contains(&(kind, name.to_string()))
        {
            return Err(Error::Held {
                object: kind.path(name),
                message: "kept until tomorrow".into(),
            });
        }
        self.inner.delete(kind, name)
    }
    fn size(&self, kind: FileKind, name: &str) -> loop_repo::Result<u64> {
        self.inner.size(kind, name)
    }
}

#[test]
fn forget_and_prune_keep_what_the_store_holds_and_finish_once_it_lets_go() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let dir = tmp.path().join("repo");
    drop(repo_at(&dir));
    let storage = Arc::new(LockedStorage {
        inner: ObjectStorage::open(dir.to_str().unwrap(), &S3Options::default(), false).unwrap(),
        held: Mutex::new(HashSet::new()),
    });
    let repo = Repository::open(storage.clone(), Secret::Passphrase(b"pw")).unwrap();
    // Three snapshots of data of their own (nothing deduplicates across them).
    for n in 0..3u32 {
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(n * 977) >> 13) as u8)
            .collect();
        std::fs::write(src.join("f"), data).unwrap();
        backup::run(&repo, opts(&src), &BackupProgress::default()).unwrap();
    }
    let keep_last = ForgetRequest::Policies {
        default: KeepPolicy {
            last: 1,
            ..Default::default()
        },
        by_tag: Default::default(),
    };
    let popts = PruneOptions {
        max_unused: 0.0,
        grace: std::time::Duration::ZERO,
    };

    // Everything held: forget keeps the two snapshots it would remove and says so.
    storage.hold(&[FileKind::Snapshot, FileKind::Index, FileKind::Pack]);
    let before = objects(&repo);
    let plan = forget::plan(&repo, &keep_last).unwrap();
    assert_eq!(plan.remove.len(), 2);
    let report = forget::execute(&repo, &plan).unwrap();
    assert!(report.removed.is_empty());
    assert_eq!(report.held, plan.remove);
    assert_eq!(objects(&repo), before);

    // Snapshots released, data still held: the snapshots go, prune keeps every held pack
    // and index file, and the repository stays whole.
    storage.hold(&[FileKind::Index, FileKind::Pack]);
    let report = forget::execute(&repo, &plan).unwrap();
    assert_eq!(report.removed, plan.remove);
    let held_data: Vec<_> = before.iter().filter(|(k, _)| k != "Snapshot").collect();
    let pruned = prune::execute(&repo, prune::plan(&repo, &popts).unwrap()).unwrap();
    assert!(pruned.objects_locked > 0, "{pruned:?}");
    assert_eq!(pruned.packs_deleted + pruned.index_files_deleted, 0);
    let now = objects(&repo);
    assert!(held_data.iter().all(|o| now.contains(o)));
    let check = read_everything(&repo);
    assert!(check.is_ok(), "{:?}", check.errors);

    // Index files released, packs held: the old index files go, the packs they named stay
    // (unreferenced now), and the repository is still whole.
    storage.hold(&[FileKind::Pack]);
    let pruned = prune::execute(&repo, prune::plan(&repo, &popts).unwrap()).unwrap();
    assert!(pruned.objects_locked > 0, "{pruned:?}");
    assert_eq!(pruned.packs_deleted, 0);
    let check = read_everything(&repo);
    assert!(check.is_ok(), "{:?}", check.errors);

    // The lock lifts: the next prune finishes the job.
    storage.hold(&[]);
    let pruned = prune::execute(&repo, prune::plan(&repo, &popts).unwrap()).unwrap();
    assert_eq!(pruned.objects_locked, 0);
    assert!(pruned.packs_deleted > 0, "{pruned:?}");
    let check = read_everything(&repo);
    assert!(check.is_ok(), "{:?}", check.errors);
    assert_eq!(check.snapshots, 1);
    assert_eq!(check.unreferenced_packs, 0, "every unused pack is gone");
    assert!(repo.storage().list(FileKind::Plan).unwrap().is_empty());
}
