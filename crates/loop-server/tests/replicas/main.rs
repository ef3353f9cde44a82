//! A replica's health as the service reports it: its lag (what the vault received since its
//! last complete replication began), and `replica-behind` once it has not completed one for
//! `replication.behind_hours` (the server's clock moves in the test); and a read the primary
//! does not answer, served from the replica; promotion, and damage at either end.
//!
//! `passes.rs`: how a replication goes round and over its replicas again for what arrived
//! or was found damaged while it ran.
//!
//! `staging.rs`: a direct upload's staging objects after a promotion.

#[path = "../support/mod.rs"]
mod support;

mod passes;
mod promotion;
mod requests;
mod staging;

use std::time::Duration;

use serde_json::json;
use support::vault::*;
use support::{Caller, Server};

#[test]
fn a_replicas_lag_is_reported_and_one_that_stops_completing_raises_replica_behind() {
    let server = Server::start_with(|c| {
        support::with_spare(c);
        // The test runs the notifier's checks; the scheduler waits.
        c.notify.poll_seconds = 86_400;
        c.notify.check_seconds = 86_400;
        c.jobs.scheduler_seconds = 86_400;
        c.replication.behind_hours = 24;
        // A failed replication ends at once instead of waiting to be retried.
        c.jobs.max_attempts = 1;
    });
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Replicated", None);
    let replicas = format!("/api/v1/vaults/{vault}/replicas");
    admin
        .post(&replicas, json!({ "destination": "spare" }))
        .expect(201);
    let replicate = |admin: &Caller<'_>| {
        let job = admin
            .post(&format!("/api/v1/vaults/{vault}/replication"), json!({}))
            .expect(202);
        admin.job_ended(job["id"].as_str().unwrap())
    };
    assert_eq!(replicate(&admin)["state"], "succeeded");
    let r = &admin.get(&replicas).expect(200)[0];
    assert_eq!(
        (r["state"].clone(), r["objects_behind"].clone()),
        (json!("active"), json!(0))
    );

    // A pack arrives: the replica is one object (its bytes) behind until replicated.
    let writer = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let pack = pack_object([9u8; 32]);
    writer
        .put("data", &hex::encode([9u8; 32]), &pack)
        .expect(201);
    let r = &admin.get(&replicas).expect(200)[0];
    assert_eq!(r["objects_behind"], 1, "{r}");
    assert_eq!(r["bytes_behind"], pack.len() as u64, "{r}");
    assert_eq!(replicate(&admin)["state"], "succeeded");
    assert_eq!(admin.get(&replicas).expect(200)[0]["objects_behind"], 0);

    // The replica's store breaks: replications fail (and are retried), and once none has
    // completed for a day, `replica-behind` is raised, once.
    let spare = server.data_dir.join("spare");
    std::fs::remove_dir_all(&spare).unwrap();
    std::fs::write(&spare, b"not a directory").unwrap();
    let failed = replicate(&admin);
    assert_ne!(failed["state"], "succeeded", "{failed}");
    let check = || {
        server
            .block_on(loop_server::notify::pass(&server.state, true))
            .expect("a notifier pass")
    };
    check();
    assert!(admin.events(&tenant, "replica-behind").is_empty());
    server.advance(Duration::from_secs(25 * 3600));
    let admin = server.admin();
    check();
    check();
    let behind = admin.events(&tenant, "replica-behind");
    assert_eq!(behind.len(), 1, "{behind:#?}");
    assert_eq!(behind[0]["subject_id"], vault.as_str());
    assert_eq!(behind[0]["severity"], "warning");
    let r = &admin.get(&replicas).expect(200)[0];
    assert!(
        r["last_error"].as_str().unwrap().contains("incident"),
        "the reason is kept, its detail in the server log: {r}"
    );
    // Once the event is trimmed (`notify.keep_days`), the same spell raises nothing again.
    let keep = server.state.config.notify.keep_days as u64;
    server.advance(Duration::from_secs((keep + 1) * 86_400));
    let admin = server.admin();
    check();
    check();
    let again = admin.events(&tenant, "replica-behind");
    assert!(again.is_empty(), "{again:#?}");
}

#[test]
fn a_read_the_primary_does_not_answer_is_served_from_the_replica_after_primary_timeout_secs() {
    let server = Server::start_with(|c| {
        support::with_spare(c);
        c.replication.primary_timeout_secs = 1;
    });
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Replicated", None);
    let (writer, pack, name) = replicated_pack(&server, &admin, &tenant, &vault);

    // The primary's copy becomes a named pipe with no writer: opening it never returns, as
    // a store that accepted the connection and stopped answering.
    let at_primary = walk(&server.data_dir.join("vaults"))
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == name.as_str()))
        .expect("the pack at the primary");
    std::fs::remove_file(&at_primary).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&at_primary)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let read = |range: Option<&str>| {
        let mut req = server
            .request(reqwest::Method::GET, &writer.path(&format!("data/{name}")))
            .bearer_auth(&writer.secret);
        if let Some(r) = range {
            req = req.header("range", r);
        }
        let got = req.send().expect("an answer");
        (got.status().as_u16(), got.bytes().unwrap().to_vec())
    };
    // The answers are checked once the server stopped, so a wrong one fails the test at once
    // instead of leaving reads waiting on the pipe.
    let (whole, range) = (read(None), read(Some("bytes=4-19")));

    // Let every read still waiting on the pipe end, so the server can stop: a writer that
    // comes and goes (without waiting for a reader) releases whoever opened it by then, and
    // keeps coming until the server has stopped, for an open that starts late.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let releaser = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            use std::os::unix::fs::OpenOptionsExt as _;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                    .open(&at_primary);
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };
    drop(server);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    releaser.join().unwrap();
    assert_eq!(whole, (200, pack.clone()), "the whole object");
    assert_eq!(range, (206, pack[4..20].to_vec()), "a range");
}

/// A replica of `vault` at the spare destination: (the vault's replicas path, its ID).
fn with_replica(admin: &Caller<'_>, vault: &str) -> (String, String) {
    let replicas = format!("/api/v1/vaults/{vault}/replicas");
    let replica = admin
        .post(&replicas, json!({ "destination": "spare" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    (replicas, replica)
}

/// A vault of a new customer `name` with a replica at the spare destination, replicated
/// once: (its tenant, the vault, the vault's replicas path, the replica's ID).
fn replicated_vault(admin: &Caller<'_>, name: &str) -> (String, String, String, String) {
    let (tenant, vault) = customer_with_vault(admin, name, None);
    let (replicas, replica) = with_replica(admin, &vault);
    replicate(admin, &vault);
    (tenant, vault, replicas, replica)
}

/// Puts a retention lock of `days` on `vault`.
fn lock(admin: &Caller<'_>, vault: &str, days: u32) {
    admin
        .put(
            &format!("/api/v1/vaults/{vault}/retention-lock"),
            json!({ "days": days }),
        )
        .expect(200);
}

/// Replicates `vault` now and waits until that succeeded.
fn replicate(admin: &Caller<'_>, vault: &str) {
    let job = admin
        .post(&format!("/api/v1/vaults/{vault}/replication"), json!({}))
        .expect(202);
    assert_eq!(
        admin.job_ended(job["id"].as_str().unwrap())["state"],
        "succeeded"
    );
}

/// Verifies `replica` of `vault`, reading every object, and waits for the verify's end.
fn verified(admin: &Caller<'_>, vault: &str, replica: &str) -> serde_json::Value {
    let job = admin
        .post(
            &format!("/api/v1/vaults/{vault}/replicas/{replica}/verify"),
            json!({ "read_data": true }),
        )
        .expect(202);
    admin.job_ended(job["id"].as_str().unwrap())
}

/// Promoting a replica drops what it lacks, and the replication that follows makes the old
/// primary match: under a retention lock, refused while the primary still holds the vault.
#[test]
fn a_replica_lacking_what_the_lock_holds_is_promoted_only_once_the_primary_is_gone() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (tenant, vault, replicas, replica) = replicated_vault(&admin, "Locked");
    lock(&admin, &vault, 7);
    let writer = holder(&server, &admin, &tenant, &vault, &["backup"]);
    writer
        .put("data", &hex::encode([7u8; 32]), &pack_object([7u8; 32]))
        .expect(201);

    let promote = format!("{replicas}/{replica}/promote");
    admin
        .post(&promote, json!({}))
        .expect_problem(409, "replica_behind_lock");
    replicate(&admin, &vault);
    let promoted = admin.post(&promote, json!({})).expect(200);
    assert_eq!(promoted["destination"], "spare");
    replicate(&admin, &vault);

    // The old primary is the replica now. Something arrives, and the new primary is lost:
    // then the replica is all there is, and is promoted.
    writer
        .put("data", &hex::encode([8u8; 32]), &pack_object([8u8; 32]))
        .expect(201);
    let old = admin.get(&replicas).expect(200)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let back = format!("{replicas}/{old}/promote");
    admin
        .post(&back, json!({}))
        .expect_problem(409, "replica_behind_lock");
    let lost = server.data_dir.join("spare").join(&vault);
    std::fs::rename(&lost, server.data_dir.join("spare-lost")).unwrap();
    assert_eq!(
        admin.post(&back, json!({})).expect(200)["destination"],
        "local"
    );
}

/// The primary still answers while it holds any of the vault's objects: deleting its config
/// (older than the lock, so no longer held) does not make a replica that lacks held objects
/// promotable, which would drop them.
#[test]
fn deleting_the_primarys_config_does_not_promote_a_replica_lacking_held_objects() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (tenant, vault, replicas, replica) = replicated_vault(&admin, "Locked");
    lock(&admin, &vault, 7);
    let (writer, manager) = (
        holder(&server, &admin, &tenant, &vault, &["backup"]),
        holder(&server, &admin, &tenant, &vault, &["manage"]),
    );
    server.advance(Duration::from_secs(8 * 86_400));
    let pack = hex::encode([7u8; 32]);
    writer
        .put("data", &pack, &pack_object([7u8; 32]))
        .expect(201);
    manager.call("DELETE", "config/config").expect(204);
    server
        .admin()
        .post(&format!("{replicas}/{replica}/promote"), json!({}))
        .expect_problem(409, "replica_behind_lock");
    let at_primary = walk(&server.data_dir.join("vaults").join(&vault));
    assert!(
        at_primary.iter().any(|p| p.ends_with(&pack)),
        "{at_primary:?}"
    );
}

/// A removal and a promotion of one replica at once: the one that comes second finds the
/// replica changed and does nothing, so every place holding the vault stays recorded.
#[test]
fn a_replica_promoted_while_removed_or_removed_while_promoted_changes_nothing_more() {
    use loop_server::db::replicas;
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (_, vault, listed, replica) = replicated_vault(&admin, "Racing");
    let pool = &server.state.db.pool;
    let read = || server.block_on(replicas::of_vault(pool, &vault)).unwrap();
    let before = read().remove(0);
    admin
        .post(&format!("{listed}/{replica}/promote"), json!({}))
        .expect(200);
    // A removal that read the replica before the promotion.
    let removed = server.block_on(async {
        let mut tx = server.state.db.begin().await.unwrap();
        let removed = replicas::delete(&mut tx, &before).await.unwrap();
        tx.commit().await.unwrap();
        removed
    });
    assert!(!removed);
    assert_eq!(read()[0].destination, "local");
    // A promotion that read it before a removal.
    let before = read().remove(0);
    admin.delete(&format!("{listed}/{replica}")).expect(202);
    let promoted = server.block_on(async {
        let mut tx = server.state.db.begin().await.unwrap();
        let promoted = replicas::promote(&mut tx, &before, "spare", 1)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        promoted
    });
    assert!(!promoted);
    let v = admin.get(&format!("/api/v1/vaults/{vault}")).expect(200);
    assert_eq!(v["destination"], "spare", "{v}");
}

/// The vault this node keeps opened for reading (console browsing, downloads) is the one at
/// the vault's primary: after a promotion it is read at the new primary, not the old one.
#[test]
fn a_vault_kept_opened_is_read_at_its_new_primary_after_a_promotion() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (_, vault, listed, replica) = replicated_vault(&admin, "Kept Open");
    let read_at = || {
        let v: loop_api::Vault =
            serde_json::from_value(admin.get(&format!("/api/v1/vaults/{vault}")).expect(200))
                .unwrap();
        let opened = server
            .block_on(loop_server::vaults::reader::open(&server.state, &v))
            .unwrap();
        opened.repo.storage().location()
    };
    let at = read_at();
    assert!(at.starts_with("local:"), "{at}");
    admin
        .post(&format!("{listed}/{replica}/promote"), json!({}))
        .expect(200);
    let at = read_at();
    assert!(at.starts_with("spare:"), "{at}");
}

/// A replication under way copies from the old primary into the replica and, at its end,
/// would mark the old primary in step; a replica verify under way would delete from the new
/// primary the copies it judges damaged against the old one: promotion waits for either.
#[test]
fn a_replica_is_not_promoted_while_a_replication_or_a_replica_verify_runs() {
    for kind in [
        loop_api::JobKind::Replication,
        loop_api::JobKind::ReplicaVerify,
    ] {
        let server = Server::start_with(support::with_spare);
        let admin = server.admin();
        let (tenant, vault, replicas, replica) = replicated_vault(&admin, "Busy");
        // Another node runs the job on the vault.
        let state = server.state.clone();
        let (t, v) = (tenant.clone(), vault.clone());
        server.block_on(async move {
            let mut tx = state.db.begin().await.unwrap();
            let work = loop_server::jobs::Work {
                runner: loop_server::db::jobs::Runner::Server,
                tenant_id: &t,
                kind,
                target: ("vault", &v),
                trigger: loop_api::JobTrigger::User,
                started_by_id: None,
                params: json!({}),
            };
            let id = loop_server::jobs::queue(&state, &mut tx, work)
                .await
                .unwrap();
            sqlx::query(
                "UPDATE jobs SET state = 'running', lease_owner = 'another-node',
                    lease_expires_at = $1 WHERE id = $2",
            )
            .bind(state.now() + 3_600_000)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
        });

        admin
            .post(&format!("{replicas}/{replica}/promote"), json!({}))
            .expect_problem(409, "replication_running");
    }
}

/// Damage at the primary is not copied over the replica's good copy: the server recorded each
/// object's size and BLAKE3 hash as it was stored, and of two copies that differ, the one
/// that matches them is right.
#[test]
fn damage_at_the_primary_is_not_copied_over_the_replicas_good_copy() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Replicated", None);
    let (_, pack, name) = replicated_pack(&server, &admin, &tenant, &vault);
    let found = |dir: &str| {
        walk(&server.data_dir.join(dir).join(&vault))
            .into_iter()
            .find(|p| p.file_name().is_some_and(|n| n == name.as_str()))
            .unwrap_or_else(|| panic!("the pack in {dir}"))
    };
    let (at_primary, at_replica) = (found("vaults"), found("spare"));
    let replica = admin
        .get(&format!("/api/v1/vaults/{vault}/replicas"))
        .expect(200)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A bit flips at the primary: reading both copies finds the primary's wrong, and the
    // replica's copy stays.
    let mut flipped = pack.clone();
    flipped[40] ^= 1;
    std::fs::write(&at_primary, &flipped).unwrap();
    let job = verified(&admin, &vault, &replica);
    assert_eq!(job["state"], "failed", "{job:#}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("1 objects are damaged at the primary"),
        "{job:#}"
    );
    let r = &admin
        .get(&format!("/api/v1/vaults/{vault}/replicas"))
        .expect(200)[0];
    assert_eq!(
        r["state"], "active",
        "the replica is not the damaged one: {r}"
    );
    // Whatever replication runs next (a repair would have been queued) copies nothing over it.
    let job = admin
        .post(&format!("/api/v1/vaults/{vault}/replication"), json!({}))
        .expect(202);
    admin.job_ended(job["id"].as_str().unwrap());
    assert_eq!(std::fs::read(&at_replica).unwrap(), pack);

    // The primary's copy is cut short: replication does not copy it over the replica's.
    std::fs::write(&at_primary, &pack[..pack.len() - 8]).unwrap();
    let job = admin
        .post(&format!("/api/v1/vaults/{vault}/replication"), json!({}))
        .expect(202);
    let job = admin.job_ended(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "succeeded-with-warnings", "{job:#}");
    assert_eq!(
        job["summary"]["replicas"][0]["report"]["primary_damaged"], 1,
        "{job:#}"
    );
    assert_eq!(std::fs::read(&at_replica).unwrap(), pack);
}

/// A listing the primary fails is answered from a replica only when that replica holds every
/// object the vault's records hold: a replica that is behind would hide what was written
/// since (a backup's newest snapshot, the packs a prune must keep).
#[test]
fn a_listing_the_primary_fails_comes_from_a_replica_only_if_it_lacks_nothing_recorded() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Listed", None);
    let (writer, _, first) = replicated_pack(&server, &admin, &tenant, &vault);
    let second = hex::encode([8u8; 32]);
    writer
        .put("data", &second, &pack_object([8u8; 32]))
        .expect(201);
    replicate(&admin, &vault);
    let listed = || {
        let mut names = writer.names("data");
        names.sort();
        names
    };
    let mut both = vec![first, second.clone()];
    both.sort();

    // The primary fails every listing: its vault's directory is a file now.
    let primary = server.data_dir.join("vaults").join(&vault);
    let aside = server.data_dir.join("primary-aside");
    std::fs::rename(&primary, &aside).unwrap();
    std::fs::write(&primary, b"not a directory").unwrap();
    assert_eq!(listed(), both, "the replica holds everything recorded");
    // The replica falls behind (it lacks the second pack): no listing rather than one
    // without it.
    let at_replica = walk(&server.data_dir.join("spare"))
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == second.as_str()))
        .expect("the second pack at the replica");
    std::fs::remove_file(&at_replica).unwrap();
    let r = writer.call("get", "data");
    assert!((500..600).contains(&r.status), "{}: {}", r.status, r.body);

    // The primary back: its listing, whole.
    std::fs::remove_file(&primary).unwrap();
    std::fs::rename(&aside, &primary).unwrap();
    assert_eq!(listed(), both);
}
