//! Killed processes and concurrent maintenance: the repository must stay valid, and work must
//! not be lost.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::cli::*;

fn dataset(root: &Path, files: usize, size: usize) {
    for i in 0..files {
        write(
            &root.join(format!("d{}/f{i}.bin", i % 4)),
            &noise(size, i as u64 + 100),
        );
    }
}

/// Starts `loop ARGS` and kills it with SIGKILL as soon as `progress()` says it got that far.
/// Returns true when it was still running at that point (false: it finished first).
fn kill_when(env: &Env, args: &[&str], progress: impl Fn() -> bool) -> bool {
    let mut child = env
        .cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut running = true;
    while !progress() {
        if child.try_wait().unwrap().is_some() {
            running = false;
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no progress seen");
        std::thread::sleep(Duration::from_millis(1));
    }
    running &= child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

#[test]
fn backups_killed_on_observed_progress_leave_a_checked_repository_and_resume() {
    let env = Env::new();
    env.init();
    let repo = Path::new(&env.repo);
    let index_dir = repo.join("index");
    let src = env.path("src");
    dataset(&src, 24, 3 * 1024 * 1024);
    let total: u64 = 24 * 3 * 1024 * 1024;
    let src_s = src.to_str().unwrap().to_string();
    let args = [
        "backup",
        &src_s,
        "--index-flush-secs",
        "0",
        "--threads",
        "1",
    ];
    for round in 0..3 {
        let packs_before = packs(repo).len();
        let indexes_before = count_files(&index_dir);
        // Killed on observed progress: once an index file is stored (rounds 0 and 2), or
        // once a pack is, which is then most likely not indexed yet (round 1).
        let progressed = || match round {
            1 => packs(repo).len() > packs_before,
            _ => count_files(&index_dir) > indexes_before,
        };
        assert!(
            kill_when(&env, &args, progressed),
            "round {round}: the backup was still running when killed"
        );
        assert_eq!(markers(repo).len(), 1, "the killed backup's marker is left");

        env.ok(&["check", "--read-data"]);
        assert!(
            markers(repo).is_empty(),
            "the dead backup's marker is removed by the next operation"
        );
    }
    // Rounds 0 and 2 each indexed at least one pack of more than 8 MiB of data: the
    // finishing backup reuses them.
    let s = env.backup(&[&src], &[]);
    let added = s["data_added"].as_u64().unwrap();
    assert!(
        added <= total - 2 * 8 * 1024 * 1024,
        "the finishing backup reused earlier uploads: added {added} of {total}"
    );
    env.ok(&["check", "--read-data"]);
    env.assert_latest_restores(&src);
}

#[test]
fn prune_killed_at_many_points_never_breaks_the_repository() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    for round in 0..5u64 {
        dataset(&src, 4, 1024 * 1024 + round as usize);
        write(&src.join("round"), &noise(4 * 1024 * 1024, round));
        env.backup(&[&src], &[]);
    }
    // Killed at each step prune takes: a new pack written, a plan stored, an index file
    // replaced, a pack deleted.
    let repo = Path::new(&env.repo);
    // A prune can finish between the step being seen and the kill; each step is tried up to
    // three times, so that a busy machine still sees prune die mid-run.
    let mut killed_running = 0;
    for step in 0..4u64 {
        for attempt in 0..3u64 {
            env.ok(&["forget", "--keep-last", "2"]);
            let packs_before = packs(repo);
            let indexes_before = count_files(&repo.join("index"));
            let reached = || match step {
                0 => packs(repo).iter().any(|p| !packs_before.contains(p)),
                1 => count_files(&repo.join("plans")) > 0,
                2 => count_files(&repo.join("index")) != indexes_before,
                _ => packs(repo).len() < packs_before.len(),
            };
            let killed = kill_when(&env, &["prune", "--grace", "0s"], reached);
            env.ok(&["check", "--read-data"]);
            // New data, so that the next forget leaves the next prune something to do.
            write(
                &src.join("round"),
                &noise(4 * 1024 * 1024, 100 + step * 3 + attempt),
            );
            env.backup(&[&src], &[]);
            if killed {
                killed_running += 1;
                break;
            }
        }
    }
    assert!(
        killed_running >= 2,
        "prune was killed mid-run at {killed_running} steps"
    );
    env.ok(&["prune", "--grace", "0s"]);
    env.ok(&["check", "--read-data"]);
    env.assert_latest_restores(&src);
}

#[test]
fn a_backup_running_during_prune_loses_nothing() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    let x = noise(6 * 1024 * 1024, 31);
    write(&src.join("x.bin"), &x);
    env.backup(&[&src], &[]);
    let first = env.json(&["snapshots"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(src.join("x.bin")).unwrap();
    write(&src.join("y.txt"), &text(10_000, 3));
    env.backup(&[&src], &[]);

    // A backup that loaded the index while x.bin's blobs were live: it streams the same bytes,
    // so it deduplicates against the packs prune is about to condemn.
    let mut backup = env
        .cmd()
        .args(["backup", "--stdin", "--stdin-filename", "x.bin", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = backup.stdin.take().unwrap();
    // Once most of the data is consumed, the backup has loaded its index and is deduplicating.
    std::io::Write::write_all(&mut stdin, &x).unwrap();

    let pruned = env.json(&["forget", &first, "--prune", "--grace", "0s"]);
    assert!(
        pruned["report"]["packs_deferred"].as_u64().unwrap_or(0) > 0,
        "prune saw the running backup and kept the packs it condemned: {pruned}"
    );
    drop(stdin);
    let out = backup.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["data_blobs"], 0,
        "the running backup reused the condemned blobs"
    );

    // Condemned packs were kept for the running backup: everything reads back.
    env.ok(&["check", "--read-data"]);
    let dump = env
        .cmd()
        .args(["dump", "latest", "x.bin"])
        .output()
        .unwrap();
    assert!(dump.stdout == x, "the concurrent snapshot restores");

    // With no backup running, the next prune copies out what that snapshot needs and deletes
    // the condemned packs.
    env.ok(&["prune", "--grace", "0s"]);
    env.ok(&["check", "--read-data"]);
    let dump = env
        .cmd()
        .args(["dump", "latest", "x.bin"])
        .output()
        .unwrap();
    assert!(
        dump.stdout == x,
        "still restores after the deferred deletion"
    );
    assert!(
        count_files(&Path::new(&env.repo).join("plans")) == 0,
        "no plan left behind"
    );
}
