//! How long the service keeps its own records (docs/OPERATIONS.md): events and their
//! delivery log `notify.keep_days` (90), a job's log lines `jobs.log_days` (30) after the job
//! ended. Younger records stay.

mod support;

use std::time::{Duration, Instant};

use support::Server;
use support::vault::{customer_with_vault, token};

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn events_are_kept_ninety_days() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Acme", None);
    let notifier_pass = || {
        server
            .block_on(loop_server::notify::pass(&server.state, true))
            .expect("a notifier pass");
    };
    token(&admin, &tenant, &["manage"], None);
    notifier_pass();
    assert_eq!(admin.events(&tenant, "token-created").len(), 1);

    server.advance(89 * DAY);
    let admin = server.admin();
    token(&admin, &tenant, &["manage"], None);
    notifier_pass();
    assert_eq!(admin.events(&tenant, "token-created").len(), 2);
    server.advance(2 * DAY);
    notifier_pass();
    let admin = server.admin();
    let left = admin.events(&tenant, "token-created");
    assert_eq!(left.len(), 1, "only the 2-day-old event stays: {left:#?}");
}

/// A job that ran on this server and logged what it did: the vault erasure of a deleted
/// vault. Its ID, once it ended.
fn ended_job_with_a_log(server: &Server, name: &str) -> String {
    let admin = server.admin();
    let (_, vault) = customer_with_vault(&admin, name, None);
    let job = admin.delete(&format!("/api/v1/vaults/{vault}")).expect(202)["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(admin.job_ended(&job)["state"], "succeeded");
    job
}

#[test]
fn a_jobs_log_is_kept_thirty_days_after_it_ended() {
    let server = Server::start();
    let old = ended_job_with_a_log(&server, "Old");
    server.advance(29 * DAY);
    let young = ended_job_with_a_log(&server, "Young");
    server.advance(2 * DAY);
    // The runner sweeps old logs as it polls (hourly by its clock).
    let log = |job: &str| {
        server
            .admin()
            .get(&format!("/api/v1/jobs/{job}/log"))
            .expect(200)
            .as_array()
            .unwrap()
            .len()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while log(&old) > 0 {
        assert!(
            Instant::now() < deadline,
            "the 31-day-old log was never dropped"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(log(&young) > 0, "the 2-day-old log went too");
    // The job itself stays.
    let job = server
        .admin()
        .get(&format!("/api/v1/jobs/{old}"))
        .expect(200);
    assert_eq!(job["state"], "succeeded");
}
