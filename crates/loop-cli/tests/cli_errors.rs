//! What `loop` says when something is wrong: one line that names the object or path, the
//! documented exit code, never a panic, and nothing of the repository lost.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::cli::*;

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
    // So do the commands that read: each warns, and fails only on what it cannot find.
    let snapshots: serde_json::Value =
        serde_json::from_slice(&env.run(&["snapshots", "--json"]).stdout).unwrap();
    let first = snapshots[0]["id"].as_str().unwrap();
    for args in [
        vec!["ls", "latest"],
        vec!["diff", first, "latest"],
        vec!["dump", "latest", "src/a.bin"],
        vec!["stats"],
    ] {
        let out = env.run(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&name), "{args:?} warns about the index: {err}");
        if args[0] == "dump" {
            assert_eq!(out.stdout, noise(500_000, 4));
        }
    }
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

/// Enrolling with no code given and no terminal to ask on says where the code goes, and
/// writes nothing.
#[test]
fn an_enrolment_without_a_code_or_a_terminal_says_where_the_code_goes() {
    let env = Env::new();
    let state = env.path("agent-state");
    let err = env.fails(&[
        "agent",
        "enroll",
        "--server",
        "https://backup.invalid:8443",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("LOOP_ENROL_CODE is not set"), "{err}");
    assert!(!state.exists(), "nothing is written");
}

/// A file name, host or key label with terminal control characters (a window title, the
/// clipboard) is printed escaped wherever a command shows it: `ls`, `diff`, `forget`,
/// `key list`, and an error naming it.
#[test]
fn names_with_control_characters_are_printed_escaped() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let hostile = "a\u{1b}]0;owned\u{7}b";
    fs::write(src.join(hostile), b"x").unwrap();
    env.backup(&[&src], &["--host", hostile]);
    fs::write(src.join(format!("{hostile}2")), b"y").unwrap();
    env.backup(&[&src], &["--host", hostile]);
    let added = env.run_with(
        "LOOP_NEW_PASSWORD",
        "second secret",
        &["key", "add", "--label", hostile],
    );
    assert!(added.status.success(), "{added:?}");
    let ids = env.snapshot_ids();
    let shown = [
        env.ok(&["ls", "latest"]),
        env.ok(&["ls", "-l", "latest"]),
        env.ok(&["diff", &ids[0], &ids[1]]),
        env.fails(&["dump", "latest", &format!("src/{hostile}3")]),
        env.ok(&["forget", "--keep-last", "5", "--host", hostile, "--dry-run"]),
        env.ok(&["key", "list"]),
    ];
    for out in shown {
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
        assert!(out.contains("a\\u{1b}]0;owned\\u{7}b"), "{out:?}");
    }
}
