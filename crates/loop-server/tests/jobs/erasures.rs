//! Erasure jobs: a deleted vault's or a removed replica's objects go, whatever happens to
//! the runner or the destination meanwhile.

use super::*;

#[test]
fn a_deleted_vaults_objects_are_erased_by_a_job_that_continues_after_its_runner_was_killed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A node that runs no jobs takes the deletion, so the job waits in the database.
    let api_only = api_only_on(&data, &[]);
    let admin = api_only.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Leaving", None);
    let vault_dir = data.join("vaults").join(&vault);
    let stored = files_under(&vault_dir);
    assert!(stored.len() >= 2, "config and key slot: {stored:?}");

    let job = admin.delete(&format!("/api/v1/vaults/{vault}")).expect(202);
    assert_eq!(job["kind"], "vault-erasure");
    assert_eq!(job["state"], "queued");
    assert_eq!(
        (&job["target_kind"], &job["target_id"]),
        (&"vault".into(), &vault.clone().into())
    );
    assert_eq!(job["tenant_id"], tenant.as_str());
    let job_id = job["id"].as_str().unwrap().to_string();
    // Gone at once for the API and the vault protocol; the objects are still there.
    admin
        .get(&format!("/api/v1/vaults/{vault}"))
        .expect_problem(404, "not_found");
    let listed = admin
        .get(&format!("/api/v1/jobs?tenant_id={tenant}"))
        .expect(200);
    assert_eq!(listed[0]["id"], job_id.as_str());
    // A vault erasure cannot be cancelled.
    admin
        .post(
            &format!("/api/v1/jobs/{job_id}/cancel"),
            serde_json::json!({}),
        )
        .expect_problem(409, "not_cancellable");
    let events = admin.audit_events();
    let deleted = events.iter().find(|e| e.action == "vault.delete").unwrap();
    assert_eq!(deleted.details["erasure_job_id"], job_id.as_str());

    // A runner claimed the job, deleted one object, and was killed: the job stays
    // `running` under a lease that nobody renews.
    api_only
        .block_on(hold_as_killed(&api_only, &job_id))
        .unwrap();
    std::fs::remove_file(&stored[0]).unwrap();
    drop(admin);

    // A node that runs jobs starts on the same database: it takes the job over and
    // finishes it.
    let worker = take_over(api_only, |c| c.data_dir = data.clone());
    let admin = worker.admin();
    let job = admin.job_ended(&job_id);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["attempts"], 2);
    assert_eq!(job["summary"]["objects_deleted"], stored.len() as u64 - 1);
    assert_eq!(job["progress"]["files_done"], stored.len() as u64 - 1);
    assert!(
        files_under(&vault_dir).is_empty(),
        "{:?}",
        files_under(&vault_dir)
    );
    let log = admin.get(&format!("/api/v1/jobs/{job_id}/log")).expect(200);
    let lines: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(
        lines[0].contains("previous runner disappeared"),
        "{lines:?}"
    );
    assert!(
        lines.last().unwrap().contains("holds nothing any more"),
        "{lines:?}"
    );
    // Ended: cancelling it is refused as such.
    admin
        .post(
            &format!("/api/v1/jobs/{job_id}/cancel"),
            serde_json::json!({}),
        )
        .expect_problem(409, "not_cancellable");
}

/// A vault erasure that fails on something passing (here its destination, not configured
/// on the node that runs it) more often than a job is tried is tried again, not left
/// `failed` with the vault's objects in place; it finishes once it can.
#[test]
fn a_vault_erasure_failing_more_often_than_a_job_is_tried_is_tried_until_it_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let api_only = api_only_on(&data, &["local", "spare"]);
    let admin = api_only.admin();
    let (tenant, _) = customer_with_vault(&admin, "Acme", None);
    let vault = admin
        .post(
            "/api/v1/vaults",
            serde_json::json!({ "tenant_id": tenant, "name": "spare", "destination": "spare" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let vault_dir = data.join("spare").join(&vault);
    assert!(!files_under(&vault_dir).is_empty());
    let job = admin.delete(&format!("/api/v1/vaults/{vault}")).expect(202);
    let job_path = format!("/api/v1/jobs/{}", job["id"].as_str().unwrap());
    drop(admin);

    // A node without that destination, where a job gets one attempt.
    let lacking = take_over(api_only, |c| {
        c.data_dir = data.clone();
        c.jobs.max_attempts = 1;
    });
    let admin = lacking.admin();
    let mut tried = admin.get(&job_path).expect(200);
    for _ in 0..1200 {
        if tried["attempts"].as_u64() >= Some(1) && tried["state"] != "running" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        tried = admin.get(&job_path).expect(200);
    }
    assert_eq!(tried["state"], "queued", "{tried:#}");
    assert!(
        tried["error"].as_str().unwrap().contains("not configured"),
        "{tried:#}"
    );
    assert!(!files_under(&vault_dir).is_empty());
    drop(admin);

    let able = take_over(lacking, |c| {
        c.data_dir = data.clone();
        support::with_spare(c);
        c.jobs.max_attempts = 1;
    });
    able.advance(Duration::from_secs(60));
    let ended = able.admin().job_ended(job["id"].as_str().unwrap());
    assert_eq!(ended["state"], "succeeded", "{ended:#}");
    assert!(
        files_under(&vault_dir).is_empty(),
        "{:?}",
        files_under(&vault_dir)
    );
}

#[test]
fn a_removed_replica_is_not_added_again_while_its_erasure_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A node that runs no jobs: the removed replica's erasure waits in the database.
    let api_only = api_only_on(&data, &["local", "spare"]);
    let admin = api_only.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let add = |admin: &support::Caller<'_>| {
        admin.post(
            &format!("/api/v1/vaults/{vault}/replicas"),
            serde_json::json!({ "destination": "spare" }),
        )
    };
    let replica = add(&admin).expect(201)["id"].as_str().unwrap().to_string();
    let erasure = admin
        .delete(&format!("/api/v1/vaults/{vault}/replicas/{replica}"))
        .expect(202);
    assert_eq!(erasure["kind"], "replica-erasure");
    // Added again now, the erasure would delete what the new replica is being seeded with.
    add(&admin).expect_problem(409, "replica_erasing");
    // Nothing else removes what the replica holds, so its erasure is not cancelled; nor is
    // a key rotation, which stopped halfway would leave the old key opening vaults.
    let rotation = admin
        .post(
            &format!("/api/v1/tenants/{tenant}/key-rotation"),
            serde_json::json!({}),
        )
        .expect(202);
    for job in [&erasure, &rotation] {
        let id = job["id"].as_str().unwrap();
        admin
            .post(&format!("/api/v1/jobs/{id}/cancel"), serde_json::json!({}))
            .expect_problem(409, "not_cancellable");
        assert_eq!(
            admin.get(&format!("/api/v1/jobs/{id}")).expect(200)["state"],
            "queued"
        );
    }
    drop(admin);
    let database = api_only.stop();

    // Once a node that runs jobs has finished the erasure, the replica can come back.
    let worker = Server::start_on(database, |c| {
        c.data_dir = data.clone();
        support::with_spare(c);
    });
    let admin = worker.admin();
    let ended = admin.job_ended(erasure["id"].as_str().unwrap());
    assert_eq!(ended["state"], "succeeded", "{ended:#}");
    add(&admin).expect(201);
}

/// A replica removed while a replication runs: the replication is asked to stop, and the
/// replica's erasure waits until it has, so nothing is copied into the replica after the
/// erasure found it empty.
#[test]
fn a_replica_removed_while_a_replication_runs_is_erased_once_the_replication_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let configure = |c: &mut loop_server::Config| {
        c.data_dir = data.clone();
        support::with_spare(c);
    };
    let api_only = Server::start_with(|c| {
        configure(c);
        c.jobs.concurrency = 0;
    });
    let admin = api_only.admin();
    let (_, vault) = customer_with_vault(&admin, "Replicated", None);
    let replica = admin
        .post(
            &format!("/api/v1/vaults/{vault}/replicas"),
            serde_json::json!({ "destination": "spare" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let replication = admin
        .post(
            &format!("/api/v1/vaults/{vault}/replication"),
            serde_json::json!({}),
        )
        .expect(202)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A runner took the replication and is copying.
    api_only
        .block_on(hold_as_killed(&api_only, &replication))
        .unwrap();
    let erasure = admin
        .delete(&format!("/api/v1/vaults/{vault}/replicas/{replica}"))
        .expect(202)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let asked = admin
        .get(&format!("/api/v1/jobs/{replication}"))
        .expect(200);
    assert_eq!(asked["cancel_requested"], true, "{asked:#}");
    drop(admin);
    let worker = take_over(api_only, configure);
    let admin = worker.admin();
    let erased = admin.job_ended(&erasure);
    assert_eq!(erased["state"], "succeeded", "{erased:#}");
    let stopped = admin
        .get(&format!("/api/v1/jobs/{replication}"))
        .expect(200);
    assert_eq!(stopped["state"], "cancelled", "{stopped:#}");
    assert!(
        files_under(&data.join("spare").join(&vault)).is_empty(),
        "nothing of the vault is left at the removed replica's destination"
    );
}
