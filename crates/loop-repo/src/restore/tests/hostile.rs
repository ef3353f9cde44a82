//! Restores of what an attacker or an accident left: a forged copy of a blob, index entries
//! that lie about a blob, names of one inode that differ, symlinks planted in the target, a
//! damaged pack, an entry that cannot be written, a root tree that does not load.

use super::*;
use crate::index::IndexFile;
use crate::pack::PackEntry;

/// A holder of the key (a backup-only token on a managed vault) stores a second copy of
/// an existing blob with other content, validly encrypted, and indexes it: a restore must
/// still write the original content, whichever copy the index lists first.
#[test]
fn a_forged_copy_of_a_blob_cannot_change_what_is_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let original = noise(200_000, 11);
    write(&src.join("file"), &original);
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let index = repo.load_index().unwrap();
    let file_tree = repo.load_tree(&index, &tree).unwrap();
    let sub = repo
        .load_tree(&index, &file_tree.nodes[0].subtree.unwrap())
        .unwrap();
    let blob = sub.nodes[0].content[0];
    let (forged, entries) = crate::testutil::plant_forged_copy(&repo, &blob);

    // read_blob, with the forged copy first in the index.
    let mut poisoned = crate::index::Index::new();
    poisoned.add_pack(forged, &entries);
    for f in repo.storage().list(FileKind::Index).unwrap() {
        poisoned.add_file(&repo.load_index_file(&f.name).unwrap());
    }
    poisoned.finish();
    assert_eq!(poisoned.get(&blob).unwrap().pack, forged);
    assert_eq!(repo.read_blob(&poisoned, &blob).unwrap(), original);

    // A whole restore, with the index as storage lists it.
    let out = tmp.path().join("out");
    let report = restore(&repo, &tree, &out, |_| {});
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(fs::read(out.join("src/file")).unwrap(), original);
}

/// Names inside a target can be planted by whoever else writes there; restore must
/// replace them, never write through them.
#[test]
fn planted_symlinks_are_replaced_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("top.txt"), b"restored");
    write(&src.join("dir/file.txt"), b"restored too");
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let outside = tmp.path().join("outside");
    write(&outside.join("victim.txt"), b"original");

    // A symlink where the snapshot has a directory.
    let t1 = tmp.path().join("t1");
    fs::create_dir(&t1).unwrap();
    std::os::unix::fs::symlink(&outside, t1.join("src")).unwrap();
    let report = restore(&repo, &tree, &t1, |_| {});
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(fs::symlink_metadata(t1.join("src")).unwrap().is_dir());
    assert_same(&src, &t1.join("src"));

    // Symlinks where the snapshot has a file, and a directory one level down.
    let t2 = tmp.path().join("t2");
    fs::create_dir_all(t2.join("src")).unwrap();
    std::os::unix::fs::symlink(outside.join("victim.txt"), t2.join("src/top.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, t2.join("src/dir")).unwrap();
    let report = restore(&repo, &tree, &t2, |_| {});
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_same(&src, &t2.join("src"));

    assert_eq!(names(&outside), [b"victim.txt".to_vec()]);
    assert_eq!(fs::read(outside.join("victim.txt")).unwrap(), b"original");
}

fn pack_files(repo_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for fan in fs::read_dir(repo_dir.join("data")).unwrap() {
        for p in fs::read_dir(fan.unwrap().path()).unwrap() {
            out.push(p.unwrap().path());
        }
    }
    out.sort();
    out
}

#[test]
fn a_damaged_pack_costs_only_the_files_in_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let damaged = noise(3 << 20, 11);
    write(&src.join("damaged.bin"), &damaged);
    let repo = new_repo(tmp.path());
    backup(&repo, &src);
    // The first backup wrote one data pack (the file's chunks) and one tree pack; damage
    // the data pack, the larger one.
    let mut first_packs = pack_files(&tmp.path().join("repo"));
    assert_eq!(first_packs.len(), 2, "{first_packs:?}");
    first_packs.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).unwrap().len()));
    write(&src.join("good.txt"), b"still fine");
    write(&src.join("more/good.bin"), &noise(1 << 20, 12));
    let tree = backup(&repo, &src);
    let mut bytes = fs::read(&first_packs[0]).unwrap();
    bytes[pack::PACK_HEADER_LEN + 10] ^= 0x01;
    fs::write(&first_packs[0], bytes).unwrap();

    let out = tmp.path().join("out");
    let report = restore(&repo, &tree, &out, |o| o.verify = true);

    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let err = &report.errors[0];
    assert!(
        err.contains("damaged.bin") && err.contains("data/"),
        "{err}"
    );
    let left = fs::metadata(out.join("src/damaged.bin")).unwrap().len();
    assert!(left < damaged.len() as u64, "left {left} bytes");
    assert_eq!(fs::read(out.join("src/good.txt")).unwrap(), b"still fine");
    assert_same(&src.join("more"), &out.join("src/more"));
    assert_eq!(report.verified_files, 2);
}

/// A restore over files already in the target: each is replaced only once its new content
/// is complete, so a file that cannot be restored (a damaged pack here; a full disk or a
/// cancel alike) leaves the one already there as it was, and no temporary name stays.
#[test]
fn a_file_that_cannot_be_restored_leaves_the_file_already_there_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("damaged.bin"), &noise(3 << 20, 21));
    let repo = new_repo(tmp.path());
    backup(&repo, &src);
    let first_packs = pack_files(&tmp.path().join("repo"));
    let data_pack = first_packs
        .iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();
    write(&src.join("good.txt"), b"the snapshot's version");
    write(&src.join("new.txt"), b"not in the target before");
    let tree = backup(&repo, &src);
    let mut bytes = fs::read(&data_pack).unwrap();
    bytes[pack::PACK_HEADER_LEN + 10] ^= 0x01;
    fs::write(&data_pack, bytes).unwrap();

    let out = tmp.path().join("out");
    write(&out.join("src/damaged.bin"), b"what the user had");
    write(&out.join("src/good.txt"), &noise(100_000, 22));
    let report = restore(&repo, &tree, &out, |_| {});

    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("damaged.bin") && report.errors[0].contains("left as it was"),
        "{:?}",
        report.errors
    );
    assert_eq!(
        fs::read(out.join("src/damaged.bin")).unwrap(),
        b"what the user had"
    );
    assert_same(&src.join("good.txt"), &out.join("src/good.txt"));
    assert_same(&src.join("new.txt"), &out.join("src/new.txt"));
    assert_eq!(
        names(&out.join("src")),
        [
            b"damaged.bin".to_vec(),
            b"good.txt".to_vec(),
            b"new.txt".to_vec()
        ]
    );
}

#[test]
fn an_entry_that_cannot_be_written_does_not_stop_the_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a.txt"), b"a");
    write(&src.join("b.txt"), b"b");
    write(&src.join("c.txt"), b"c");
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let out = tmp.path().join("out");
    // A non-empty directory where the snapshot has a file is not deleted.
    write(&out.join("src/b.txt/keep"), b"user data");

    let report = restore(&repo, &tree, &out, |_| {});

    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(report.errors[0].contains("b.txt"), "{}", report.errors[0]);
    assert_eq!(fs::read(out.join("src/b.txt/keep")).unwrap(), b"user data");
    assert_eq!(fs::read(out.join("src/a.txt")).unwrap(), b"a");
    assert_eq!(fs::read(out.join("src/c.txt")).unwrap(), b"c");
}

#[test]
fn a_root_tree_that_cannot_be_loaded_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let opts = RestoreOptions {
        target: tmp.path().join("out"),
        ..Default::default()
    };
    let err = run(&repo, &Id([9; 32]), &opts, &RestoreProgress::default()).unwrap_err();
    assert!(err.to_string().contains("not in any index"), "{err}");
}

/// Reads of neighbouring blobs are merged into one ranged read; a pack cut short fails that
/// read, and each blob is then read on its own, so only the cut-off blobs' files suffer.
#[test]
fn a_truncated_pack_costs_only_the_blobs_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let whole = noise(2 << 20, 21);
    write(&src.join("a.bin"), &whole);
    write(&src.join("b.bin"), &noise(2 << 20, 22));
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let mut packs = pack_files(&tmp.path().join("repo"));
    packs.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).unwrap().len()));
    // Cut the data pack in its last tenth: inside b.bin's last chunk, well after a.bin's.
    let data_pack = &packs[0];
    let len = fs::metadata(data_pack).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(data_pack).unwrap();
    f.set_len(len * 9 / 10).unwrap();

    let out = tmp.path().join("out");
    let report = restore(&repo, &tree, &out, |o| o.verify = true);

    assert!(!report.errors.is_empty());
    assert!(
        report.errors.iter().all(|e| e.contains("b.bin")),
        "{:?}",
        report.errors
    );
    assert_eq!(fs::read(out.join("src/a.bin")).unwrap(), whole);
}

/// Every pack the repository's index files name, with its blobs.
fn indexed_packs(repo: &Repository) -> Vec<(Id, Vec<PackEntry>)> {
    let mut out = Vec::new();
    for f in repo.storage().list(FileKind::Index).unwrap() {
        out.extend(repo.load_index_file(&f.name).unwrap().packs);
    }
    out
}

/// Replaces every index file with `files`. Which copy of a blob lookups take first follows
/// where its pack is first named, so a pack named first in each file is the first copy
/// whatever order storage lists the files in.
fn reindex(repo: &Repository, files: Vec<IndexFile>) {
    for f in repo.storage().list(FileKind::Index).unwrap() {
        repo.storage().delete(FileKind::Index, &f.name).unwrap();
    }
    for f in files {
        repo.save_index_file(&f).unwrap();
    }
}

/// The content blobs of the file at `path` (relative to the snapshot root).
fn content_of(repo: &Repository, tree: &Id, path: &str) -> Vec<Id> {
    let index = repo.load_index().unwrap();
    find_node(repo, &index, tree, path)
        .unwrap()
        .unwrap()
        .content
}

/// A key holder indexes a blob with a raw length one byte too long, first, in a pack that
/// does not exist. The copies disagree on the blob's length, so the restore reads the blob
/// before it sizes the file, and plans with the genuine copy: the file comes back as it was.
/// When the only copy's entry lies (the genuine pack, a byte too long), the file fails
/// rather than come back padded.
#[test]
fn a_blob_indexed_first_with_a_lying_length_is_planned_by_its_true_one() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let big = noise(200_000, 31);
    write(&src.join("big.bin"), &big);
    write(&src.join("small.txt"), b"untouched");
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let blob = content_of(&repo, &tree, "src/big.bin")[0];
    let genuine = repo.load_index().unwrap().get(&blob).unwrap();
    let lying = PackEntry {
        raw_len: genuine.entry.raw_len + 1,
        length: genuine.entry.length + 1,
        ..genuine.entry
    };
    let mut packs = vec![(Id([0xf0; 32]), vec![lying])];
    packs.extend(indexed_packs(&repo));
    reindex(&repo, vec![IndexFile { packs }]);
    assert_eq!(repo.load_index().unwrap().get(&blob).unwrap().entry, lying);

    let out = tmp.path().join("out");
    let report = restore(&repo, &tree, &out, |o| o.verify = true);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.verified_files, 2,
        "verified by the same copy it was planned by"
    );
    assert_eq!(fs::read(out.join("src/big.bin")).unwrap(), big);

    // The only copy, indexed a byte too long.
    let only = PackEntry {
        raw_len: genuine.entry.raw_len + 1,
        ..genuine.entry
    };
    let packs = indexed_packs(&repo)
        .into_iter()
        .filter(|(p, _)| *p != Id([0xf0; 32]))
        .map(|(p, entries)| {
            let entries = entries
                .into_iter()
                .map(|e| if e.id == blob { only } else { e })
                .collect();
            (p, entries)
        })
        .collect();
    reindex(&repo, vec![IndexFile { packs }]);
    let out = tmp.path().join("out2");
    let report = restore(&repo, &tree, &out, |_| {});
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let err = &report.errors[0];
    assert!(
        err.contains("big.bin") && err.contains(&blob.short()),
        "{err}"
    );
    let len = fs::metadata(out.join("src/big.bin")).unwrap().len();
    assert_ne!(len, only.raw_len as u64);
    assert_eq!(fs::read(out.join("src/small.txt")).unwrap(), b"untouched");
}

/// Stores a valid copy of blob `id` in a new pack of its own, not indexed: its pack and entry.
fn copy_to_new_pack(repo: &Repository, id: &Id) -> (Id, PackEntry) {
    let (e, payload) = crate::testutil::stored_payload(repo, id);
    let (copy, entries) = crate::testutil::store_in_new_pack(repo, &e, &payload);
    (copy, entries[0])
}

/// A key holder indexes blob B at the exact place of blob A (a valid copy of A in a pack of
/// its own, which both entries name first). Files A and B are planned in one batch; each
/// must come back with its own bytes.
#[test]
fn two_blobs_indexed_at_one_place_do_not_trade_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let (a, b) = (noise(200_000, 41), noise(200_000, 42));
    write(&src.join("a.bin"), &a);
    write(&src.join("b.bin"), &b);
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let blob_a = content_of(&repo, &tree, "src/a.bin")[0];
    let blob_b = content_of(&repo, &tree, "src/b.bin")[0];
    let (copy, at_a) = copy_to_new_pack(&repo, &blob_a);
    let b_at_a = PackEntry { id: blob_b, ..at_a };
    // The copy's pack first in both files: the first copy of A, and of B.
    let mut first = vec![(copy, vec![at_a])];
    first.extend(indexed_packs(&repo));
    let second = vec![(copy, vec![b_at_a])];
    reindex(
        &repo,
        vec![IndexFile { packs: first }, IndexFile { packs: second }],
    );
    let index = repo.load_index().unwrap();
    for (blob, entry) in [(blob_a, at_a), (blob_b, b_at_a)] {
        let loc = index.get(&blob).unwrap();
        assert_eq!((loc.pack, loc.entry), (copy, entry));
    }

    let out = tmp.path().join("out");
    let report = restore(&repo, &tree, &out, |_| {});

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(fs::read(out.join("src/a.bin")).unwrap() == a, "a.bin");
    assert!(fs::read(out.join("src/b.bin")).unwrap() == b, "b.bin");
}

/// Two names of one inode (same dev and inode, two links) whose content differs: the file
/// changed between the backup's reads of its names, or the tree is hostile. Each name must
/// come back with its own content, not the first one's through a link.
#[test]
fn names_of_one_inode_with_different_content_are_restored_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("one"), b"first content");
    write(&src.join("two"), b"later, longer content");
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let forged = crate::testutil::with_dir_changed(&repo, &tree, |dir| {
        for n in &mut dir.nodes {
            (n.dev, n.inode, n.links) = (7, 42, 2);
        }
    });

    let out = tmp.path().join("out");
    let report = restore(&repo, &forged, &out, |_| {});

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(fs::read(out.join("src/one")).unwrap(), b"first content");
    assert_eq!(
        fs::read(out.join("src/two")).unwrap(),
        b"later, longer content"
    );
    assert_eq!((report.files, report.hardlinks), (2, 0));
}
