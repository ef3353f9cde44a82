//! A moment in which the server cannot be reached: the client retries (4 times within 30
//! seconds by default, as docs/OPERATIONS.md says) and the backup completes; with retries
//! off, the same moment fails the run with one clear line and leaves the vault as it was.

mod support;

use std::net::SocketAddr;

use support::cli::{assert_same_tree, object_files, write};
use support::server::*;
use support::story::*;

#[test]
fn a_server_out_of_reach_for_a_moment_is_retried_and_the_backup_completes() {
    let s = set_up(None, "local");
    let src = s.dir.path().join("files");
    write(&src.join("a.txt"), b"kept through the outage");
    write(&src.join("sub/b.bin"), &[9u8; 300_000]);
    let server: SocketAddr = s.server.url.trim_start_matches("https://").parse().unwrap();
    let vault_dir = s.dir.path().join("local-vaults").join(&s.vault);
    let through = |proxy: SocketAddr, args: &[&str]| {
        let mut c = s.device(&s.backup_token, args);
        c.env(
            "LOOP_REPOSITORY",
            format!("https://{proxy}/vaults/{}", s.vault),
        );
        c
    };

    // Retries off: the first request meets the outage and the run fails, saying so in one
    // line; the vault is as it was.
    let before = object_files(&vault_dir);
    let err = fails(&mut through(
        flaky_proxy(server, 1),
        &["backup", "--retries", "0", src.to_str().unwrap()],
    ));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach the server"), "{err}");
    assert_eq!(object_files(&vault_dir), before);

    // With the default retries, three refused connections are waited out.
    ok(&mut through(
        flaky_proxy(server, 3),
        &["backup", src.to_str().unwrap()],
    ));
    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join("files"));
}
