//! Remotes a tenant adds: other servers at public addresses, unless the operator lets them be
//! at internal ones (`replication.allow_private_remotes`). Otherwise a tenant could make the
//! server connect to, and report on, services of its own network.

use super::*;
use support::vault::{big_pack, holder, pack_object};

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

/// An object the remote's vault already holds at another size (its copy damaged, or another
/// writer's) is one the remote never replaces: the push copies everything else and ends
/// with a warning naming it, instead of failing on it at every run.
#[test]
fn an_object_the_remote_holds_at_another_size_is_left_and_the_rest_is_pushed() {
    let server = Server::start_with(|c| c.replication.allow_private_remotes = true);
    let admin = server.admin();
    let acme = server.customer(&admin, "differs");
    let port = server.base.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}");
    let (added, mirror) = server.add_remote_at(&admin, &acme.tenant_id, "differs", &url);
    let remote = added.expect(201)["id"].as_str().unwrap().to_string();
    let writer = holder(
        &server,
        &admin,
        &acme.tenant_id,
        &acme.vault_id,
        &["backup"],
    );
    for n in [1u8, 2] {
        writer
            .put("data", &hex::encode([n; 32]), &pack_object([n; 32]))
            .expect(201);
    }
    let other = big_pack([1u8; 32], 400);
    holder(&server, &admin, &acme.tenant_id, &mirror, &["backup"])
        .put("data", &hex::encode([1u8; 32]), &other)
        .expect(201);

    let sync = admin
        .post(
            "/api/v1/sync-jobs",
            json!({ "remote_id": remote, "direction": "push", "vault_id": acme.vault_id,
                    "remote_vault_id": mirror }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..2 {
        let run = admin
            .post(&format!("/api/v1/sync-jobs/{sync}/run"), json!({}))
            .expect(202);
        let job = admin.job_ended(run["id"].as_str().unwrap());
        assert_eq!(job["state"], "succeeded-with-warnings", "{job:#}");
        let report = &job["summary"]["report"];
        assert_eq!(report["target_differs"], 1, "{job:#}");
        let named = format!("data/01/{}", hex::encode([1u8; 32]));
        assert_eq!(report["differing"], json!([named]));
        let log = admin
            .get(&format!("/api/v1/jobs/{}/log", job["id"].as_str().unwrap()))
            .expect(200)
            .to_string();
        assert!(
            log.contains(&format!(
                "1 objects the remote's vault {mirror} holds at another size were left as they \
                 are: a vault never replaces a stored object"
            )) && log.contains(&named),
            "{log}"
        );
    }
    let there = holder(&server, &admin, &acme.tenant_id, &mirror, &["restore"]);
    let listed = there.call("get", "data").json();
    let size = |n: u8| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == hex::encode([n; 32]))
            .map(|e| e["size"].as_u64().unwrap())
    };
    assert_eq!(
        size(2),
        Some(pack_object([2u8; 32]).len() as u64),
        "the rest is pushed"
    );
    assert_eq!(
        size(1),
        Some(other.len() as u64),
        "the remote's copy stays as it was"
    );
}
