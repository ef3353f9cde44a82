//! A replica's health as the service reports it: its lag (what the vault received since its
//! last complete replication began), and `replica-behind` once it has not completed one for
//! `replication.behind_hours` (the server's clock moves in the test); and a read the primary
//! does not answer, served from the replica.

mod support;

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

#[test]
fn a_replication_goes_round_again_for_what_the_vault_received_while_it_ran() {
    // No job runs on its own: the replication below is the only one.
    let server = Server::start_with(|c| {
        support::with_spare(c);
        c.jobs.concurrency = 0;
    });
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Replicated", None);
    with_replica(&admin, &vault);
    let writer = holder(&server, &admin, &tenant, &vault, &["backup"]);
    writer
        .put("data", &hex::encode([1u8; 32]), &pack_object([1u8; 32]))
        .expect(201);

    // A backup stores a second pack once the replication has listed the primary (when it
    // is about to copy the first): a replication asked for now would be this running one.
    let late = hex::encode([2u8; 32]);
    let stored_late = std::sync::atomic::AtomicBool::new(false);
    let check = || {
        if !stored_late.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::thread::scope(|s| {
                s.spawn(|| {
                    writer
                        .put("data", &late, &pack_object([2u8; 32]))
                        .expect(201)
                });
            });
        }
        Ok(())
    };
    let place = |name: &str| {
        loop_server::replication::Place::stored(
            server.state.destinations.get(name).unwrap(),
            &vault,
        )
    };
    let opts = loop_server::replication::SyncOptions {
        transfers: 1,
        remove_vanished: true,
        bytes_per_sec: None,
        guard: Some(vault.clone()),
    };
    let report = server
        .block_on(loop_server::replication::sync(
            &server.state.db.pool,
            &place("local"),
            &place("spare"),
            &opts,
            &check,
            &mut |_| {},
        ))
        .expect("the replication");
    assert!(stored_late.into_inner(), "the second pack was stored");
    assert_eq!(report.rounds, 2, "{report:?}");
    let at_replica: Vec<_> = walk(&server.data_dir.join("spare"))
        .into_iter()
        .filter_map(|p| Some(p.file_name()?.to_str()?.to_string()))
        .collect();
    assert!(at_replica.contains(&late), "{at_replica:?}");
}

/// A vault with two replicas: what the vault receives while the second is copied, after the
/// first was brought up to date, reaches the first too before the job ends (another pass).
#[test]
fn what_arrives_while_a_later_replica_is_copied_reaches_the_earlier_ones_in_the_same_job() {
    let server = Server::start_with(with_two_replicas);
    let admin = server.admin();
    let (tenant, vault) = vault_with_two_replicas(&server, &admin, &[]);
    let writer = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let config_at = |place: &str| server.data_dir.join(place).join(&vault).join("config");
    let config = std::fs::read(config_at("vaults")).unwrap();
    let (job, held) = replication_held_at_the_second(&server, &admin, &vault);

    // A backup stores a pack meanwhile.
    let late = hex::encode([4u8; 32]);
    writer
        .put("data", &late, &pack_object([4u8; 32]))
        .expect(201);
    let ended = held.release(&admin, &job);
    assert_eq!(ended["state"], "succeeded", "{ended}");
    // The first replica's summary counts both its passes: one round each.
    let first = ended["summary"]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["destination"] == "spare")
        .cloned()
        .unwrap_or_default();
    assert_eq!(first["report"]["rounds"], 2, "{ended}");
    for place in ["spare", "third"] {
        let held: Vec<_> = walk(&server.data_dir.join(place))
            .into_iter()
            .filter_map(|p| Some(p.file_name()?.to_str()?.to_string()))
            .collect();
        assert!(held.contains(&late), "{place}: {held:?}");
        assert_eq!(std::fs::read(config_at(place)).unwrap(), config, "{place}");
    }
}

/// A verify finds the first replica damaged while a replication of the vault runs that
/// already brought that replica up to date: that replication is the verify's repair, and it
/// goes over the replica again before it ends.
#[test]
fn a_replica_found_damaged_while_a_replication_runs_is_repaired_by_it() {
    let server = Server::start_with(with_two_replicas);
    let admin = server.admin();
    let pack = pack_object([3u8; 32]);
    let name = hex::encode([3u8; 32]);
    let (_, vault) = vault_with_two_replicas(&server, &admin, &[(&name, &pack)]);
    let at_spare = walk(&server.data_dir.join("spare").join(&vault))
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == name.as_str()))
        .expect("the pack at the first replica");
    let mut altered = pack.clone();
    altered[40] ^= 1;
    std::fs::write(&at_spare, &altered).unwrap();
    let (job, held) = replication_held_at_the_second(&server, &admin, &vault);
    let job_id = job["id"].as_str().unwrap();

    let spare = replica_at(&admin, &vault, "spare")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let verify = verified(&admin, &vault, &spare);
    assert_eq!(verify["state"], "failed", "{verify:#}");
    assert!(
        verify["error"]
            .as_str()
            .unwrap()
            .contains(&format!("replication {job_id} repairs it")),
        "{verify:#}"
    );

    let ended = held.release(&admin, &job);
    assert_eq!(ended["state"], "succeeded", "{ended}");
    let r = replica_at(&admin, &vault, "spare");
    assert_eq!(r["state"], "active", "{r}");
    assert_eq!(std::fs::read(&at_spare).unwrap(), pack);
}

/// The replica of `vault` at `destination`, as the API lists it.
fn replica_at(admin: &Caller<'_>, vault: &str, destination: &str) -> serde_json::Value {
    let listed = admin
        .get(&format!("/api/v1/vaults/{vault}/replicas"))
        .expect(200);
    let found = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["destination"] == destination);
    found
        .cloned()
        .unwrap_or_else(|| panic!("no replica at {destination}: {listed}"))
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

/// Destinations `local` (the primary), `spare` and `third`; no scheduled replication.
fn with_two_replicas(c: &mut loop_server::config::Config) {
    support::with_destinations(c, &["local", "spare", "third"]);
    c.jobs.scheduler_seconds = 86_400;
}

/// A vault with replicas at `spare` and `third` (in that order), holding the packs `packs`
/// (name, bytes), all replicated: (its tenant, the vault).
fn vault_with_two_replicas(
    server: &Server,
    admin: &Caller<'_>,
    packs: &[(&str, &[u8])],
) -> (String, String) {
    let (tenant, vault) = customer_with_vault(admin, "Two Replicas", None);
    let writer = holder(server, admin, &tenant, &vault, &["backup"]);
    for (name, bytes) in packs {
        writer.put("data", name, bytes).expect(201);
    }
    for destination in ["spare", "third"] {
        admin
            .post(
                &format!("/api/v1/vaults/{vault}/replicas"),
                json!({ "destination": destination }),
            )
            .expect(201);
    }
    // The second replication is one of its own, for both replicas.
    replicate(admin, &vault);
    replicate(admin, &vault);
    (tenant, vault)
}

/// A replication of `vault` asked for now, held once it brought the first replica up to date:
/// the second replica's configuration becomes a pipe, where the job waits as it lists that
/// replica (only it reads that place). (The job, the pipe.)
fn replication_held_at_the_second(
    server: &Server,
    admin: &Caller<'_>,
    vault: &str,
) -> (serde_json::Value, HeldAtPipe) {
    let pipe = server.data_dir.join("third").join(vault).join("config");
    std::fs::remove_file(&pipe).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let job = admin
        .post(&format!("/api/v1/vaults/{vault}/replication"), json!({}))
        .expect(202);
    let mut waited = 0;
    while !waits_on_a_pipe() {
        waited += 1;
        assert!(waited < 3000, "the job never listed the second replica");
        std::thread::sleep(Duration::from_millis(20));
    }
    (job, HeldAtPipe(pipe))
}

/// A job held at a pipe it opened for reading.
struct HeldAtPipe(std::path::PathBuf);

impl HeldAtPipe {
    /// Lets the job go on (the pipe reads as an empty configuration, which the job replaces
    /// with the primary's) and waits for its end.
    fn release(self, admin: &Caller<'_>, job: &serde_json::Value) -> serde_json::Value {
        // A writer that opens (without waiting: a reader waits) lets the reader go on.
        use std::os::unix::fs::OpenOptionsExt as _;
        let writer = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&self.0)
            .expect("the job waits on the pipe");
        let ended = admin.job_ended(job["id"].as_str().unwrap());
        drop(writer);
        ended
    }
}

/// Whether a thread of this process (where the server runs) waits in the kernel for a
/// pipe's writer to open it.
fn waits_on_a_pipe() -> bool {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("wchan"))
            .is_ok_and(|w| w.trim() == "wait_for_partner")
    })
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

/// Promoting a replica drops what it lacks, and the replication that follows makes the old
/// primary match: under a retention lock, refused while the primary still holds the vault.
#[test]
fn a_replica_lacking_what_the_lock_holds_is_promoted_only_once_the_primary_is_gone() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Locked", None);
    let (replicas, replica) = with_replica(&admin, &vault);
    replicate(&admin, &vault);
    admin
        .put(
            &format!("/api/v1/vaults/{vault}/retention-lock"),
            json!({ "days": 7 }),
        )
        .expect(200);
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

/// A replication under way copies from the old primary into the replica and, at its end,
/// would mark the old primary in step: promotion waits for it.
#[test]
fn a_replica_is_not_promoted_while_a_replication_runs() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Busy", None);
    let (replicas, replica) = with_replica(&admin, &vault);
    replicate(&admin, &vault);
    // Another node runs a replication of the vault.
    let state = server.state.clone();
    let (t, v) = (tenant.clone(), vault.clone());
    server.block_on(async move {
        let mut tx = state.db.begin().await.unwrap();
        let work = loop_server::jobs::Work {
            runner: loop_server::db::jobs::Runner::Server,
            tenant_id: &t,
            kind: loop_api::JobKind::Replication,
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
