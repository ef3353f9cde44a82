use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::packs::sample_packs;
use super::*;
use crate::index::IndexFile;
use crate::pack::PackWriter;
use crate::tree::NodeKind;

/// A repository with one snapshot of `src/{a.txt, sub/b.txt}`.
struct Fixture {
    repo_dir: tempfile::TempDir,
    src: tempfile::TempDir,
    repo: Repository,
    snapshot: Id,
}

fn fixture() -> Fixture {
    let repo_dir = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("a.txt"),
        "the file a user cares about\n".repeat(50),
    )
    .unwrap();
    std::fs::create_dir(src.path().join("sub")).unwrap();
    std::fs::write(src.path().join("sub/b.txt"), b"another file").unwrap();
    let repo = crate::testutil::local_repo(repo_dir.path());
    let result = crate::testutil::back_up(&repo, src.path());
    Fixture {
        repo_dir,
        snapshot: result.snapshot_id.unwrap(),
        src,
        repo,
    }
}

impl Fixture {
    fn check(&self, read_data: ReadData) -> CheckReport {
        let opts = CheckOptions {
            read_data,
            threads: 0,
        };
        run(&self.repo, &opts, &CheckProgress::default()).unwrap()
    }

    /// The name of the backed-up directory inside the snapshot.
    fn src_name(&self) -> String {
        self.src
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into()
    }

    /// Where the first data blob of `src/a.txt` is stored.
    fn blob_of_a(&self) -> crate::index::BlobLocation {
        let index = self.repo.load_index().unwrap();
        let snap = self.repo.load_snapshot(&self.snapshot).unwrap();
        let root = self.repo.load_tree(&index, &snap.tree).unwrap();
        let dir = root.find(self.src_name().as_bytes()).unwrap();
        let tree = self
            .repo
            .load_tree(&index, dir.subtree.as_ref().unwrap())
            .unwrap();
        let a = tree.find(b"a.txt").unwrap();
        assert_eq!(a.kind, NodeKind::File);
        index.get(&a.content[0]).unwrap()
    }

    fn pack_file(&self, pack: &Id) -> PathBuf {
        self.repo_dir
            .path()
            .join(FileKind::Pack.path(&pack.to_hex()))
    }

    fn a_path(&self) -> String {
        format!("{}:/{}/a.txt", self.snapshot.short(), self.src_name())
    }
}

fn damaged<'r>(report: &'r CheckReport, pack: &Id) -> &'r DamagedPack {
    report
        .damaged
        .iter()
        .find(|d| d.pack == pack.to_hex())
        .unwrap_or_else(|| panic!("pack {} not reported: {report:#?}", pack.short()))
}

#[test]
fn a_healthy_repository_passes_with_and_without_reading_data() {
    let fx = fixture();
    let report = fx.check(ReadData::None);
    assert!(report.is_ok(), "{report:#?}");
    assert_eq!(report.snapshots, 1);
    // Root, src and sub.
    assert_eq!(report.trees, 3);
    assert_eq!(report.data_blobs, 2);
    assert!(report.packs >= 1);
    assert_eq!(report.packs_read, 0);
    assert_eq!(report.unreferenced_packs, 0);

    let progress = CheckProgress::default();
    let opts = CheckOptions {
        read_data: ReadData::All,
        threads: 2,
    };
    let report = run(&fx.repo, &opts, &progress).unwrap();
    assert!(report.is_ok(), "{report:#?}");
    assert_eq!(report.packs_read, report.packs);
    assert_eq!(
        progress.packs_done.load(Ordering::Relaxed),
        report.packs as u64
    );
    assert!(progress.bytes_done.load(Ordering::Relaxed) > 0);
}

#[test]
fn a_flipped_byte_in_a_blob_is_traced_to_the_pack_snapshot_and_file() {
    let fx = fixture();
    let loc = fx.blob_of_a();
    let path = fx.pack_file(&loc.pack);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[loc.entry.offset as usize + 3] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    // The structure check does not read data blobs, by design: it stays cheap.
    assert!(fx.check(ReadData::None).is_ok());

    let report = fx.check(ReadData::All);
    assert!(!report.is_ok());
    let d = damaged(&report, &loc.pack);
    assert!(d.reason.contains("failed authentication"), "{d:#?}");
    assert_eq!(d.snapshots, vec![fx.snapshot.short()]);
    assert_eq!(d.files, vec![fx.a_path()]);
    let object = FileKind::Pack.path(&loc.pack.to_hex());
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains(&object) && e.contains(&loc.entry.id.short())),
        "{:#?}",
        report.errors
    );
}

#[test]
fn a_damaged_tree_is_found_by_the_structure_check_and_names_the_directory() {
    let fx = fixture();
    let index = fx.repo.load_index().unwrap();
    let snap = fx.repo.load_snapshot(&fx.snapshot).unwrap();
    let root = fx.repo.load_tree(&index, &snap.tree).unwrap();
    let dir = root.find(fx.src_name().as_bytes()).unwrap();
    let loc = index.get(dir.subtree.as_ref().unwrap()).unwrap();
    let path = fx.pack_file(&loc.pack);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[loc.entry.offset as usize + 3] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    let report = fx.check(ReadData::None);
    let d = damaged(&report, &loc.pack);
    assert!(d.reason.contains("failed authentication"), "{d:#?}");
    assert_eq!(
        d.files,
        vec![format!("{}:/{}", fx.snapshot.short(), fx.src_name())]
    );
}

#[test]
fn a_blob_no_index_names_is_reported_with_the_snapshot_and_path() {
    let fx = fixture();
    let blob = fx.blob_of_a().entry.id;
    let storage = fx.repo.storage();
    for obj in storage.list(FileKind::Index).unwrap() {
        let mut file = fx.repo.load_index_file(&obj.name).unwrap();
        for (_, entries) in &mut file.packs {
            entries.retain(|e| e.id != blob);
        }
        fx.repo.save_index_file(&file).unwrap();
        storage.delete(FileKind::Index, &obj.name).unwrap();
    }

    let report = fx.check(ReadData::None);
    let want = format!(
        "snapshot {}: data blob {} is not in any index",
        fx.a_path(),
        blob.short()
    );
    assert!(report.errors.contains(&want), "{:#?}", report.errors);
}

#[test]
fn a_truncated_pack_is_reported_without_reading_data() {
    let fx = fixture();
    let loc = fx.blob_of_a();
    let path = fx.pack_file(&loc.pack);
    let bytes = std::fs::read(&path).unwrap();
    // Cut inside a.txt's blob: it and everything after it are gone.
    std::fs::write(&path, &bytes[..loc.entry.offset as usize + 5]).unwrap();

    for read_data in [ReadData::None, ReadData::All] {
        let report = fx.check(read_data);
        let d = damaged(&report, &loc.pack);
        assert!(d.reason.contains("truncated"), "{d:#?}");
        assert!(d.snapshots.contains(&fx.snapshot.short()), "{d:#?}");
    }
}

#[test]
fn a_deleted_pack_is_reported_with_the_snapshots_it_breaks() {
    let fx = fixture();
    let loc = fx.blob_of_a();
    std::fs::remove_file(fx.pack_file(&loc.pack)).unwrap();

    let report = fx.check(ReadData::None);
    let d = damaged(&report, &loc.pack);
    assert!(d.reason.contains("missing"), "{d:#?}");
    assert_eq!(d.snapshots, vec![fx.snapshot.short()]);
    assert!(!d.files.is_empty());
}

#[test]
fn a_garbage_index_file_is_named_and_the_rest_still_checked() {
    let fx = fixture();
    let name = Id::random().to_hex();
    fx.repo
        .storage()
        .put(FileKind::Index, &name, b"LPIX garbage".to_vec())
        .unwrap();

    let report = fx.check(ReadData::None);
    assert!(!report.is_ok());
    assert!(
        report.errors.iter().any(|e| e.contains(&name)),
        "{:#?}",
        report.errors
    );
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    assert_eq!(report.snapshots, 1);
    assert_eq!(report.data_blobs, 2);
}

#[test]
fn an_unindexed_pack_is_counted_not_reported() {
    let fx = fixture();
    let loc = fx.blob_of_a();
    let bytes = std::fs::read(fx.pack_file(&loc.pack)).unwrap();
    fx.repo
        .storage()
        .put(FileKind::Pack, &Id::random().to_hex(), bytes)
        .unwrap();

    let before = fx.check(ReadData::None).packs;
    let report = fx.check(ReadData::All);
    assert!(report.is_ok(), "{report:#?}");
    assert_eq!(report.unreferenced_packs, 1);
    assert_eq!(report.packs, before);
    assert_eq!(report.packs_read, report.packs);
}

#[test]
fn a_full_subset_reads_what_read_data_reads() {
    let fx = fixture();
    let loc = fx.blob_of_a();
    let path = fx.pack_file(&loc.pack);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[loc.entry.offset as usize + 3] ^= 0x80;
    std::fs::write(&path, bytes).unwrap();

    let all = serde_json::to_value(fx.check(ReadData::All)).unwrap();
    let subset = serde_json::to_value(fx.check(ReadData::Subset(100.0))).unwrap();
    assert_eq!(all, subset);
    assert_eq!(all["damaged"].as_array().unwrap().len(), 1);

    assert_eq!(fx.check(ReadData::Subset(0.0)).packs_read, 0);
    assert_eq!(fx.check(ReadData::Subset(0.001)).packs_read, 1);
}

#[test]
fn subsets_round_up_and_stay_in_range() {
    let mut ids: Vec<Id> = (0..30).map(|_| Id::random()).collect();
    ids.sort_unstable();
    assert_eq!(sample_packs(&ids, 10.0).len(), 3);
    assert_eq!(sample_packs(&ids, 11.0).len(), 4);
    assert_eq!(sample_packs(&ids, 250.0).len(), 30);
    assert_eq!(sample_packs(&ids, f64::NAN).len(), 0);
    assert_eq!(sample_packs(&[], 50.0).len(), 0);
    let picked = sample_packs(&ids, 50.0);
    assert!(picked.windows(2).all(|w| w[0] < w[1]), "in pack order");
}

/// Hostile pack contents must give errors, not panics or huge allocations.
#[test]
fn garbage_packs_are_reported_without_panicking() {
    let fx = fixture();
    let loc = fx.blob_of_a();
    let path = fx.pack_file(&loc.pack);
    let len = std::fs::read(&path).unwrap().len();
    let mut tail_claims_everything = vec![0xAB; len];
    tail_claims_everything[len - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut tail_claims_the_pack = vec![0xAB; len];
    tail_claims_the_pack[len - 4..].copy_from_slice(&((len - 4) as u32).to_le_bytes());
    for garbage in [
        tail_claims_everything,
        tail_claims_the_pack,
        vec![0; len],
        vec![1, 2, 3],
        Vec::new(),
    ] {
        std::fs::write(&path, &garbage).unwrap();
        let report = fx.check(ReadData::All);
        let d = damaged(&report, &loc.pack);
        assert!(d.snapshots.contains(&fx.snapshot.short()), "{d:#?}");
    }
}

/// Prune's rescue and concurrent backups leave a second copy of a blob; damage to one
/// copy must not be reported as a lost file.
#[test]
fn a_damaged_blob_with_an_intact_copy_elsewhere_loses_no_file() {
    let fx = fixture();
    let loc = fx.blob_of_a();
    let repo = &fx.repo;
    let bytes = std::fs::read(fx.pack_file(&loc.pack)).unwrap();
    let e = loc.entry;
    let payload = pack::decrypt_payload(
        &pack::pack_cipher(repo.master(), &loc.pack),
        &e,
        bytes[e.offset as usize..(e.offset + e.length) as usize].to_vec(),
        "p",
    )
    .unwrap();
    let mut w = PackWriter::new(repo.master(), 1024);
    w.add(e.kind, e.id, &payload, e.raw_len);
    let (copy, data, entries) = w.finish();
    repo.storage()
        .put(FileKind::Pack, &copy.to_hex(), data)
        .unwrap();
    repo.save_index_file(&IndexFile {
        packs: vec![(copy, entries)],
    })
    .unwrap();
    let mut bytes = bytes;
    bytes[e.offset as usize + 3] ^= 0x01;
    std::fs::write(fx.pack_file(&loc.pack), bytes).unwrap();

    let report = fx.check(ReadData::All);
    let d = damaged(&report, &loc.pack);
    assert!(d.files.is_empty(), "{d:#?}");
    assert!(d.snapshots.is_empty(), "{d:#?}");
    assert_eq!(report.damaged.len(), 1);
}

/// A snapshot written by a holder of the key names one subtree at two places in each of
/// 18 nested trees: 2^18 paths to it, from 19 trees. With a blob below it lost, the trace
/// reads each tree once and lists the subtree at its first path, instead of walking every
/// path (which never ended for a deeper nest).
#[test]
fn a_subtree_named_at_many_paths_is_traced_once() {
    use crate::tree::{Name, Node, Tree};
    let fx = fixture();
    let loc = fx.blob_of_a();
    let index = fx.repo.load_index().unwrap();
    let snap = fx.repo.load_snapshot(&fx.snapshot).unwrap();
    let root = fx.repo.load_tree(&index, &snap.tree).unwrap();
    let mut nest = root
        .find(fx.src_name().as_bytes())
        .unwrap()
        .subtree
        .unwrap();
    for _ in 0..18 {
        let twice = Tree {
            nodes: ["a", "b"]
                .map(|n| Node::bare(Name(n.into()), NodeKind::Dir, 0, Some(nest)))
                .into(),
        };
        nest = crate::testutil::store_trees(&fx.repo, &[twice])[0];
    }
    let mut nested = snap.clone();
    nested.tree = nest;
    let nested_id = fx.repo.save_snapshot(&nested).unwrap();
    std::fs::remove_file(fx.pack_file(&loc.pack)).unwrap();

    let report = fx.check(ReadData::None);
    let d = damaged(&report, &loc.pack);
    let short = nested_id.short();
    let listed: Vec<&String> = d.files.iter().filter(|f| f.starts_with(&short)).collect();
    let first = format!("{short}:/{}", ["a"; 18].join("/"));
    let expected = [format!("{first}/a.txt"), format!("{first}/sub/b.txt")];
    assert_eq!(listed, expected.iter().collect::<Vec<_>>(), "{d:#?}");
    assert!(!d.files.iter().any(|f| f.contains("more")), "{d:#?}");
}

/// A snapshot of one directory `/big` whose listing is stored in parts, made as a holder of
/// the key could, without a disk: (repository, snapshot, the directory's tree, its parts).
fn large_tree_fixture(dir: &std::path::Path) -> (Repository, Id, Id, Vec<Id>) {
    use crate::testutil::{bare_snapshot, store_trees, wide_tree};
    let repo = crate::testutil::local_repo(dir);
    let big = store_trees(&repo, &[wide_tree(20_000, 250)])[0];
    let root = Tree {
        nodes: vec![crate::tree::Node::bare(
            Name(b"big".to_vec()),
            NodeKind::Dir,
            0,
            Some(big),
        )],
    };
    let root = store_trees(&repo, &[root])[0];
    let snapshot = repo.save_snapshot(&bare_snapshot(root)).unwrap();
    let index = repo.load_index().unwrap();
    let (_, parts) = repo.load_tree_with_parts(&index, &big).unwrap();
    assert_eq!(parts.len(), 2);
    (repo, snapshot, big, parts)
}

fn structure_check(repo: &Repository) -> CheckReport {
    let opts = CheckOptions {
        read_data: ReadData::None,
        threads: 0,
    };
    run(repo, &opts, &CheckProgress::default()).unwrap()
}

#[test]
fn a_damaged_part_of_a_large_directory_is_traced_to_that_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, snapshot, _, parts) = large_tree_fixture(dir.path());
    assert!(structure_check(&repo).is_ok());
    let loc = repo.load_index().unwrap().get(&parts[1]).unwrap();
    let path = dir.path().join(FileKind::Pack.path(&loc.pack.to_hex()));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[loc.entry.offset as usize + 3] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    let report = structure_check(&repo);

    let d = damaged(&report, &loc.pack);
    assert!(d.reason.contains("failed authentication"), "{d:#?}");
    assert_eq!(d.snapshots, vec![snapshot.short()]);
    assert_eq!(d.files, vec![format!("{}:/big", snapshot.short())]);
}

#[test]
fn a_missing_part_of_a_large_directory_is_reported_at_that_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, snapshot, big, parts) = large_tree_fixture(dir.path());
    let storage = repo.storage();
    for obj in storage.list(FileKind::Index).unwrap() {
        let mut file = repo.load_index_file(&obj.name).unwrap();
        for (_, entries) in &mut file.packs {
            entries.retain(|e| e.id != parts[0]);
        }
        repo.save_index_file(&file).unwrap();
        storage.delete(FileKind::Index, &obj.name).unwrap();
    }

    let report = structure_check(&repo);

    let want = format!(
        "snapshot {}:/big: part {} of tree {} is not in any index",
        snapshot.short(),
        parts[0].short(),
        big.short()
    );
    assert!(report.errors.contains(&want), "{:#?}", report.errors);
}
