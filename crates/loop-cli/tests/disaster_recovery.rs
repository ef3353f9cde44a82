//! Disaster recovery: the database (SQLite's files, or a `pg_dump` restored by
//! `pg_restore`) and the master key, restored onto a fresh machine, open every managed vault
//! again; the database without its master key is refused at start. (The vault objects live
//! at their destination, which survives.)
//! And a master key rotation as an operator runs it: a new key with the old one as a
//! previous key, `loop server rewrap-keys`, then the old key destroyed.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;

use support::cli::{assert_same_tree, build_full_tree};
use support::server::*;
use support::story::*;

/// A fresh data directory holding what the operator backed up (the database, and the
/// master key when `with_key`), and a configuration whose `local` destination is the old
/// server's (the storage that survived).
fn restored_machine(old: &Path, new: &Path, with_key: bool) -> std::path::PathBuf {
    std::fs::create_dir_all(new).unwrap();
    let mut files = vec!["loop.db", "loop.db-wal", "tls-cert.pem", "tls-key.pem"];
    if with_key {
        files.push("master.key");
    }
    for f in files {
        if old.join(f).exists() {
            std::fs::copy(old.join(f), new.join(f)).unwrap();
        }
    }
    let config = new.with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "[[destinations]]\nname = \"local\"\njurisdiction = \"local\"\nbackend = \"local\"\n\
             path = \"{}\"\n",
            old.join("vaults").display()
        ),
    )
    .unwrap();
    config
}

/// The device restores the tree it backed up from `src` exactly, and the vault checks out.
fn restores_whole(s: &Story, src: &Path) {
    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(src, &target.join("files"));
    ok(&mut s.device(&s.restore_token, &["check", "--read-data"]));
}

#[test]
fn the_database_and_master_key_restored_on_a_fresh_server_open_every_vault() {
    let mut s = set_up(None, "local");
    let src = s.dir.path().join("files");
    build_full_tree(&src);
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    // On PostgreSQL the operator's backup is a pg_dump, restored into a new database.
    let dump = s.dir.path().join("loop.pgdump");
    let restored_database = s.server.database().map(|db| {
        db.back_up(&dump);
        std::sync::Arc::new(db.restored(&dump))
    });
    s.server.kill();
    let old = s.server.data_dir.clone();

    // Without its master key the restored database is refused at start, with the reason,
    // instead of serving vaults that no longer open.
    let keyless = restored_machine(&old, &s.dir.path().join("keyless"), false);
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_loop"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(s.dir.path().join("keyless"))
        .arg("--config")
        .arg(&keyless)
        .env("LOOP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("LOOP_DATABASE_URL")
        .envs(
            restored_database
                .as_ref()
                .map(|db| ("LOOP_DATABASE_URL", &db.url)),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Until it exits, or announces that it serves (a failure: killed, then reported).
    for line in BufReader::new(server.stdout.take().unwrap()).lines() {
        if line.unwrap().starts_with("loop server listening on") {
            server.kill().unwrap();
            panic!("a server without its master key started");
        }
    }
    let out = server.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("does not open the keys in this database"),
        "{err}"
    );

    // With it, everything is as it was: tokens, accounts and vaults.
    let config = restored_machine(&old, &s.dir.path().join("rebuilt"), true);
    s.server = Server::start_on(&s.dir.path().join("rebuilt"), restored_database, &config);
    restores_whole(&s, &src);
    ok(s.admin(
        "ana",
        &[
            "login",
            "--server",
            &s.server.url,
            "--email",
            "ana@acme.example",
        ],
    )
    .env("LOOP_LOGIN_PASSWORD", "ana-password-1234"));
    let snaps = json(&mut s.admin("ana", &["vault", "snapshots", &s.vault]));
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
}

#[test]
fn after_rewrap_keys_the_new_master_key_alone_opens_every_vault() {
    let mut s = set_up(None, "local");
    let src = s.dir.path().join("files");
    build_full_tree(&src);
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    s.server.kill();
    let data = s.server.data_dir.clone();
    let old = s.dir.path().join("old-master.key");
    std::fs::rename(data.join("master.key"), &old).unwrap();
    std::fs::write(data.join("master.key"), format!("{}\n", "5c".repeat(32))).unwrap();
    let rotating = s.dir.path().join("rotating.toml");
    std::fs::write(
        &rotating,
        format!("previous_master_key_files = [\"{}\"]\n", old.display()),
    )
    .unwrap();
    s.server.restart(Some(&rotating));
    let report = ok(&mut s.server.operator(Some(&rotating), &["rewrap-keys"]));
    // `tenant_keys.wrapped: N values, N rewrapped, 0 unreadable`, N > 0: every tenant key
    // was under the old master key.
    let line = report
        .lines()
        .find(|l| l.starts_with("tenant_keys.wrapped: "))
        .unwrap_or_else(|| panic!("{report}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        numbers[0] > 0 && numbers[1] == numbers[0] && numbers[2] == 0,
        "{report}"
    );
    assert!(
        report.lines().all(|l| l.ends_with(" 0 unreadable")),
        "{report}"
    );

    // The old key destroyed, the server runs on the new one alone.
    s.server.kill();
    std::fs::remove_file(&old).unwrap();
    s.server.restart(None);
    restores_whole(&s, &src);
}
