use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;
use crate::backup::{self, BackupOptions, BackupProgress};
use crate::locks::Lock;
use crate::testutil::local_repo;

fn options() -> PruneOptions {
    PruneOptions {
        grace: Duration::ZERO,
        ..Default::default()
    }
}

fn packs(repo: &Repository) -> HashSet<String> {
    let list = repo.storage().list(FileKind::Pack).unwrap();
    list.into_iter().map(|o| o.name).collect()
}

/// A repository whose only snapshot was forgotten: every pack it holds is unused.
fn forgotten(dir: &Path) -> Repository {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"what a forgotten snapshot held").unwrap();
    let repo = local_repo(&dir.join("repo"));
    let opts = BackupOptions {
        paths: vec![src],
        host: "h".into(),
        ..Default::default()
    };
    let r = backup::run(&repo, opts, &BackupProgress::default()).unwrap();
    repo.remove_snapshot(&r.snapshot_id.unwrap()).unwrap();
    repo
}

/// Backs `src` up, then again without its file `gone`, and forgets the first snapshot: the
/// packs that held `gone` are mostly unused, and what they hold besides is used. The second
/// backup's result.
fn without_gone(repo: &Repository, src: &Path) -> backup::BackupResult {
    let back_up = || {
        let opts = BackupOptions {
            paths: vec![src.to_path_buf()],
            host: "h".into(),
            ..Default::default()
        };
        backup::run(repo, opts, &BackupProgress::default()).unwrap()
    };
    let first = back_up();
    std::fs::remove_file(src.join("gone")).unwrap();
    let second = back_up();
    repo.remove_snapshot(&first.snapshot_id.unwrap()).unwrap();
    second
}

/// A repository where `src/<kept_at>` (200 kB of noise from `seed`) was backed up beside a
/// 2 MB file `gone`, and again without it, the first snapshot forgotten (see
/// [`without_gone`]): (the repository, the kept file's bytes, the second backup).
fn kept_beside_gone(
    dir: &Path,
    kept_at: &str,
    seed: u64,
) -> (Repository, Vec<u8>, backup::BackupResult) {
    let src = dir.join("src");
    let kept = loop_testkit::data::noise(200_000, seed);
    loop_testkit::data::write(&src.join(kept_at), &kept);
    loop_testkit::data::write(
        &src.join("gone"),
        &loop_testkit::data::noise(2_000_000, seed + 1),
    );
    let repo = local_repo(&dir.join("repo"));
    let second = without_gone(&repo, &src);
    (repo, kept, second)
}

/// Restores `tree` into `out`, every entry of it.
fn restore_whole(repo: &Repository, tree: &Id, out: &Path) {
    let opts = crate::restore::RestoreOptions {
        target: out.to_path_buf(),
        ..Default::default()
    };
    let report = crate::restore::run(repo, tree, &opts, &Default::default()).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

/// Restores `tree` into `out` and reads the file `rel` below the one path the snapshot
/// holds.
fn restored_file(repo: &Repository, tree: &Id, out: &Path, rel: &str) -> Vec<u8> {
    restore_whole(repo, tree, out);
    let root = std::fs::read_dir(out).unwrap().next().unwrap().unwrap();
    std::fs::read(root.path().join(rel)).unwrap()
}

/// `data` (300 kB of noise from `seed`) backed up as `src/<rel>` under `dir` into a new
/// repository there: (the repository, `src`, the bytes, the backup).
fn backed_up_file(
    dir: &Path,
    rel: &str,
    seed: u64,
) -> (
    Repository,
    std::path::PathBuf,
    Vec<u8>,
    backup::BackupResult,
) {
    let src = dir.join("src");
    let data = loop_testkit::data::noise(300_000, seed);
    loop_testkit::data::write(&src.join(rel), &data);
    let repo = local_repo(&dir.join("repo"));
    let done = crate::testutil::back_up(&repo, &src);
    (repo, src, data, done)
}

/// Makes every plan look `by` older, beyond the allowance for clock skew.
fn age_plans(repo: &Repository, by: chrono::Duration) {
    for (name, mut plan) in load_plans(repo).unwrap().readable {
        plan.created -= by;
        let json = serde_json::to_vec(&plan).unwrap();
        let sealed = format::seal(repo.master(), Magic::PrunePlan, &json, 3);
        repo.storage().put(FileKind::Plan, &name, sealed).unwrap();
    }
}

#[test]
fn a_restore_or_check_holds_back_a_plan_however_late_it_started() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = forgotten(tmp.path());
    let unused = packs(&repo);
    assert!(!unused.is_empty());

    // A backup is running: the packs are condemned, not deleted.
    let backup = Lock::acquire(&repo, LockKind::Backup).unwrap();
    let report = execute(&repo, plan(&repo, &options()).unwrap()).unwrap();
    assert_eq!(report.packs_deleted, 0);
    assert!(report.packs_deferred > 0);
    drop(backup);
    age_plans(&repo, chrono::Duration::hours(1));

    // A restore starts after the plan, with an index that still names the condemned packs.
    let restore = Lock::acquire(&repo, LockKind::Read).unwrap();
    let p = plan(&repo, &options()).unwrap();
    assert_eq!(p.condemned_packs_waiting, unused.len(), "{p:?}");
    let report = execute(&repo, p).unwrap();
    assert_eq!(
        report.packs_deleted, 0,
        "nothing is deleted under a restore"
    );
    assert!(unused.is_subset(&packs(&repo)));
    drop(restore);

    // Once it is done, the next prune carries the plan out.
    let report = execute(&repo, plan(&repo, &options()).unwrap()).unwrap();
    assert_eq!(report.packs_deleted, unused.len());
    assert!(unused.is_disjoint(&packs(&repo)));
}

/// A holder of the key stores a copy of a used blob under its ID with other content (a
/// backup-only token can): when the genuine copy's pack is repacked, prune keeps the genuine
/// copy rather than let the forged one stand in, and what the snapshot holds still restores.
#[test]
fn a_forged_copy_never_stands_in_for_the_genuine_one_prune_drops() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, kept, second) = kept_beside_gone(tmp.path(), "kept", 21);
    crate::testutil::plant_forged_copy(&repo, &kept_blob(&repo, &second));
    prune_and_restore_kept(&repo, tmp.path(), &second, &kept, 1);
}

/// The blob of the file `kept` (its one chunk), as `second`'s snapshot of
/// [`kept_beside_gone`] names it.
fn kept_blob(repo: &Repository, second: &backup::BackupResult) -> Id {
    let index = repo.load_index().unwrap();
    let root = repo.load_tree(&index, &second.snapshot.tree).unwrap();
    let dir = repo
        .load_tree(&index, &root.nodes[0].subtree.unwrap())
        .unwrap();
    dir.nodes[0].content[0]
}

/// Prunes, repacking at least `repacked` packs, then restores `second`'s snapshot under
/// `dir`: its file `kept` still reads `kept`.
fn prune_and_restore_kept(
    repo: &Repository,
    dir: &Path,
    second: &backup::BackupResult,
    kept: &[u8],
    repacked: usize,
) {
    let p = plan(repo, &options()).unwrap();
    assert!(p.packs_repack >= repacked, "{p:?}");
    execute(repo, p).unwrap();
    let out = dir.join("out");
    restore_whole(repo, &second.snapshot.tree, &out);
    assert_eq!(std::fs::read(out.join("src/kept")).unwrap(), kept);
}

/// A used blob stored twice, both copies in packs a prune repacks, the first it reads
/// damaged (failing authentication): the prune copies the intact one instead of failing,
/// and the snapshot restores.
#[test]
fn a_damaged_copy_of_a_blob_is_passed_over_for_an_intact_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, kept, second) = kept_beside_gone(tmp.path(), "kept", 31);
    let blob = kept_blob(&repo, &second);
    let original = repo.load_index().unwrap().get(&blob).unwrap();
    // A second genuine copy, beside a megabyte no snapshot uses: its pack is repacked too.
    let (e, payload) = crate::testutil::stored_payload(&repo, &blob);
    let mut w = crate::pack::PackWriter::new(repo.master(), 4 << 20);
    w.add(e.kind, e.id, &payload, e.raw_len);
    let junk = loop_testkit::data::noise(1_000_000, 32);
    w.add(
        crate::pack::BlobKind::Data,
        repo.blob_id(&junk),
        &junk,
        junk.len() as u32,
    );
    let (copy, data, entries) = w.finish();
    repo.storage()
        .put(FileKind::Pack, &copy.to_hex(), data)
        .unwrap();
    repo.save_index_file(&crate::index::IndexFile {
        packs: vec![(copy, entries.clone())],
    })
    .unwrap();
    // The copy prune reads first (packs are read in ID order) loses a byte.
    let (damaged, offset) = if original.pack < copy {
        (original.pack, original.entry.offset)
    } else {
        (copy, entries[0].offset)
    };
    let path = tmp
        .path()
        .join("repo")
        .join(FileKind::Pack.path(&damaged.to_hex()));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset as usize + 2] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    prune_and_restore_kept(&repo, tmp.path(), &second, &kept, 2);
}

/// A `repair index` ran while a prune was planning: it indexed the packs a killed backup
/// left, which the plan took for orphans. The prune leaves them, and a backup that
/// deduplicates against them afterwards restores.
#[test]
fn packs_a_repair_indexed_after_the_plan_are_not_deleted_as_orphans() {
    let tmp = tempfile::tempdir().unwrap();
    // A backup killed before it wrote its index and snapshot: packs no index file names.
    let (repo, src, data, killed) = backed_up_file(tmp.path(), "f", 51);
    repo.storage()
        .delete(FileKind::Snapshot, &killed.snapshot_id.unwrap().to_hex())
        .unwrap();
    for o in repo.storage().list(FileKind::Index).unwrap() {
        repo.storage().delete(FileKind::Index, &o.name).unwrap();
    }
    let left = packs(&repo);

    let p = plan(&repo, &options()).unwrap();
    assert_eq!(p.orphan_packs_delete, left.len(), "{p:?}");
    let opts = crate::repair::IndexRepairOptions { dry_run: false };
    let repaired = crate::repair::index(&repo, &opts).unwrap();
    assert_eq!(repaired.packs_indexed, left.len());
    execute(&repo, p).unwrap();

    assert_eq!(packs(&repo), left, "the packs the repair indexed are gone");
    let again = crate::testutil::back_up(&repo, &src);
    let out = tmp.path().join("out");
    assert_eq!(restored_file(&repo, &again.snapshot.tree, &out, "f"), data);
}

/// A restore listed the index just before a prune (which had found no reader's marker) wrote
/// its new index and deleted the packs it repacked: the restore's index names packs that are
/// gone. It lists the index again and reads the trees and blobs where the prune put them.
#[test]
fn a_restore_finds_what_a_prune_moved_after_it_read_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    // `stay`'s tree is the same in both snapshots: it is in the pack of the first one's trees,
    // which the prune repacks too.
    let (repo, kept, second) = kept_beside_gone(tmp.path(), "stay/kept", 31);
    let storage = repo.storage().clone();
    let index_files = || -> std::collections::HashMap<String, Vec<u8>> {
        let listed = storage.list(FileKind::Index).unwrap();
        listed
            .into_iter()
            .map(|o| {
                let bytes = storage.get(FileKind::Index, &o.name, 1 << 30).unwrap();
                (o.name, bytes)
            })
            .collect()
    };
    let before = index_files();
    let report = execute(&repo, plan(&repo, &options()).unwrap()).unwrap();
    assert!(report.packs_deleted > 0, "{report:?}");
    let mut retired = before.clone();
    let mut written = index_files();
    retired.retain(|name, _| !written.contains_key(name));
    written.retain(|name, _| !before.contains_key(name));
    assert!(!retired.is_empty() && !written.is_empty());

    // The index as the restore lists it: the prune's new packs are there, its index not yet;
    // by the restore's first pack read, the prune has gone on to its end.
    let swap = |inner: &dyn crate::Storage,
                put: &std::collections::HashMap<String, Vec<u8>>,
                drop: &std::collections::HashMap<String, Vec<u8>>| {
        for (name, bytes) in put {
            inner.put(FileKind::Index, name, bytes.clone()).unwrap();
        }
        for name in drop.keys() {
            inner.delete(FileKind::Index, name).unwrap();
        }
    };
    swap(&*storage, &retired, &written);
    let moved_on = std::sync::atomic::AtomicBool::new(false);
    let hooked = Arc::new(crate::testutil::Hooked {
        inner: storage.clone(),
        read: Box::new(move |inner, kind, _| {
            if kind == FileKind::Pack && !moved_on.swap(true, Ordering::SeqCst) {
                swap(inner, &written, &retired);
            }
            None
        }),
    });
    let reader = Repository::open(hooked, crate::keys::Secret::Passphrase(b"pw")).unwrap();
    let out = tmp.path().join("out");
    restore_whole(&reader, &second.snapshot.tree, &out);
    assert_eq!(std::fs::read(out.join("src/stay/kept")).unwrap(), kept);
}

/// After a prune that was put off, the blobs it copied out are stored twice until their
/// condemned packs go, and the next plan checks every kept copy: it reads each kept pack's
/// copies together, not one read per blob, and finds them standing.
#[test]
fn the_copies_of_a_prune_put_off_are_checked_a_pack_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for i in 0..100 {
        loop_testkit::data::write(
            &src.join(format!("kept-{i}")),
            &loop_testkit::data::noise(2_000, 100 + i),
        );
    }
    loop_testkit::data::write(&src.join("gone"), &loop_testkit::data::noise(2_000_000, 23));
    let repo = local_repo(&tmp.path().join("repo"));
    without_gone(&repo, &src);
    let backup = Lock::acquire(&repo, LockKind::Backup).unwrap();
    let p = plan(&repo, &options()).unwrap();
    assert!(p.packs_repack > 0, "{p:?}");
    let before = packs(&repo);
    let report = execute(&repo, p).unwrap();
    assert!(report.packs_deferred > 0, "{report:?}");
    drop(backup);
    let written: HashSet<String> = packs(&repo).difference(&before).cloned().collect();

    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = reads.clone();
    let storage = Arc::new(crate::testutil::Hooked {
        inner: repo.storage().clone(),
        read: Box::new(move |_, kind, name| {
            if kind == FileKind::Pack && written.contains(name) {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            None
        }),
    });
    let planner = Repository::open(storage, crate::keys::Secret::Passphrase(b"pw")).unwrap();
    let p = plan(&planner, &options()).unwrap();
    assert_eq!(p.packs_repack, 0, "the copies stand in: {p:?}");
    let reads = reads.load(Ordering::SeqCst);
    assert_eq!(reads, 1, "reads of the one pack holding about 100 copies");
}

/// A reader lists the index while a prune replaces an index file: the file it listed is gone
/// when it reads it (a prune writes the replacement first, then removes the old one). Listed
/// again, the replacement is read, and no blob is missing from the reader's index.
#[test]
fn an_index_file_replaced_while_it_is_read_is_read_under_its_new_name() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = forgotten(tmp.path());
    let src = tmp.path().join("src");
    std::fs::write(src.join("b"), b"what the next snapshot holds").unwrap();
    let opts = BackupOptions {
        paths: vec![src],
        host: "h".into(),
        ..Default::default()
    };
    backup::run(&repo, opts, &BackupProgress::default()).unwrap();
    let mut blobs = Vec::new();
    for f in repo.storage().list(FileKind::Index).unwrap() {
        for (_, entries) in repo.load_index_file(&f.name).unwrap().packs {
            blobs.extend(entries.iter().map(|e| e.id));
        }
    }
    assert!(!blobs.is_empty());

    let replaced = std::sync::atomic::AtomicBool::new(false);
    let storage = Arc::new(crate::testutil::Hooked {
        inner: repo.storage().clone(),
        read: Box::new(move |inner, kind, name| {
            if kind != FileKind::Index || replaced.swap(true, Ordering::SeqCst) {
                return None;
            }
            let bytes = inner.get(kind, name, 1 << 30).unwrap();
            inner.put(kind, &Id::random().to_hex(), bytes).unwrap();
            inner.delete(kind, name).unwrap();
            Some(Err(Error::NotFound(name.to_string())))
        }),
    });
    let reader = Repository::open(storage, crate::keys::Secret::Passphrase(b"pw")).unwrap();
    let index = reader.load_index().unwrap();
    for id in &blobs {
        assert!(index.get(id).is_some(), "blob {} is missing", id.short());
    }
}

/// A check while a prune is carried out: a condemned pack the prune deleted while the index
/// still names it is not damage (its blobs are unused); it is once a snapshot uses a blob
/// that has no other copy.
#[test]
fn a_condemned_pack_a_prune_deleted_is_damage_only_when_a_snapshot_uses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"what a forgotten snapshot held").unwrap();
    let repo = local_repo(&tmp.path().join("repo"));
    let opts = BackupOptions {
        paths: vec![src],
        host: "h".into(),
        ..Default::default()
    };
    let snapshot = backup::run(&repo, opts, &BackupProgress::default())
        .unwrap()
        .snapshot;
    let id = repo.list_snapshots().unwrap().snapshots[0].0;
    repo.remove_snapshot(&id).unwrap();
    let condemned = packs(&repo);
    let backup = Lock::acquire(&repo, LockKind::Backup).unwrap();
    let report = execute(&repo, plan(&repo, &options()).unwrap()).unwrap();
    assert!(report.packs_deferred > 0, "{report:?}");
    drop(backup);
    // As a check finds them while the prune deletes: gone, and still indexed.
    for name in &condemned {
        repo.storage().delete(FileKind::Pack, name).unwrap();
    }
    let structure = crate::check::CheckOptions {
        read_data: crate::check::ReadData::None,
        threads: 1,
    };
    let check = || crate::check::run(&repo, &structure, &Default::default()).unwrap();
    let found = check();
    assert!(found.is_ok(), "{found:?}");
    assert!(
        found
            .warnings
            .iter()
            .any(|w| w.contains("has not finished")),
        "{:?}",
        found.warnings
    );
    // A snapshot that uses them (here: the forgotten one saved again) makes them damage.
    repo.save_snapshot(&snapshot).unwrap();
    let found = check();
    assert!(!found.is_ok(), "{found:?}");
    assert!(
        found
            .damaged
            .iter()
            .any(|d| d.reason.contains("had no other copy")),
        "{found:?}"
    );
}

/// A file's content may name a blob that is also a tree: blob IDs do not depend on the kind,
/// so a file holding exactly a tree's bytes has that tree's ID, and a holder of a backup-only
/// token can write a snapshot whose file names any tree the index lists. That the ID is used
/// as file content must not stop prune from walking the tree, or everything below it would
/// look unused.
#[test]
fn a_tree_named_as_file_content_by_an_earlier_snapshot_is_still_walked() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _, kept, genuine) = backed_up_file(tmp.path(), "sub/kept", 41);

    let mut file =
        crate::tree::Node::bare(crate::tree::Name(b"f".to_vec()), NodeKind::File, 0, None);
    file.content = vec![genuine.snapshot.tree];
    let forged_root =
        crate::testutil::store_trees(&repo, &[crate::tree::Tree { nodes: vec![file] }])[0];
    let mut forged = genuine.snapshot.clone();
    forged.tree = forged_root;
    forged.time = chrono::DateTime::UNIX_EPOCH.fixed_offset();
    repo.save_snapshot(&forged).unwrap();

    execute(&repo, plan(&repo, &options()).unwrap()).unwrap();
    let out = tmp.path().join("out");
    let restored = restored_file(&repo, &genuine.snapshot.tree, &out, "sub/kept");
    assert_eq!(restored, kept);
}

/// A plan that no longer reads (damaged in storage) stops neither backups nor prune: both
/// take it as absent and say so, and the next prune removes it and condemns afresh what
/// it condemned and is still unused.
#[test]
fn a_damaged_plan_is_taken_as_absent_and_removed_by_the_next_prune() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = forgotten(tmp.path());
    let unused = packs(&repo);
    // A backup runs: the plan waits for it.
    let running = Lock::acquire(&repo, LockKind::Backup).unwrap();
    let report = execute(&repo, plan(&repo, &options()).unwrap()).unwrap();
    assert!(report.packs_deferred > 0, "{report:?}");
    drop(running);
    let plans = repo.storage().list(FileKind::Plan).unwrap();
    assert_eq!(plans.len(), 1);
    let damaged = &plans[0].name;
    let path = tmp.path().join("repo").join(FileKind::Plan.path(damaged));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    let src = tmp.path().join("src");
    let backed_up = backup::run(
        &repo,
        BackupOptions {
            paths: vec![src],
            host: "h".into(),
            ..Default::default()
        },
        &BackupProgress::default(),
    )
    .unwrap();
    assert!(
        backed_up
            .warnings
            .iter()
            .any(|w| w.contains(damaged.as_str())),
        "{:?}",
        backed_up.warnings
    );
    repo.remove_snapshot(&backed_up.snapshot_id.unwrap())
        .unwrap();

    let p = plan(&repo, &options()).unwrap();
    assert_eq!(p.damaged_plans, std::slice::from_ref(damaged));
    let report = execute(&repo, p).unwrap();
    assert!(report.packs_deleted >= unused.len(), "{report:?}");
    assert!(unused.is_disjoint(&packs(&repo)));
    let left: Vec<String> = repo
        .storage()
        .list(FileKind::Plan)
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A prune previewed as if a snapshot were gone (a dry run of `forget --prune`) counts that
/// snapshot's data as freed, and is refused if anyone tries to carry it out: the snapshot
/// is still there and still whole.
#[test]
fn a_preview_without_a_snapshot_is_shown_but_never_carried_out() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), loop_testkit::data::noise(300_000, 3)).unwrap();
    let repo = local_repo(&dir.path().join("repo"));
    let snap = crate::testutil::back_up(&repo, &src).snapshot_id.unwrap();
    let preview = preview_without(&repo, &options(), &HashSet::from([snap])).unwrap();
    assert!(preview.bytes_to_free > 300_000, "{preview:?}");
    assert_eq!(plan(&repo, &options()).unwrap().bytes_to_free, 0);
    let before = packs(&repo);
    assert!(execute(&repo, preview).is_err());
    assert_eq!(packs(&repo), before);
    let all = crate::check::CheckOptions {
        read_data: crate::check::ReadData::All,
        threads: 1,
    };
    let checked = crate::check::run(&repo, &all, &Default::default()).unwrap();
    assert!(checked.is_ok(), "{checked:?}");
}
