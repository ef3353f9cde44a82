//! An upgrade from the previous release (`.ci/previous-release` names its commit; `.ci/run`
//! builds its `loop` and passes it as `LOOP_PREVIOUS_RELEASE_BIN`): its server fills a
//! database, this release's server migrates it and serves everything in it, and the previous
//! release's agent and CLI keep working against the new server.

mod support;

use std::path::PathBuf;
use std::process::Stdio;

use support::agents::{agent_cmd, enrol_agent};
use support::cli::{assert_same_tree, build_full_tree, write};
use support::server::*;
use support::story::*;

/// The previous release's `loop`, or `None` (loudly) where it was not built; CI must have it.
fn previous_release() -> Option<PathBuf> {
    match std::env::var_os("LOOP_PREVIOUS_RELEASE_BIN") {
        Some(bin) => {
            let bin = PathBuf::from(bin);
            assert!(
                bin.is_file(),
                "LOOP_PREVIOUS_RELEASE_BIN={bin:?} is not a file"
            );
            Some(bin)
        }
        None if loop_testkit::in_ci() => panic!(
            "LOOP_PREVIOUS_RELEASE_BIN is not set and CI is: .ci/run builds the previous \
             release's loop (the commit in .ci/previous-release) for this test"
        ),
        None => {
            eprintln!(
                "\n########## SKIPPING THE UPGRADE TEST ##########\n\
                 LOOP_PREVIOUS_RELEASE_BIN is not set: build the commit in .ci/previous-release\n\
                 (.ci/run does) and point it at its loop binary.\n"
            );
            None
        }
    }
}

#[test]
fn the_previous_releases_database_agent_and_cli_keep_working_after_the_upgrade() {
    let Some(previous) = previous_release() else {
        return;
    };
    if loop_testkit::postgres::wanted() {
        // The previous release ran on SQLite only; PostgreSQL starts with this one.
        eprintln!("the upgrade test runs on SQLite, the previous release's only database");
        return;
    }

    // The previous release: its server, its CLI and its agent fill the database.
    use_release(Some(previous.clone()));
    let mut s = set_up(None, "local");
    let src = s.dir.path().join("files");
    build_full_tree(&src);
    let first = json(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    let first = first["snapshot_id"].as_str().unwrap().to_string();
    let state = s.dir.path().join("agent-state");
    let device = enrol_agent(&s, &state);
    let shared = s.dir.path().join("shared");
    write(&shared.join("report.txt"), b"quarterly numbers");
    write(&shared.join("sub/data.bin"), &[7u8; 100_000]);
    let item = s.item(&device, "shared", &shared, &[]);
    let agent = Running(
        agent_cmd(&s, &state, &["agent", "run", "--poll-seconds", "1"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let job = json(&mut s.admin("ana", &["item", "run", &item]));
    assert_eq!(s.job_ended(&id(&job))["state"], "succeeded");
    let audit = |s: &Story| {
        let events = json(&mut s.admin(
            "ana",
            &["audit", "list", "--tenant", &s.customer, "--limit", "1000"],
        ));
        // An event is its chain position and what it records.
        let ids: std::collections::BTreeSet<String> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {}",
                    e["tenant_id"], e["seq"], e["action"], e["at"]
                )
            })
            .collect();
        ids
    };
    let audit_before = audit(&s);

    // This release's server on the same data directory and address: it migrates the database.
    s.server.kill();
    use_release(None);
    s.server.restart(None);

    // Everything recorded before is there: the customer's audit trail, still one verified chain.
    let audit_after = audit(&s);
    assert!(
        audit_before.is_subset(&audit_after),
        "{audit_before:?} {audit_after:?}"
    );
    ok(&mut s.admin(
        "provider-admin",
        &["admin", "audit", "verify", "--tenant", &s.customer],
    ));

    // The previous release's agent, still running, reconnects and runs a job the new server
    // queues.
    let job = json(&mut s.admin("ana", &["item", "run", &item]));
    let job = s.job_ended(&id(&job));
    assert_eq!(job["state"], "succeeded", "{job:#}");
    drop(agent);

    // The previous release's CLI backs up and restores through the new server.
    use_release(Some(previous));
    write(&src.join("added-after-upgrade.txt"), b"new file");
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    let old_cli = s.dir.path().join("restored-by-previous");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", old_cli.to_str().unwrap()],
    ));
    assert_same_tree(&src, &old_cli.join("files"));

    // This release's CLI reads what the previous one wrote, and finds the vault whole.
    use_release(None);
    let new_cli = s.dir.path().join("restored-by-this");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", &first, "--target", new_cli.to_str().unwrap()],
    ));
    std::fs::remove_file(src.join("added-after-upgrade.txt")).unwrap();
    assert_same_tree(&src, &new_cli.join("files"));
    ok(&mut s.device(&s.restore_token, &["check", "--read-data"]));
    let snaps = json(&mut s.admin("ana", &["vault", "snapshots", &s.vault]));
    assert_eq!(snaps.as_array().unwrap().len(), 4, "{snaps}");
}
