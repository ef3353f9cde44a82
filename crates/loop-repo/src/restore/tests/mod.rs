//! Whole restores: back up a real directory, restore it, compare what comes back.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use loop_testkit::data::{noise, write};
use rustix::fs::{FileType, Mode, XattrFlags};

use super::readers::TREES_AHEAD;
use super::writer::FILES_PER_BATCH;
use super::{RestoreOptions, RestoreProgress, RestoreReport, dump, find_node, run};
use crate::backup::{self, BackupOptions, BackupProgress};
use crate::id::Id;
use crate::pack;
use crate::repo::Repository;
use crate::storage::FileKind;
use crate::tree::NodeKind;

fn new_repo(dir: &Path) -> Repository {
    crate::testutil::local_repo(&dir.join("repo"))
}

/// A test that this machine cannot run: a failure in CI (which runs as root on a file
/// system with xattrs and holes), a loud skip elsewhere.
fn cannot_run_here(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must be able to run this test: {why}"
    );
    eprintln!("SKIPPED: {why}");
}

/// Backs up `src` and returns the snapshot's root tree.
fn backup(repo: &Repository, src: &Path) -> Id {
    let opts = BackupOptions {
        paths: vec![src.to_path_buf()],
        host: "h".into(),
        threads: 1,
        ..Default::default()
    };
    let result = backup::run(repo, opts, &BackupProgress::default()).unwrap();
    assert!(result.unreadable.is_empty(), "{:?}", result.unreadable);
    result.snapshot.tree
}

fn restore(
    repo: &Repository,
    tree: &Id,
    target: &Path,
    adjust: impl FnOnce(&mut RestoreOptions),
) -> RestoreReport {
    let mut opts = RestoreOptions {
        target: target.to_path_buf(),
        threads: 2,
        ..Default::default()
    };
    adjust(&mut opts);
    run(repo, tree, &opts, &RestoreProgress::default()).unwrap()
}

/// Names in a directory, sorted.
fn names(dir: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    v.sort();
    v
}

/// Asserts that `copy` has the same type, mode, owner, mtime (to the nanosecond), link
/// count, content and symlink target as `orig`, recursively.
fn assert_same(orig: &Path, copy: &Path) {
    let a = fs::symlink_metadata(orig).unwrap();
    let b = fs::symlink_metadata(copy).unwrap_or_else(|e| panic!("{}: {e}", copy.display()));
    let what = copy.display();
    assert_eq!(a.file_type(), b.file_type(), "type of {what}");
    assert_eq!(
        (a.mtime(), a.mtime_nsec()),
        (b.mtime(), b.mtime_nsec()),
        "mtime of {what}"
    );
    assert_eq!((a.uid(), a.gid()), (b.uid(), b.gid()), "owner of {what}");
    if !a.file_type().is_symlink() {
        assert_eq!(a.mode() & 0o7777, b.mode() & 0o7777, "mode of {what}");
    }
    if a.is_file() {
        assert_eq!(a.nlink(), b.nlink(), "link count of {what}");
        assert!(
            fs::read(orig).unwrap() == fs::read(copy).unwrap(),
            "content of {what}"
        );
    } else if a.file_type().is_symlink() {
        assert_eq!(fs::read_link(orig).unwrap(), fs::read_link(copy).unwrap());
    } else if a.is_dir() {
        assert_eq!(names(orig), names(copy), "entries of {what}");
        for name in names(orig) {
            let name = std::ffi::OsStr::from_bytes(&name);
            assert_same(&orig.join(name), &copy.join(name));
        }
    }
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        FileType::Fifo,
        Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
}

#[test]
fn a_restored_tree_matches_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("empty"), b"");
    write(&src.join("small.txt"), b"hello\n");
    write(&src.join("big.bin"), &noise(5 << 20, 7));
    write(&src.join("sub/deeper/x.txt"), b"deep");
    std::os::unix::fs::symlink("small.txt", src.join("link")).unwrap();
    write(&src.join("hard1"), b"linked twice");
    fs::hard_link(src.join("hard1"), src.join("hard2")).unwrap();
    fs::hard_link(src.join("hard1"), src.join("sub/hard3")).unwrap();
    write(&src.join("readonly/file"), b"in a read-only dir");
    fs::set_permissions(src.join("readonly"), fs::Permissions::from_mode(0o555)).unwrap();
    mkfifo(&src.join("fifo"));
    write(&src.join("suid"), b"#!/bin/sh\n");
    fs::set_permissions(src.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    write(&src.join("private/inner"), b"secret");
    fs::set_permissions(src.join("private"), fs::Permissions::from_mode(0o700)).unwrap();
    write(
        &src.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")),
        b"latin-1 name",
    );
    let xattrs = rustix::fs::setxattr(
        src.join("small.txt"),
        "user.test",
        b"value",
        XattrFlags::empty(),
    );
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);

    let out = tmp.path().join("out");
    let report = restore(&repo, &tree, &out, |o| o.verify = true);

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.files, 9, "{report:?}");
    assert_eq!(report.verified_files, 9);
    assert_eq!(
        (report.hardlinks, report.symlinks, report.special),
        (2, 1, 1)
    );
    assert_eq!(report.bytes, (5 << 20) + 6 + 4 + 12 + 10 + 6 + 12 + 18);
    assert_same(&src, &out.join("src"));
    let (h1, h2) = (
        fs::metadata(out.join("src/hard1")).unwrap(),
        fs::metadata(out.join("src/hard2")).unwrap(),
    );
    assert_eq!(
        (h1.ino(), h1.nlink()),
        (h2.ino(), 3),
        "hard links share one inode"
    );
    assert!(
        fs::symlink_metadata(out.join("src/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    match xattrs {
        Ok(()) => {
            let got = crate::fsmeta::read_xattrs(&out.join("src/small.txt"));
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].name.as_bytes(), b"user.test");
            assert_eq!(got[0].value, b"value");
        }
        Err(e) => cannot_run_here(&format!("the temp filesystem refuses xattrs ({e})")),
    }
}

/// Trees loaded ahead by fetcher threads: more directories than may be requested at once,
/// and identical directories (one tree ID, entered twice).
#[test]
fn trees_loaded_ahead_restore_the_same_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for i in 0..TREES_AHEAD + 40 {
        write(
            &src.join(format!("d{}/sub{i}/f", i % 9)),
            format!("{i}").as_bytes(),
        );
    }
    for twin in ["twin-a", "twin-b"] {
        write(&src.join(format!("{twin}/same/file")), b"identical");
    }
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let out = tmp.path().join("out");
    let report = restore(&repo, &tree, &out, |o| o.tree_fetchers = 4);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.files as usize, TREES_AHEAD + 40 + 2);
    assert_same(&src, &out.join("src"));
}

/// More files than may be open at once (three batches), so the walker has to wait for
/// readers; with the default batch and with a larger one, as for a server.
#[test]
fn many_small_files_all_come_back() {
    for per_batch in [0, 300] {
        let open_at_most = 3 * if per_batch == 0 {
            FILES_PER_BATCH
        } else {
            per_batch
        };
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        for i in 0..open_at_most + 150 {
            write(
                &src.join(format!("d{}/f{i}", i % 7)),
                format!("file {i}").as_bytes(),
            );
        }
        let repo = new_repo(tmp.path());
        let tree = backup(&repo, &src);
        let out = tmp.path().join("out");
        let progress = RestoreProgress::default();
        let opts = RestoreOptions {
            target: out.clone(),
            threads: 3,
            files_per_batch: per_batch,
            ..Default::default()
        };
        let report = run(&repo, &tree, &opts, &progress).unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.files as usize, open_at_most + 150);
        assert_eq!(progress.files_done.load(Ordering::Relaxed), report.files);
        assert_eq!(progress.bytes_done.load(Ordering::Relaxed), report.bytes);
        assert_same(&src, &out.join("src"));
    }
}

#[test]
fn includes_and_excludes_pick_what_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for f in ["a.txt", "b.log", "sub/c.txt", "sub/d.log", "other/e.log"] {
        write(&src.join(f), f.as_bytes());
    }
    fs::create_dir(src.join("empty_dir")).unwrap();
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);

    let out = tmp.path().join("txt");
    let report = restore(&repo, &tree, &out, |o| o.includes = vec!["*.txt".into()]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        names(&out.join("src")),
        [b"a.txt".to_vec(), b"sub".to_vec()]
    );
    assert_eq!(names(&out.join("src/sub")), [b"c.txt".to_vec()]);
    // Directories leading to a match get their recorded metadata too.
    let (a, b) = (
        fs::metadata(src.join("sub")).unwrap(),
        fs::metadata(out.join("src/sub")).unwrap(),
    );
    assert_eq!((a.mtime(), a.mtime_nsec()), (b.mtime(), b.mtime_nsec()));

    let out = tmp.path().join("sub");
    restore(&repo, &tree, &out, |o| o.includes = vec!["/src/sub".into()]);
    assert_eq!(names(&out.join("src")), [b"sub".to_vec()]);
    assert_same(&src.join("sub"), &out.join("src/sub"));

    let out = tmp.path().join("excl");
    let report = restore(&repo, &tree, &out, |o| {
        o.excludes = vec!["sub".into(), "*.log".into()]
    });
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        names(&out.join("src")),
        [b"a.txt".to_vec(), b"empty_dir".to_vec(), b"other".to_vec()]
    );
    assert!(names(&out.join("src/other")).is_empty());
}

#[test]
fn sparse_files_come_back_sparse() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let path = src.join("disk.img");
    write(&path, b"head");
    let size = (64 << 20) + 8;
    {
        let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(size).unwrap();
        f.write_all_at(b"tail", size - 4).unwrap();
    }
    let allocated = |p: &Path| fs::metadata(p).unwrap().blocks() * 512;
    if allocated(&path) >= size / 4 {
        return cannot_run_here("the temp filesystem does not keep holes");
    }
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let out = tmp.path().join("out");
    let report = restore(&repo, &tree, &out, |o| o.verify = true);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let copy = out.join("src/disk.img");
    assert!(fs::read(&path).unwrap() == fs::read(&copy).unwrap());
    assert!(
        allocated(&copy) < size / 4,
        "{} bytes allocated for a {size}-byte file with a 64 MiB hole",
        allocated(&copy)
    );
}

/// Owners are restored as root, including other users' files and uid/gid 0.
#[test]
fn owners_come_back_as_root() {
    if !rustix::process::geteuid().is_root() {
        return cannot_run_here("owners are restored only as root");
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let owners = [
        ("alice", 1234, 5678),
        ("root-owned", 0, 0),
        ("dir", 4321, 0),
    ];
    for (name, uid, gid) in owners {
        let path = src.join(name);
        if name == "dir" {
            fs::create_dir_all(&path).unwrap();
        } else {
            write(&path, name.as_bytes());
        }
        rustix::fs::chown(
            &path,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("alice", src.join("link")).unwrap();
    rustix::fs::chownat(
        rustix::fs::CWD,
        src.join("link"),
        Some(rustix::fs::Uid::from_raw(777)),
        Some(rustix::fs::Gid::from_raw(888)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let out = tmp.path().join("out");
    let report = restore(&repo, &tree, &out, |_| {});
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    for (name, uid, gid) in owners {
        let m = fs::symlink_metadata(out.join("src").join(name)).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "owner of {name}");
    }
    let link = fs::symlink_metadata(out.join("src/link")).unwrap();
    assert_eq!(
        (link.uid(), link.gid()),
        (777, 888),
        "owner of the symlink itself"
    );
    assert_same(&src, &out.join("src"));
}

#[test]
fn device_files_come_back_as_root() {
    if !rustix::process::geteuid().is_root() {
        return cannot_run_here("device files are restored only as root");
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    let dev = rustix::fs::makedev(1, 3);
    let made = rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o640),
        dev,
    );
    if let Err(e) = made {
        return cannot_run_here(&format!("cannot create a device node here ({e})"));
    }
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let out = tmp.path().join("out");
    let report = restore(&repo, &tree, &out, |_| {});
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.special, 1);
    let m = fs::symlink_metadata(out.join("src/null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), dev);
    assert_same(&src, &out.join("src"));
}

#[test]
fn dump_streams_a_file_and_find_node_resolves_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let big = noise(5 << 20, 3);
    write(&src.join("dir/big.bin"), &big);
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let index = repo.load_index().unwrap();

    let node = find_node(&repo, &index, &tree, "src/dir/big.bin")
        .unwrap()
        .unwrap();
    assert!(node.content.len() > 1, "a multi-chunk file");
    let mut out = Vec::new();
    assert_eq!(
        dump(&repo, &index, &tree, "src/dir/big.bin", &mut out).unwrap(),
        big.len() as u64
    );
    assert!(out == big);

    let root = find_node(&repo, &index, &tree, "").unwrap().unwrap();
    assert_eq!((root.kind, root.subtree), (NodeKind::Dir, Some(tree)));
    assert_eq!(
        find_node(&repo, &index, &tree, "/src/dir/")
            .unwrap()
            .unwrap()
            .kind,
        NodeKind::Dir
    );
    assert!(
        find_node(&repo, &index, &tree, "src/nothing")
            .unwrap()
            .is_none()
    );
    assert!(
        find_node(&repo, &index, &tree, "src/dir/big.bin/x")
            .unwrap()
            .is_none()
    );
    assert!(
        dump(&repo, &index, &tree, "src/nothing", &mut Vec::new())
            .unwrap_err()
            .is_not_found()
    );
    assert!(dump(&repo, &index, &tree, "src/dir", &mut Vec::new()).is_err());
}

mod hostile;
mod placement;

/// `repo` read through storage that asks the restore of the returned progress to stop when
/// `when` says so of a pack read (the pack's name, and how many pack reads there have been,
/// this one included).
fn cancelling(
    repo: &Repository,
    when: impl Fn(&str, u64) -> bool + Send + Sync + 'static,
) -> (Repository, std::sync::Arc<RestoreProgress>) {
    let progress = std::sync::Arc::new(RestoreProgress::default());
    let (reads, stop) = (std::sync::atomic::AtomicU64::new(0), progress.clone());
    let storage = std::sync::Arc::new(crate::testutil::Hooked {
        inner: repo.storage().clone(),
        read: Box::new(move |_, kind, name| {
            if kind == FileKind::Pack && when(name, reads.fetch_add(1, Ordering::Relaxed) + 1) {
                stop.cancel.store(true, Ordering::Relaxed);
            }
            None
        }),
    });
    let repo = Repository::open(storage, crate::keys::Secret::Passphrase(b"pw")).unwrap();
    (repo, progress)
}

#[test]
fn a_cancelled_restore_stops_and_says_it_was_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let count = 3000;
    for i in 0..count {
        write(
            &src.join(format!("d{}/f{i}", i % 10)),
            format!("file {i}").as_bytes(),
        );
    }
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let restored = |out: &Path| {
        (0..count)
            .filter(|i| {
                fs::read(out.join(format!("src/d{}/f{i}", i % 10))).ok()
                    == Some(format!("file {i}").into_bytes())
            })
            .count()
    };
    for after in [0, 3] {
        // The storage asks the restore to stop once it has served `after` pack reads.
        let (repo, progress) = cancelling(&repo, move |_, reads| reads >= after);
        progress.cancel.store(after == 0, Ordering::Relaxed);
        let out = tmp.path().join(format!("out-{after}"));
        let opts = RestoreOptions {
            target: out.clone(),
            threads: 2,
            files_per_batch: 100,
            ..Default::default()
        };
        let result = run(&repo, &tree, &opts, &progress);
        assert!(
            matches!(result, Err(crate::Error::Interrupted)),
            "{after}: {result:?}"
        );
        // Cancelled at once, nothing is written; after three reads, at most the three
        // batches of files then open.
        let whole = restored(&out);
        assert!(
            whole <= 3 * 100 && (after > 0 || whole == 0),
            "{after}: {whole}"
        );
    }
    // Not cancelled, all of it comes back.
    let out = tmp.path().join("out");
    restore(&repo, &tree, &out, |_| {});
    assert_eq!(restored(&out), count);
}

/// A cancel asked for while the last read was under way cut nothing: the restore ends as
/// done, not interrupted.
#[test]
fn a_cancel_after_the_last_read_leaves_the_restore_done() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("only"), b"the one file");
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let index = repo.load_index().unwrap();
    // The storage asks the restore to stop as it serves the read of the file's data.
    let (repo, progress) = cancelling(&repo, move |name, _| {
        Id::parse(name).is_ok_and(|pack| !index.is_tree_pack(&pack))
    });
    let out = tmp.path().join("out");
    let opts = RestoreOptions {
        target: out.clone(),
        ..Default::default()
    };
    let report = run(&repo, &tree, &opts, &progress).expect("a restore that finished");
    assert!(
        progress.cancel.load(Ordering::Relaxed),
        "the cancel was asked for"
    );
    assert_eq!(report.files, 1);
    assert_eq!(fs::read(out.join("src/only")).unwrap(), b"the one file");
}

/// A cancel asked for as the walker enters the last directory, which is empty: nothing is
/// left to restore, and the restore ends as done.
#[test]
fn a_cancel_as_the_walker_enters_an_empty_last_directory_leaves_the_restore_done() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a"), b"");
    fs::create_dir_all(src.join("z")).unwrap();
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    // Trees are read as the walker reaches them: the root, `src`, then `z`.
    let (repo, progress) = cancelling(&repo, |_, reads| reads == 3);
    let out = tmp.path().join("out");
    let opts = RestoreOptions {
        target: out.clone(),
        tree_fetchers: 0,
        ..Default::default()
    };
    let report = run(&repo, &tree, &opts, &progress).expect("a restore that finished");
    assert!(
        progress.cancel.load(Ordering::Relaxed),
        "the cancel was asked for"
    );
    assert_eq!((report.files, report.dirs), (1, 2), "{report:?}");
    assert!(out.join("src/z").is_dir());
}
