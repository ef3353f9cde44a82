//! Copies a push sync job made at another operator's server: erased through the remote while
//! the server can reach it, named as out of reach when it cannot.

use super::*;

/// Another operator's server that can hold a copy: (the server, a customer-key vault there,
/// a token that may replicate into it).
pub(crate) fn other_operator() -> (Server, String, Value) {
    let other = Server::start();
    let theirs = other.admin();
    let mirror_co = theirs.customer_tenant("Mirror Co");
    let copy = id(&theirs
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": mirror_co, "name": "copy", "destination": "local",
                    "key_custody": "customer" }),
        )
        .expect(201));
    let token = theirs
        .post(
            "/api/v1/tokens",
            json!({ "tenant_id": mirror_co, "name": "replicate", "kind": "api",
                    "vault_ids": [copy], "permissions": ["replicate"] }),
        )
        .expect(201)["secret"]
        .clone();
    drop(theirs);
    (other, copy, token)
}

/// A remote of `tenant` for the other operator's server, with its `token`; the remote's ID.
pub(crate) fn remote_to(admin: &Caller<'_>, tenant: &str, other: &Server, token: &Value) -> String {
    id(&admin
        .post(
            "/api/v1/remotes",
            json!({ "tenant_id": tenant, "name": "other", "url": other.base,
                    "fingerprint": other.fingerprint, "token": token }),
        )
        .expect(201))
}

/// `vault` of `tenant` pushed once to `copy` at the other operator, through a remote made for
/// it; the remote's ID.
pub(crate) fn push_to(
    admin: &Caller<'_>,
    tenant: &str,
    vault: &str,
    to: (&Server, &str, &Value),
) -> String {
    let (other, copy, token) = to;
    let remote = remote_to(admin, tenant, other, token);
    pushed_once(admin, &remote, vault, copy);
    remote
}

/// `vault` pushed once to `copy` through `remote`, by a push sync job made for it; the sync
/// job's ID.
fn pushed_once(admin: &Caller<'_>, remote: &str, vault: &str, copy: &str) -> String {
    let sync = id(&admin
        .post(
            "/api/v1/sync-jobs",
            json!({ "remote_id": remote, "direction": "push", "vault_id": vault,
                    "remote_vault_id": copy }),
        )
        .expect(201));
    let run = admin
        .post(&format!("/api/v1/sync-jobs/{sync}/run"), json!({}))
        .expect(202);
    assert_eq!(admin.job_ended(&id(&run))["state"], "succeeded");
    sync
}

/// Erases the tenant "Acme" and waits for the job: its certificate, which must say it is not
/// complete, and the certificate's place at the other server, which must not claim a listing.
fn erased_with_a_copy_left(admin: &Caller<'_>, tenant: &str) -> (Value, Value) {
    let cert = erase_acme(admin, tenant);
    assert_eq!(cert["complete"], false, "{cert}");
    let remote_place = cert["places"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "remote")
        .unwrap_or_else(|| panic!("the remote copy in {cert}"))
        .clone();
    // Not listed afterwards, so not verified: the certificate claims no listing of it.
    assert!(remote_place["objects_left"].is_null(), "{remote_place}");
    assert!(remote_place["verified_at"].is_null(), "{remote_place}");
    assert!(remote_place["verified_by"].is_null(), "{remote_place}");
    (cert, remote_place)
}

/// The customer "Acme" with a vault holding one pack of `fill`: (tenant, vault, pack name).
pub(crate) fn acme_with_a_pack(
    server: &Server,
    admin: &Caller<'_>,
    fill: u8,
) -> (String, String, String) {
    let (tenant, vault) = support::vault::customer_with_vault(admin, "Acme", None);
    let writer = support::vault::holder(server, admin, &tenant, &vault, &["backup"]);
    let name = hex::encode([fill; 32]);
    writer
        .put("data", &name, &support::vault::pack_object([fill; 32]))
        .expect(201);
    (tenant, vault, name)
}

/// A copy the server can no longer reach (its remote was removed) is not erased, and the
/// certificate says so: not complete, the place named with why, nothing claimed of it.
#[test]
fn a_certificate_is_not_complete_when_a_copy_is_out_of_reach() {
    let server = Server::start();
    let (other, copy, token) = other_operator();
    let admin = server.admin();
    let (tenant, vault, name) = acme_with_a_pack(&server, &admin, 1);
    let remote = push_to(&admin, &tenant, &vault, (&other, &copy, &token));
    admin
        .delete(&format!("/api/v1/remotes/{remote}"))
        .expect(204);

    let (cert, remote_place) = erased_with_a_copy_left(&admin, &tenant);
    let places = cert["places"].as_array().unwrap();
    assert!(
        remote_place["note"].as_str().unwrap().contains("removed"),
        "{remote_place}"
    );
    // The copy is still there, as the certificate says; the local place was erased.
    let there = other.data_dir.join("vaults").join(&copy);
    assert!(
        support::files_under(&there)
            .iter()
            .any(|p| p.ends_with(&name))
    );
    let local = places.iter().find(|p| p["kind"] == "destination").unwrap();
    assert_eq!(local["objects_left"], 0, "{local}");
}

/// A remote that refuses the erasure (the other operator deleted the vault the copy was in;
/// a revoked token is answered alike) will not answer otherwise: its copy is named as out
/// of reach with why, the rest is erased, and the erasure ends, rather than trying that one
/// place for ever and never forgetting the tenant's people.
#[test]
fn a_remote_that_refuses_is_named_out_of_reach_and_the_erasure_ends() {
    let server = Server::start();
    let (other, copy, token) = other_operator();
    let admin = server.admin();
    let (tenant, vault, _) = acme_with_a_pack(&server, &admin, 4);
    push_to(&admin, &tenant, &vault, (&other, &copy, &token));
    let theirs = other.admin();
    theirs.delete(&format!("/api/v1/vaults/{copy}")).expect(202);

    let (cert, remote_place) = erased_with_a_copy_left(&admin, &tenant);
    assert!(
        remote_place["note"]
            .as_str()
            .unwrap()
            .contains("outside this server's reach"),
        "{remote_place}"
    );
    let places = cert["places"].as_array().unwrap();
    let local = places.iter().find(|p| p["kind"] == "destination").unwrap();
    assert_eq!(local["objects_left"], 0, "{local}");
}

/// A whole-tenant push whose remote cannot be listed when the erasure starts: the copies
/// there are named as out of reach because of that, not as if the remote had been removed.
#[test]
fn a_certificate_says_when_a_remote_could_not_be_listed() {
    let server = Server::start();
    let (other, _, token) = other_operator();
    let admin = server.admin();
    let (tenant, _) = support::vault::customer_with_vault(&admin, "Acme", None);
    let remote = remote_to(&admin, &tenant, &other, &token);
    admin
        .post(
            "/api/v1/sync-jobs",
            json!({ "remote_id": remote, "direction": "push" }),
        )
        .expect(201);
    drop(other);

    let (_, remote_place) = erased_with_a_copy_left(&admin, &tenant);
    let note = remote_place["note"].as_str().unwrap();
    assert!(note.contains("could not be listed"), "{remote_place}");
    assert!(!note.contains("removed"), "{remote_place}");
}

/// A push sync job removed before the erasure: what it copied is still erased, through the
/// remote that is still there.
#[test]
fn a_copy_made_by_a_removed_sync_job_is_still_erased() {
    let server = Server::start();
    let (other, copy, token) = other_operator();
    let admin = server.admin();
    let (tenant, vault, name) = acme_with_a_pack(&server, &admin, 2);
    push_to(&admin, &tenant, &vault, (&other, &copy, &token));
    let jobs = admin
        .get(&format!("/api/v1/sync-jobs?tenant_id={tenant}"))
        .expect(200);
    let sync = id(&jobs.as_array().unwrap()[0]);
    admin
        .delete(&format!("/api/v1/sync-jobs/{sync}"))
        .expect(204);
    erased_through_the_remote(
        &admin,
        &tenant,
        &other.data_dir.join("vaults").join(&copy),
        &name,
    );
}

/// A vault deleted before the erasure, which a push sync job had copied: the copy is still
/// erased through the remote (the job went with the vault).
#[test]
fn a_copy_of_a_vault_deleted_before_the_erasure_is_still_erased() {
    let server = Server::start();
    let (other, copy, token) = other_operator();
    let admin = server.admin();
    let (tenant, vault, name) = acme_with_a_pack(&server, &admin, 3);
    push_to(&admin, &tenant, &vault, (&other, &copy, &token));
    let job = admin.delete(&format!("/api/v1/vaults/{vault}")).expect(202);
    admin.job_ended(&id(&job));
    erased_through_the_remote(
        &admin,
        &tenant,
        &other.data_dir.join("vaults").join(&copy),
        &name,
    );
}

/// Erases Acme, whose pack `name` another server holds at `there`: the certificate names
/// that copy, found empty, and it is gone.
fn erased_through_the_remote(
    admin: &Caller<'_>,
    tenant: &str,
    there: &std::path::Path,
    name: &str,
) {
    assert!(
        support::files_under(there)
            .iter()
            .any(|p| p.ends_with(name))
    );
    let cert = erase_acme(admin, tenant);
    let remote_place = cert["places"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "remote")
        .unwrap_or_else(|| panic!("the remote copy in {cert}"))
        .clone();
    assert_eq!(remote_place["objects_left"], 0, "{remote_place}");
    assert!(
        !support::files_under(there)
            .iter()
            .any(|p| p.ends_with(name)),
        "the copy is erased"
    );
}

/// One vault pushed to two vaults of one remote (the first sync job removed, a second one
/// made to another vault there): both copies are places of the erasure, and both are
/// erased.
#[test]
fn two_copies_of_a_vault_on_one_remote_are_both_erased() {
    let server = Server::start();
    let other = Server::start();
    let theirs = other.admin();
    let mirror_co = theirs.customer_tenant("Mirror Co");
    let copy = |name: &str| {
        id(&theirs
            .post(
                "/api/v1/vaults",
                json!({ "tenant_id": mirror_co, "name": name, "destination": "local",
                        "key_custody": "customer" }),
            )
            .expect(201))
    };
    let (first, second) = (copy("first"), copy("second"));
    let token = theirs
        .post(
            "/api/v1/tokens",
            json!({ "tenant_id": mirror_co, "name": "replicate", "kind": "api",
                    "vault_ids": [first, second], "permissions": ["replicate"] }),
        )
        .expect(201)["secret"]
        .clone();
    let admin = server.admin();
    let (tenant, vault, name) = acme_with_a_pack(&server, &admin, 5);
    let remote = remote_to(&admin, &tenant, &other, &token);
    let removed = pushed_once(&admin, &remote, &vault, &first);
    admin
        .delete(&format!("/api/v1/sync-jobs/{removed}"))
        .expect(204);
    pushed_once(&admin, &remote, &vault, &second);

    let cert = erase_acme(&admin, &tenant);
    let remotes: Vec<&Value> = cert["places"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "remote")
        .collect();
    assert_eq!(remotes.len(), 2, "{cert:#}");
    assert_eq!(cert["complete"], true, "{cert:#}");
    for v in [&first, &second] {
        let there = other.data_dir.join("vaults").join(v);
        assert!(
            !support::files_under(&there)
                .iter()
                .any(|p| p.ends_with(&name)),
            "the copy in {v} is erased"
        );
    }
}
