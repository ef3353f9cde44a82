//! A delivery tried, retried until it succeeds or its time is up, and kept from holding up
//! the others.

use super::*;

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
fn mail_tells_of_a_failure_in_the_recipients_language_sends_the_summary_and_waits_out_a_relay_outage()
 {
    let Some(mut sink) = SmtpSink::start() else {
        return;
    };
    let server = mailing_to(&sink);
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
    // Another customer invites someone under the summary reader's address and restricts
    // them: that says nothing about who reads Alpha's mail.
    let bravo = admin.customer_tenant("Bravo");
    let namesake = admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": bravo, "email": "boss@alpha.example", "first_name": "Namesake",
                    "last_name": "Doe", "role": "operator" }),
        )
        .expect(201)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .put(
            &format!("/api/v1/users/{namesake}/restriction"),
            json!({ "restricted": true }),
        )
        .expect(200);
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

/// Each recipient of an e-mail target gets a message of their own, which names no one else.
/// A recipient the relay refuses for good holds up nobody and is named by its place in the
/// delivery's note; one refused for now (greylisted) gets it at the next try, and nobody
/// gets it twice.
#[test]
fn each_recipient_gets_their_own_message_and_a_refused_one_holds_up_nobody() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = mailing_to(&sink);
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Alpha", None);
    let to = [
        "ana@alpha.example",
        "refused-ben@alpha.example",
        "greylisted-cas@alpha.example",
        "dee@alpha.example",
    ];
    let target = team(&admin, &tenant, &to);
    let id = admin
        .post(&format!("/api/v1/notify/targets/{target}/test"), json!({}))
        .expect(202)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let state = || {
        deliveries(&admin, &target)
            .into_iter()
            .find(|d| d["id"] == id.as_str())
            .unwrap()
    };
    pass_until(&server, "the first try", || {
        state()["last_error"].is_string()
    });
    let first = state();
    assert_eq!(first["state"], "queued", "{first:#}");
    let error = first["last_error"].as_str().unwrap();
    assert!(
        error.contains("recipient 3") && error.contains("450"),
        "{error}"
    );
    assert!(
        error.contains("recipient 2") && error.contains("550"),
        "{error}"
    );
    assert!(!error.contains("alpha.example"), "{error}");
    for a in [to[0], to[3]] {
        let m = sink.wait_for(a);
        assert_eq!(m["rcpt_tos"], json!([a]), "{m:#}");
        assert_eq!(m["to"], a, "a message names its own recipient only");
    }
    assert_eq!(sink.count_to(to[2]), 0);

    server.advance(Duration::from_secs(16));
    pass_until(&server, "the greylisted recipient's try", || {
        state()["state"] == "succeeded"
    });
    sink.wait_for(to[2]);
    let done = state();
    let note = done["last_error"].as_str().unwrap();
    assert!(
        note.contains("recipient 2") && note.contains("550"),
        "{note}"
    );
    assert!(!note.contains("recipient 3"), "{note}");
    for a in [to[0], to[2], to[3]] {
        assert_eq!(sink.count_to(a), 1, "{a} got it once");
    }
    assert_eq!(sink.count_to(to[1]), 0);

    // A target whose every recipient is refused for good fails at once.
    let alone = email_target(&admin, &tenant, "refused-eve@alpha.example", json!({}));
    admin
        .post(&format!("/api/v1/notify/targets/{alone}/test"), json!({}))
        .expect(202);
    pass_until(&server, "the refusal", || {
        deliveries(&admin, &alone)[0]["state"] == "failed"
    });
    let failed = &deliveries(&admin, &alone)[0];
    assert_eq!(failed["attempts"], 1, "{failed:#}");
    assert!(
        failed["last_error"].as_str().unwrap().contains("550"),
        "{failed:#}"
    );
}

/// A target whose recipient list changes between two tries of a delivery (an admin's edit,
/// a person's erasure) is tried again for everyone on the new list: nobody is skipped for
/// a place that someone else had.
#[test]
fn a_recipient_list_changed_between_tries_skips_nobody() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = mailing_to(&sink);
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Alpha", None);
    let (late, sent, added) = (
        "greylisted-eli@alpha.example",
        "fay@alpha.example",
        "gus@alpha.example",
    );
    let target = team_tried_once(&server, &admin, &tenant, &[late, sent]);
    sink.wait_for(sent);
    // The one who has it leaves the list; someone joins it in front.
    admin
        .patch(
            &format!("/api/v1/notify/targets/{target}"),
            json!({ "email": { "recipients": [added, late] } }),
        )
        .expect(200);
    server.advance(Duration::from_secs(16));
    pass_until(&server, "the second try", || {
        deliveries(&admin, &target)[0]["state"] == "succeeded"
    });
    assert_eq!(sink.count_to(late), 1, "the greylisted recipient gets it");
    assert_eq!(sink.count_to(added), 1);
    assert_eq!(sink.count_to(sent), 1);
}

/// A recipient refused for now on every try until `notify.give_up_hours` ends the delivery
/// as delivered to the others, naming by place whom it never reached.
#[test]
fn a_recipient_refused_for_now_until_the_end_does_not_fail_the_others_delivery() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = mailing_to(&sink);
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Alpha", None);
    let (ok, full) = ("hal@alpha.example", "busy-ida@alpha.example");
    let target = team_tried_once(&server, &admin, &tenant, &[ok, full]);
    assert_eq!(deliveries(&admin, &target)[0]["state"], "queued");
    server.advance(Duration::from_secs(25 * 3600));
    let admin = server.admin();
    pass_until(&server, "the end", || {
        deliveries(&admin, &target)[0]["state"] != "queued"
    });
    let done = &deliveries(&admin, &target)[0];
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let note = done["last_error"].as_str().unwrap();
    assert!(
        note.starts_with("given up on") && note.contains("recipient 2"),
        "{note}"
    );
    assert_eq!(sink.count_to(ok), 1);
}

/// Test sends are few: a target's addresses are anyone's, so a tenant cannot make the server
/// mail (or call) them in a loop. Five tests of a target, twenty of a tenant's targets, per
/// sign-in window.
#[test]
fn test_sends_of_a_target_and_of_a_tenant_are_throttled() {
    let server = start(|_| {});
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Alpha", None);
    let receiver = Receiver::start(&[200; 64]);
    let target = |admin: &Caller<'_>| webhook_target(admin, &tenant, &receiver.url(), json!({})).0;
    let test = |admin: &Caller<'_>, t: &str| {
        admin.post(&format!("/api/v1/notify/targets/{t}/test"), json!({}))
    };
    let first = target(&admin);
    for _ in 0..5 {
        test(&admin, &first).expect(202);
    }
    test(&admin, &first).expect_problem(429, "throttled");
    // The tenant's other targets have their own five, up to twenty in all.
    for _ in 0..3 {
        let t = target(&admin);
        for _ in 0..5 {
            test(&admin, &t).expect(202);
        }
    }
    let last = target(&admin);
    test(&admin, &last).expect_problem(429, "throttled");
    // Once the window has passed, a test goes again.
    server.advance(Duration::from_secs(
        server.state.config.signin.window_minutes * 60 + 1,
    ));
    let admin = server.admin();
    test(&admin, &last).expect(202);
}

/// A tenant has at most 20 targets: every event is delivered to each target that hears it,
/// and the senders are shared with every other tenant. Removing one makes room.
#[test]
fn a_tenant_has_at_most_twenty_targets() {
    let server = start(|_| {});
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Alpha", None);
    let (other, _) = customer_with_vault(&admin, "Beta", None);
    let had = admin
        .get(&format!("/api/v1/notify/targets?tenant_id={tenant}"))
        .expect(200)
        .as_array()
        .unwrap()
        .len();
    let made: Vec<String> = (had..20)
        .map(|n| email_target(&admin, &tenant, &format!("ops{n}@alpha.example"), json!({})))
        .collect();
    let more = json!({ "tenant_id": tenant, "name": "one more",
                       "email": { "recipients": ["more@alpha.example"] } });
    admin
        .post("/api/v1/notify/targets", more.clone())
        .expect_problem(409, "too_many_targets");
    // Another tenant's count is its own, also when its targets are made at once.
    let answers = admin.post_at_once(
        "/api/v1/notify/targets",
        (0..24)
            .map(|n| {
                json!({ "tenant_id": other, "name": format!("t{n}"),
                        "email": { "recipients": [format!("ops{n}@beta.example")] } })
            })
            .collect(),
    );
    let had_other = 24 - answers.iter().filter(|&&s| s == 201).count();
    assert_eq!(
        answers.iter().filter(|&&s| s == 409).count(),
        had_other,
        "{answers:?}"
    );
    let listed = admin
        .get(&format!("/api/v1/notify/targets?tenant_id={other}"))
        .expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 20, "{listed}");
    admin
        .delete(&format!("/api/v1/notify/targets/{}", made[0]))
        .expect(204);
    admin.post("/api/v1/notify/targets", more).expect(201);
}
