//! What a holder of a low-privilege token can do to everyone else's backups through the real
//! server: regressions for holes found by probing a running service as an attacker would.

mod support;

use reqwest::Method;
use support::cli::*;
use support::server::*;
use support::story::*;

/// Regression: a backup-only token could delete any client's lock marker. With the marker of
/// a running backup gone, a concurrent `forget --prune` deleted packs that backup was still
/// writing, and the backup then reported success for a snapshot that could not be restored.
#[test]
fn a_backup_token_cannot_remove_a_running_backups_marker_and_prune_keeps_its_data() {
    let s = set_up(None, "local");
    let manage = s.token("maintenance", "manage");
    let attacker = s.token("attacker", "backup");
    let vault_dir = s.server.data_dir.join("vaults").join(&s.vault);

    // Two earlier snapshots, so that `forget --keep-last 1 --prune` has work to do.
    let src = s.dir.path().join("files");
    write(&src.join("a.bin"), &noise(3 << 20, 1));
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    write(&src.join("a.bin"), &noise(3 << 20, 2));
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    let before = packs(&vault_dir);

    let first = noise(20 << 20, 3);
    let running = RunningBackup::start(
        s.device(&s.backup_token, &[]),
        &first,
        s.dir.path().join("backup.stderr"),
    );
    let written: Vec<_> = wait_for_packs(&vault_dir, before.len() + 1)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    let markers: Vec<String> = std::fs::read_dir(vault_dir.join("locks"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(markers.len(), 1, "the running backup holds one marker");
    let marker = format!("/vaults/{}/v1/locks/{}", s.vault, markers[0]);

    // Another backup token can neither delete nor overwrite it.
    assert_eq!(
        s.server
            .vault_request(Method::DELETE, &marker, &attacker, None),
        (403, "permission_denied".to_string())
    );
    let mut fake = b"LPLK\x01\x00\x00\x00".to_vec();
    fake.extend_from_slice(&[7u8; 100]);
    assert_eq!(
        s.server
            .vault_request(Method::PUT, &marker, &attacker, Some(fake)),
        (409, "object_exists".to_string())
    );

    // Maintenance runs meanwhile; the running backup's packs survive it.
    ok(&mut s.device(&manage, &["forget", "--keep-last", "1", "--prune"]));
    let snaps = json(&mut s.device(&s.restore_token, &["snapshots"]));
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    for p in &written {
        assert!(
            p.exists(),
            "prune deleted {} of the running backup",
            p.display()
        );
    }
    let rest = noise(1 << 20, 4);
    let (done, stdout, stderr) = running.finish(&rest);
    assert!(done, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let id = summary["snapshot_id"].as_str().unwrap().to_string();
    ok(&mut s.device(&manage, &["check", "--read-data"]));
    let dumped = s
        .device(&s.restore_token, &["dump", &id, "/stream.bin"])
        .output()
        .unwrap();
    assert!(dumped.status.success(), "{dumped:?}");
    let mut want = first;
    want.extend_from_slice(&rest);
    assert!(
        dumped.stdout == want,
        "the restored stream differs from what was sent"
    );
}

/// Regression: a backup-only token could store a snapshot object with a valid envelope and
/// random content, after which listing, `restore latest`, forget, prune and stats failed for
/// every client until someone removed the object by hand.
#[test]
fn a_garbage_snapshot_from_a_backup_token_blocks_nobody() {
    let s = set_up(None, "local");
    let manage = s.token("maintenance", "manage");
    let src = s.dir.path().join("files");
    build_full_tree(&src);
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));

    let mut garbage = b"LPSN\x01\x00\x00\x00".to_vec();
    garbage.extend_from_slice(&noise(400, 5));
    let bad = blake3::hash(b"garbage snapshot").to_hex().to_string();
    let path = format!("/vaults/{}/v1/snapshots/{bad}", s.vault);
    assert_eq!(
        s.server
            .vault_request(Method::PUT, &path, &s.backup_token, Some(garbage))
            .0,
        201
    );

    // Everyone keeps working, and is told about the damaged object.
    let out = s
        .device(&s.restore_token, &["snapshots", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&bad));
    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join("files"));
    ok(&mut s.device(&s.restore_token, &["stats"]));
    ok(&mut s.device(&manage, &["forget", "--keep-last", "3"]));
    let listed = json(&mut s.admin("ana", &["vault", "snapshots", &s.vault]));
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // Prune refuses to guess and says why; check reports it; a manage token removes it.
    let err = fails(&mut s.device(&manage, &["prune"]));
    assert!(err.contains(&bad), "{err}");
    fails(&mut s.device(&manage, &["check"]));
    ok(&mut s.device(&manage, &["forget", &bad]));
    ok(&mut s.device(&manage, &["prune"]));
    ok(&mut s.device(&manage, &["check", "--read-data"]));
}
