//! Notifications end to end: events raised by what happens (a failed job, a missed item, a
//! full vault, a new token or sign-in), matched to targets up the tenant tree, delivered to
//! a webhook receiver that checks the signature and to a real SMTP server, retried when the
//! receiver fails, never lost. The tests drive the server's clock and the notifier's pass;
//! nothing waits on wall time except for a delivery to arrive.
//!
//! `events.rs`: what raises which event and which targets hear it; `deliveries.rs`: how a
//! delivery is tried, retried and given up; `sharing.rs`: deliveries kept apart from others. Helpers both use are here.

#[path = "../support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use loop_server::config::SmtpSecurity;
use loop_testkit::webhook::{Received, Receiver};
use serde_json::{Value, json};
use support::agent::{agent, claimed_backup, enrol};
use support::smtp::SmtpSink;
use support::vault::{blake3_hex, customer_with_vault, holder, index_object};
use support::{Caller, Server, USER_PASSWORD};

/// Checks `Loop-Signature` the way docs/PROTOCOL.md tells a receiver to.
fn signature_holds(secret: &str, r: &Received) -> bool {
    use aws_lc_rs::hmac;
    let key_bytes = hex::decode(secret.strip_prefix("lwh_").unwrap()).unwrap();
    let header = &r.headers["loop-signature"];
    let (t, v1) = header.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&r.body);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes);
    hmac::verify(&key, &signed, &hex::decode(v1).unwrap()).is_ok()
}

fn start(configure: impl FnOnce(&mut loop_server::Config)) -> Server {
    Server::start_with(|c| {
        c.notify.allow_private_webhooks = true;
        // The server's own notifier and scheduler wait; the test runs the passes.
        c.notify.poll_seconds = 86_400;
        c.notify.check_seconds = 86_400;
        c.jobs.scheduler_seconds = 86_400;
        configure(c);
    })
}

/// [`start`] with mail going to `sink`.
fn mailing_to(sink: &SmtpSink) -> Server {
    let port = sink.port;
    start(|c| {
        c.mail.host = Some("127.0.0.1".into());
        c.mail.port = Some(port);
        c.mail.security = SmtpSecurity::None;
        c.mail.from = "Loop Backup <backup@provider.example>".into();
    })
}

/// An e-mail target "team" of `tenant` for `recipients`.
fn team(caller: &Caller<'_>, tenant: &str, recipients: &[&str]) -> String {
    let body =
        json!({ "tenant_id": tenant, "name": "team", "email": { "recipients": recipients } });
    caller.post("/api/v1/notify/targets", body).expect(201)["target"]["id"]
        .as_str()
        .unwrap()
        .into()
}

/// [`team`], with a test notice sent and tried once.
fn team_tried_once(server: &Server, caller: &Caller<'_>, tenant: &str, to: &[&str]) -> String {
    let target = team(caller, tenant, to);
    caller
        .post(&format!("/api/v1/notify/targets/{target}/test"), json!({}))
        .expect(202);
    pass_until(server, "the first try", || {
        deliveries(caller, &target)[0]["last_error"].is_string()
    });
    target
}

/// Runs notifier passes until `done` holds (a delivery may be held by the server's own
/// notifier for a moment).
fn pass_until(server: &Server, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        server
            .block_on(loop_server::notify::pass(&server.state, true))
            .expect("a notifier pass");
        if done() {
            return;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A device enrolled in `tenant` whose agent was heard from (so it is watched for going
/// quiet); its ID.
fn heard_from(server: &Server, admin: &Caller<'_>, tenant: &str, name: &str) -> String {
    let (device, token) = enrol(server, admin, tenant, name);
    agent(
        server,
        &token,
        "/agent/v1/heartbeat",
        json!({ "version": "1.0" }),
    )
    .expect(200);
    device
}

fn pass(server: &Server) {
    server
        .block_on(loop_server::notify::pass(&server.state, true))
        .expect("a notifier pass");
}

fn deliveries(caller: &Caller<'_>, target: &str) -> Vec<Value> {
    caller
        .get(&format!("/api/v1/notify/deliveries?target_id={target}"))
        .expect(200)
        .as_array()
        .unwrap()
        .clone()
}

fn webhook_target(caller: &Caller<'_>, tenant: &str, url: &str, extra: Value) -> (String, String) {
    let mut body = json!({ "tenant_id": tenant, "name": "hook", "webhook": { "url": url } });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let created = caller.post("/api/v1/notify/targets", body).expect(201);
    (
        created["target"]["id"].as_str().unwrap().into(),
        created["webhook_secret"].as_str().unwrap().into(),
    )
}

/// A backup job of a new item on an enrolled device of `tenant`, ended by its agent as
/// `end` says (the finish request's state and error or summary); returns the job ID.
fn ended_backup(
    server: &Server,
    admin: &Caller<'_>,
    (tenant, vault): (&str, &str),
    mut end: Value,
) -> String {
    let held = claimed_backup(server, admin, tenant, vault, "laptop");
    end["fence"] = json!(held.fence);
    let status = agent(
        server,
        &held.token,
        &format!("/agent/v1/jobs/{}/finish", held.job_id),
        end,
    )
    .status;
    assert_eq!(status, 204);
    held.job_id
}

/// [`ended_backup`] as failed with `error`.
fn failed_backup(
    server: &Server,
    admin: &Caller<'_>,
    tenant: &str,
    vault: &str,
    error: &str,
) -> String {
    let end = json!({ "state": "failed", "error": error });
    ended_backup(server, admin, (tenant, vault), end)
}

fn email_target(caller: &Caller<'_>, tenant: &str, to: &str, extra: Value) -> String {
    let mut body = json!({ "tenant_id": tenant, "name": to, "email": { "recipients": [to] } });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    caller.post("/api/v1/notify/targets", body).expect(201)["target"]["id"]
        .as_str()
        .unwrap()
        .into()
}

mod deliveries;
mod events;
mod sharing;
mod targets;
