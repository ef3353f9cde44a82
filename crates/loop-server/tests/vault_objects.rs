//! Every object name is create-once, lock markers belong to their writer, and a vault's usage
//! is what its destination holds: under concurrent requests, after a request died, and after
//! storage changed behind the server's back.

mod support;

use std::time::Duration;

use reqwest::Method;
use support::Server;
use support::vault::*;

fn used(admin: &support::Caller<'_>, vault: &str) -> u64 {
    admin.get(&format!("/api/v1/vaults/{vault}")).expect(200)["used_bytes"]
        .as_u64()
        .unwrap()
}

/// What the destination holds for the vault: the sum of every listed object's size.
fn stored_bytes(reader: &VaultAs<'_>) -> u64 {
    KINDS
        .iter()
        .map(|kind| {
            let r = reader.call("get", kind);
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["size"].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum()
}

/// The object's bytes, read with a token that may read it.
fn read(reader: &VaultAs<'_>, kind: &str, name: &str) -> Vec<u8> {
    let r = reader
        .server
        .request(
            Method::GET,
            &format!("/vaults/{}/v1/{kind}/{name}", reader.vault),
        )
        .bearer_auth(&reader.secret)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().unwrap().to_vec()
}

/// A pack with the ID `id` whose opaque filler depends on `variant`.
fn pack_variant(id: [u8; 32], variant: u8) -> Vec<u8> {
    let mut o = b"LPPK\x01\x00\x00\x00".to_vec();
    o.extend_from_slice(&id);
    o.extend(std::iter::repeat_n(variant, 64 + variant as usize));
    o.extend_from_slice(&0u32.to_le_bytes());
    o
}

fn snapshot_object(variant: u8) -> Vec<u8> {
    let mut o = b"LPSN\x01\x00\x00\x00".to_vec();
    o.extend(std::iter::repeat_n(variant, 100 + variant as usize));
    o
}

#[test]
fn a_backup_token_cannot_replace_any_object_and_the_stored_bytes_stay() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let other_backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let restore = holder(&server, &admin, &tenant, &vault, &["restore"]);

    let pack_name = hex::encode([3u8; 32]);
    let index = index_object(50);
    let index_name = blake3_hex(&index);
    let snapshot = snapshot_object(1);
    let snapshot_name = blake3_hex(&snapshot);
    let originals = [
        ("data", pack_name.clone(), pack_variant([3u8; 32], 1)),
        ("index", index_name.clone(), index),
        ("snapshots", snapshot_name.clone(), snapshot),
    ];
    for (kind, name, body) in &originals {
        backup.put(kind, name, body).expect(201);
    }
    let replacements = [
        ("data", pack_name, pack_variant([3u8; 32], 2)),
        ("index", index_name, index_object(80)),
        ("snapshots", snapshot_name, snapshot_object(2)),
    ];
    for who in [&backup, &other_backup] {
        for (kind, name, body) in &replacements {
            who.put(kind, name, body)
                .expect_problem(409, "object_exists");
        }
    }
    for (kind, name, body) in &originals {
        assert_eq!(&read(&restore, kind, name), body, "{kind}/{name} changed");
    }
    // The config and key slots the server wrote are not a backup token's to write at all.
    let key = restore.names("keys")[0].clone();
    let key_bytes = read(&restore, "keys", &key);
    let config_bytes = read(&restore, "config", "config");
    let mut fake_key = b"LPKS\x01\x00\x00\x00".to_vec();
    fake_key.resize(200, 7);
    backup
        .put("keys", &key, &fake_key)
        .expect_problem(403, "permission_denied");
    backup
        .put("config", "config", &config_bytes)
        .expect_problem(403, "permission_denied");
    assert_eq!(read(&restore, "keys", &key), key_bytes);
    assert_eq!(read(&restore, "config", "config"), config_bytes);
    assert_eq!(used(&admin, &vault), stored_bytes(&restore));
}

#[test]
fn lock_markers_belong_to_the_token_that_wrote_them() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let writer = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let other = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let reader = holder(&server, &admin, &tenant, &vault, &["restore"]);
    let manage = holder(&server, &admin, &tenant, &vault, &["manage"]);
    let marker = "ab".repeat(32);
    let body = lock_object(300);
    writer.put("locks", &marker, &body).expect(201);

    // Nobody else with a backup or restore token rewrites or removes it.
    other
        .put("locks", &marker, &lock_object(100))
        .expect_problem(409, "object_exists");
    for who in [&other, &reader] {
        who.call("delete", &format!("locks/{marker}"))
            .expect_problem(403, "permission_denied");
    }
    assert_eq!(read(&reader, "locks", &marker), body);

    // Its writer refreshes and removes it; a manage token removes anyone's.
    writer.put("locks", &marker, &lock_object(120)).expect(201);
    assert_eq!(read(&reader, "locks", &marker), lock_object(120));
    writer
        .call("delete", &format!("locks/{marker}"))
        .expect(204);
    assert!(reader.names("locks").is_empty());
    reader.put("locks", &marker, &body).expect(201);
    manage
        .call("delete", &format!("locks/{marker}"))
        .expect(204);
    assert!(reader.names("locks").is_empty());
    assert_eq!(used(&admin, &vault), stored_bytes(&reader));
}

#[test]
fn simultaneous_uploads_of_one_new_name_store_one_and_count_it_once() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let writers: Vec<VaultAs<'_>> = (0..4)
        .map(|_| holder(&server, &admin, &tenant, &vault, &["backup"]))
        .collect();
    let restore = holder(&server, &admin, &tenant, &vault, &["restore"]);
    for round in 0..6u8 {
        let id = [round + 40; 32];
        let name = hex::encode(id);
        let answers: Vec<(u8, u16, String)> = std::thread::scope(|s| {
            let handles: Vec<_> = writers
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let name = &name;
                    s.spawn(move || {
                        let variant = i as u8 + 1;
                        let r = w.put("data", name, &pack_variant(id, variant));
                        (variant, r.status, r.code())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<_> = answers.iter().filter(|a| a.1 == 201).collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
        for (_, status, code) in answers.iter().filter(|a| a.1 != 201) {
            assert_eq!(
                (*status, code.as_str()),
                (409, "object_exists"),
                "{answers:?}"
            );
        }
        assert_eq!(
            read(&restore, "data", &name),
            pack_variant(id, winners[0].0),
            "the stored pack is the one whose upload was accepted"
        );
    }
    assert_eq!(used(&admin, &vault), stored_bytes(&restore));
}

#[test]
fn usage_follows_what_is_stored_through_failures_overwrites_and_racing_deletes() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let manage = holder(&server, &admin, &tenant, &vault, &["manage"]);
    let restore = holder(&server, &admin, &tenant, &vault, &["restore"]);
    for i in 0..5u8 {
        backup
            .put("data", &hex::encode([i; 32]), &pack_variant([i; 32], i + 1))
            .expect(201);
    }
    // A rejected upload, a manage token's overwrite, and four deletes of one pack at once.
    backup
        .put_claiming(
            "data",
            &hex::encode([9u8; 32]),
            &pack_variant([9; 32], 1),
            Some(&"0".repeat(64)),
        )
        .expect_problem(400, "object_rejected");
    manage
        .put("data", &hex::encode([1u8; 32]), &pack_variant([1; 32], 30))
        .expect(201);
    let doomed = hex::encode([2u8; 32]);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (manage, doomed) = (&manage, &doomed);
            s.spawn(move || manage.call("delete", &format!("data/{doomed}")).expect(204));
        }
    });
    assert!(!restore.names("data").contains(&doomed));
    assert_eq!(used(&admin, &vault), stored_bytes(&restore));
}

/// What a server node that died while uploading `name` (a pack) leaves: a claim of 1000
/// reserved bytes, counted in the vault's usage, whose lease lapses in a minute.
fn plant_dead_claim(server: &Server, vault: &str, name: &str) {
    let pool = server.state.db.pool.clone();
    let (v, n) = (vault.to_string(), name.to_string());
    let now = server.state.now();
    server.block_on(async move {
        sqlx::query(
            "INSERT INTO vault_objects (vault_id, kind, name, size, reserved, state, owner_token,
                claim, lease_until, created_at)
             VALUES ($1, 'data', $2, 0, 1000, 'writing', NULL, $3, $4, $5)",
        )
        .bind(&v)
        .bind(&n)
        .bind(format!("clm_dead_{n}"))
        .bind(now + 60_000)
        .bind(now)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("UPDATE vaults SET used_bytes = used_bytes + 1000 WHERE id = $1")
            .bind(&v)
            .execute(&pool)
            .await
            .unwrap();
    });
}

/// A request that took over a dead request's claim and could not finish (storage failed)
/// leaves the object's record as it found it, not gone: the object may be stored, so it
/// stays counted, held by a retention lock, and settled later by asking storage.
#[test]
fn a_failed_takeover_of_a_dead_claim_keeps_the_objects_record() {
    use loop_server::db::objects::{self, Claimed, ObjectKey};
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let restore = holder(&server, &admin, &tenant, &vault, &["restore"]);
    let name = hex::encode([4u8; 32]);
    let body = pack_variant([4u8; 32], 4);
    backup.put("data", &name, &body).expect(201);
    // The object was being replaced by a request that died: a lapsed claim on it.
    let pool = server.state.db.pool.clone();
    let now = server.state.now();
    server.block_on(async {
        sqlx::query(
            "UPDATE vault_objects SET state = 'writing', reserved = 1000, claim = 'clm_dead',
                lease_until = $1 WHERE vault_id = $2 AND name = $3",
        )
        .bind(now - 1)
        .bind(&vault)
        .bind(&name)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("UPDATE vaults SET used_bytes = used_bytes + 1000 WHERE id = $1")
            .bind(&vault)
            .execute(&pool)
            .await
            .unwrap();
    });
    let key = ObjectKey {
        vault_id: &vault,
        kind: "data",
        name: &name,
    };
    let claimed = server
        .block_on(objects::claim_write(
            &pool,
            key,
            50,
            "tk_x",
            |_| true,
            now,
            60_000,
        ))
        .unwrap();
    let Claimed::Yes(claim) = claimed else {
        panic!("the dead claim is taken over");
    };
    server
        .block_on(objects::abort_write(&pool, key, &claim))
        .unwrap();
    // Still recorded and counted; the next pass over lapsed claims settles it as stored.
    server.advance(Duration::from_secs(15 * 60));
    server
        .block_on(loop_server::jobs::scheduler::tick(&server.state))
        .unwrap();
    assert_eq!(used(&admin, &vault), stored_bytes(&restore));
    assert!(restore.names("data").contains(&name));
    assert_eq!(read(&restore, "data", &name), body);
}

#[test]
fn a_claim_left_by_a_dead_request_blocks_others_until_its_lease_lapses() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let restore = holder(&server, &admin, &tenant, &vault, &["restore"]);
    let name = hex::encode([5u8; 32]);
    let body = pack_variant([5u8; 32], 5);
    // A node died while uploading this name: its claim stays until its lease lapses.
    plant_dead_claim(&server, &vault, &name);
    let r = server
        .request(Method::PUT, &format!("/vaults/{vault}/v1/data/{name}"))
        .bearer_auth(&backup.secret)
        .header(loop_api::CONTENT_HASH_HEADER, blake3_hex(&body))
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(
        r.headers().contains_key(reqwest::header::RETRY_AFTER),
        "a busy object asks the client to retry"
    );
    assert!(r.text().unwrap().contains("object_busy"));

    server.advance(Duration::from_secs(120));
    backup.put("data", &name, &body).expect(201);
    assert_eq!(read(&restore, "data", &name), body);
    assert_eq!(
        used(&admin, &vault),
        stored_bytes(&restore),
        "the dead claim's bytes went back"
    );
}

/// A dead request's claim on a name that no client uploads again is settled by the
/// scheduler against what storage holds, so its reservation does not stay in the usage.
#[test]
fn the_scheduler_settles_claims_that_dead_requests_left_and_nobody_took_over() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let restore = holder(&server, &admin, &tenant, &vault, &["restore"]);
    // Two nodes died uploading: one before its pack reached storage, one just after.
    let lost = hex::encode([15u8; 32]);
    let landed = hex::encode([16u8; 32]);
    let body = pack_variant([16u8; 32], 16);
    let fan = server
        .data_dir
        .join("vaults")
        .join(&vault)
        .join("data")
        .join(&landed[..2]);
    std::fs::create_dir_all(&fan).unwrap();
    std::fs::write(fan.join(&landed), &body).unwrap();
    plant_dead_claim(&server, &vault, &lost);
    plant_dead_claim(&server, &vault, &landed);
    assert_ne!(used(&admin, &vault), stored_bytes(&restore));

    server.advance(Duration::from_secs(15 * 60));
    server
        .block_on(loop_server::jobs::scheduler::tick(&server.state))
        .unwrap();
    let admin = server.admin();
    assert_eq!(
        used(&admin, &vault),
        stored_bytes(&restore),
        "the dead claims' reservations went back, the pack that landed counts"
    );
    assert_eq!(read(&restore, "data", &landed), body);
    assert!(!restore.names("data").contains(&lost));
    // The pack that landed is recorded: create-once like any other.
    backup
        .put("data", &landed, &pack_variant([16u8; 32], 17))
        .expect_problem(409, "object_exists");
    assert_eq!(used(&admin, &vault), stored_bytes(&restore));
}

#[test]
fn objects_stored_before_the_server_recorded_them_stay_create_once_and_counted() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let manage = holder(&server, &admin, &tenant, &vault, &["manage"]);
    let restore = holder(&server, &admin, &tenant, &vault, &["restore"]);
    let name = hex::encode([6u8; 32]);
    let body = pack_variant([6u8; 32], 6);
    backup.put("data", &name, &body).expect(201);
    // As a vault written by an earlier version: objects in storage, counted, no rows.
    let pool = server.state.db.pool.clone();
    let v = vault.clone();
    server.block_on(async move {
        sqlx::query("DELETE FROM vault_objects WHERE vault_id = $1")
            .bind(&v)
            .execute(&pool)
            .await
            .unwrap();
    });
    let before = used(&admin, &vault);
    // A replication token that tries to write it first does not become its owner: it may
    // remove only what replication wrote, never a client's backup.
    let replicate = holder(&server, &admin, &tenant, &vault, &["replicate"]);
    replicate
        .put("data", &name, &pack_variant([6u8; 32], 8))
        .expect_problem(409, "object_exists");
    replicate
        .call("delete", &format!("data/{name}"))
        .expect_problem(403, "permission_denied");
    backup
        .put("data", &name, &pack_variant([6u8; 32], 7))
        .expect_problem(409, "object_exists");
    assert_eq!(read(&restore, "data", &name), body);
    assert_eq!(used(&admin, &vault), before, "found, not counted twice");
    manage.call("delete", &format!("data/{name}")).expect(204);
    assert_eq!(used(&admin, &vault), before - body.len() as u64);
    assert_eq!(used(&admin, &vault), stored_bytes(&restore));
}

#[test]
fn reconcile_recomputes_usage_from_what_the_destination_holds() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let restore = holder(&server, &admin, &tenant, &vault, &["restore"]);
    for i in 0..3u8 {
        backup
            .put(
                "data",
                &hex::encode([i + 10; 32]),
                &pack_variant([i + 10; 32], i),
            )
            .expect(201);
    }
    // Storage changes behind the server's back: one pack removed, one added by hand.
    let data = server.data_dir.join("vaults").join(&vault).join("data");
    let gone = hex::encode([10u8; 32]);
    std::fs::remove_file(data.join(&gone[..2]).join(&gone)).unwrap();
    let extra = hex::encode([20u8; 32]);
    std::fs::create_dir_all(data.join(&extra[..2])).unwrap();
    std::fs::write(
        data.join(&extra[..2]).join(&extra),
        pack_variant([20; 32], 9),
    )
    .unwrap();
    assert_ne!(
        used(&admin, &vault),
        stored_bytes(&restore),
        "usage drifted"
    );

    let config = server.state.config.clone();
    let v = vault.clone();
    let done = server
        .block_on(async move { loop_server::usage::reconcile(&config, Some(&v)).await })
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].change.recorded, done[0].change.dropped), (1, 1));
    assert_eq!(used(&admin, &vault), stored_bytes(&restore));
    assert_eq!(done[0].change.used_after, stored_bytes(&restore));
    // The pack added by hand is now create-once like the rest.
    backup
        .put("data", &extra, &pack_variant([20; 32], 3))
        .expect_problem(409, "object_exists");
}

/// A client whose upload finds its name held by another upload (`409 object_busy`) until its
/// retries run out does not take the object for stored: it reads what is there, and only the
/// bytes it sent count (an index file taken for stored that is not would be lost).
#[test]
fn an_upload_that_never_got_its_name_is_not_taken_for_stored() {
    use loop_repo::{FileKind, RetryBudget, Storage as _};

    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Busy", None);
    let (_, secret) = token(&admin, &tenant, &["backup", "restore"], None);
    let storage = || {
        let conn = loop_agent::Connection::new(
            &server.base,
            &loop_agent::Trust::Fingerprint(server.fingerprint.clone()),
        )
        .unwrap();
        // One retry: the server holds each try 5 seconds before it answers `object_busy`,
        // and no retry starts once the budget's time is up.
        loop_agent::VaultStorage::new(conn, &vault, &secret).with_retry(RetryBudget {
            max_retries: 1,
            timeout: Duration::from_secs(30),
        })
    };
    let name = hex::encode([9u8; 32]);
    let kind = FileKind::Index.name();
    // Another upload of the name is under way (claimed for an hour, not stored yet).
    let claimed = server
        .block_on(loop_server::db::objects::claim_write(
            &server.state.db.pool,
            loop_server::db::objects::ObjectKey {
                vault_id: &vault,
                kind,
                name: &name,
            },
            100,
            "another-upload",
            |_| true,
            server.state.now(),
            3_600_000,
        ))
        .unwrap();
    assert!(matches!(claimed, loop_server::db::objects::Claimed::Yes(_)));
    let err = storage()
        .put(FileKind::Index, &name, index_object(100))
        .unwrap_err();
    assert!(err.to_string().contains("under its name"), "{err}");
}

/// A deleted vault takes no object more, from any writer (a pull sync still under way as it
/// was deleted would otherwise write into what its erasure emptied).
#[test]
fn a_deleted_vault_takes_no_object_more() {
    let server = Server::start_with(|c| c.jobs.concurrency = 0);
    let admin = server.admin();
    let (_, vault) = customer_with_vault(&admin, "Leaving", None);
    let claim = || {
        server
            .block_on(loop_server::db::objects::claim_write(
                &server.state.db.pool,
                loop_server::db::objects::ObjectKey {
                    vault_id: &vault,
                    kind: "data",
                    name: &hex::encode([4u8; 32]),
                },
                100,
                "a-pull-sync",
                |_| true,
                server.state.now(),
                60_000,
            ))
            .unwrap()
    };
    admin.delete(&format!("/api/v1/vaults/{vault}")).expect(202);
    assert!(matches!(
        claim(),
        loop_server::db::objects::Claimed::Refused { owner: None }
    ));
}
