//! What a restore sets and where it writes, when others share the target: setuid and
//! setgid bits only for an owner restored, metadata only on the entries restore made, and
//! nothing outside the directories the caller allows.

use super::*;

/// A setuid or setgid file whose owner could not be restored (chown refused: an unmapped
/// user, root squashed on NFS) keeps neither bit; with its owner restored it keeps both.
#[test]
fn setuid_and_setgid_go_when_the_owner_is_not_restored() {
    use super::super::writer::restored_mode;
    assert_eq!(restored_mode(0o106755, true).as_raw_mode(), 0o6755);
    assert_eq!(restored_mode(0o106755, false).as_raw_mode(), 0o755);
    assert_eq!(
        restored_mode(0o41777, false).as_raw_mode(),
        0o1777,
        "sticky stays"
    );
}

/// Restored without owners (not root, or `owner: false`), a setuid and setgid file of
/// another user becomes the restorer's, so it keeps neither bit; one of the restorer's own
/// keeps both.
#[test]
fn setuid_and_setgid_go_when_owners_are_not_restored_and_the_file_was_anothers() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("theirs"), b"#!/bin/sh\n");
    write(&src.join("mine"), b"#!/bin/sh\n");
    for name in ["theirs", "mine"] {
        fs::set_permissions(src.join(name), fs::Permissions::from_mode(0o6755)).unwrap();
    }
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    // The snapshot as a backup of another user's file would have it.
    let forged = crate::testutil::with_dir_changed(&repo, &tree, |dir| {
        let theirs = dir
            .nodes
            .iter_mut()
            .find(|n| n.name.0 == b"theirs")
            .unwrap();
        theirs.uid += 4242;
        theirs.gid += 4242;
    });

    let out = tmp.path().join("out");
    let report = restore(&repo, &forged, &out, |o| o.owner = Some(false));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let mode = |name: &str| {
        fs::metadata(out.join("src").join(name))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(mode("theirs") & 0o7777, 0o755);
    assert_eq!(mode("mine") & 0o7777, 0o6755);
}

/// Someone who writes the target renames another file (a hard link to one of theirs, say)
/// over a FIFO's name between its making and its metadata. The owner, mode and times land on
/// the FIFO restore made, never on that file; and a name already taken when restore opens it
/// is refused.
#[test]
fn metadata_lands_on_the_entry_made_not_on_what_took_its_name() {
    use super::super::nofollow;
    use crate::tree::Name;
    use rustix::fs::{Gid, Timespec, Timestamps, Uid};
    use std::os::fd::AsFd;

    let tmp = tempfile::tempdir().unwrap();
    let dir = rustix::fs::open(
        tmp.path(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        Mode::empty(),
    )
    .unwrap();
    let victim = tmp.path().join("victim");
    write(&victim, b"theirs");
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    let before = fs::metadata(&victim).unwrap();
    let take_name = |name: &str| {
        fs::hard_link(&victim, tmp.path().join("swap")).unwrap();
        fs::rename(tmp.path().join("swap"), tmp.path().join(name)).unwrap();
    };
    let fifo = Name(b"fifo".to_vec());
    let owner = rustix::process::geteuid();
    let (uid, gid) = if owner.is_root() {
        (Uid::from_raw(4321), Gid::from_raw(8765))
    } else {
        (owner, rustix::process::getegid())
    };

    nofollow::make_node(dir.as_fd(), &fifo, FileType::Fifo, Mode::RUSR, 0).unwrap();
    let made = nofollow::open_made(dir.as_fd(), &fifo, FileType::Fifo).unwrap();
    fs::hard_link(tmp.path().join("fifo"), tmp.path().join("kept")).unwrap();
    take_name("fifo");
    made.chown(uid, gid).unwrap();
    made.chmod(Mode::from_raw_mode(0o4750)).unwrap();
    let t = Timespec {
        tv_sec: 1_000_000_000,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    made.set_times(&times).unwrap();

    let after = fs::metadata(&victim).unwrap();
    assert_eq!(after.mode() & 0o7777, 0o644, "the file that took the name");
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_eq!(after.mtime(), before.mtime());
    let kept = fs::symlink_metadata(tmp.path().join("kept")).unwrap();
    assert!(kept.file_type().is_fifo());
    assert_eq!(kept.mode() & 0o7777, 0o4750, "the FIFO restore made");
    assert_eq!((kept.uid(), kept.gid()), (uid.as_raw(), gid.as_raw()));
    assert_eq!(kept.mtime(), 1_000_000_000);

    // Taken before restore opens it: by a file of another type, or by another FIFO.
    let other = Name(b"other".to_vec());
    nofollow::make_node(dir.as_fd(), &other, FileType::Fifo, Mode::RUSR, 0).unwrap();
    take_name("other");
    let refused = nofollow::open_made(dir.as_fd(), &other, FileType::Fifo);
    assert!(refused.is_err(), "a regular file is not the FIFO made");
    nofollow::make_node(dir.as_fd(), &other, FileType::Fifo, Mode::RUSR, 0).unwrap();
    mkfifo(&tmp.path().join("their-fifo"));
    fs::hard_link(tmp.path().join("their-fifo"), tmp.path().join("swap")).unwrap();
    fs::rename(tmp.path().join("swap"), tmp.path().join("other")).unwrap();
    let refused = nofollow::open_made(dir.as_fd(), &other, FileType::Fifo);
    assert!(
        refused.is_err(),
        "a FIFO with another name is not the one made"
    );
}

/// A symlink's xattrs can be set only by its name, which whoever else writes its directory
/// can rename over: there they are not restored, and the report says so. In a directory only
/// the restore writes, they are.
#[test]
fn a_symlinks_xattrs_are_set_only_where_nobody_else_renames_names() {
    if !rustix::process::geteuid().is_root() {
        return cannot_run_here("xattrs on a symlink (trusted.*) need root");
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    std::os::unix::fs::symlink("elsewhere", src.join("link")).unwrap();
    let set = rustix::fs::lsetxattr(
        src.join("link"),
        "trusted.loop-test",
        b"label",
        XattrFlags::empty(),
    );
    if let Err(e) = set {
        return cannot_run_here(&format!("no trusted xattrs on a symlink here ({e})"));
    }
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let xattr = |path: &Path| {
        let mut buf = [0u8; 64];
        rustix::fs::lgetxattr(path, "trusted.loop-test", &mut buf).map(|n| buf[..n].to_vec())
    };

    let private = tmp.path().join("private");
    let report = restore(&repo, &tree, &private, |_| {});
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(xattr(&private.join("src/link")).unwrap(), b"label");

    // The target's own directory is shared: its children are made 0700 by restore, so the
    // symlink goes straight into the target (a restore of the link's directory's content).
    let shared = tmp.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let sub = repo
        .load_tree(&repo.load_index().unwrap(), &tree)
        .unwrap()
        .nodes[0]
        .subtree
        .unwrap();
    let report = restore(&repo, &sub, &shared, |_| {});
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("xattrs not restored"),
        "{:?}",
        report.errors
    );
    assert!(
        fs::symlink_metadata(shared.join("link"))
            .unwrap()
            .is_symlink()
    );
    assert!(xattr(&shared.join("link")).is_err());
}

/// A caller checked that the target is under a directory it allows; someone who writes
/// there then puts a link at the target's name, to a place outside. The restore checks the
/// target it opened, refuses it, and writes nothing there.
#[test]
fn a_target_swapped_for_a_link_outside_the_allowed_directories_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("cron-job"), b"* * * * * root evil\n");
    let repo = new_repo(tmp.path());
    let tree = backup(&repo, &src);
    let root = tmp.path().join("allowed");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(root.join("u")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    let within = vec![root.canonicalize().unwrap()];

    let fine = restore(&repo, &tree, &root.join("u/fine"), |o| {
        o.within = within.clone()
    });
    assert!(fine.errors.is_empty(), "{:?}", fine.errors);
    assert!(root.join("u/fine/src/cron-job").exists());

    std::os::unix::fs::symlink(&outside, root.join("u/out")).unwrap();
    let opts = RestoreOptions {
        target: root.join("u/out"),
        within,
        ..Default::default()
    };
    let err = run(&repo, &tree, &opts, &RestoreProgress::default()).unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
    assert_eq!(
        names(&outside),
        Vec::<Vec<u8>>::new(),
        "nothing was written outside"
    );
}
