//! Remotes a tenant adds: other servers at public addresses, unless the operator lets them be
//! at internal ones (`replication.allow_private_remotes`). Otherwise a tenant could make the
//! server connect to, and report on, services of its own network.

use super::*;

/// A customer of `server` with a remote at `host` (this server's port and certificate, and
/// a replication token of a new vault): the answer to adding it, and a push of the
/// customer's vault to that vault asked through it (when it was added).
fn remote_at(server: &Server, name: &str, host: &str) -> (Reply, Option<Reply>) {
    let admin = server.admin();
    let acme = server.customer(&admin, name);
    let port = server.base.rsplit(':').next().unwrap();
    let url = format!("https://{host}:{port}");
    let (added, mirror) = server.add_remote_at(&admin, &acme.tenant_id, name, &url);
    if added.status != 201 {
        return (added, None);
    }
    let pushed = admin.post(
        "/api/v1/sync-jobs",
        json!({ "remote_id": added.json()["id"], "direction": "push", "vault_id": acme.vault_id,
                "remote_vault_id": mirror }),
    );
    (added, Some(pushed))
}

#[test]
fn a_remote_at_an_internal_address_is_refused_unless_the_operator_allows_it() {
    let guarded = Server::start_with(|c| c.replication.allow_private_remotes = false);
    for (i, host) in [
        "127.0.0.1",
        "[::1]",
        "10.1.2.3",
        "169.254.169.254",
        "[fd00::1]",
    ]
    .iter()
    .enumerate()
    {
        let (refused, _) = remote_at(&guarded, &format!("internal-{i}"), host);
        refused.expect_problem(400, "invalid_request");
        assert!(
            refused.body.contains("allow_private_remotes"),
            "{}",
            refused.body
        );
    }
    // A name is checked as it is resolved, at every connection: `localhost` is taken, but
    // reaching it fails as a name without an address would (the cause is in the server log
    // only).
    let (added, pushed) = remote_at(&guarded, "by-name", "localhost");
    added.expect(201);
    pushed.unwrap().expect_problem(502, "remote_unreachable");

    // The operator allows it: the same remote is reached, and the sync job made.
    let open = Server::start_with(|c| c.replication.allow_private_remotes = true);
    let (added, pushed) = remote_at(&open, "by-name", "localhost");
    added.expect(201);
    pushed.unwrap().expect(201);
    let (added, _) = remote_at(&open, "by-address", "127.0.0.1");
    added.expect(201);
}

/// A remote that answers and refuses (here: the vault it was asked for is not one its token
/// names) is a refusal the caller must fix, `409 remote_refused`, not a failure of this
/// server or of the way to the remote (`502`).
#[test]
fn a_remote_that_refuses_the_vault_is_a_409_not_a_502() {
    let server = Server::start_with(|c| c.replication.allow_private_remotes = true);
    let admin = server.admin();
    let acme = server.customer(&admin, "refused");
    let port = server.base.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}");
    let (added, _) = server.add_remote_at(&admin, &acme.tenant_id, "refusing", &url);
    added.expect(201);
    let refused = admin.post(
        "/api/v1/sync-jobs",
        json!({ "remote_id": added.json()["id"], "direction": "push", "vault_id": acme.vault_id,
                "remote_vault_id": format!("vt_{}", "0".repeat(32)) }),
    );
    refused.expect_problem(409, "remote_refused");
}
