//! Notifications end to end: events raised by what happens (a failed job, a missed item, a
//! full vault, a new token or sign-in), matched to targets up the tenant tree, delivered to
//! a webhook receiver that checks the signature and to a real SMTP server, retried when the
//! receiver fails, never lost. The tests drive the server's clock and the notifier's pass;
//! nothing waits on wall time except for a delivery to arrive.

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

#[test]
fn a_backup_with_warnings_raises_job_warnings_and_a_clean_one_nothing() {
    let server = start(|_| {});
    let admin = server.admin();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", None);
    let summary = json!({ "snapshot_id": "5e".repeat(32), "files": 2 });
    let clean = json!({ "state": "succeeded", "summary": summary });
    ended_backup(&server, &admin, (&alpha, &vault), clean);
    pass(&server);
    assert!(admin.events(&alpha, "job-warnings").is_empty());
    let warned = json!({ "state": "succeeded-with-warnings", "summary": summary });
    let job = ended_backup(&server, &admin, (&alpha, &vault), warned);
    pass(&server);
    let raised = admin.events(&alpha, "job-warnings");
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert_eq!(raised[0]["severity"], "warning");
    assert_eq!(raised[0]["subject_id"], job.as_str());
}

#[test]
fn a_receiver_that_fails_twice_gets_one_delivery_that_succeeds_on_the_third_try() {
    let server = start(|_| {});
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Alpha", None);
    let receiver = Receiver::start(&[500, 503]);
    let (target, secret) = webhook_target(&admin, &tenant, &receiver.url(), json!({}));
    // After its creation the URL shows without its path (where chat services keep a secret),
    // and the audit log never had it.
    let shown = admin
        .get(&format!("/api/v1/notify/targets/{target}"))
        .expect(200);
    assert_eq!(
        shown["webhook"]["url"],
        format!("http://127.0.0.1:{}/…", receiver.port)
    );
    let audit = admin
        .get(&format!("/api/v1/audit?tenant_id={tenant}"))
        .expect(200);
    assert!(audit.to_string().contains("notify_target.create"));
    assert!(!audit.to_string().contains("/hook"), "{audit:#}");

    let queued = admin
        .post(&format!("/api/v1/notify/targets/{target}/test"), json!({}))
        .expect(202);
    assert_eq!(queued["state"], "queued");
    let delivery = queued["id"].as_str().unwrap().to_string();
    let state_of = || {
        deliveries(&admin, &target)
            .into_iter()
            .find(|d| d["id"] == delivery.as_str())
            .expect("the delivery is in the log")
    };
    // (The server's own notifier, woken by the test-send, may be the one that tries.)
    pass_until(&server, "the first try", || {
        state_of()["response_status"] == 500
    });
    let first = state_of();
    assert_eq!(first["state"], "queued", "{first:#}");
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["response_status"], 500);
    assert!(first["last_error"].as_str().unwrap().contains("500"));
    // Not tried again before its time.
    pass(&server);
    assert_eq!(receiver.got().len(), 1);
    server.advance(Duration::from_secs(16));
    pass_until(&server, "the second try", || {
        state_of()["response_status"] == 503
    });
    assert_eq!(receiver.got().len(), 2);
    server.advance(Duration::from_secs(31));
    pass_until(&server, "the third try", || {
        state_of()["state"] == "succeeded"
    });

    let log = deliveries(&admin, &target);
    assert_eq!(log.len(), 1, "exactly one delivery: {log:#?}");
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["response_status"], 200);
    let got = receiver.got();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert!(signature_holds(&secret, r), "the signature holds: {r:?}");
        assert_eq!(
            r.headers["loop-delivery"], delivery,
            "one delivery ID on every try"
        );
        assert_eq!(r.headers["loop-event"], "test");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["event"]["kind"], "test");
        assert_eq!(body["tenant"]["name"], "Alpha");
    }
    // A body changed in transit, or another target's secret, does not verify.
    let mut forged = got[0].clone();
    forged.body.push(b' ');
    assert!(!signature_holds(&secret, &forged));
    let (_, other_secret) = webhook_target(&admin, &tenant, &receiver.url(), json!({}));
    assert!(!signature_holds(&other_secret, &got[0]));
}

#[test]
fn a_delivery_that_keeps_failing_is_tried_until_give_up_hours_then_marked_failed() {
    let server = start(|c| c.notify.give_up_hours = 2);
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Alpha", None);
    let receiver = Receiver::start(&[500; 64]);
    let (target, _) = webhook_target(&admin, &tenant, &receiver.url(), json!({}));
    let queued = admin
        .post(&format!("/api/v1/notify/targets/{target}/test"), json!({}))
        .expect(202);
    let delivery = queued["id"].as_str().unwrap().to_string();
    // (Signed in anew after each move of the clock: a session does not outlive the hours.)
    let state_of = |admin: &Caller<'_>| {
        deliveries(admin, &target)
            .into_iter()
            .find(|d| d["id"] == delivery.as_str())
            .expect("the delivery is in the log")
    };
    pass_until(&server, "the first try", || {
        state_of(&admin)["attempts"] == 1
    });
    // An hour later, within the two hours, it is tried again and still waits for another.
    server.advance(Duration::from_secs(3600));
    let admin = server.admin();
    pass_until(&server, "a try an hour later", || {
        state_of(&admin)["attempts"] == 2
    });
    assert_eq!(state_of(&admin)["state"], "queued");
    // The first try past the two hours is the last.
    server.advance(Duration::from_secs(3600 + 60));
    let admin = server.admin();
    pass_until(&server, "the delivery given up", || {
        state_of(&admin)["state"] == "failed"
    });
    let last = state_of(&admin);
    assert_eq!(last["attempts"], 3, "{last:#}");
    assert!(
        last["last_error"].as_str().unwrap().contains("500"),
        "{last:#}"
    );
    server.advance(Duration::from_secs(86_400));
    pass(&server);
    assert_eq!(
        receiver.got().len(),
        3,
        "a failed delivery is not tried again"
    );
    assert_eq!(state_of(&server.admin())["state"], "failed");
}

#[test]
fn a_failed_backup_reaches_the_targets_that_match_it_up_the_tree_and_no_others() {
    let server = start(|_| {});
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", None);
    let (bravo, _) = customer_with_vault(&admin, "Bravo", None);
    let receiver = Receiver::start(&[]);
    let url = receiver.url();
    // Hears its customers' errors; its own only with include_children off.
    let (watching, _) = webhook_target(&admin, &provider, &url, json!({ "min_severity": "error" }));
    let (own_only, _) = webhook_target(
        &admin,
        &provider,
        &url,
        json!({ "include_children": false }),
    );
    let (alpha_failures, _) =
        webhook_target(&admin, &alpha, &url, json!({ "kinds": ["job-failed"] }));
    let (alpha_info_other_kind, _) =
        webhook_target(&admin, &alpha, &url, json!({ "kinds": ["vault-quota"] }));
    let (bravo_all, _) = webhook_target(&admin, &bravo, &url, json!({ "min_severity": "info" }));

    let job = failed_backup(&server, &admin, &alpha, &vault, "pre-command exited with 3");
    pass_until(&server, "both deliveries", || receiver.got().len() >= 2);
    let raised = admin.events(&alpha, "job-failed");
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert_eq!(raised[0]["severity"], "error");
    assert_eq!(raised[0]["subject_id"], job.as_str());
    assert_eq!(raised[0]["details"]["target_name"], "docs");
    assert_eq!(raised[0]["details"]["device_name"], "laptop");
    assert!(
        raised[0]["message"]
            .as_str()
            .unwrap()
            .contains("pre-command exited with 3")
    );
    for (t, hears) in [
        (&watching, true),
        (&own_only, false),
        (&alpha_failures, true),
        (&alpha_info_other_kind, false),
        (&bravo_all, false),
    ] {
        let log: Vec<Value> = deliveries(&admin, t)
            .into_iter()
            .filter(|d| d["event_kind"] == "job-failed")
            .collect();
        assert_eq!(log.len(), usize::from(hears), "target {t}: {log:#?}");
    }
    // Another pass raises nothing twice.
    pass(&server);
    assert_eq!(admin.events(&alpha, "job-failed").len(), 1);
    assert_eq!(receiver.got().len(), 2);
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

#[test]
fn mail_tells_of_a_failure_in_the_recipients_language_sends_the_summary_and_waits_out_a_relay_outage()
 {
    let Some(mut sink) = SmtpSink::start() else {
        return;
    };
    let port = sink.port;
    let server = start(|c| {
        c.mail.host = Some("127.0.0.1".into());
        c.mail.port = Some(port);
        c.mail.security = SmtpSecurity::None;
        c.mail.from = "Loop Backup <backup@provider.example>".into();
    });
    let admin = server.admin();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", None);
    admin
        .patch(
            &format!("/api/v1/tenants/{alpha}"),
            json!({ "time_zone": "Europe/Amsterdam" }),
        )
        .expect(200);
    email_target(
        &admin,
        &alpha,
        "ops@alpha.example",
        json!({ "email": {
        "recipients": ["ops@alpha.example"], "language": "nl" } }),
    );
    // The summary goes to two people; one of them asked for processing of their data to
    // be restricted, so it leaves them out.
    let aside = admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": alpha, "email": "aside@alpha.example", "first_name": "Aside",
                    "last_name": "Doe", "role": "operator", "password": USER_PASSWORD }),
        )
        .expect(201)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let restricted = admin
        .put(
            &format!("/api/v1/users/{aside}/restriction"),
            json!({ "restricted": true }),
        )
        .expect(200);
    assert_eq!(restricted["restricted"], true);
    let summary_target = email_target(
        &admin,
        &alpha,
        "boss@alpha.example",
        json!({ "summary": "daily", "kinds": ["token-created"],
                "email": { "recipients": ["boss@alpha.example", "aside@alpha.example"] } }),
    );

    failed_backup(&server, &admin, &alpha, &vault, "schijf vol");
    pass(&server);
    let notice = sink.wait_for("ops@alpha.example");
    assert_eq!(
        notice["subject"],
        "[Loop Backup] Alpha: Back-up mislukt: docs"
    );
    assert_eq!(notice["content_type"], "multipart/alternative");
    let text = notice["text"].as_str().unwrap();
    assert!(text.contains("Fout: schijf vol"), "{text}");
    assert!(text.contains("Apparaat: laptop"), "{text}");
    assert!(
        text.contains("Dit is een servicebericht") && text.contains("Het is geen reclame."),
        "a service message says it is not marketing: {text}"
    );
    // The time is Amsterdam's (CET or CEST), not UTC.
    assert!(text.contains(" CET") || text.contains(" CEST"), "{text}");
    let html = notice["html"].as_str().expect("an HTML part");
    assert!(html.contains("<h1>Back-up mislukt: docs</h1>"), "{html}");
    assert_eq!(
        sink.count_to("boss@alpha.example"),
        0,
        "its matcher does not take failures"
    );

    // The summary comes at the next 07:00 Amsterdam time, in English, with the item. The
    // clock moves to a minute past it, so the one after is a day away whatever the hour.
    let next = admin
        .get(&format!("/api/v1/notify/targets/{summary_target}"))
        .expect(200);
    assert_eq!(next["summary"], "daily");
    let now = server.state.now();
    let due =
        loop_server::notify::next_summary(loop_api::SummaryPeriod::Daily, "Europe/Amsterdam", now)
            .unwrap();
    server.advance(Duration::from_millis((due - now + 60_000) as u64));
    pass(&server);
    let admin = server.admin();
    let summary = sink.wait_for("boss@alpha.example");
    assert_eq!(summary["subject"], "[Loop Backup] Alpha: Daily summary");
    let text = summary["text"].as_str().unwrap();
    assert!(text.contains("docs | laptop | failed |"), "{text}");
    assert!(text.contains("Failed: 1"), "{text}");
    assert!(
        text.contains(":00 CET") || text.contains(":00 CEST"),
        "{text}"
    );
    pass(&server);
    assert_eq!(sink.count_to("boss@alpha.example"), 1, "one summary a day");
    assert_eq!(
        sink.count_to("aside@alpha.example"),
        0,
        "a restricted person is left out of summary reports"
    );

    // The relay is down: the test notice waits, and goes out once the relay is back.
    sink.stop();
    let queued = admin
        .post(
            &format!("/api/v1/notify/targets/{summary_target}/test"),
            json!({}),
        )
        .expect(202);
    let id = queued["id"].as_str().unwrap().to_string();
    let state = || {
        deliveries(&admin, &summary_target)
            .into_iter()
            .find(|d| d["id"] == id.as_str())
            .unwrap()
    };
    pass_until(&server, "a failed try", || {
        state()["last_error"].is_string()
    });
    let waiting = state();
    assert_eq!(waiting["state"], "queued", "{waiting:#}");
    sink.restart();
    server.advance(Duration::from_secs(16));
    pass_until(&server, "the late notice", || {
        state()["state"] == "succeeded"
    });
    // (The restarted relay numbers its messages afresh: look for the one by its subject.)
    let subjects: Vec<Value> = sink
        .messages()
        .iter()
        .filter(|m| m["rcpt_tos"][0] == "boss@alpha.example")
        .map(|m| m["subject"].clone())
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects.contains(&json!(
            "[Loop Backup] Alpha: Test notification: this target works"
        )),
        "{subjects:?}"
    );
}

#[test]
fn a_scheduled_item_without_a_success_raises_item_missed_once() {
    let server = start(|_| {});
    let admin = server.admin();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", None);
    let (device, _) = enrol(&server, &admin, &alpha, "laptop");
    let item = admin
        .post(
            "/api/v1/items",
            json!({ "tenant_id": alpha, "device_id": device, "vault_id": vault,
                    "name": "docs", "paths": ["/srv/docs"], "schedule": "daily",
                    "window_seconds": 3600 }),
        )
        .expect(201);
    let item_id = item["id"].as_str().unwrap();
    pass(&server);
    assert!(admin.events(&alpha, "item-missed").is_empty());
    // Past the next midnight, its window (1 h) and the grace (1 h).
    server.advance(Duration::from_secs(86_400 + 2 * 3600 + 60));
    pass(&server);
    let admin = server.admin();
    let missed = admin.events(&alpha, "item-missed");
    assert_eq!(missed.len(), 1, "{missed:#?}");
    assert_eq!(missed[0]["subject_id"], item_id);
    assert_eq!(missed[0]["severity"], "error");
    assert_eq!(missed[0]["details"]["device_name"], "laptop");
    assert_eq!(missed[0]["details"]["last_success_at"], Value::Null);
    pass(&server);
    assert_eq!(admin.events(&alpha, "item-missed").len(), 1, "raised once");
}

#[test]
fn a_full_vault_a_quiet_device_a_new_token_and_a_new_browser_each_raise_their_event() {
    let server = start(|_| {});
    let admin = server.admin();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", Some(4000));
    let backup = holder(&server, &admin, &alpha, &vault, &["backup"]);
    // `holder` made a token: that raised token-created.
    let created = admin.events(&alpha, "token-created");
    assert_eq!(created.len(), 1, "{created:#?}");
    assert_eq!(created[0]["severity"], "info");

    let base = admin.get(&format!("/api/v1/vaults/{vault}")).expect(200)["used_bytes"]
        .as_u64()
        .unwrap() as usize;
    let small = index_object(10);
    backup.put("index", &blake3_hex(&small), &small).expect(201);
    pass(&server);
    assert!(admin.events(&alpha, "vault-quota").is_empty(), "under 90%");
    let big = index_object(3700 - base);
    backup.put("index", &blake3_hex(&big), &big).expect(201);
    pass(&server);
    let full = admin.events(&alpha, "vault-quota");
    assert_eq!(full.len(), 1, "{full:#?}");
    assert_eq!(full[0]["details"]["quota_bytes"], 4000);
    pass(&server);
    assert_eq!(admin.events(&alpha, "vault-quota").len(), 1, "once a day");

    let (device, token) = enrol(&server, &admin, &alpha, "laptop");
    agent(
        &server,
        &token,
        "/agent/v1/heartbeat",
        json!({ "version": "1.0" }),
    )
    .expect(200);
    server.advance(Duration::from_secs(23 * 3600));
    pass(&server);
    let admin = server.admin();
    assert!(admin.events(&alpha, "device-offline").is_empty());
    server.advance(Duration::from_secs(3600 + 60));
    pass(&server);
    let admin = server.admin();
    let offline = admin.events(&alpha, "device-offline");
    assert_eq!(offline.len(), 1, "{offline:#?}");
    assert_eq!(offline[0]["subject_id"], device.as_str());

    // The provider admin signs in again from another browser.
    let provider = admin.provider_tenant_id();
    let before = admin.events(&provider, "sign-in-new-device").len();
    let again = server.sign_in_with(json!({
        "email": support::ADMIN_EMAIL, "password": support::ADMIN_PASSWORD,
    }));
    assert_eq!(
        again.events(&provider, "sign-in-new-device").len(),
        before,
        "same browser"
    );
    let reply = server.send(
        server
            .request(reqwest::Method::POST, "/api/v1/auth/login")
            .header(
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            )
            .json(&json!({ "email": support::ADMIN_EMAIL, "password": support::ADMIN_PASSWORD })),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let new = admin.events(&provider, "sign-in-new-device");
    assert_eq!(new.len(), before + 1, "{new:#?}");
    assert_eq!(new[0]["details"]["browser"], "Firefox 128.0");
}

#[test]
fn a_receiver_that_never_answers_holds_up_only_its_own_deliveries() {
    let server = start(|_| {});
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Alpha", None);
    // Takes connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/hook", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming() {
            held.push(c);
        }
    });
    let receiver = Receiver::start(&[]);
    // Both hear one event; the silent target's delivery is queued first, so a sender
    // taking deliveries one by one would wait for it to time out before trying the other.
    let hears = json!({ "min_severity": "info", "kinds": ["token-created"] });
    let (stuck, _) = webhook_target(&admin, &tenant, &silent_url, hears.clone());
    let (fine, _) = webhook_target(&admin, &tenant, &receiver.url(), hears);
    support::vault::token(&admin, &tenant, &["restore"], None);
    let state = server.state.clone();
    let passing = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(loop_server::notify::pass(&state, false))
            .expect("a notifier pass")
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.got().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the answering receiver got nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stuck_now = deliveries(&admin, &stuck);
    assert_eq!(stuck_now[0]["state"], "queued");
    assert_eq!(
        stuck_now[0]["last_error"],
        Value::Null,
        "the silent receiver's try has not even timed out: {stuck_now:#?}"
    );
    passing.join().unwrap();
    let stuck_after = deliveries(&admin, &stuck);
    assert!(
        stuck_after[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{stuck_after:#?}"
    );
    assert_eq!(deliveries(&admin, &fine)[0]["state"], "succeeded");
}
