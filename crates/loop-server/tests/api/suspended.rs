//! A suspended customer grows by no route: every state-changing request of the API document
//! aimed at it, by its own admin and by the provider's, leaves it without a device or vault
//! it did not have, and an agent's enrolment is refused too. (Paying and changing the
//! subscription are left out: they are how a suspension ends.)

use super::isolation::requests_aimed_at;
use super::*;

/// The tenant's live devices and vaults.
fn holdings(server: &Server, tenant: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let ids = |sql: &'static str| -> BTreeSet<String> {
        server
            .block_on(
                sqlx::query(sql)
                    .bind(tenant)
                    .fetch_all(&server.state.db.pool),
            )
            .unwrap()
            .iter()
            .map(|r| sqlx::Row::get::<String, _>(r, "id"))
            .collect()
    };
    (
        ids("SELECT id FROM devices WHERE tenant_id = $1"),
        ids("SELECT id FROM vaults WHERE tenant_id = $1 AND deleted_at IS NULL"),
    )
}

/// The customer "bravo", past its trial (no payment method) and its planted invoice's due
/// date: suspended.
fn suspended(server: &Server) -> Customer {
    let c = server.customer(&server.admin(), "bravo");
    server.advance(Duration::from_secs(16 * 86_400));
    server
        .block_on(loop_server::billing::tick(&server.state))
        .unwrap();
    c
}

#[test]
fn a_suspended_customer_gets_no_new_device_or_vault_by_any_route() {
    let server = Server::start_with_spare();
    let c = suspended(&server);
    let admin = server.admin();
    let own = server.sign_in(&c.member("admin").email, USER_PASSWORD);
    let s = admin
        .get(&format!("/api/v1/tenants/{}/subscription", c.tenant_id))
        .expect(200);
    assert_eq!(s["state"], "suspended");

    let before = holdings(&server, &c.tenant_id);
    let aimed = requests_aimed_at(&server.openapi(), &c);
    let mut refused = BTreeSet::new();
    for caller in [&own, &admin] {
        for a in aimed.iter().filter(|a| a.method != "get") {
            let lifts = a.path.contains("/invoices/")
                || a.path.contains("/subscription")
                || a.path.ends_with("/erase");
            if lifts {
                continue;
            }
            let r = server.call(&a.method, &a.path, Some(&caller.secret), a.body.as_ref());
            if r.code() == "subscription_suspended" {
                assert_eq!(r.status, 402, "{} {}", a.method, a.path);
                refused.insert(format!("{} {}", a.method, a.path));
            }
        }
    }
    // Enrolling an agent with a code made now.
    let code = own
        .post(
            "/api/v1/devices/enroll-codes",
            json!({ "tenant_id": c.tenant_id }),
        )
        .expect(201)["code"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .call(
            "post",
            "/agent/v1/enroll",
            None,
            Some(&json!({ "code": code, "name": "new-pc" })),
        )
        .expect_problem(402, "subscription_suspended");

    let after = holdings(&server, &c.tenant_id);
    assert!(
        after.0.is_subset(&before.0) && after.1.is_subset(&before.1),
        "devices {:?} → {:?}, vaults {:?} → {:?}",
        before.0,
        after.0,
        before.1,
        after.1
    );
    // The refusals say why.
    for r in ["post /api/v1/devices", "post /api/v1/vaults"] {
        assert!(refused.contains(r), "{r} in {refused:?}");
    }
}

/// Nor by a pull: a pull sync job run while the customer is suspended fails saying why and
/// copies nothing into its vault.
#[test]
fn a_suspended_customers_pull_copies_nothing_in() {
    use support::vault::{holder, pack_object, walk};
    // Another operator's vault holds a pack, and a token that may replicate it.
    let other = Server::start();
    let theirs = other.admin();
    let source = other.customer(&theirs, "source");
    let vault = |admin: &Caller<'_>, tenant: &str| -> String {
        admin
            .post(
                "/api/v1/vaults",
                json!({ "tenant_id": tenant, "name": "copy", "destination": "local",
                        "key_custody": "customer" }),
            )
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let copy = vault(&theirs, &source.tenant_id);
    holder(&other, &theirs, &source.tenant_id, &copy, &["backup"])
        .put("data", &hex::encode([9u8; 32]), &pack_object([9u8; 32]))
        .expect(201);
    let token = theirs
        .post(
            "/api/v1/tokens",
            json!({ "tenant_id": source.tenant_id, "name": "replicate", "kind": "api",
                    "vault_ids": [copy], "permissions": ["replicate"] }),
        )
        .expect(201)["secret"]
        .clone();

    let server = Server::start();
    let admin = server.admin();
    let c = server.customer(&admin, "pulling");
    let ours = vault(&admin, &c.tenant_id);
    let remote = admin
        .post(
            "/api/v1/remotes",
            json!({ "tenant_id": c.tenant_id, "name": "other", "url": other.base,
                    "fingerprint": other.fingerprint, "token": token }),
        )
        .expect(201)["id"]
        .clone();
    let sync = admin
        .post(
            "/api/v1/sync-jobs",
            json!({ "remote_id": remote, "direction": "pull", "vault_id": ours,
                    "remote_vault_id": copy }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.advance(Duration::from_secs(16 * 86_400));
    server
        .block_on(loop_server::billing::tick(&server.state))
        .unwrap();
    let admin = server.admin();
    let run = admin
        .post(&format!("/api/v1/sync-jobs/{sync}/run"), json!({}))
        .expect(202);
    let ended = admin.job_ended(run["id"].as_str().unwrap());
    assert_eq!(ended["state"], "failed", "{ended:#}");
    assert!(
        ended["error"].as_str().unwrap().contains("suspended"),
        "{ended:#}"
    );
    let pulled = walk(&server.data_dir.join("vaults").join(&ours));
    assert!(pulled.is_empty(), "{pulled:?}");
}

/// While suspended, lock markers still come and go for restores and checks, but no more of
/// them than those need: a lock is no place to keep data.
#[test]
fn a_suspended_customer_keeps_a_few_locks_and_no_more() {
    let server = Server::start();
    let c = suspended(&server);
    let admin = server.admin();
    let writer = support::vault::holder(&server, &admin, &c.tenant_id, &c.vault_id, &["backup"]);
    let marker = |i: u8| hex::encode([i; 32]);
    let body = support::vault::lock_object(4096);
    for i in 0..16 {
        writer.put("locks", &marker(i), &body).expect(201);
    }
    writer
        .put("locks", &marker(16), &body)
        .expect_problem(402, "subscription_suspended");
    writer
        .call("delete", &format!("locks/{}", marker(0)))
        .expect(204);
    writer.put("locks", &marker(16), &body).expect(201);
}
