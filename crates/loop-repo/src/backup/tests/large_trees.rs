//! Listings too long for one tree blob: a directory of very many entries, and a file of very
//! many chunks. Before trees were stored in parts, such a backup failed at its end, after
//! uploading all the data.

use std::io::Read;
use std::path::{Path, PathBuf};

use loop_testkit::data::noise;

use super::super::{BackupOptions, BackupProgress, BackupResult, run};
use crate::check::{self, CheckOptions, CheckProgress, ReadData};
use crate::chunker::ChunkMode;
use crate::id::Id;
use crate::prune::{self, PruneOptions};
use crate::repo::Repository;
use crate::restore::{self, RestoreOptions};
use crate::testutil::local_repo;
use crate::tree::TREE_PART;

/// Empty files in the large directory: with 250-byte names, their listing is about 5 MiB,
/// longer than one tree part.
const ENTRIES: usize = 14_000;

/// The name of the `i`th empty file: 250 bytes.
fn long_name(i: usize) -> String {
    format!("{i:06}-{}", "n".repeat(243))
}

/// A directory `big` under `at` of [`ENTRIES`] empty files and one file of data.
fn big_dir(at: &Path) -> PathBuf {
    let dir = at.join("big");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..ENTRIES {
        std::fs::File::create(dir.join(long_name(i))).unwrap();
    }
    std::fs::write(dir.join("data.bin"), noise(100_000, 3)).unwrap();
    dir
}

fn back_up(repo: &Repository, path: &Path, chunk_mode: ChunkMode) -> BackupResult {
    let opts = BackupOptions {
        paths: vec![path.to_path_buf()],
        host: "h".into(),
        chunk_mode,
        ..Default::default()
    };
    run(repo, opts, &BackupProgress::default()).expect("backup")
}

/// The tree of the one path a snapshot of root tree `root` holds, and the parts it is
/// stored in.
fn backed_up_dir(repo: &Repository, root: &Id) -> (Id, Vec<Id>) {
    let index = repo.load_index().unwrap();
    let root = repo.load_tree(&index, root).unwrap();
    let dir = root.nodes[0].subtree.unwrap();
    let (_, parts) = repo.load_tree_with_parts(&index, &dir).unwrap();
    (dir, parts)
}

fn check_reading_data(repo: &Repository) -> check::CheckReport {
    let opts = CheckOptions {
        read_data: ReadData::All,
        threads: 2,
    };
    check::run(repo, &opts, &CheckProgress::default()).unwrap()
}

fn prune_now(repo: &Repository) {
    let opts = PruneOptions {
        grace: std::time::Duration::ZERO,
        ..Default::default()
    };
    let plan = prune::plan(repo, &opts).unwrap();
    prune::execute(repo, plan).unwrap();
}

fn restore_into(repo: &Repository, tree: &Id, out: &Path) {
    let opts = RestoreOptions {
        target: out.to_path_buf(),
        ..Default::default()
    };
    let report = restore::run(repo, tree, &opts, &Default::default()).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

/// The names in directory `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Whether two files hold the same bytes, compared a MiB at a time.
fn same_bytes(a: &Path, b: &Path) -> bool {
    let len = |p: &Path| std::fs::metadata(p).unwrap().len();
    if len(a) != len(b) {
        return false;
    }
    let (mut a, mut b) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = a.read(&mut x).unwrap();
        if n == 0 {
            return true;
        }
        b.read_exact(&mut y[..n]).unwrap();
        if x[..n] != y[..n] {
            return false;
        }
    }
}

#[test]
fn a_directory_too_long_for_one_tree_blob_backs_up_lists_restores_checks_and_survives_prune() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = local_repo(&tmp.path().join("repo"));
    let src = big_dir(tmp.path());

    let first = back_up(&repo, &src, ChunkMode::ContentDefined);

    let (dir_tree, parts) = backed_up_dir(&repo, &first.snapshot.tree);
    assert!(parts.len() >= 2, "stored in parts: {parts:?}");
    let index = repo.load_index().unwrap();
    let mut listed = 0;
    crate::browse::walk(&repo, &index, &first.snapshot.tree, "", &mut |_, _| {
        listed += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(
        listed,
        1 + ENTRIES + 1,
        "the directory, its files and data.bin"
    );
    let stats = crate::browse::stats(&repo, &index, &[first.snapshot.tree]).unwrap();
    assert_eq!(
        stats.unique_blobs as usize,
        index.len(),
        "every blob stored is counted, the parts too"
    );

    let out = tmp.path().join("out");
    restore_into(&repo, &first.snapshot.tree, &out);
    assert_eq!(names_in(&out.join("big")), names_in(&src));
    assert!(same_bytes(&src.join("data.bin"), &out.join("big/data.bin")));

    let report = check_reading_data(&repo);
    assert!(report.is_ok(), "{report:#?}");

    // Nothing was forgotten: prune keeps every part, and the tree still loads.
    prune_now(&repo);
    let index = repo.load_index().unwrap();
    for part in &parts {
        assert!(index.contains(part), "part {} kept", part.short());
    }
    assert_eq!(
        repo.load_tree(&index, &dir_tree).unwrap().nodes.len(),
        ENTRIES + 1
    );
    assert!(check_reading_data(&repo).is_ok());

    let second = back_up(&repo, &src, ChunkMode::ContentDefined);
    let summary = second.snapshot.summary.unwrap();
    assert_eq!(second.snapshot.tree, first.snapshot.tree);
    assert_eq!(
        summary.tree_blobs, 0,
        "an unchanged large directory costs nothing"
    );
}

#[test]
fn a_file_of_more_chunks_than_one_tree_part_can_name_backs_up_and_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = local_repo(&tmp.path().join("repo"));
    let src = tmp.path().join("image");
    std::fs::create_dir(&src).unwrap();
    // A sparse disk image: its zero chunks are one blob, named once per 4 KiB. Each ID
    // costs 67 bytes of JSON, so this many chunks need more than one part.
    let chunks = TREE_PART / 67 + 2_000;
    let file = std::fs::File::create(src.join("disk.img")).unwrap();
    file.set_len((chunks * 4096) as u64).unwrap();
    drop(file);
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(src.join("disk.img"))
            .unwrap();
        f.write_all_at(&noise(10_000, 5), 123_456_789).unwrap();
    }

    let backup = back_up(&repo, &src, ChunkMode::Fixed(4096));

    let (_, parts) = backed_up_dir(&repo, &backup.snapshot.tree);
    assert!(parts.len() >= 2, "stored in parts: {parts:?}");
    let out = tmp.path().join("out");
    restore_into(&repo, &backup.snapshot.tree, &out);
    assert!(same_bytes(
        &src.join("disk.img"),
        &out.join("image/disk.img")
    ));
}

/// Once the only snapshot that used a large directory is forgotten, prune frees its parts
/// like any other unused blob; what the other snapshot uses stays.
#[test]
fn prune_frees_the_parts_of_a_large_tree_no_snapshot_uses() {
    use crate::testutil::{bare_snapshot, store_trees, wide_tree};
    use crate::tree::{Name, Node, NodeKind, Tree};
    let tmp = tempfile::tempdir().unwrap();
    let repo = local_repo(tmp.path());
    let snapshot_of = |listing: Tree| {
        let dir = store_trees(&repo, &[listing])[0];
        let root = Tree {
            nodes: vec![Node::bare(Name(b"d".to_vec()), NodeKind::Dir, 0, Some(dir))],
        };
        let root = store_trees(&repo, &[root])[0];
        repo.save_snapshot(&bare_snapshot(root)).unwrap()
    };
    let large = snapshot_of(wide_tree(20_000, 250));
    let small = snapshot_of(wide_tree(3, 10));
    let large_tree = repo.load_snapshot(&large).unwrap().tree;
    let (_, parts) = backed_up_dir(&repo, &large_tree);
    assert_eq!(parts.len(), 2);

    repo.remove_snapshot(&large).unwrap();
    prune_now(&repo);

    let index = repo.load_index().unwrap();
    for part in &parts {
        assert!(!index.contains(part), "part {} freed", part.short());
    }
    let small_tree = repo.load_snapshot(&small).unwrap().tree;
    assert_eq!(backed_up_dir(&repo, &small_tree).1, Vec::<Id>::new());
    assert!(check_reading_data(&repo).is_ok());
}
