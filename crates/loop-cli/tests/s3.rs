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
