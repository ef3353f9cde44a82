//! The agent protocol: enrolment codes work once and expire; a device token reaches only its
//! own device's jobs (another device's job is a 404); a claim's reports name its fence, and
//! a backup whose agent stopped reporting is abandoned.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Server;
use support::agent::{agent, claimed_backup, enrol, new_code};
use support::vault::customer_with_vault;

/// A fresh enrolment code of `tenant`, valid `minutes`.
#[test]
fn a_device_token_reaches_only_its_own_jobs_and_reports_under_the_jobs_fence() {
    let server = Server::start();
    let admin = server.admin();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", None);
    let (bravo, _) = customer_with_vault(&admin, "Bravo", None);
    let (device_a, token_a) = enrol(&server, &admin, &alpha, "alpha-pc");
    let (_, token_b) = enrol(&server, &admin, &bravo, "bravo-pc");

    // A code works once; an expired one is refused the same way.
    let code = new_code(&admin, &alpha, 5);
    let enrol_with = |code: &str| {
        server.call(
            "post",
            "/agent/v1/enroll",
            None,
            Some(&json!({ "code": code, "name": "x" })),
        )
    };
    enrol_with(&code).expect(200);
    enrol_with(&code).expect_problem(403, "enrolment_refused");
    let late = new_code(&admin, &alpha, 5);
    server.advance(Duration::from_secs(6 * 60));
    enrol_with(&late).expect_problem(403, "enrolment_refused");
    enrol_with(&format!("lpc_{}", "0".repeat(64))).expect_problem(403, "enrolment_refused");

    let admin = server.admin();
    let item = admin
        .post(
            "/api/v1/items",
            json!({ "tenant_id": alpha, "device_id": device_a, "vault_id": vault,
                    "name": "docs", "paths": ["/srv/docs"] }),
        )
        .expect(201);
    let item_id = item["id"].as_str().unwrap();
    // The heartbeat tells the device its items.
    let config = agent(
        &server,
        &token_a,
        "/agent/v1/heartbeat",
        json!({ "version": "1.0" }),
    )
    .expect(200);
    assert_eq!(config["items"][0]["id"], item_id);
    let config_b = agent(
        &server,
        &token_b,
        "/agent/v1/heartbeat",
        json!({ "version": "1.0" }),
    )
    .expect(200);
    assert_eq!(config_b["items"], json!([]));
    // A management session is not an agent credential, nor is a token without a device.
    server
        .call(
            "post",
            "/agent/v1/heartbeat",
            Some(&admin.secret),
            Some(&json!({ "version": "1" })),
        )
        .expect_problem(401, "token_required");

    let job = admin
        .post(&format!("/api/v1/items/{item_id}/run"), json!({}))
        .expect(202);
    let job_id = job["id"].as_str().unwrap();
    // Bravo's device sees nothing to do and cannot touch alpha's job.
    assert_eq!(
        agent(&server, &token_b, "/agent/v1/jobs/claim", json!({})).status,
        204
    );
    for path in ["report", "finish"] {
        agent(
            &server,
            &token_b,
            &format!("/agent/v1/jobs/{job_id}/{path}"),
            json!({ "fence": 1, "state": "succeeded" }),
        )
        .expect_problem(404, "not_found");
    }
    let claimed = agent(&server, &token_a, "/agent/v1/jobs/claim", json!({})).expect(200);
    assert_eq!(claimed["job"]["id"], job_id);
    assert_eq!(claimed["item"]["id"], item_id);
    let fence = claimed["fence"].as_i64().unwrap();
    assert_eq!(
        agent(&server, &token_a, "/agent/v1/jobs/claim", json!({})).status,
        204,
        "a running job is not claimed twice"
    );
    let report = |fence: i64, body: Value| {
        let mut b = body;
        b["fence"] = fence.into();
        agent(
            &server,
            &token_a,
            &format!("/agent/v1/jobs/{job_id}/report"),
            b,
        )
    };
    report(fence + 1, json!({})).expect_problem(409, "lease_lost");
    let lease = report(
        fence,
        json!({ "level": "info", "message": "reading /srv/docs",
                "progress": { "bytes_done": 10, "files_done": 1 } }),
    )
    .expect(200);
    assert_eq!(lease["cancel_requested"], false);
    let shown = admin.get(&format!("/api/v1/jobs/{job_id}")).expect(200);
    assert_eq!(shown["state"], "running");
    assert_eq!(shown["progress"]["files_done"], 1);
    let log = admin.get(&format!("/api/v1/jobs/{job_id}/log")).expect(200);
    assert_eq!(log[0]["message"], "reading /srv/docs");

    let finish = |fence: i64, state: &str| {
        agent(
            &server,
            &token_a,
            &format!("/agent/v1/jobs/{job_id}/finish"),
            json!({ "fence": fence, "state": state, "summary": { "files": 1 } }),
        )
    };
    finish(fence, "running").expect_problem(400, "invalid_request");
    assert_eq!(finish(fence, "succeeded").status, 204);
    finish(fence, "failed").expect_problem(409, "lease_lost");
    let done = admin.get(&format!("/api/v1/jobs/{job_id}")).expect(200);
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["summary"]["files"], 1);

    // A cancel asked through the API reaches the agent with its next report; the agent
    // then ends the job as cancelled.
    let third = admin
        .post(&format!("/api/v1/items/{item_id}/run"), json!({}))
        .expect(202);
    let third_id = third["id"].as_str().unwrap();
    let claimed = agent(&server, &token_a, "/agent/v1/jobs/claim", json!({})).expect(200);
    let fence = claimed["fence"].as_i64().unwrap();
    let asked = admin
        .post(&format!("/api/v1/jobs/{third_id}/cancel"), json!({}))
        .expect(200);
    assert_eq!(asked["cancel_requested"], true);
    let lease = agent(
        &server,
        &token_a,
        &format!("/agent/v1/jobs/{third_id}/report"),
        json!({ "fence": fence }),
    )
    .expect(200);
    assert_eq!(lease["cancel_requested"], true);
    assert_eq!(
        agent(
            &server,
            &token_a,
            &format!("/agent/v1/jobs/{third_id}/finish"),
            json!({ "fence": fence, "state": "cancelled" }),
        )
        .status,
        204
    );
    let cancelled = admin.get(&format!("/api/v1/jobs/{third_id}")).expect(200);
    assert_eq!(cancelled["state"], "cancelled");

    // A backup whose agent stops reporting is abandoned once its lease lapses.
    let again = admin
        .post(&format!("/api/v1/items/{item_id}/run"), json!({}))
        .expect(202);
    agent(&server, &token_a, "/agent/v1/jobs/claim", json!({})).expect(200);
    server.advance(Duration::from_secs(
        server.state.config.jobs.lease_seconds + 1,
    ));
    let r = server
        .block_on(loop_server::jobs::scheduler::tick(&server.state))
        .unwrap();
    assert_eq!(r.abandoned, vec![again["id"].as_str().unwrap().to_string()]);
    let admin = server.admin();
    let gone = admin
        .get(&format!("/api/v1/jobs/{}", again["id"].as_str().unwrap()))
        .expect(200);
    assert_eq!(gone["state"], "abandoned");
}

/// A restore asked for while another waits on the same device: the same one is answered
/// with the job already queued; another one (another place, another snapshot) is refused,
/// not folded into the first and lost.
#[test]
fn a_second_restore_of_other_settings_is_refused_while_one_is_open() {
    let server = Server::start();
    let admin = server.admin();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", None);
    let (device, _) = enrol(&server, &admin, &alpha, "alpha-pc");
    let restore = |target: &str| {
        admin.post(
            &format!("/api/v1/devices/{device}/restore"),
            json!({ "vault_id": vault, "snapshot": "latest", "target": target }),
        )
    };
    let first = restore("/srv/a").expect(202)["id"].clone();
    assert_eq!(restore("/srv/a").expect(202)["id"], first);
    restore("/srv/b").expect_problem(409, "job_open");
    let jobs = admin
        .get(&format!("/api/v1/jobs?tenant_id={alpha}&kind=restore"))
        .expect(200);
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
}

/// A job whose answer to its agent failed goes back to the queue as it was, and is taken
/// again under a new fence.
#[test]
fn a_job_given_back_after_a_failed_answer_is_claimed_again() {
    let server = Server::start();
    let admin = server.admin();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", None);
    let first = claimed_backup(&server, &admin, &alpha, &vault, "alpha-pc");
    let back = server.block_on(loop_server::db::jobs::give_back(
        &server.state.db.pool,
        &first.job_id,
        first.fence,
    ));
    assert!(back.unwrap());
    let job = admin
        .get(&format!("/api/v1/jobs/{}", first.job_id))
        .expect(200);
    assert_eq!(
        (&job["state"], &job["attempts"]),
        (&json!("queued"), &json!(0))
    );
    let again = agent(&server, &first.token, "/agent/v1/jobs/claim", json!({})).expect(200);
    assert_eq!(again["job"]["id"], json!(first.job_id));
    assert!(again["fence"].as_i64().unwrap() > first.fence);
}

/// An enrolment code lasts as long as asked, at most a week.
#[test]
fn an_enrolment_code_lasts_at_most_a_week() {
    let server = Server::start();
    let admin = server.admin();
    let (alpha, _) = customer_with_vault(&admin, "Alpha", None);
    for minutes in [0, 7 * 24 * 60 + 1] {
        admin
            .post(
                "/api/v1/devices/enroll-codes",
                json!({ "tenant_id": alpha, "expires_in_minutes": minutes }),
            )
            .expect(400);
    }
    let enrol_with = |code: &str, name: &str| {
        server.call(
            "post",
            "/agent/v1/enroll",
            None,
            Some(&json!({ "code": code, "name": name })),
        )
    };
    let (early, late) = (
        new_code(&admin, &alpha, 7 * 24 * 60),
        new_code(&admin, &alpha, 7 * 24 * 60),
    );
    server.advance(Duration::from_secs(7 * 24 * 3600 - 60));
    enrol_with(&early, "in-time").expect(200);
    server.advance(Duration::from_secs(120));
    enrol_with(&late, "too-late").expect_problem(403, "enrolment_refused");
}

#[test]
fn a_job_abandoned_while_its_agent_was_cut_off_ends_as_the_agent_reports_once_back() {
    let server = Server::start_with(|c| c.jobs.scheduler_seconds = 86_400);
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Alpha", None);
    let held = claimed_backup(&server, &admin, &tenant, &vault, "pc");
    let (token, job_id, fence) = (held.token, held.job_id.as_str(), held.fence);

    // The agent is cut off past its lease: the job is abandoned.
    server.advance(Duration::from_secs(61));
    let ticked = server
        .block_on(loop_server::jobs::scheduler::tick(&server.state))
        .unwrap();
    assert_eq!(ticked.abandoned, vec![job_id.to_string()]);
    let admin = server.admin();
    assert_eq!(
        admin.get(&format!("/api/v1/jobs/{job_id}")).expect(200)["state"],
        "abandoned"
    );

    // Back, it cannot report progress on the job any more, but its result is taken.
    agent(
        &server,
        &token,
        &format!("/agent/v1/jobs/{job_id}/report"),
        json!({ "fence": fence, "message": "still here" }),
    )
    .expect_problem(409, "lease_lost");
    let finish = |f: i64| {
        agent(
            &server,
            &token,
            &format!("/agent/v1/jobs/{job_id}/finish"),
            json!({ "fence": f, "state": "succeeded", "summary": { "files": 3 } }),
        )
    };
    finish(fence + 1).expect_problem(409, "lease_lost");
    assert_eq!(finish(fence).status, 204);
    let done = admin.get(&format!("/api/v1/jobs/{job_id}")).expect(200);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(done["summary"]["files"], 3);
    assert_eq!(done["error"], serde_json::Value::Null);
    finish(fence).expect_problem(409, "lease_lost");
}

/// An agent at work sends no heartbeat, only its job's reports: the device is heard from
/// all the same, so it is not shown offline (nor raised as such) during a long job.
#[test]
fn a_device_reporting_on_its_job_is_heard_from() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Alpha", None);
    let held = claimed_backup(&server, &admin, &tenant, &vault, "pc");
    let seen = || {
        admin
            .get(&format!("/api/v1/devices?tenant_id={tenant}"))
            .expect(200)
            .as_array()
            .unwrap()[0]["last_seen_at"]
            .clone()
    };
    let before = seen();
    server.advance(Duration::from_secs(30));
    agent(
        &server,
        &held.token,
        &format!("/agent/v1/jobs/{}/report", held.job_id),
        json!({ "fence": held.fence, "message": "half way" }),
    )
    .expect(200);
    let after = seen();
    assert_ne!(after, before, "the report was heard: {after}");
    let after: chrono::DateTime<chrono::Utc> = serde_json::from_value(after).unwrap();
    assert!(
        after.timestamp_millis() >= server.state.now() - 1_000,
        "{after}"
    );
}
