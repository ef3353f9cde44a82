//! The vault protocol as token holders meet it: each token's permissions and scope, what an
//! upload must be to be stored, quota, and what a vault's objects are after the tenant key
//! is shredded.

#[path = "vault_protocol/quota.rs"]
mod quota;
#[path = "vault_protocol/ranges.rs"]
mod ranges;
mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use support::Server;
use support::vault::*;

// ---- 6. vault tokens on the vault protocol ----

#[test]
fn each_token_opens_its_vault_with_its_permissions_and_the_managed_key() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let kinds: [&[&str]; 4] = [
        &["backup"],
        &["restore"],
        &["manage"],
        &["backup", "restore"],
    ];
    for perms in kinds {
        let (_, secret) = token(&admin, &tenant, perms, None);
        let r = vault_as(&server, &vault, &secret).open().expect(200);
        assert_eq!(r["vault_id"], vault.as_str());
        assert_eq!(r["permissions"], json!(perms));
        assert_eq!(r["key_custody"], "managed");
        let key = r["key"].as_str().expect("a managed vault's key");
        assert!(
            key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
            "{key}"
        );
    }
    let opened = admin.audit_events();
    assert_eq!(
        opened.iter().filter(|e| e.action == "vault.open").count(),
        4
    );
}

#[test]
fn a_backup_token_cannot_read_snapshots_or_packs_nor_delete_keys() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let restore = holder(&server, &admin, &tenant, &vault, &["restore"]);

    backup
        .call("get", "snapshots")
        .expect_problem(403, "permission_denied");
    // Pack names are listed (the indexes it reads name them anyway); their content is not.
    backup.call("get", "data").expect(200);
    for kind in ["snapshots", "data"] {
        backup
            .call("get", &format!("{kind}/{}", "ab".repeat(32)))
            .expect_problem(403, "permission_denied");
        backup
            .call("head", &format!("{kind}/{}", "ab".repeat(32)))
            .expect(403);
        restore.call("get", kind).expect(200);
    }
    let keys = backup.names("keys");
    assert_eq!(keys.len(), 1, "the managed vault's key slot");
    backup
        .call("delete", &format!("keys/{}", keys[0]))
        .expect_problem(403, "permission_denied");
    assert_eq!(restore.names("keys"), keys, "the key slot is still there");
}

#[test]
fn a_token_stops_working_when_revoked_or_expired() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);

    let (revoked_id, revoked) = token(&admin, &tenant, &["restore"], None);
    let revoked = vault_as(&server, &vault, &revoked);
    revoked.open().expect(200);
    admin
        .delete(&format!("/api/v1/tokens/{revoked_id}"))
        .expect(204);
    revoked.open().expect_problem(401, "unauthenticated");

    let short = vault_as(
        &server,
        &vault,
        &token(&admin, &tenant, &["restore"], Some(1)).1,
    );
    short.open().expect(200);
    server.advance(Duration::from_secs(86_400 + 60));
    short.open().expect_problem(401, "unauthenticated");
}

#[test]
fn sessions_and_tokens_do_not_stand_in_for_each_other() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    vault_as(&server, &vault, &admin.secret)
        .open()
        .expect_problem(401, "token_required");
    let (_, restore) = token(&admin, &tenant, &["restore"], None);
    server
        .with_token(&restore)
        .get("/api/v1/me")
        .expect_problem(401, "session_required");
}

#[test]
fn another_tenants_token_finds_nothing_anywhere_in_a_vault() {
    let server = Server::start();
    let admin = server.admin();
    let (alpha, _) = customer_with_vault(&admin, "Alpha", None);
    let (bravo, vault) = customer_with_vault(&admin, "Bravo", None);
    let intruder = holder(&server, &admin, &alpha, &vault, &["manage"]);
    let owner = vault_as(
        &server,
        &vault,
        &token(&admin, &bravo, &["restore"], None).1,
    );
    let keys = owner.names("keys");

    intruder.open().expect_problem(404, "not_found");
    for kind in KINDS {
        intruder.call("get", kind).expect_problem(404, "not_found");
    }
    let key = format!("keys/{}", keys[0]);
    intruder.call("get", &key).expect_problem(404, "not_found");
    intruder
        .call("delete", &key)
        .expect_problem(404, "not_found");
    assert_eq!(intruder.call("head", &key).status, 404);
    let object = index_object(10);
    intruder
        .put("index", &blake3_hex(&object), &object)
        .expect_problem(404, "not_found");

    assert_eq!(owner.names("keys"), keys, "bravo's key slot is untouched");
    assert!(owner.names("index").is_empty(), "nothing was added");
}

#[test]
fn removing_a_device_stops_its_tokens() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let device = vault_as(&server, &acme.vault_id, &acme.token_secret);
    device.open().expect(200);
    admin
        .delete(&format!("/api/v1/devices/{}", acme.device_id))
        .expect(204);
    device.open().expect_problem(401, "unauthenticated");
    let tokens = admin
        .get(&format!("/api/v1/tokens?tenant_id={}", acme.tenant_id))
        .expect(200);
    assert!(!tokens[0]["revoked_at"].is_null(), "{tokens}");
    // A token made for it by a request that checked the device before the removal
    // committed is not stored after it.
    let mut t: loop_api::Token = serde_json::from_value(tokens[0].clone()).unwrap();
    t.id = "tk_made_meanwhile".into();
    t.revoked_at = None;
    let stored = server.block_on(async {
        let mut tx = server.state.db.begin().await.unwrap();
        let stored = loop_server::db::tokens::insert_token(&mut tx, &t, "hash", "test", 1).await;
        tx.commit().await.unwrap();
        stored.unwrap()
    });
    assert!(!stored);
}

#[test]
fn uploads_are_checked_before_they_become_visible() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let restore = holder(&server, &admin, &tenant, &vault, &["restore"]);
    let used = || {
        admin.get(&format!("/api/v1/vaults/{vault}")).expect(200)["used_bytes"]
            .as_u64()
            .unwrap() as usize
    };
    // The config and key slot the server wrote.
    let base = used();
    let index = index_object(100);
    let index_name = blake3_hex(&index);
    let pack_id = [7u8; 32];
    let pack = pack_object(pack_id);

    backup
        .put_claiming("index", &index_name, &index, None)
        .expect_problem(400, "invalid_request");
    backup
        .put_claiming("index", &index_name, &index, Some(&"0".repeat(64)))
        .expect_problem(400, "object_rejected");
    let mut snapshot_magic = index.clone();
    snapshot_magic[..4].copy_from_slice(b"LPSN");
    backup
        .put("index", &index_name, &snapshot_magic)
        .expect_problem(400, "object_rejected");
    backup
        .put("data", &"08".repeat(32), &pack)
        .expect_problem(400, "object_rejected");

    assert!(
        restore.names("index").is_empty(),
        "nothing rejected is stored"
    );
    assert!(
        restore.names("data").is_empty(),
        "nothing rejected is stored"
    );
    assert_eq!(used(), base, "rejected uploads take no quota");

    // The control: the same objects, named and hashed right, are stored.
    backup.put("index", &index_name, &index).expect(201);
    backup.put("data", &hex::encode(pack_id), &pack).expect(201);
    assert_eq!(restore.names("index"), vec![index_name]);
    assert_eq!(restore.names("data"), vec![hex::encode(pack_id)]);
    assert_eq!(used(), base + index.len() + pack.len());
}

#[test]
fn a_large_pack_streams_in_parts_and_a_bad_one_leaves_nothing_behind() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let restore = holder(&server, &admin, &tenant, &vault, &["restore"]);
    let id = [7u8; 32];
    let name = hex::encode(id);
    let pack = big_pack(id, 20 << 20);

    // A wrong hash is found only after the last part: the upload is aborted, not committed.
    backup
        .put_claiming("data", &name, &pack, Some(&blake3_hex(b"something else")))
        .expect_problem(400, "object_rejected");
    assert!(restore.names("data").is_empty());
    let data_dir = server.data_dir.join("vaults").join(&vault).join("data");
    let leftovers: Vec<_> = walk(&data_dir);
    assert!(
        leftovers.is_empty(),
        "staging files left behind: {leftovers:?}"
    );
    let used = admin.get(&format!("/api/v1/vaults/{vault}")).expect(200)["used_bytes"].clone();

    backup.put("data", &name, &pack).expect(201);
    assert_eq!(restore.names("data"), vec![name.clone()]);
    let v = admin.get(&format!("/api/v1/vaults/{vault}")).expect(200);
    assert_eq!(
        v["used_bytes"].as_u64().unwrap(),
        used.as_u64().unwrap() + pack.len() as u64
    );
    let r = server.send(
        server
            .request(Method::GET, &format!("/vaults/{vault}/v1/data/{name}"))
            .bearer_auth(&restore.secret)
            .header(reqwest::header::RANGE, "bytes=12582912-12583011"),
    );
    assert_eq!(r.status, 206);
    let whole = server
        .request(Method::GET, &format!("/vaults/{vault}/v1/data/{name}"))
        .bearer_auth(&restore.secret)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(whole.as_ref(), pack.as_slice());
}

#[test]
fn a_failing_destination_is_an_internal_error_that_reveals_nothing_and_keeps_no_quota() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    // The destination breaks: where packs go is now a file, not a directory.
    let data_dir = server.data_dir.join("vaults").join(&vault).join("data");
    std::fs::remove_dir_all(&data_dir).ok();
    std::fs::write(&data_dir, b"in the way").unwrap();
    let before = admin.get(&format!("/api/v1/vaults/{vault}")).expect(200)["used_bytes"].clone();

    let pack = pack_object([9u8; 32]);
    let r = backup.put("data", &hex::encode([9u8; 32]), &pack);
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.code(), "internal");
    assert!(r.body.contains("incident"), "{}", r.body);
    for secret in [
        "data",
        "vaults",
        "directory",
        "os error",
        server.data_dir.to_str().unwrap(),
    ] {
        assert!(!r.body.contains(secret), "{secret} leaked: {}", r.body);
    }
    let after = admin.get(&format!("/api/v1/vaults/{vault}")).expect(200)["used_bytes"].clone();
    assert_eq!(before, after, "a failed upload gives its quota back");
}

#[test]
fn concurrent_rewrites_of_a_marker_cannot_shrink_the_recorded_usage() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let used = || -> u64 {
        admin.get(&format!("/api/v1/vaults/{vault}")).expect(200)["used_bytes"]
            .as_u64()
            .unwrap()
    };
    let base = used();
    let name = "ab".repeat(32);
    // Markers are small: a large "marker" is refused outright.
    backup
        .put("locks", &name, &lock_object(65 * 1024))
        .expect_problem(413, "object_too_large");
    backup
        .put("locks", &name, &lock_object(60 * 1024))
        .expect(201);
    assert_eq!(used(), base + 60 * 1024);
    // Eight rewrites at once, each small: each may give back only what it replaced.
    std::thread::scope(|s| {
        for i in 0..8 {
            let backup = &backup;
            let name = &name;
            s.spawn(move || backup.put("locks", name, &lock_object(100 + i)).expect(201));
        }
    });
    let stored = restore_size(&server, &vault, &tenant, &admin, &name);
    assert_eq!(used(), base + stored, "usage follows what is stored");
}

#[test]
fn a_vault_open_request_over_64_kib_is_refused() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let (_, backup) = token(&admin, &tenant, &["backup"], None);
    let body = json!({ "operation": "backup", "host": "h".repeat(70 * 1024) });
    let path = format!("/vaults/{vault}/v1/open");
    server
        .call("post", &path, Some(&backup), Some(&body))
        .expect_problem(413, "body_too_large");
}

#[test]
fn an_unreadable_snapshot_does_not_break_the_snapshot_list() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    // Two readable snapshots, written with the vault's key, around a damaged one.
    let key = backup.open().expect(200)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let kek = loop_repo::crypto::Key::from_bytes(hex::decode(key).unwrap().try_into().unwrap());
    let location = server.data_dir.join("vaults").join(&vault);
    let storage = loop_repo::ObjectStorage::open(
        location.to_str().unwrap(),
        &loop_repo::S3Options::default(),
        false,
    )
    .unwrap();
    let repo = loop_repo::Repository::open(
        std::sync::Arc::new(storage),
        loop_repo::keys::Secret::RawKey(&kek),
    )
    .unwrap();
    let mut saved = Vec::new();
    for (i, host) in ["first-host", "last-host"].iter().enumerate() {
        let snap = loop_repo::snapshot::Snapshot {
            time: chrono::DateTime::from_timestamp(1_700_000_000 + i as i64 * 60, 0)
                .unwrap()
                .fixed_offset(),
            tree: loop_repo::Id::random(),
            paths: vec!["/data".into()],
            hostname: host.to_string(),
            username: String::new(),
            tags: Vec::new(),
            parent: None,
            excludes: Vec::new(),
            program_version: "test".into(),
            summary: None,
        };
        saved.push(repo.save_snapshot(&snap).unwrap().to_hex());
    }
    let mut snapshot = b"LPSN\x01\x00\x00\x00".to_vec();
    snapshot.extend_from_slice(&[9u8; 200]);
    backup
        .put("snapshots", &blake3_hex(&snapshot), &snapshot)
        .expect(201);
    let listed = admin
        .get(&format!("/api/v1/vaults/{vault}/snapshots"))
        .expect(200);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, saved, "both readable snapshots, in time order");
}

/// A replication token (another server syncing the vault): reads everything, creates but
/// never replaces, writes no lock markers, removes only what a replication token wrote (a
/// later one's too), and a retention lock holds what it wrote like anything else.
#[test]
fn a_replication_token_creates_once_and_removes_only_what_replication_wrote() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Synced", None);
    let sync = holder(&server, &admin, &tenant, &vault, &["replicate"]);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);

    // Opening the managed vault, it gets no key: it copies encrypted objects only.
    let opened = sync.open().expect(200);
    assert_eq!(opened["permissions"], json!(["replicate"]));
    assert!(opened["key"].is_null(), "{opened}");
    assert!(backup.open().expect(200)["key"].is_string());
    // It lists the vaults it may use, with their place: all of its tenant's unless it names
    // some, never another tenant's.
    let (_, elsewhere) = customer_with_vault(&admin, "Elsewhere", None);
    let other = admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": "other", "destination": "local" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = |secret: &str| -> Vec<String> {
        let v = server
            .call("get", "/vaults", Some(secret), None)
            .expect(200);
        let mut ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .inspect(|e| assert_eq!(e["jurisdiction"], "local", "{e}"))
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let mut both = vec![vault.clone(), other.clone()];
    both.sort();
    assert_eq!(listed(&sync.secret), both);
    assert!(!listed(&sync.secret).contains(&elsewhere));
    let named = admin
        .post(
            "/api/v1/tokens",
            json!({ "tenant_id": tenant, "name": "one", "kind": "api", "vault_ids": [other],
                    "permissions": ["replicate"] }),
        )
        .expect(201)["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(listed(&named), vec![other]);
    // A backup token is not told the tenant's vaults.
    server
        .call("get", "/vaults", Some(&backup.secret), None)
        .expect_problem(403, "permission_denied");
    // It reads what is there (the key slot the server wrote) and lists every kind.
    let slot = sync.names("keys")[0].clone();
    assert_eq!(sync.call("get", &format!("keys/{slot}")).status, 200);
    assert_eq!(sync.call("get", "config").status, 200);
    // It creates; the same name again is refused, whoever wrote it first.
    let pushed = hex::encode([5u8; 32]);
    sync.put("data", &pushed, &pack_object([5u8; 32]))
        .expect(201);
    sync.put("data", &pushed, &pack_object([5u8; 32]))
        .expect_problem(409, "object_exists");
    let theirs = hex::encode([6u8; 32]);
    backup
        .put("data", &theirs, &pack_object([6u8; 32]))
        .expect(201);
    sync.put("data", &theirs, &pack_object([6u8; 32]))
        .expect_problem(409, "object_exists");
    // Lock markers belong to processes writing the vault, not to a copy of it.
    sync.put("locks", &"ab".repeat(32), &lock_object(64))
        .expect_problem(403, "permission_denied");

    // It removes what replication wrote, not what a backup wrote, nor the server's key slot.
    sync.call("delete", &format!("data/{theirs}"))
        .expect_problem(403, "permission_denied");
    sync.call("delete", &format!("keys/{slot}"))
        .expect_problem(403, "permission_denied");
    sync.call("delete", &format!("data/{pushed}")).expect(204);
    assert_eq!(backup.names("data"), vec![theirs.clone()]);
    // A later replication token (the first revoked) removes what the first one wrote.
    let again = hex::encode([7u8; 32]);
    sync.put("data", &again, &pack_object([7u8; 32]))
        .expect(201);
    let next = holder(&server, &admin, &tenant, &vault, &["replicate"]);
    next.call("delete", &format!("data/{again}")).expect(204);

    // A device token cannot be a replication token.
    let device = admin
        .post(
            "/api/v1/devices",
            json!({ "tenant_id": tenant, "name": "pc" }),
        )
        .expect(201);
    admin
        .post(
            "/api/v1/tokens",
            json!({ "tenant_id": tenant, "name": "d", "kind": "device", "device_id": device["id"],
                    "permissions": ["replicate"] }),
        )
        .expect_problem(400, "invalid_request");

    // It neither reads a maintainer's deletion plan nor announces deletions of its own.
    let deletions = format!("/vaults/{vault}/v1/deletions");
    server
        .call("get", &deletions, Some(&sync.secret), None)
        .expect_problem(403, "permission_denied");
    let announce = json!({ "objects": [{ "kind": "data", "name": hex::encode([8u8; 32]) }] });
    server
        .call("post", &deletions, Some(&sync.secret), Some(&announce))
        .expect_problem(403, "permission_denied");

    // Under a retention lock, what it wrote stays.
    admin
        .put(
            &format!("/api/v1/vaults/{vault}/retention-lock"),
            json!({ "days": 7 }),
        )
        .expect(200);
    let held = hex::encode([8u8; 32]);
    next.put("data", &held, &pack_object([8u8; 32])).expect(201);
    next.call("delete", &format!("data/{held}"))
        .expect_problem(403, "retention_locked");
}
