//! A replication goes round for what the vault receives while it runs, and over its
//! replicas again for what arrived while a later one was copied or for one a verify found
//! damaged meanwhile.

use std::time::Duration;

use serde_json::json;

use super::support::vault::*;
use super::support::{self, Caller, Server};
use super::{replicate, verified, with_replica};

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

/// A replication that began before a verify found its replica damaged may have listed the
/// copies the verify dropped: its end leaves the replica `damaged` (reads keep away from it,
/// and the job, or the next, repairs it). One that began after the verify ended makes it
/// `active`.
#[test]
fn a_replication_that_began_before_a_verify_found_damage_leaves_the_replica_damaged() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (_, vault) = customer_with_vault(&admin, "Verified Meanwhile", None);
    let (_, replica) = with_replica(&admin, &vault);
    replicate(&admin, &vault);
    assert_eq!(replica_at(&admin, &vault, "spare")["state"], "active");
    use loop_server::db::replicas::{synced, verified};
    let pool = &server.state.db.pool;
    let now = server.state.now();
    server
        .block_on(verified(pool, &replica, false, now))
        .unwrap();
    assert_eq!(replica_at(&admin, &vault, "spare")["state"], "damaged");
    // The replica after a replication that began at `from` ended.
    let synced_from = |from: i64| {
        server
            .block_on(synced(pool, &replica, from, now + 5))
            .unwrap();
        replica_at(&admin, &vault, "spare")
    };
    // Began a moment before the verify ended, or as it ended (not after it either).
    for from in [now - 1, now] {
        let r = synced_from(from);
        assert_eq!(
            r["state"], "damaged",
            "began at {from}, verified at {now}: {r}"
        );
    }
    let r = synced_from(now + 1);
    assert_eq!(r["state"], "active", "{r}");
    assert!(r["synced_at"].is_string(), "{r}");
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

/// A replication asked for while one runs is answered by the running one, which goes over
/// its replicas again: here the replica lost a copy after the running job had listed it,
/// and a replica added meanwhile (whose first replication is that job too) is brought up.
#[test]
fn a_replication_asked_for_while_one_runs_is_answered_by_that_job() {
    // Paced so the second of two packs waits four seconds for its turn.
    const PACK: usize = 256 * 1024;
    let server = Server::start_with(|c| {
        support::with_destinations(c, &["local", "spare", "third"]);
        c.replication.bytes_per_sec = Some(PACK as u64 / 4);
    });
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Replicated", None);
    let (writer, old, name) = replicated_pack(&server, &admin, &tenant, &vault);
    let at = |dir: &str, name: &str| {
        walk(&server.data_dir.join(dir).join(&vault))
            .into_iter()
            .find(|p| p.file_name().is_some_and(|n| n == name))
    };
    let at_replica = at("spare", &name).expect("the first pack at the replica");
    let late: Vec<String> = [[8u8; 32], [9u8; 32]]
        .into_iter()
        .map(|id| {
            let name = hex::encode(id);
            writer.put("data", &name, &big_pack(id, PACK)).expect(201);
            name
        })
        .collect();
    let replication = format!("/api/v1/vaults/{vault}/replication");
    let running = admin.post(&replication, json!({})).expect(202)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Once one pack is copied, the job has listed the replica and waits for the other's turn.
    let mut job = serde_json::Value::Null;
    for _ in 0..400 {
        job = admin.get(&format!("/api/v1/jobs/{running}")).expect(200);
        if job["progress"]["files_done"] == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(job["progress"]["files_done"], 1, "{job:#}");

    // The replica's disk loses the first pack; another replica is added; a replication is
    // asked for.
    std::fs::remove_file(&at_replica).unwrap();
    admin
        .post(
            &format!("/api/v1/vaults/{vault}/replicas"),
            json!({ "destination": "third" }),
        )
        .expect(201);
    let asked = admin.post(&replication, json!({})).expect(202);
    assert_eq!(
        asked["id"],
        running.as_str(),
        "the request joins the running job"
    );
    let ended = admin.job_ended(&running);
    assert_eq!(ended["state"], "succeeded", "{ended:#}");
    assert_eq!(
        std::fs::read(&at_replica).ok(),
        Some(old),
        "the job that answered the request left the replica without the copy it lost"
    );
    for name in late.iter().chain([&name]) {
        assert!(at("third", name).is_some(), "{name} at the added replica");
    }
}
