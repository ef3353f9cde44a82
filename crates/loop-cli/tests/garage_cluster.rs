//! A vault on a three-node Garage cluster with replication factor 3: a node stopped in the
//! middle of a backup costs nothing, and backups, restores and checks go on while it is
//! down and after it is back. (Needs Garage: skips loudly without it, fails in CI.)

mod support;

use std::path::Path;

use support::cli::*;
use support::garage::Garage;
use support::server::*;
use support::story::*;

#[test]
fn a_garage_node_stopped_during_a_backup_loses_nothing() {
    let Some(mut garage) = Garage::start_cluster() else {
        return;
    };
    let s = set_up(
        Some(&|d: &Path| garage.server_config(d, false)),
        "garage-eu",
    );
    let src = s.dir.path().join("big");
    for i in 0..6 {
        write(&src.join(format!("f{i}")), &noise(8 << 20, 40 + i));
    }
    let mut backup = s
        .device(&s.backup_token, &["backup", src.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first pack is in the bucket, one of the three nodes goes away.
    let prefix = format!("loop-server/{}/data", s.vault);
    while garage.list(&prefix).is_empty() {
        assert!(
            backup.try_wait().unwrap().is_none(),
            "the backup ended before any pack landed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    garage.stop_peer(2);
    let out = backup.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the backup completes with a node down"
    );

    // With the node still down: check every byte, restore exactly, back up again.
    ok(&mut s.device(&s.restore_token, &["check", "--read-data"]));
    let first = s.dir.path().join("first");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", first.to_str().unwrap()],
    ));
    assert_same_tree(&src, &first.join("big"));
    write(&src.join("later"), &noise(3 << 20, 99));
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));

    // The node comes back: everything still reads.
    garage.start_peer(2);
    ok(&mut s.device(&s.restore_token, &["check", "--read-data"]));
    let second = s.dir.path().join("second");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", second.to_str().unwrap()],
    ));
    assert_same_tree(&src, &second.join("big"));
}
