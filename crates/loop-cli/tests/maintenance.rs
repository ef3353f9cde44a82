//! Maintenance beside running backups, and snapshots that cannot be read: what prune, forget
//! and the listing commands must do so that nothing a backup relies on is lost, and one bad
//! object blocks nobody.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::cli::*;

/// An unindexed pack file (as a killed backup leaves one) whose modification time is `age` ago.
fn orphan_pack(repo: &Path, seed: u64, age: Duration) -> PathBuf {
    let name = blake3::hash(&seed.to_le_bytes()).to_hex().to_string();
    let path = repo.join("data").join(&name[..2]).join(&name);
    write(&path, &noise(4096, seed));
    let t = std::time::SystemTime::now() - age;
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    set_mtime(&path, secs, 0);
    path
}

#[test]
fn prune_with_the_default_grace_keeps_a_running_backups_packs_and_removes_old_orphans() {
    let env = Env::new();
    env.init();
    let repo = PathBuf::from(&env.repo);
    // Two snapshots of a directory, so `forget --keep-last 1 --prune` has work to do.
    let src = env.path("src");
    write(&src.join("a.bin"), &noise(3 << 20, 1));
    env.backup(&[&src], &[]);
    write(&src.join("a.bin"), &noise(3 << 20, 2));
    env.backup(&[&src], &[]);
    let old_orphan = orphan_pack(&repo, 7, Duration::from_secs(2 * 3600));
    let young_orphan = orphan_pack(&repo, 8, Duration::from_secs(60));
    let before = packs(&repo);

    // A backup is uploading new data (a full pack stored, more still open) while prune runs.
    let running = RunningBackup::start(env.cmd(), &noise(20 << 20, 3), env.path("backup.stderr"));
    let written: Vec<PathBuf> = wait_for_packs(&repo, before.len() + 1)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    let out = env.ok(&["forget", "--keep-last", "1", "--prune", "--json"]);
    assert!(out.contains("\"message_type\":\"forget\""), "{out}");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 1);

    assert!(
        !old_orphan.exists(),
        "an orphan older than the grace is deleted"
    );
    assert!(young_orphan.exists(), "a young orphan is kept");
    for p in &written {
        assert!(
            p.exists(),
            "{} of the running backup was deleted",
            p.display()
        );
    }
    let (ok, stdout, stderr) = running.finish(&noise(1 << 20, 4));
    assert!(ok, "the backup fails: {stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap()).expect("summary");
    let id = summary["snapshot_id"]
        .as_str()
        .expect("a snapshot")
        .to_string();

    env.ok(&["check", "--read-data"]);
    let dumped = env
        .cmd()
        .args(["dump", &id, "/stream.bin"])
        .output()
        .expect("dump");
    assert!(dumped.status.success(), "{dumped:?}");
    let mut want = noise(20 << 20, 3);
    want.extend_from_slice(&noise(1 << 20, 4));
    assert!(
        dumped.stdout == want,
        "the dumped stream differs from what was sent"
    );
}

#[test]
fn a_backup_whose_marker_was_removed_fails_instead_of_saving_a_snapshot() {
    let env = Env::new();
    env.init();
    let repo = PathBuf::from(&env.repo);
    let running = RunningBackup::start(env.cmd(), &noise(20 << 20, 5), env.path("backup.stderr"));
    wait_for_packs(&repo, 1);
    let held = markers(&repo);
    assert_eq!(held.len(), 1, "the running backup holds one marker");
    // Someone removes it: a prune that does not see the backup may delete what it wrote.
    std::fs::remove_file(&held[0]).unwrap();

    let (ok, _, stderr) = running.finish(&noise(1 << 20, 6));
    assert!(!ok, "the backup reported success without its marker");
    assert!(stderr.contains("lock marker"), "{stderr}");
    let snaps = env.json(&["snapshots"]);
    assert!(snaps.as_array().unwrap().is_empty(), "no snapshot is saved");
}

#[test]
fn a_backup_whose_pack_vanished_fails_instead_of_saving_a_snapshot() {
    let env = Env::new();
    env.init();
    let repo = PathBuf::from(&env.repo);
    let running = RunningBackup::start(env.cmd(), &noise(20 << 20, 9), env.path("backup.stderr"));
    let stored = wait_for_packs(&repo, 1);
    std::fs::remove_file(&stored[0]).unwrap();

    let (ok, _, stderr) = running.finish(&noise(1 << 20, 10));
    assert!(!ok, "the backup reported success for data it no longer has");
    assert!(stderr.contains("disappeared"), "{stderr}");
    let snaps = env.json(&["snapshots"]);
    assert!(snaps.as_array().unwrap().is_empty(), "no snapshot is saved");
}

/// A snapshot object with a valid envelope header and random content, as any token holder
/// could store one. Returns its ID.
fn garbage_snapshot(repo: &Path, seed: u64) -> String {
    let id = blake3::hash(&(seed + 1000).to_le_bytes())
        .to_hex()
        .to_string();
    let mut body = b"LPSN\x01\x00\x00\x00".to_vec();
    body.extend_from_slice(&noise(300, seed));
    write(&repo.join("snapshots").join(&id), &body);
    id
}

/// A repository with two snapshots of `src` (a file in the first, one more in the second):
/// (the environment, the repository's directory, `src`).
fn two_snapshots() -> (Env, PathBuf, PathBuf) {
    let env = Env::new();
    env.init();
    let repo = PathBuf::from(&env.repo);
    let src = env.path("src");
    write(&src.join("a.txt"), &text(10_000, 1));
    env.backup(&[&src], &[]);
    write(&src.join("b.txt"), &text(10_000, 2));
    env.backup(&[&src], &[]);
    (env, repo, src)
}

#[test]
fn a_damaged_snapshot_is_skipped_by_listing_latest_forget_and_stats_and_blocks_only_prune() {
    let (env, repo, src) = two_snapshots();
    let bad = garbage_snapshot(&repo, 3);

    // Listing shows both good snapshots and names the bad one on stderr.
    let out = env.run(&["snapshots", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&bad));

    // `latest` is the newest good one; stats read past the bad one.
    env.assert_latest_restores(&src);
    env.ok(&["stats"]);

    // Check reports it, and prune refuses to guess what it uses, naming it.
    let err = env.fails(&["check"]);
    assert!(err.contains(&bad[..8]) || err.contains(&bad), "{err}");
    let packs_before = packs(&repo);
    let err = env.fails(&["prune", "--grace", "0s"]);
    assert!(err.contains(&bad), "prune names what blocks it: {err}");
    assert_eq!(packs(&repo), packs_before, "prune deleted nothing");

    // A policy skips it; forget by ID removes it; then everything works again.
    let out = env.json(&["forget", "--keep-last", "1"]);
    assert_eq!(out["removed"].as_array().unwrap().len(), 1, "{out}");
    assert!(
        repo.join("snapshots").join(&bad).exists(),
        "a policy cannot judge it"
    );
    env.ok(&["forget", &bad[..12]]);
    assert!(!repo.join("snapshots").join(&bad).exists());
    env.ok(&["prune", "--grace", "0s"]);
    env.ok(&["check", "--read-data"]);
    env.assert_latest_restores(&src);
}

#[test]
fn a_damaged_index_file_blocks_prune_until_repair_index_makes_it_again_from_the_packs() {
    let (env, repo, src) = two_snapshots();
    let index_dir = repo.join("index");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&index_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "one index file per backup");
    // One index file lost, the other damaged: no blob can be found.
    std::fs::remove_file(&files[0]).unwrap();
    let mut bytes = std::fs::read(&files[1]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&files[1], bytes).unwrap();
    env.fails(&["check"]);
    let err = env.fails(&["prune", "--grace", "0s"]);
    assert!(err.contains("loop repair index"), "{err}");

    let planned = env.json(&["repair", "index", "--dry-run"]);
    assert_eq!(planned["packs_indexed"], 4, "{planned}");
    assert_eq!(planned["index_files_written"], 0, "{planned}");
    assert!(files[1].exists(), "a dry run deletes nothing");

    let report = env.json(&["repair", "index"]);
    assert_eq!(report["index_files"], 1, "{report}");
    assert_eq!(report["damaged_index_files"].as_array().unwrap().len(), 1);
    assert_eq!(report["packs_indexed"], 4, "{report}");
    assert_eq!(report["index_files_written"], 1, "{report}");
    assert_eq!(report["index_files_deleted"], 1, "{report}");
    assert!(!files[1].exists());

    env.ok(&["check", "--read-data"]);
    env.assert_latest_restores(&src);
    env.ok(&["prune", "--grace", "0s"]);
    let again = env.ok(&["repair", "index"]);
    assert!(again.contains("indexed 0 packs"), "{again}");
}
