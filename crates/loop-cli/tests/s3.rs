//! A repository on a real S3 server (Garage), through the same commands.

mod support;

use support::cli::*;
use support::garage::Garage;

#[test]
fn s3_repository_round_trip_on_garage() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let env = Env::with_repo(&format!("s3://{}/vault-one", garage.bucket), garage.env());
    env.init();
    let src = env.path("src");
    build_full_tree(&src);
    let first = env.backup(&[&src], &[]);
    assert!(first["snapshot_id"].is_string());
    write(&src.join("src/main.rs"), &text(300_001, 77));
    let second = env.backup(&[&src], &[]);
    assert_eq!(second["files_changed"], 1);
    env.ok(&["check", "--read-data"]);
    let target = env.path("restored");
    env.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    assert_same_tree(&src, &target.join("src"));
    env.ok(&["forget", "--keep-last", "1", "--prune", "--grace", "0s"]);
    env.ok(&["check", "--read-data"]);

    // Another prefix in the same bucket is another repository.
    let other = Env::with_repo(&format!("s3://{}/vault-two", garage.bucket), garage.env());
    assert!(other.fails(&["snapshots"]).contains("no repository"));
}

#[test]
fn wrong_credentials_and_a_missing_bucket_are_clear_errors_and_the_next_run_succeeds() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let location = format!("s3://{}/vault-three", garage.bucket);
    let mut wrong = garage.env();
    for (k, v) in &mut wrong {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = "0".repeat(64);
        }
    }
    let env = Env::with_repo(&location, wrong);
    let err = env.fails(&["init", "--retries", "1", "--retry-secs", "2"]);
    assert!(err.contains(&garage.bucket), "names the repository: {err}");
    assert!(!err.contains("panicked"), "{err}");

    let nowhere = Env::with_repo("s3://no-such-bucket/vault", garage.env());
    let err = nowhere.fails(&["init", "--retries", "1", "--retry-secs", "2"]);
    assert!(err.contains("no-such-bucket"), "names the bucket: {err}");
    assert!(!err.contains("panicked"), "{err}");

    // With the right key, the same repository is created and used.
    let right = Env::with_repo(&location, garage.env());
    right.init();
    let src = right.path("src");
    write(&src.join("a.txt"), &text(5000, 1));
    right.backup(&[&src], &[]);
    right.ok(&["check", "--read-data"]);
}

#[test]
fn a_store_that_goes_away_mid_backup_fails_it_and_the_next_run_completes() {
    let Some(mut garage) = Garage::start() else {
        return;
    };
    let env = Env::with_repo(&format!("s3://{}/vault-four", garage.bucket), garage.env());
    env.init();
    let first = noise(20 << 20, 1);
    let mut cmd = env.cmd();
    cmd.args(["--retries", "1", "--retry-secs", "3"]);
    // Once the backup has taken 20 MiB from its input, it is uploading.
    let running = RunningBackup::start(cmd, &first, env.path("backup.stderr"));
    garage.stop();
    let (done, _, stderr) = running.finish(&noise(1 << 20, 2));
    assert!(!done, "a backup whose store went away must fail");
    assert!(
        stderr.contains("vault-four"),
        "names the repository: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    garage.restart();
    let stream = env.path("stream.bin");
    let mut whole = first;
    whole.extend_from_slice(&noise(1 << 20, 2));
    write(&stream, &whole);
    let summary = env.backup(&[&stream], &[]);
    assert!(summary["snapshot_id"].is_string(), "{summary}");
    env.ok(&["check", "--read-data"]);
}
