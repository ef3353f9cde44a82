//! End-to-end stories through the real `loop` binary on local repositories.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::cli::*;

#[test]
fn every_file_type_survives_backup_and_restore() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    build_full_tree(&src);
    let s = env.backup(&[&src], &[]);
    assert_eq!(s["files_unreadable"], 0);
    let id = s["snapshot_id"].as_str().expect("snapshot id").to_string();

    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps.as_array().expect("array").len(), 1);
    assert_eq!(snaps[0]["id"], id.as_str());

    let target = env.path("restored");
    let out = env.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    assert!(out.contains("verified"), "{out}");
    assert_same_tree(&src, &target.join("src"));
    let fifo = fs::symlink_metadata(target.join("src/fifo")).expect("fifo restored");
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
}

#[test]
fn an_unchanged_tree_is_not_read_again_and_a_change_is_found() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    for i in 0..20 {
        write(&src.join(format!("f{i}.txt")), &text(20_000, i));
    }
    let first = env.backup(&[&src], &[]);
    assert_eq!(first["files_new"], 20);

    let again = env.backup(&[&src], &[]);
    assert_eq!(again["files_unmodified"], 20);
    assert_eq!(again["files_new"], 0);
    assert_eq!(again["data_blobs"], 0, "no file content was stored again");

    write(&src.join("f3.txt"), &text(20_000, 999));
    write(&src.join("new.txt"), b"brand new");
    let third = env.backup(&[&src], &[]);
    assert_eq!(third["files_changed"], 1);
    assert_eq!(third["files_new"], 1);
    assert_eq!(third["files_unmodified"], 19);

    let snaps = env.json(&["snapshots"]);
    let ids: Vec<&str> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let diff = env.ok(&["diff", ids[1], ids[2]]);
    assert!(diff.contains("M    /src/f3.txt"), "{diff}");
    assert!(diff.contains("+    /src/new.txt"), "{diff}");
    assert!(!diff.contains("f4.txt"), "{diff}");
}

#[test]
fn backup_with_init_creates_the_repository_once() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("a.txt"), b"first");
    let first = env.backup(&[&src], &["--init"]);
    assert!(first["snapshot_id"].is_string());
    let again = env.backup(&[&src], &["--init"]);
    assert_eq!(
        again["files_unmodified"], 1,
        "the second run used the same repository"
    );
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 2);
    let out = env.run_with(
        "LOOP_PASSWORD",
        "other",
        &["backup", "--init", src.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "an existing repository is never re-created"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
}

#[test]
fn wrong_passphrase_is_one_line_and_exit_1() {
    let env = Env::new();
    env.init();
    let out = env.run_with("LOOP_PASSWORD", "not it", &["snapshots"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("wrong passphrase"), "{err}");
}

#[test]
fn a_missing_folder_is_named_with_its_cause_once() {
    let env = Env::new();
    env.init();
    let gone = env.path("gone");
    let err = env.fails(&["backup", gone.to_str().unwrap()]);
    let cause = std::io::Error::from_raw_os_error(2).to_string(); // ENOENT
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(gone.to_str().unwrap()), "{err}");
    assert_eq!(err.matches(&cause).count(), 1, "{err}");
}

#[test]
fn a_missing_repository_and_a_second_init_are_clear_errors() {
    let env = Env::new();
    assert!(env.fails(&["snapshots"]).contains("no repository"));
    env.init();
    assert!(env.fails(&["init"]).contains("already exists"));
}

#[test]
fn a_repository_from_a_newer_version_says_so() {
    let env = Env::new();
    env.init();
    let config = Path::new(&env.repo).join("config");
    let mut bytes = fs::read(&config).unwrap();
    bytes[4] = 7;
    fs::write(&config, bytes).unwrap();
    let err = env.fails(&["snapshots"]);
    assert!(
        err.contains("version 7") && err.contains("upgrade"),
        "{err}"
    );
}

#[test]
fn damaged_snapshot_and_index_files_are_named_not_panicked_on() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    write(&src.join("a"), &text(10_000, 1));
    env.backup(&[&src], &[]);
    let snap_dir = Path::new(&env.repo).join("snapshots");
    let snap = fs::read_dir(&snap_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = fs::read(&snap).unwrap();
    fs::write(&snap, &bytes[..bytes.len() / 2]).unwrap();
    // Listed as skipped, by name, and reported by check.
    let out = env.run(&["snapshots"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("snapshots/") && err.contains("damaged"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let err = env.fails(&["check"]);
    assert!(
        err.contains("damaged") && !err.contains("panicked"),
        "{err}"
    );

    fs::write(&snap, &bytes).unwrap();
    let index = fs::read_dir(Path::new(&env.repo).join("index"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    fs::write(&index, b"LPIX\x01\x00\x00\x00garbage").unwrap();
    let err = env.fails(&[
        "restore",
        "latest",
        "--target",
        env.path("t").to_str().unwrap(),
    ]);
    assert!(err.contains("index/"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_damaged_index_file_does_not_stop_backups_and_check_names_it() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    write(&src.join("a.bin"), &noise(500_000, 4));
    env.backup(&[&src], &[]);
    let index = fs::read_dir(Path::new(&env.repo).join("index"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = fs::read(&index).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    fs::write(&index, bytes).unwrap();
    let out = env
        .cmd()
        .args(["backup", src.to_str().unwrap(), "--force", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let name = index.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        err.contains(&name),
        "the warning names the index file: {err}"
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        s["data_blobs"].as_u64().unwrap() > 0,
        "blobs named only by the damaged index are stored again"
    );
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&check.stderr).contains(&name));
    // The new snapshot's data is all named by intact index files: it restores in full.
    let target = env.path("t");
    let out = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&name),
        "the restore warns about the index"
    );
    assert_eq!(
        fs::read(target.join("src/a.bin")).unwrap(),
        noise(500_000, 4)
    );
}

#[test]
fn a_huge_hostile_object_is_refused_before_it_is_read() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    write(&src.join("a.txt"), b"a");
    env.backup(&[&src], &[]);
    // A 64 GiB sparse "index file": reading it whole would exhaust memory.
    let name = "ab".repeat(32);
    let huge = Path::new(&env.repo).join("index").join(&name);
    fs::File::create(&huge).unwrap().set_len(64 << 30).unwrap();
    let out = env
        .cmd()
        .args(["backup", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&name) && err.contains("more than any valid object"),
        "{err}"
    );
    let check = env.run(&["check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&check.stderr).contains(&name));
    // A snapshot file of the same kind.
    let snap = Path::new(&env.repo).join("snapshots").join(&name);
    fs::File::create(&snap).unwrap().set_len(64 << 30).unwrap();
    // Refused before it is read, and skipped with a warning: the others stay listed.
    let out = env.run(&["snapshots", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than any valid object"), "{err}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

#[test]
fn an_unreadable_file_is_reported_skipped_and_exits_3() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    write(&src.join("fine.txt"), b"fine");
    write(&src.join("locked.txt"), b"locked");
    fs::set_permissions(src.join("locked.txt"), fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = env.cmd();
    if rustix::process::geteuid().is_root() {
        // Root reads everything: run as nobody so the permission bites.
        fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o777)).unwrap();
        fs::create_dir_all(&env.repo).unwrap();
        fs::set_permissions(&env.repo, fs::Permissions::from_mode(0o777)).unwrap();
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_loop"),
        ]);
        c.env("LOOP_REPOSITORY", &env.repo)
            .env("LOOP_PASSWORD", PASSWORD)
            .args(["--kdf-memory", "64", "--kdf-passes", "1"]);
        cmd = c;
        let init = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                env!("CARGO_BIN_EXE_loop"),
                "init",
                "--kdf-memory",
                "64",
                "--kdf-passes",
                "1",
            ])
            .env("LOOP_REPOSITORY", env.path("repo2"))
            .env("LOOP_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        cmd.env("LOOP_REPOSITORY", env.path("repo2"));
    }
    let out = cmd
        .args(["backup", src.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("locked.txt"), "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["files_unreadable"], 1);
    assert_eq!(summary["files_new"], 2);
    assert!(summary["snapshot_id"].is_string());
}

#[test]
fn excludes_and_stdin_and_dump() {
    let env = Env::new();
    env.init();
    let src = env.path("proj");
    write(&src.join("keep.rs"), b"fn main() {}");
    write(&src.join("skip.o"), b"object");
    write(&src.join("target/debug/big"), &noise(1000, 1));
    write(&src.join("sub/also.o"), b"object");
    let excl = env.path("excludes");
    fs::write(&excl, "# build output\ntarget\n").unwrap();
    env.backup(
        &[&src],
        &["--exclude", "*.o", "--exclude-file", excl.to_str().unwrap()],
    );
    let listing = env.ok(&["ls", "latest"]);
    assert!(listing.contains("/proj/keep.rs"), "{listing}");
    assert!(listing.contains("/proj/sub"), "{listing}");
    assert!(!listing.contains(".o"), "{listing}");
    assert!(!listing.contains("target"), "{listing}");

    let data = noise(3 * 1024 * 1024, 5);
    let mut child = env
        .cmd()
        .args([
            "backup",
            "--stdin",
            "--stdin-filename",
            "db.dump",
            "--tag",
            "db",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &data).unwrap();
    drop(child.stdin.take());
    assert!(child.wait_with_output().unwrap().status.success());
    let snaps = env.json(&["snapshots", "--tag", "db"]);
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    let out = env
        .cmd()
        .args(["dump", "latest", "db.dump", "--tag", "db"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == data, "dump returns the exact bytes");
}

#[test]
fn forget_and_prune_free_space_and_keep_the_rest_intact() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    for round in 0..4u64 {
        write(&src.join("data.bin"), &noise(2 * 1024 * 1024, round));
        write(&src.join("same.txt"), &text(50_000, 7));
        env.backup(
            &[&src],
            &["--time", &format!("2026-0{}-01T10:00:00+00:00", round + 1)],
        );
    }
    let before: u64 = packs(Path::new(&env.repo))
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();

    let dry = env.ok(&["forget", "--keep-last", "2", "--dry-run"]);
    assert!(dry.contains("would remove 2"), "{dry}");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 4);

    let refused = env.run(&["forget"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "an empty policy removes nothing"
    );

    env.ok(&["forget", "--keep-last", "2", "--prune", "--grace", "0s"]);
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 2);
    let after: u64 = packs(Path::new(&env.repo))
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert!(
        after < before * 3 / 4,
        "space was freed: {before} -> {after}"
    );
    env.ok(&["check", "--read-data"]);
    env.assert_latest_restores(&src);
    let first = snaps[0]["id"].as_str().unwrap();
    let t2 = env.path("t2");
    env.ok(&["restore", first, "--target", t2.to_str().unwrap()]);
    assert_eq!(
        fs::read(t2.join("src/data.bin")).unwrap(),
        noise(2 * 1024 * 1024, 2)
    );
}

#[test]
fn a_flipped_byte_in_a_pack_is_found_by_check_and_restore() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    write(&src.join("victim.bin"), &noise(300_000, 9));
    env.backup(&[&src], &[]);
    env.ok(&["check", "--read-data"]);
    // The data pack is the larger one; flip a byte in its middle.
    let mut ps = packs(Path::new(&env.repo));
    ps.sort_by_key(|p| fs::metadata(p).unwrap().len());
    let pack = ps.last().unwrap();
    let mut bytes = fs::read(pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(pack, bytes).unwrap();

    let err = env.fails(&["check", "--read-data"]);
    let name = pack.file_name().unwrap().to_string_lossy();
    assert!(err.contains(&name[..8]), "check names the pack: {err}");
    assert!(err.contains("victim.bin"), "check names the file: {err}");

    let err = env.fails(&[
        "restore",
        "latest",
        "--target",
        env.path("t").to_str().unwrap(),
    ]);
    assert!(err.contains("victim.bin"), "restore names the file: {err}");
}

#[test]
fn key_slots_add_list_remove_and_change_passphrase() {
    let env = Env::new();
    env.init();
    let out = env.run_with(
        "LOOP_NEW_PASSWORD",
        "second secret",
        &["key", "add", "--label", "laptop"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = env.json(&["key", "list"]);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let second = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "laptop")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The second passphrase opens the repository; the first slot can be removed with it.
    let with_second = |args: &[&str]| {
        env.cmd()
            .env("LOOP_PASSWORD", "second secret")
            .args(args)
            .output()
            .unwrap()
    };
    assert!(with_second(&["snapshots"]).status.success());
    let refused = env.run(&["key", "remove", &keys[0]["id"].as_str().unwrap()[..8]]);
    let first_is_current = keys[0]["current"] == true;
    if first_is_current {
        assert_eq!(
            refused.status.code(),
            Some(1),
            "cannot remove the slot in use"
        );
    }
    let out = env.run(&["key", "remove", &second[..8]]);
    assert!(out.status.success());
    assert_eq!(
        with_second(&["snapshots"]).status.code(),
        Some(1),
        "removed passphrase no longer works"
    );

    let out = env.run_with("LOOP_NEW_PASSWORD", "third secret", &["key", "passwd"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        env.run(&["snapshots"]).status.code(),
        Some(1),
        "old passphrase is gone"
    );
    assert!(
        env.run_with("LOOP_PASSWORD", "third secret", &["snapshots"])
            .status
            .success()
    );
}

#[test]
fn stats_and_ls_report_what_was_stored() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    write(&src.join("a.txt"), &text(100_000, 1));
    write(&src.join("copy.txt"), &text(100_000, 1));
    env.backup(&[&src], &[]);
    let st = env.json(&["stats"]);
    assert_eq!(st["total_files"], 2);
    assert_eq!(st["restore_size"], 200_000);
    assert!(
        st["unique_size"].as_u64().unwrap() < 200_000,
        "identical files are stored once: {st}"
    );
    let ls: Vec<serde_json::Value> = env
        .ok(&["ls", "latest", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let a = ls
        .iter()
        .find(|n| n["path"] == "/src/a.txt")
        .expect("a.txt listed");
    assert_eq!(a["size"], 100_000);
    assert_eq!(a["type"], "file");
}

/// An ID of the wrong kind or shape is refused by `loop` itself, before anything is sent,
/// and the message says what an ID of that kind looks like.
#[test]
fn an_id_of_the_wrong_shape_is_refused_before_anything_is_sent() {
    let env = Env::new();
    let vault = format!("vt_{}", "0".repeat(32));
    for (args, expected) in [
        (vec!["tenant", "show", "acme"], "not a tenant ID"),
        (vec!["vault", "show", "tn_0"], "not a vault ID"),
        (
            vec!["user", "list", "--tenant", vault.as_str()],
            "not a tenant ID",
        ),
    ] {
        let out = env.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "loop {args:?} succeeded");
        assert!(err.contains(expected), "loop {args:?}: {err}");
        // Refused as the arguments are read: no session or server was needed to say so.
        assert!(err.contains("invalid value"), "loop {args:?}: {err}");
    }
}
