//! Jobs through the API: jobs are listed, shown and cancelled; a runner killed or that lost
//! its job leaves nothing half done, and the run that takes the job over finishes it.
//!
//! `erasures.rs`: a deleted vault is gone at once and an erasure job removes its objects,
//! continuing after its runner was killed and however often it fails; a removed replica
//! comes back only after its erasure.

#[path = "../support/mod.rs"]
mod support;

mod erasures;

use std::time::Duration;

use support::vault::{back_up_into, customer_with_vault};
use support::{Server, files_under};

/// Leaves job `id` as a runner that took it and was killed leaves it: `running`, under a
/// lease (an hour) that nobody renews.
async fn hold_as_killed(server: &Server, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jobs SET state = 'running', lease_owner = 'killed', fence = fence + 1,
        attempts = 1, lease_expires_at = $1 WHERE id = $2",
    )
    .bind(server.state.now() + 3_600_000)
    .bind(id)
    .execute(&server.state.db.pool)
    .await
    .map(drop)
}

/// A node that runs no jobs on the data directory `data` (with the local destinations
/// `destinations`, when given): what it queues waits in the database.
fn api_only_on(data: &std::path::Path, destinations: &[&str]) -> Server {
    Server::start_with(|c| {
        c.data_dir = data.to_path_buf();
        if !destinations.is_empty() {
            support::with_destinations(c, destinations);
        }
        c.jobs.concurrency = 0;
    })
}

/// Stops a node that runs no jobs and starts one that does on the same database (configured
/// by `configure`), which takes over the jobs a killed runner held. On SQLite (one process)
/// it releases the dead run's leases as it starts; on PostgreSQL, where other nodes may be
/// alive, it waits for the lease to lapse.
fn take_over(api_only: Server, configure: impl FnOnce(&mut loop_server::Config)) -> Server {
    let database = api_only.stop();
    let shared = database.is_some();
    let worker = Server::start_on(database, configure);
    if shared {
        worker.advance(Duration::from_secs(3_660));
    }
    worker
}

/// A retention run records the snapshots it is about to remove: when its runner is killed
/// after removing some, the run that takes the job over puts those in the audit log too,
/// so every removed snapshot is there exactly once.
#[test]
fn snapshots_a_killed_retention_run_removed_are_audited_by_the_run_that_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let api_only = api_only_on(&data, &[]);
    let admin = api_only.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Kept", None);
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let snapshots: Vec<String> = (0..4u8)
        .map(|n| {
            std::fs::write(src.join("file"), [n; 100]).unwrap();
            back_up_into(&api_only, &vault, &src)
        })
        .collect();
    let policy = admin
        .post(
            "/api/v1/policies",
            serde_json::json!({ "tenant_id": tenant, "vault_id": vault, "keep": { "last": 1 } }),
        )
        .expect(201);
    let policy_id = policy["id"].as_str().unwrap();
    let job = admin
        .post(
            &format!("/api/v1/vaults/{vault}/retention"),
            serde_json::json!({}),
        )
        .expect(202);
    let job_id = job["id"].as_str().unwrap().to_string();

    // A runner claimed the job, recorded the three older snapshots as about to go, removed
    // two and was killed before it could say so.
    let doomed = snapshots[..3].to_vec();
    api_only
        .block_on(async {
            let pool = &api_only.state.db.pool;
            hold_as_killed(&api_only, &job_id).await?;
            loop_server::db::removals::record(
                pool,
                &tenant,
                &vault,
                &job_id,
                Some(policy_id),
                &doomed,
            )
            .await
        })
        .unwrap();
    let snapshot_dir = data.join("vaults").join(&vault).join("snapshots");
    for s in &doomed[..2] {
        std::fs::remove_file(snapshot_dir.join(s)).unwrap();
    }
    drop(admin);
    let worker = take_over(api_only, |c| c.data_dir = data.clone());
    let admin = worker.admin();
    let job = admin.job_ended(&job_id);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["attempts"], 2);
    assert_eq!(job["summary"]["snapshots_removed"], 1, "{job:#}");
    assert!(!snapshot_dir.join(&doomed[2]).exists());
    assert!(snapshot_dir.join(&snapshots[3]).exists());

    let mut audited: Vec<(String, String)> = admin
        .audit_events()
        .into_iter()
        .filter(|e| e.action == "snapshot.delete")
        .map(|e| {
            assert_eq!(e.details["policy_id"], policy_id);
            (e.object_id.unwrap(), e.actor_id.unwrap())
        })
        .collect();
    audited.sort();
    let mut expected: Vec<(String, String)> =
        doomed.iter().map(|s| (s.clone(), job_id.clone())).collect();
    expected.sort();
    assert_eq!(audited, expected, "each removed snapshot once, by the job");
    let left = worker
        .block_on(loop_server::db::removals::of_vault(
            &worker.state.db.pool,
            &vault,
        ))
        .unwrap();
    assert!(left.is_empty(), "every record is settled: {left:?}");
}

#[test]
fn a_queued_job_can_be_cancelled_and_the_sweep_runs_at_start() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Acme", None);
    let job = server.plant_job(&tenant);
    let after = admin
        .post(&format!("/api/v1/jobs/{job}/cancel"), serde_json::json!({}))
        .expect(200);
    assert_eq!(after["state"], "cancelled");
    admin
        .post(&format!("/api/v1/jobs/{job}/cancel"), serde_json::json!({}))
        .expect_problem(409, "job_ended");
    let cancelled = admin
        .get(&format!("/api/v1/jobs?tenant_id={tenant}&state=cancelled"))
        .expect(200);
    assert_eq!(cancelled.as_array().unwrap().len(), 1);
    // The staging sweep of the local destination was queued at start, by the server, for
    // the provider; it ran.
    let sweeps = admin.get("/api/v1/jobs?kind=staging-sweep").expect(200);
    let sweep = sweeps
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["target_id"] == "local" && j["trigger"] == "system")
        .expect("a sweep of the local destination")
        .clone();
    let sweep = admin.job_ended(sweep["id"].as_str().unwrap());
    assert_eq!(sweep["state"], "succeeded", "{sweep:#}");
    assert_eq!(sweep["summary"]["staging_files_removed"], 0);
    // A malformed filter is a 400, an unknown job a 404.
    admin
        .get("/api/v1/jobs?state=sleeping")
        .expect_problem(400, "invalid_request");
    admin
        .get(&format!("/api/v1/jobs/jb_{}", "0".repeat(32)))
        .expect_problem(404, "not_found");
}

#[test]
fn a_verify_job_checks_a_managed_vault_and_fails_on_damage() {
    let server = Server::start();
    let admin = server.admin();
    let (_, vault) = customer_with_vault(&admin, "Checked", None);
    let src = tempfile::tempdir().unwrap();
    // Incompressible, so the data pack is the largest object of the vault.
    for n in 0..20 {
        let bytes = loop_testkit::data::noise(8192, n);
        std::fs::write(src.path().join(format!("f{n}")), bytes).unwrap();
    }
    back_up_into(&server, &vault, src.path());
    let verify = |percent: u32| {
        let job = admin
            .post(
                &format!("/api/v1/vaults/{vault}/verify"),
                serde_json::json!({ "read_data_percent": percent }),
            )
            .expect(202);
        assert_eq!(job["kind"], "verify");
        admin.job_ended(job["id"].as_str().unwrap())
    };
    let job = verify(100);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["summary"]["snapshots"], 1);
    assert_eq!(job["summary"]["packs_read"], job["summary"]["packs"]);
    assert_eq!(job["progress"]["files_done"], job["summary"]["packs"]);

    // A damaged data pack: the structure alone still looks whole, reading the data does not.
    let packs = files_under(&server.data_dir.join("vaults").join(&vault).join("data"));
    let pack = packs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(pack, bytes).unwrap();
    assert_eq!(verify(0)["state"], "succeeded");
    let job = verify(100);
    assert_eq!(job["state"], "failed", "{job:#}");
    assert!(
        job["error"].as_str().unwrap().contains("damaged"),
        "{job:#}"
    );
    let log = admin
        .get(&format!("/api/v1/jobs/{}/log", job["id"].as_str().unwrap()))
        .expect(200);
    let name = pack.file_name().unwrap().to_str().unwrap();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|l| l["level"] == "error" && l["message"].as_str().unwrap().contains(name)),
        "{log:#}"
    );
    // Out of range, and a vault whose key the customer holds, are refused.
    admin
        .post(
            &format!("/api/v1/vaults/{vault}/verify"),
            serde_json::json!({ "read_data_percent": 101 }),
        )
        .expect_problem(400, "invalid_request");
    let tenant = job["tenant_id"].as_str().unwrap();
    let own_key = admin
        .post(
            "/api/v1/vaults",
            serde_json::json!({ "tenant_id": tenant, "name": "own-key", "destination": "local",
                                "key_custody": "customer" }),
        )
        .expect(201);
    admin
        .post(
            &format!("/api/v1/vaults/{}/verify", own_key["id"].as_str().unwrap()),
            serde_json::json!({}),
        )
        .expect_problem(409, "customer_key");
}

/// A job's writes to a vault go through the vault's object claims and are fenced by the
/// job's lease: while the runner holds the job they land and count in the vault's usage;
/// once the job was taken from it (its lease expired), they are refused and nothing lands.
#[test]
fn a_runner_that_lost_its_job_writes_nothing_more_to_a_vault() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use loop_repo::{FileKind, Storage as _};
    use loop_server::db::jobs::{Claimant, claim_due};
    use loop_server::vault_objects::{Fence, ServerStorage};

    let server = Server::start_with(|c| c.jobs.concurrency = 0);
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Fenced", None);
    server.plant_job(&tenant);
    server.advance(Duration::from_secs(2 * 86_400));
    let pool = &server.state.db.pool;
    let held = server
        .block_on(claim_due(
            pool,
            Claimant {
                runner: "runner-a",
                node: Some("node-a"),
            },
            server.state.now(),
            1000,
            1,
        ))
        .unwrap()
        .claimed
        .remove(0);
    let lost = Arc::new(AtomicBool::new(false));
    let dest = server.state.destinations.get("local").unwrap().clone();
    let storage = server
        .block_on(async {
            ServerStorage::new(
                &server.state,
                dest,
                &vault,
                Fence {
                    job_id: held.job.id.clone(),
                    fence: held.fence,
                    lost: lost.clone(),
                },
            )
        })
        .unwrap();
    let used = || {
        server
            .admin()
            .get(&format!("/api/v1/vaults/{vault}"))
            .expect(200)["used_bytes"]
            .as_u64()
            .unwrap()
    };
    let dir = server
        .data_dir
        .join("vaults")
        .join(&vault)
        .join("snapshots");
    let (first, second) = ("ab".repeat(32), "cd".repeat(32));

    let before = used();
    storage
        .put(FileKind::Snapshot, &first, vec![7; 1000])
        .expect("a held job writes");
    assert!(dir.join(&first).exists());
    assert_eq!(
        used(),
        before + 1000,
        "the write counts in the vault's usage"
    );

    // The lease (which each write renews for `jobs.lease_seconds`) runs out and the job is
    // taken from runner A (by runner B, for its second attempt): its fence moves on.
    server.advance(Duration::from_secs(120));
    server
        .block_on(claim_due(
            pool,
            Claimant {
                runner: "runner-b",
                node: Some("node-b"),
            },
            server.state.now(),
            60_000,
            1,
        ))
        .unwrap();
    let err = storage
        .put(FileKind::Snapshot, &second, vec![7; 1000])
        .unwrap_err();
    assert!(err.to_string().contains("lost its lease"), "{err}");
    assert!(
        lost.load(Ordering::Relaxed),
        "the runner learns it lost the job"
    );
    assert!(!dir.join(&second).exists(), "nothing landed");
    let err = storage.delete(FileKind::Snapshot, &first).unwrap_err();
    assert!(err.to_string().contains("lost its lease"), "{err}");
    assert!(dir.join(&first).exists(), "nothing was deleted");
    assert_eq!(used(), before + 1000);
}

/// Every run counts as an attempt, a passing failure as much as a runner that disappeared:
/// a job whose runner disappears during its last attempt is abandoned, and says so.
#[test]
fn a_job_whose_runner_disappears_during_its_last_attempt_is_abandoned() {
    use loop_server::db::jobs::{Claimant, Claimed, claim_due, retry_at};

    let server = Server::start_with(|c| {
        c.jobs.concurrency = 0;
        c.jobs.max_attempts = 2;
    });
    let (tenant, _) = customer_with_vault(&server.admin(), "Abandoned", None);
    server.plant_job(&tenant);
    let pool = &server.state.db.pool;
    let claim = || -> Option<Claimed> {
        let runner = Claimant {
            runner: "runner-a",
            node: Some("node-a"),
        };
        let report = claim_due(pool, runner, server.state.now(), 60_000, 1);
        server.block_on(report).unwrap().claimed.pop()
    };
    let first = claim().expect("the job");
    let id = first.job.id.clone();
    let retried = retry_at(pool, &id, first.fence, server.state.now(), "passing");
    assert!(server.block_on(retried).unwrap());
    let second = claim().expect("its second attempt");
    assert_eq!(second.job.id, id);
    // The runner disappears: its lease lapses, and the next claim finds the job.
    server.advance(Duration::from_secs(120));
    assert!(claim().is_none(), "not taken over for a third attempt");
    let job = server
        .admin()
        .get(&format!("/api/v1/jobs/{id}"))
        .expect(200);
    assert_eq!(
        (&job["state"], &job["attempts"], &job["error"]),
        (
            &serde_json::json!("abandoned"),
            &serde_json::json!(2),
            &serde_json::json!(
                "its runner disappeared during its last attempt (jobs.max_attempts)"
            )
        ),
        "{job}"
    );
}

/// Lines written to one job's log at the same moment (an agent's reporter beside its job)
/// are all kept, each under its own number.
#[test]
fn log_lines_written_at_once_are_all_kept() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Acme", None);
    let job = server.plant_job(&tenant);
    let pool = &server.state.db.pool;
    let written = server.block_on(async {
        let fence: i64 = sqlx::query_scalar("SELECT fence FROM jobs WHERE id = $1")
            .bind(&job)
            .fetch_one(pool)
            .await
            .unwrap();
        let now = server.state.now();
        let lines: Vec<String> = (0..16).map(|i| format!("line {i}")).collect();
        futures_util::future::join_all(
            lines
                .iter()
                .map(|line| loop_server::db::jobs::log(pool, &job, fence, "info", line, now)),
        )
        .await
    });
    for w in &written {
        assert!(matches!(w, Ok(true)), "{w:?}");
    }
    let log = admin.get(&format!("/api/v1/jobs/{job}/log")).expect(200);
    let mut got: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..16).map(|i| format!("line {i}")).collect();
    want.sort();
    assert_eq!(got, want);
}
