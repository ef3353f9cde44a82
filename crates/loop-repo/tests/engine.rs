//! The engine as a library: backup, browse, prune, on a local repository.

use std::path::Path;
use std::sync::Arc;

mod common;

use common::{objects, opts, read_everything, repo_at};
use loop_repo::backup::{self, BackupOptions, BackupProgress};
use loop_repo::keys::Secret;
use loop_repo::prune::{self, PruneOptions};
use loop_repo::{FileKind, ObjectInfo, ObjectStorage, Repository, S3Options, Storage, browse};

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
    std::fs::create_dir_all(src.join("locked")).unwrap();
    std::fs::set_permissions(src.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(src.join("locked/inside"), b"same").unwrap();
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
    std::fs::set_permissions(src.join("locked"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let b = backup::run(&repo, opts(&src), &BackupProgress::default())
        .unwrap()
        .snapshot
        .tree;

    let index = repo.load_index().unwrap();
    let changes_between = |a, b| {
        let mut changes: Vec<(char, String)> = Vec::new();
        browse::diff(&repo, &index, a, b, &mut |c| {
            changes.push((c.kind, c.path));
            Ok(())
        })
        .unwrap();
        changes
    };
    let changes = changes_between(&a, &b);
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
    // A directory's own mode; not its time, which moves with the names it holds.
    assert!(changes.contains(&expect('U', "/src/locked")), "{changes:?}");
    assert!(!changes.contains(&expect('U', "/src")), "{changes:?}");
    assert!(changes.contains(&expect('-', "/src/gone")), "{changes:?}");
    assert!(
        changes.contains(&expect('-', "/src/gone/inner")),
        "{changes:?}"
    );
    assert!(changes_between(&a, &a).is_empty(), "a tree equals itself");
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

/// Local storage that counts the reads of packs, whole and by range.
struct CountingStorage {
    inner: ObjectStorage,
    whole_packs: std::sync::atomic::AtomicUsize,
    pack_ranges: std::sync::atomic::AtomicUsize,
}

impl CountingStorage {
    fn reads(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.whole_packs.swap(0, SeqCst),
            self.pack_ranges.swap(0, SeqCst),
        )
    }
}

impl Storage for CountingStorage {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn put(&self, kind: FileKind, name: &str, data: Vec<u8>) -> loop_repo::Result<()> {
        self.inner.put(kind, name, data)
    }
    fn get(&self, kind: FileKind, name: &str, max: u64) -> loop_repo::Result<Vec<u8>> {
        if kind == FileKind::Pack {
            self.whole_packs
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.get(kind, name, max)
    }
    fn get_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> loop_repo::Result<Vec<u8>> {
        if kind == FileKind::Pack {
            self.pack_ranges
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.get_range(kind, name, offset, len)
    }
    fn list(&self, kind: FileKind) -> loop_repo::Result<Vec<ObjectInfo>> {
        self.inner.list(kind)
    }
    fn delete(&self, kind: FileKind, name: &str) -> loop_repo::Result<()> {
        self.inner.delete(kind, name)
    }
    fn size(&self, kind: FileKind, name: &str) -> loop_repo::Result<u64> {
        self.inner.size(kind, name)
    }
}

/// Every path under a snapshot's tree, read through `repo` (and so through its cache).
fn all_paths(repo: &Repository, tree: &loop_repo::Id) -> Vec<String> {
    let index = repo.load_index().unwrap();
    let mut paths = Vec::new();
    browse::walk(repo, &index, tree, "", &mut |p, _| {
        paths.push(p.to_string());
        Ok(())
    })
    .unwrap();
    paths
}

#[test]
fn trees_are_read_from_cached_tree_packs_and_a_cold_cache_fetches_each_pack_once() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for d in 0..60 {
        let dir = src.join(format!("d{d:02}/inner"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), format!("file {d}")).unwrap();
    }
    repo_at(&tmp.path().join("repo"));
    let storage = Arc::new(CountingStorage {
        inner: ObjectStorage::open(
            tmp.path().join("repo").to_str().unwrap(),
            &S3Options::default(),
            false,
        )
        .unwrap(),
        whole_packs: Default::default(),
        pack_ranges: Default::default(),
    });
    let open = |cache: &Path| {
        Repository::open(storage.clone(), Secret::Passphrase(b"pw"))
            .unwrap()
            .with_cache(cache)
    };
    let (warm, cold) = (tmp.path().join("warm"), tmp.path().join("cold"));
    let repo = open(&warm);
    let tree = backup::run(&repo, opts(&src), &BackupProgress::default())
        .unwrap()
        .snapshot
        .tree;
    storage.reads();
    let expected = all_paths(
        &Repository::open(storage.clone(), Secret::Passphrase(b"pw")).unwrap(),
        &tree,
    );
    assert_eq!(expected.len(), 1 + 60 * 3);
    let (_, uncached) = storage.reads();
    assert_eq!(
        uncached,
        1 + 1 + 60 * 2,
        "one range read per directory without a cache"
    );

    // The backup put the tree pack it wrote into its cache: no pack read at all.
    assert_eq!(all_paths(&open(&warm), &tree), expected);
    assert_eq!(storage.reads(), (0, 0));

    // Another machine's cold cache downloads the one tree pack whole, once.
    assert_eq!(all_paths(&open(&cold), &tree), expected);
    assert_eq!(storage.reads(), (1, 0));
    assert_eq!(all_paths(&open(&cold), &tree), expected);
    assert_eq!(storage.reads(), (0, 0));

    // A cached pack whose every byte is altered is dropped, never trusted.
    let packs: Vec<_> = walk_files(&cold)
        .into_iter()
        .filter(|p| p.parent().unwrap().ends_with("packs"))
        .collect();
    assert_eq!(packs.len(), 1, "{packs:?}");
    let damaged: Vec<u8> = std::fs::read(&packs[0])
        .unwrap()
        .iter()
        .map(|b| b ^ 0x55)
        .collect();
    std::fs::write(&packs[0], damaged).unwrap();
    assert_eq!(all_paths(&open(&cold), &tree), expected);
    let (whole, _) = storage.reads();
    assert!(whole >= 1, "the damaged copy is fetched again");
}

#[test]
fn prune_keeps_trees_and_data_in_packs_of_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for d in 0..20 {
        std::fs::create_dir_all(src.join(format!("d{d}"))).unwrap();
        std::fs::write(src.join(format!("d{d}/f")), format!("first {d}")).unwrap();
    }
    let repo = repo_at(&tmp.path().join("repo"));
    let first = backup::run(&repo, opts(&src), &BackupProgress::default()).unwrap();
    for d in 0..10 {
        std::fs::write(src.join(format!("d{d}/f")), format!("second {d}")).unwrap();
    }
    let second = backup::run(&repo, opts(&src), &BackupProgress::default()).unwrap();
    repo.remove_snapshot(&first.snapshot_id.unwrap()).unwrap();
    let plan = prune::plan(
        &repo,
        &PruneOptions {
            max_unused: 0.0,
            grace: std::time::Duration::ZERO,
        },
    )
    .unwrap();
    let report = prune::execute(&repo, plan).unwrap();
    assert!(report.packs_written >= 2, "{report:?}");

    let index = repo.load_index().unwrap();
    let mut kinds: std::collections::HashMap<loop_repo::Id, std::collections::HashSet<_>> =
        Default::default();
    for loc in index.iter() {
        kinds.entry(loc.pack).or_default().insert(loc.entry.kind);
    }
    assert!(kinds.values().all(|k| k.len() == 1), "{kinds:?}");
    assert_eq!(all_paths(&repo, &second.snapshot.tree).len(), 1 + 20 * 2);
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk_files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// Restores a snapshot of a folder named `src` into `dir/restored`; returns where it landed.
fn restore_src(repo: &Repository, tree: &loop_repo::Id, dir: &Path) -> std::path::PathBuf {
    use loop_repo::restore::{self, RestoreOptions, RestoreProgress};
    let target = dir.join("restored");
    let ropts = RestoreOptions {
        target: target.clone(),
        ..Default::default()
    };
    restore::run(repo, tree, &ropts, &RestoreProgress::default()).unwrap();
    target.join("src")
}

/// Small files travel to the hashers in batches, large files alone; symlinks and
/// subdirectories between them must keep every entry, in name order, with its own content.
#[test]
fn a_directory_mixing_small_files_large_files_links_and_subdirectories_restores_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut expected: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..300u32 {
        let name = format!("f{i:03}");
        if i % 50 == 7 {
            // Large files (more than one batch's worth), between small ones.
            let big: Vec<u8> = (0..(300_000 + i)).map(|b| (b * 31 + i) as u8).collect();
            std::fs::write(src.join(&name), &big).unwrap();
            expected.push((name, big));
        } else if i % 40 == 3 {
            std::os::unix::fs::symlink(format!("target-{i}"), src.join(&name)).unwrap();
        } else if i % 90 == 5 {
            std::fs::create_dir(src.join(&name)).unwrap();
            std::fs::write(src.join(&name).join("inner"), name.as_bytes()).unwrap();
        } else {
            let small = format!("{name} ").repeat((i % 37) as usize).into_bytes();
            std::fs::write(src.join(&name), &small).unwrap();
            expected.push((name, small));
        }
    }
    let repo = repo_at(&tmp.path().join("repo"));
    let run = backup::run(&repo, opts(&src), &BackupProgress::default()).unwrap();
    assert!(run.unreadable.is_empty());

    let index = repo.load_index().unwrap();
    let mut listed = Vec::new();
    browse::walk(&repo, &index, &run.snapshot.tree, "", &mut |p, _| {
        listed.push(p.to_string());
        Ok(())
    })
    .unwrap();
    let top: Vec<&String> = listed
        .iter()
        .filter(|p| p.matches('/').count() == 2)
        .collect();
    assert_eq!(
        top.len(),
        300,
        "every entry of the directory is in the tree"
    );
    assert!(top.windows(2).all(|w| w[0] < w[1]), "entries in name order");

    let back = restore_src(&repo, &run.snapshot.tree, tmp.path());
    for (name, content) in &expected {
        assert_eq!(&std::fs::read(back.join(name)).unwrap(), content, "{name}");
    }
    assert_eq!(
        std::fs::read_link(back.join("f003")).unwrap(),
        Path::new("target-3")
    );
    assert_eq!(std::fs::read(back.join("f005/inner")).unwrap(), b"f005");
}

/// The walker reads metadata relative to directories it holds open, and lets go of them
/// below a depth (so a deep tree cannot run it out of file descriptors): entries before and
/// after a subdirectory, above and below that depth, all come back with their content.
#[test]
fn a_tree_deeper_than_the_walker_holds_open_restores_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut dir = src.clone();
    let mut expected = Vec::new();
    for level in 0..100 {
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a", "z"] {
            let content = format!("{name} at level {level}\n").repeat(level + 1);
            std::fs::write(dir.join(name), &content).unwrap();
            expected.push((dir.strip_prefix(&src).unwrap().join(name), content));
        }
        dir = dir.join("m");
    }
    let repo = repo_at(&tmp.path().join("repo"));
    let run = backup::run(&repo, opts(&src), &BackupProgress::default()).unwrap();
    assert!(run.unreadable.is_empty(), "{:?}", run.unreadable);

    let back = restore_src(&repo, &run.snapshot.tree, tmp.path());
    assert_eq!(walk_files(&back).len(), expected.len());
    for (path, content) in &expected {
        let got = std::fs::read_to_string(back.join(path)).unwrap();
        assert_eq!(&got, content, "{}", path.display());
    }
}

/// A gated prune (as an agent runs it, allowed to delete only what its server released)
/// deletes nothing it was not allowed to, leaves a whole repository after every run, and
/// finishes what an ungated prune does within three runs when each run's held deletions
/// are released for the next.
#[test]
fn a_gated_prune_deletes_only_what_it_may_and_the_repository_stays_whole_after_every_run() {
    use std::collections::HashSet;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let repo = repo_at(&tmp.path().join("repo"));
    // Three snapshots with data of their own (random, so nothing deduplicates), in small
    // packs: the first two are forgotten, so whole packs go and mixed ones are repacked.
    let mut first = Vec::new();
    for n in 0..3u8 {
        let data: Vec<u8> = (0..400_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(n as u32 * 977) >> 13) as u8)
            .collect();
        std::fs::write(src.join(format!("f{n}")), data).unwrap();
        std::fs::write(src.join("shared"), vec![n; 1000]).unwrap();
        let r = backup::run(&repo, opts(&src), &BackupProgress::default()).unwrap();
        if n < 2 {
            first.push(r.snapshot_id.unwrap());
        }
        std::fs::remove_file(src.join(format!("f{n}"))).unwrap();
    }
    for id in &first {
        repo.remove_snapshot(id).unwrap();
    }
    let popts = PruneOptions {
        max_unused: 0.0,
        grace: std::time::Duration::ZERO,
    };

    // Run 1: nothing may go. Nothing does, and the repository is whole.
    let before = objects(&repo);
    let plan = prune::plan(&repo, &popts).unwrap();
    assert!(!plan.is_noop());
    let r1 = prune::execute_gated(&repo, plan, &HashSet::new()).unwrap();
    assert_eq!(r1.packs_deleted + r1.index_files_deleted, 0);
    assert!(!r1.held.is_empty());
    let after = objects(&repo);
    assert!(
        before.is_subset(&after),
        "a gated prune allowed nothing deleted {:?}",
        before.difference(&after).collect::<Vec<_>>()
    );
    assert!(read_everything(&repo).is_ok());

    // Packs and plans released while the index files naming the packs are not: the packs
    // stay, and so does the plan that condemns them (else backups would use them again).
    let packs_and_plans: HashSet<_> = r1
        .held
        .iter()
        .filter(|(k, _)| *k != FileKind::Index)
        .cloned()
        .collect();
    assert!(packs_and_plans.iter().any(|(k, _)| *k == FileKind::Plan));
    let plan = prune::plan(&repo, &popts).unwrap();
    let r = prune::execute_gated(&repo, plan, &packs_and_plans).unwrap();
    let named_elsewhere = r
        .held
        .iter()
        .filter(|o| packs_and_plans.contains(o) && o.0 == FileKind::Pack)
        .count();
    assert!(
        named_elsewhere > 0,
        "packs an index file still names are held"
    );
    assert!(!repo.storage().list(FileKind::Plan).unwrap().is_empty());
    assert!(read_everything(&repo).is_ok());

    // Each run's held deletions released for the next: done within three runs.
    let mut allowed: HashSet<_> = r.held.iter().cloned().collect();
    let mut runs = 0;
    loop {
        let plan = prune::plan(&repo, &popts).unwrap();
        let report = prune::execute_gated(&repo, plan, &allowed).unwrap();
        let report_check = read_everything(&repo);
        assert!(report_check.is_ok(), "{:?}", report_check.errors);
        for gone in &allowed {
            let name = (format!("{:?}", gone.0), gone.1.clone());
            let still = objects(&repo).contains(&name);
            let held_again = report.held.contains(gone);
            assert!(
                !still || held_again,
                "{gone:?} was allowed, is still there and not held"
            );
        }
        runs += 1;
        if report.packs_deleted == 0 && report.held.iter().all(|(k, _)| *k == FileKind::Index) {
            break;
        }
        assert!(runs < 4, "a gated prune does not converge: {report:?}");
        allowed = report.held.iter().cloned().collect();
    }
    let check = read_everything(&repo);
    assert_eq!(check.unreferenced_packs, 0, "every condemned pack is gone");
    assert!(repo.storage().list(FileKind::Plan).unwrap().is_empty());
    assert_eq!(check.snapshots, 1);
}

/// A vault's policy judges its snapshots, except those of an item with rules of its own
/// (tagged `item:ID`), which its rules judge, each set apart from the other.
#[test]
fn snapshots_of_an_item_with_rules_of_its_own_are_judged_by_them_and_the_rest_by_the_default() {
    use loop_repo::forget::{self, ForgetRequest, KeepPolicy};
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let repo = repo_at(&tmp.path().join("repo"));
    let mut made = Vec::new();
    for n in 0..7u8 {
        std::fs::write(src.join("f"), [n]).unwrap();
        let tag = if n % 2 == 0 { "item:a" } else { "item:b" };
        let o = BackupOptions {
            tags: vec![tag.into()],
            ..opts(&src)
        };
        let r = backup::run(&repo, o, &BackupProgress::default()).unwrap();
        made.push((tag, r.snapshot_id.unwrap()));
    }
    let last = |n: u32| KeepPolicy {
        last: n,
        ..Default::default()
    };
    let request = ForgetRequest::Policies {
        default: last(1),
        by_tag: vec![("item:a".into(), last(3))],
    };
    let plan = forget::plan(&repo, &request).unwrap();
    let removed: std::collections::HashSet<_> = plan.remove.iter().copied().collect();
    // item:a made snapshots 0, 2, 4, 6: its rules keep the newest three; item:b made 1, 3,
    // 5: the default keeps the newest one.
    let kept: Vec<usize> = (0..7).filter(|i| !removed.contains(&made[*i].1)).collect();
    assert_eq!(kept, vec![2, 4, 5, 6]);
    assert_eq!(plan.kept(), 4);
    assert_eq!(plan.groups.len(), 2, "each policy judges its own group");
}
