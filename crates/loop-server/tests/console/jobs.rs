//! Jobs in the browser: "Back up now" on the dashboard queues the item's backup and opens its
//! job, whose page then follows the agent's progress, log and end live (server-sent events)
//! without a reload; a queued job is cancelled from its page. Both are audited as the API's.

use std::time::{Duration, Instant};

use serde_json::json;

use super::support::agent::{agent, enrol};
use super::support::{Caller, Customer, Member, Server, USER_PASSWORD};
use super::{browser, sign_in};

/// Waits (up to 30 s) until `f` holds, re-reading the page as it is (never reloading it).
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_backup_run_from_the_dashboard_is_followed_live_to_its_end_and_another_is_cancelled() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let (device, token) = enrol(&server, &admin, &acme.tenant_id, "laptop-7");
    let item = admin
        .post(
            "/api/v1/items",
            json!({ "tenant_id": acme.tenant_id, "device_id": device, "vault_id": acme.vault_id,
                    "name": "photos", "paths": ["/home/ana/photos"] }),
        )
        .expect(201);
    let item = item["id"].as_str().unwrap().to_string();
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, &acme.member("operator").email, USER_PASSWORD);
    b.click(&format!("tr[data-item='{item}'] button"));
    let page = b.wait_for_path("/jobs/");
    let job = page.trim_start_matches("/jobs/").to_string();
    assert_eq!(b.text("#job-state"), "Queued");

    // The agent takes the job, reports progress and a line, and ends it: the page follows.
    let claimed = agent(&server, &token, "/agent/v1/jobs/claim", json!({})).expect(200);
    assert_eq!(claimed["job"]["id"], json!(job));
    let fence = claimed["fence"].as_i64().unwrap();
    let report = |body: serde_json::Value| {
        agent(
            &server,
            &token,
            &format!("/agent/v1/jobs/{job}/report"),
            body,
        )
        .expect(200);
    };
    report(
        json!({ "fence": fence, "level": "info", "message": "reading /home/ana/photos",
                   "progress": { "bytes_done": 1048576, "bytes_total": 4194304,
                                 "files_done": 3, "files_total": 12 } }),
    );
    until("the page shows the job running", || {
        b.text("#job-state") == "Running"
    });
    until("the page shows when it started", || {
        !b.text("#job-started").is_empty()
    });
    until("the page shows the progress", || {
        b.text("#job-done") == "3 of 12 files, 1.0 MiB of 4.0 MiB"
    });
    until("the log line arrives", || {
        b.text("#job-log").contains("reading /home/ana/photos")
    });
    assert_eq!(b.attr("#job-progress", "value").as_deref(), Some("1048576"));
    // Loaded again now, the page shows that line itself; the events bring only the next.
    b.goto(&format!("/jobs/{job}"));
    until("the page listens again", || {
        b.text("#job-state") == "Running"
    });
    report(
        json!({ "fence": fence, "level": "warning", "message": "skipped /home/ana/photos/tmp" }),
    );
    until("the second line arrives", || {
        b.text("#job-log").contains("skipped /home/ana/photos/tmp")
    });
    agent(
        &server,
        &token,
        &format!("/agent/v1/jobs/{job}/finish"),
        json!({ "fence": fence, "state": "succeeded", "summary": { "files_new": 12 } }),
    )
    .expect(204);
    until("the page shows the job succeeded", || {
        b.text("#job-state") == "Succeeded"
    });
    until("the page stops listening", || b.has("#job[data-ended]"));
    // Each line once: the one the page was loaded with is not sent again.
    let lines = b.run("return document.querySelectorAll('#job-log tr').length;");
    assert_eq!(lines.as_u64(), Some(2), "{}", b.text("#job-log"));
    let ran = admin
        .get(&format!(
            "/api/v1/audit?tenant_id={}&action=item.run",
            acme.tenant_id
        ))
        .expect(200);
    assert!(ran.to_string().contains(&job), "{ran}");

    // A second run, cancelled from its page while it waits for the agent.
    b.goto(&format!("/t/{}", acme.tenant_id));
    b.click(&format!("tr[data-item='{item}'] button"));
    let page = b.wait_for_path("/jobs/");
    let second = page.trim_start_matches("/jobs/").to_string();
    assert_ne!(second, job);
    b.click(&format!("form[action='/jobs/{second}/cancel'] button"));
    b.wait_for_path(&format!("/jobs/{second}?done=cancel"));
    assert_eq!(b.text("#job-state"), "Cancelled");
    assert!(!b.has(&format!("form[action='/jobs/{second}/cancel']")));
    let cancelled = admin.get(&format!("/api/v1/jobs/{second}")).expect(200);
    assert_eq!(cancelled["state"], "cancelled");

    // A third run fails while its page follows it: the page shows why, and no cancel button.
    b.goto(&format!("/t/{}", acme.tenant_id));
    b.click(&format!("tr[data-item='{item}'] button"));
    let third = b
        .wait_for_path("/jobs/")
        .trim_start_matches("/jobs/")
        .to_string();
    assert_eq!(
        b.text("#job-error"),
        "",
        "no error shown before one happens"
    );
    let claimed = agent(&server, &token, "/agent/v1/jobs/claim", json!({})).expect(200);
    assert_eq!(claimed["job"]["id"], json!(third));
    agent(
        &server,
        &token,
        &format!("/agent/v1/jobs/{third}/finish"),
        json!({ "fence": claimed["fence"], "state": "failed", "error": "the disk is full" }),
    )
    .expect(204);
    until("the page shows why the job failed", || {
        b.text("#job-error") == "the disk is full"
    });
    assert_eq!(b.text("#job-state"), "Failed");
    assert_eq!(b.text("#job-cancel"), "", "{}", b.text("main"));

    // The tenant's jobs list shows both, newest first.
    b.goto(&format!("/t/{}/jobs", acme.tenant_id));
    let rows = b.text("main table tbody");
    assert!(rows.find("Cancelled") < rows.find("Succeeded"), "{rows}");
}

#[test]
fn an_auditor_reads_a_job_but_cannot_run_or_cancel_one() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let auditor = super::support::console::session_cookie(&acme.member("auditor").secret);
    let page = server.page(&format!("/jobs/{}", acme.job_id), &auditor, "en");
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("/cancel"),
        "no cancel form for an auditor"
    );
    let token = page.form_token();
    for path in [
        format!("/jobs/{}/cancel", acme.job_id),
        format!("/items/{}/run", acme.item_id),
    ] {
        let r = server.post_page(&path, &auditor, &[("csrf", &token)]);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    let job = admin
        .get(&format!("/api/v1/jobs/{}", acme.job_id))
        .expect(200);
    assert_eq!(job["cancel_requested"], false);
    assert_eq!(job["state"], "queued");
}

#[test]
fn a_jobs_live_events_end_when_its_reader_signs_out() {
    events_end_when(|server, _, operator| {
        server
            .call("post", "/api/v1/auth/logout", Some(&operator.secret), None)
            .expect(204);
    });
}

#[test]
fn a_jobs_live_events_end_when_its_reader_loses_the_role() {
    events_end_when(|_, (admin, acme), operator| {
        admin
            .delete(&format!(
                "/api/v1/users/{}/roles/{}",
                operator.user_id, acme.binding_id
            ))
            .expect(204);
    });
}

/// The operator of a customer follows a job's live events; after `what` (to the operator,
/// by the provider's admin), the stream ends while the job goes on.
fn events_end_when(what: impl FnOnce(&Server, (&Caller<'_>, &Customer), &Member)) {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let operator = acme.member("operator");
    let cookie = super::support::console::session_cookie(&operator.secret);
    let mut events = server.events(&format!("/jobs/{}/events", acme.job_id), &cookie);
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("event: job") {
        let n = std::io::Read::read(&mut events, &mut buf).expect("the first event");
        assert!(n > 0, "the stream ended before its first event");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("Queued"), "{seen}");
    what(&server, (&admin, &acme), operator);
    // The job goes on (queued for a day), but the reader's stream ends (a live stream sends
    // a keep-alive comment every 15 s and would never end by itself).
    let (ended, end) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = ended.send(std::io::Read::read_to_end(&mut events, &mut rest).is_ok());
    });
    assert_eq!(
        end.recv_timeout(Duration::from_secs(60)),
        Ok(true),
        "the stream went on"
    );
    let job = admin
        .get(&format!("/api/v1/jobs/{}", acme.job_id))
        .expect(200);
    assert_eq!(job["state"], "queued");
}
