//! A vault's retention lock: no stored object may be replaced or deleted before it is N
//! days old by the server's record of its arrival, whoever asks (a manage token, an admin
//! deleting the vault); the lock only grows; objects go once it has passed.

mod support;

use std::time::Duration;

use serde_json::json;
use support::vault::*;
use support::{Caller, Server};

const DAY: Duration = Duration::from_secs(86_400);

fn set_lock(admin: &Caller<'_>, vault: &str, days: u32) -> support::Reply {
    admin.put(
        &format!("/api/v1/vaults/{vault}/retention-lock"),
        json!({ "days": days }),
    )
}

/// A structurally valid snapshot object (opaque inside).
fn snapshot_object(fill: u8) -> Vec<u8> {
    let mut o = b"LPSN\x01\x00\x00\x00".to_vec();
    o.extend(std::iter::repeat_n(fill, 48));
    o
}

#[test]
fn a_retention_lock_keeps_every_object_from_every_caller_until_it_has_passed() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Locked Ltd", None);
    let manage = holder(
        &server,
        &admin,
        &tenant,
        &vault,
        &["backup", "restore", "manage"],
    );
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let on_disk = |kind: &str, name: &str| {
        let fan = if kind == "data" {
            format!("{}/", &name[..2])
        } else {
            String::new()
        };
        server
            .data_dir
            .join("vaults")
            .join(&vault)
            .join(kind)
            .join(format!("{fan}{name}"))
            .exists()
    };

    // A pack from before the lock: the lock counts from its arrival, not from the lock.
    let old_pack = pack_object([1u8; 32]);
    let old = hex::encode([1u8; 32]);
    manage.put("data", &old, &old_pack).expect(201);
    let v = set_lock(&admin, &vault, 7).expect(200);
    assert_eq!(v["retention_lock_days"], 7);

    server.advance(3 * DAY);
    // Sessions do not last days: sign in again after each jump of the clock.
    let admin = server.admin();
    let young = hex::encode([2u8; 32]);
    manage
        .put("data", &young, &pack_object([2u8; 32]))
        .expect(201);
    let snapshot = snapshot_object(3);
    let snapshot_name = blake3_hex(&snapshot);
    manage
        .put("snapshots", &snapshot_name, &snapshot)
        .expect(201);
    let key_slot = manage.names("keys")[0].clone();

    // The manage token can neither delete nor overwrite anything the lock holds.
    for object in [
        format!("data/{old}"),
        format!("data/{young}"),
        format!("snapshots/{snapshot_name}"),
        format!("keys/{key_slot}"),
    ] {
        manage
            .call("delete", &object)
            .expect_problem(403, "retention_locked");
    }
    manage
        .put("data", &old, &pack_object([1u8; 32]))
        .expect_problem(403, "retention_locked");
    // Lock markers are not backup data: a backup still removes its own.
    let marker = "ab".repeat(32);
    backup.put("locks", &marker, &lock_object(64)).expect(201);
    backup
        .call("delete", &format!("locks/{marker}"))
        .expect(204);

    // Nor can an admin delete the vault; it stays whole and usable.
    admin
        .delete(&format!("/api/v1/vaults/{vault}"))
        .expect_problem(403, "retention_locked");
    admin.get(&format!("/api/v1/vaults/{vault}")).expect(200);
    assert!(on_disk("data", &old) && on_disk("data", &young));
    assert_eq!(manage.names("snapshots"), vec![snapshot_name.clone()]);

    // The lock only grows.
    set_lock(&admin, &vault, 5).expect_problem(409, "retention_lock");
    set_lock(&admin, &vault, 0).expect_problem(400, "invalid_request");
    assert_eq!(
        set_lock(&admin, &vault, 10).expect(200)["retention_lock_days"],
        10
    );

    // Day 11: the old pack (11 days) may go, the young one (8 days) not yet, nor the vault.
    server.advance(8 * DAY);
    let admin = server.admin();
    manage.call("delete", &format!("data/{old}")).expect(204);
    assert!(!on_disk("data", &old));
    manage
        .call("delete", &format!("data/{young}"))
        .expect_problem(403, "retention_locked");
    admin
        .delete(&format!("/api/v1/vaults/{vault}"))
        .expect_problem(403, "retention_locked");

    // Day 14: everything is older than the lock; the vault can be deleted and is erased.
    server.advance(3 * DAY);
    let admin = server.admin();
    let job = admin.delete(&format!("/api/v1/vaults/{vault}")).expect(202);
    let ended = admin.job_ended(job["id"].as_str().unwrap());
    assert_eq!(ended["state"], "succeeded", "{ended}");
    assert!(!on_disk("data", &young));

    // Every change of the lock and every refusal is in the audit log.
    let events = admin.audit_events();
    let of = |action: &str, outcome: loop_api::Outcome| {
        events
            .iter()
            .filter(|e| {
                e.action == action
                    && e.outcome == outcome
                    && e.object_id.as_deref() == Some(vault.as_str())
            })
            .map(|e| e.details.clone())
            .collect::<Vec<_>>()
    };
    use loop_api::Outcome::{Failure, Success};
    let set: Vec<_> = of("vault.retention_lock", Success)
        .iter()
        .map(|d| d["days"].clone())
        .collect();
    assert_eq!(set, vec![json!(7), json!(10)]);
    assert_eq!(
        of("vault.retention_lock", Failure)[0]["reason"],
        "shortening"
    );
    let refused = of("vault.delete", Failure);
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|d| d["reason"] == "retention_lock"));
}

#[test]
fn a_vault_can_be_locked_from_its_creation_and_a_lock_is_bounded() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Early Lock", None);
    let create = |days: u32| {
        admin.post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": format!("locked-{days}"), "destination": "local",
                    "retention_lock_days": days }),
        )
    };
    for bad in [0, 36_501] {
        create(bad).expect_problem(400, "invalid_request");
    }
    let v = create(30).expect(201);
    assert_eq!(v["retention_lock_days"], 30);
    let vault = v["id"].as_str().unwrap();
    // The key slot the server wrote at creation is held at once.
    let manage = holder(&server, &admin, &tenant, vault, &["manage", "restore"]);
    let slot = manage.names("keys")[0].clone();
    manage
        .call("delete", &format!("keys/{slot}"))
        .expect_problem(403, "retention_locked");
    set_lock(&admin, vault, 29).expect_problem(409, "retention_lock");
    set_lock(&admin, vault, 36_501).expect_problem(400, "invalid_request");

    // The one removal the lock allows: a tenant key rotation replaces the slot, after the
    // vault opened with the new one; the new slot is held like the old one was.
    let job = admin
        .post(&format!("/api/v1/tenants/{tenant}/key-rotation"), json!({}))
        .expect(202);
    let ended = admin.job_ended(job["id"].as_str().unwrap());
    assert_eq!(ended["state"], "succeeded", "{ended}");
    let slots = manage.names("keys");
    assert_eq!(slots.len(), 1);
    assert_ne!(slots[0], slot, "the old key's slot is gone");
    manage
        .call("delete", &format!("keys/{}", slots[0]))
        .expect_problem(403, "retention_locked");
}

/// An upload that reached storage while its server died before recording it as stored
/// leaves a claim whose lease lapses: a deletion that takes such a claim over still asks
/// the lock, and whose the object is.
#[test]
fn an_object_whose_upload_was_never_recorded_as_done_is_held_like_any_other() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Crashed Ltd", None);
    let manage = holder(&server, &admin, &tenant, &vault, &["restore", "manage"]);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    set_lock(&admin, &vault, 7).expect(200);
    let snapshot = snapshot_object(9);
    let name = blake3_hex(&snapshot);
    backup.put("snapshots", &name, &snapshot).expect(201);
    let marker = hex::encode([4u8; 32]);
    backup.put("locks", &marker, &lock_object(64)).expect(201);
    let pool = server.state.db.pool.clone();
    let (v, lapsed) = (vault.clone(), server.state.now() - 1);
    server.block_on(async move {
        sqlx::query(
            "UPDATE vault_objects SET state = 'writing', claim = 'clm_dead', lease_until = $1
             WHERE vault_id = $2 AND kind IN ('snapshots', 'locks')",
        )
        .bind(lapsed)
        .bind(&v)
        .execute(&pool)
        .await
        .unwrap();
    });

    manage
        .call("delete", &format!("snapshots/{name}"))
        .expect_problem(403, "retention_locked");
    assert_eq!(manage.call("get", &format!("snapshots/{name}")).status, 200);
    // Another backup's marker is still not a backup token's to remove.
    let other = holder(&server, &admin, &tenant, &vault, &["backup"]);
    other
        .call("delete", &format!("locks/{marker}"))
        .expect_problem(403, "permission_denied");
    assert_eq!(manage.call("get", &format!("locks/{marker}")).status, 200);
}

/// Replacing an object stores new content under its name: the lock holds that content for
/// its whole length from its arrival, not from the first upload of the name.
#[test]
fn a_replaced_object_is_held_from_the_arrival_of_its_new_content() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Rewritten Ltd", None);
    let manage = holder(&server, &admin, &tenant, &vault, &["restore", "manage"]);
    set_lock(&admin, &vault, 7).expect(200);
    let first = snapshot_object(1);
    let name = blake3_hex(&first);
    let object = format!("snapshots/{name}");
    manage.put("snapshots", &name, &first).expect(201);

    // Day 8: the first content is past the lock, so a manage token may replace it.
    server.advance(8 * DAY);
    let admin = server.admin();
    let second = snapshot_object(2);
    manage.put("snapshots", &name, &second).expect(201);
    manage
        .call("delete", &object)
        .expect_problem(403, "retention_locked");
    manage
        .put("snapshots", &name, &snapshot_object(3))
        .expect_problem(403, "retention_locked");
    admin
        .delete(&format!("/api/v1/vaults/{vault}"))
        .expect_problem(403, "retention_locked");
    let stored = manage.call("get", &object);
    assert_eq!(stored.status, 200);
    assert_eq!(stored.body.as_bytes(), second, "the new content is stored");

    // Day 15: the new content is 7 days old and may go.
    server.advance(7 * DAY);
    manage.call("delete", &object).expect(204);
    assert!(manage.names("snapshots").is_empty());
}
