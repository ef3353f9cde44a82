//! End-to-end stories through the real `loop` binary on local repositories.

mod support;

use std::fs;
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

    let ids = env.snapshot_ids();
    let diff = env.ok(&["diff", &ids[1], &ids[2]]);
    assert!(diff.contains("M    /src/f3.txt"), "{diff}");
    assert!(diff.contains("+    /src/new.txt"), "{diff}");
    assert!(!diff.contains("f4.txt"), "{diff}");
    assert!(
        diff.contains("\nadded: 1, removed: 0, changed: 1,"),
        "{diff}"
    );
    // The same as one JSON object, its list of changes streamed.
    let d = env.json(&["diff", &ids[1], &ids[2]]);
    for which in ["first", "second"] {
        assert_eq!(d[which].as_str().unwrap().len(), 64, "{d}");
    }
    let changes = d["changes"].as_array().unwrap();
    assert!(
        changes.contains(&serde_json::json!({ "kind": "M", "path": "/src/f3.txt" })),
        "{d}"
    );
    assert!(
        changes.contains(&serde_json::json!({ "kind": "+", "path": "/src/new.txt" })),
        "{d}"
    );
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
    // With `--prune`, the dry run shows the prune as it would be after the forget: the two
    // old snapshots' own data is to be freed.
    let dry = env.ok(&[
        "forget",
        "--keep-last",
        "2",
        "--prune",
        "--grace",
        "0s",
        "--dry-run",
        "--json",
    ]);
    let plan: serde_json::Value = serde_json::Deserializer::from_str(&dry)
        .into_iter()
        .map(Result::unwrap)
        .find(|v: &serde_json::Value| v["message_type"] == "prune_plan")
        .unwrap_or_else(|| panic!("{dry}"));
    let to_free = plan["plan"]["bytes_to_free"].as_u64().unwrap();
    assert!(to_free > 2 * 1024 * 1024, "{plan:#}");
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
fn forget_latest_with_a_host_removes_that_hosts_newest_snapshot() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    write(&src.join("f"), &text(1_000, 1));
    for (host, month) in [("a", 1), ("b", 2)] {
        env.backup(
            &[&src],
            &[
                "--host",
                host,
                "--time",
                &format!("2026-0{month}-01T10:00:00+00:00"),
            ],
        );
    }

    env.ok(&["forget", "latest", "--host", "a"]);

    let left = env.json(&["snapshots"]);
    let hosts: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["b"], "{left}");
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
    let out = env.run(&["key", "remove", &second[..8], "--json"]);
    assert!(out.status.success());
    let removed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(removed["removed"], second);
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

/// Sets the time the directory `dir` was last modified to `days` days ago.
fn aged(dir: &Path, days: u64) {
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400);
    fs::File::open(dir).unwrap().set_modified(then).unwrap();
}

#[test]
fn caches_are_listed_and_the_long_unused_removed_and_a_tagged_cache_is_not_backed_up() {
    let env = Env::new();
    env.init();
    let home = env.path("home");
    let root = home.join(".cache/loop");
    let (old, recent) = ("a".repeat(64), "b".repeat(64));
    for (id, days) in [(&old, 45), (&recent, 2)] {
        write(
            &root.join(id).join("index").join("c".repeat(64)),
            &text(3_000, 1),
        );
        aged(&root.join(id), days);
    }
    let tag = b"Signature: 8a477f597d28d172789f06886806bc55\n";
    write(&root.join("CACHEDIR.TAG"), tag);
    write(&home.join("notes.txt"), b"keep me");
    let cache_dir = root.to_str().unwrap();

    let listed = env.json(&["--cache-dir", cache_dir, "cache"]);
    let row = |v: &serde_json::Value, i: usize| {
        let r = &v[i];
        (
            r["repository"].as_str().unwrap().to_string(),
            r["old"].as_bool(),
            r["removed"].as_bool(),
        )
    };
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(row(&listed, 0), (old.clone(), Some(true), Some(false)));
    assert_eq!(row(&listed, 1), (recent.clone(), Some(false), Some(false)));
    assert_eq!(listed[1]["bytes"], 3_000);
    assert!(root.join(&old).is_dir(), "listing removes nothing");

    let cleaned = env.json(&["--cache-dir", cache_dir, "cache", "--cleanup"]);
    assert_eq!(row(&cleaned, 0), (old.clone(), Some(true), Some(true)));
    assert_eq!(row(&cleaned, 1), (recent.clone(), Some(false), Some(false)));
    assert!(!root.join(&old).exists() && root.join(&recent).is_dir());
    let shorter = env.json(&["--cache-dir", cache_dir, "cache", "--max-unused-days", "1"]);
    assert_eq!(row(&shorter, 0), (recent.clone(), Some(true), Some(false)));

    // A backup with --exclude-caches keeps the cache's tag and nothing else of it.
    env.backup(&[&home], &["--exclude-caches"]);
    let paths: Vec<String> = env
        .ok(&["ls", "latest", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|n| n["path"].as_str().unwrap().to_string())
        .collect();
    let cached: Vec<&String> = paths
        .iter()
        .filter(|p| p.contains("/.cache/loop/"))
        .collect();
    assert_eq!(cached, ["/home/.cache/loop/CACHEDIR.TAG"], "{paths:?}");
    assert!(paths.contains(&"/home/notes.txt".to_string()), "{paths:?}");
}
