//! Mail the service sends, received by a real SMTP server, and what it means for privacy:
//! an admin who invites, or moves an account to, an address that has an account in
//! another tenant gets the same answer as for any other address; only the address's owner
//! is told, by mail.

mod support;

use std::time::Duration;

use loop_server::config::SmtpSecurity;
use serde_json::{Value, json};
use support::smtp::SmtpSink;
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Customer, Server, USER_PASSWORD};

fn server_mailing_to(sink: &SmtpSink) -> Server {
    let port = sink.port;
    Server::start_with(|c| {
        c.mail.host = Some("127.0.0.1".into());
        c.mail.port = Some(port);
        c.mail.security = SmtpSecurity::None;
        c.mail.from = "Loop Backup <backup@provider.example>".into();
        c.mail.poll_seconds = 1;
        c.public_url = Some("https://backup.provider.example".into());
    })
}

/// The one-time code (`prefix` + 43 characters) a message carries, if any.
fn code_in(message: &Value, prefix: &str) -> Option<String> {
    let text = message["text"].as_str().expect("a plain-text body");
    let at = text.find(prefix)?;
    Some(
        text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect(),
    )
}

/// What an answer says about a user, without what differs by construction.
fn shape(created: &Value) -> Value {
    let mut v = created.clone();
    for k in ["id", "email", "created_at", "first_name"] {
        v["user"][k] = Value::Null;
    }
    v
}

#[test]
fn an_admin_cannot_tell_whether_an_address_has_an_account_elsewhere() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let root = server.admin();
    let alpha = server.customer(&root, "alpha");
    let bravo = server.customer(&root, "bravo");
    let bravo_admin = server.as_member(bravo.member("admin"));
    let taken = &alpha.member("admin").email;
    let invite = |email: &str, first: &str| {
        bravo_admin
            .post(
                "/api/v1/users",
                json!({ "tenant_id": bravo.tenant_id, "email": email, "first_name": first,
                        "last_name": "Doe", "role": "operator" }),
            )
            .expect(201)
    };
    let to_taken = invite(taken, "Taken");
    let to_fresh = invite("fresh@example.org", "Fresh");
    assert_eq!(
        shape(&to_taken),
        shape(&to_fresh),
        "the two answers differ only in what was sent"
    );
    assert_eq!(to_taken["user"]["status"], "invited");
    assert!(
        to_taken.get("invite_token").is_none(),
        "the code goes by mail"
    );
    // The admin's later view does not tell them apart either.
    let listed = bravo_admin
        .get(&format!("/api/v1/users?tenant_id={}", bravo.tenant_id))
        .expect(200);
    for u in [&to_taken, &to_fresh] {
        let row = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == u["user"]["id"])
            .expect("the invited user is listed");
        assert_eq!(row["status"], "invited");
    }
    // Nor does a second invitation of the same address into the same tenant: that one is
    // refused whatever the address, since the admin sees its own tenant's users.
    bravo_admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": bravo.tenant_id, "email": "fresh@example.org",
                    "first_name": "Again", "last_name": "Doe" }),
        )
        .expect_problem(409, "email_taken");

    // The owner of the taken address is told, with nothing to accept.
    let notice = sink.wait_for(taken);
    assert!(
        notice["subject"]
            .as_str()
            .unwrap()
            .contains("has an account"),
        "{notice:#?}"
    );
    assert!(notice["text"].as_str().unwrap().contains(&bravo.name));
    assert_eq!(code_in(&notice, "lpi_"), None, "a notice carries no code");
    assert_eq!(notice["from"], "Loop Backup <backup@provider.example>");
    // The new address gets an invitation it can accept, and the account then signs in.
    let invitation = sink.wait_for("fresh@example.org");
    assert!(
        invitation["text"]
            .as_str()
            .unwrap()
            .contains("loop user accept-invite --server https://backup.provider.example"),
        "{invitation:#?}"
    );
    let code = code_in(&invitation, "lpi_").expect("an invitation code");
    server
        .call(
            "post",
            "/api/v1/auth/accept-invite",
            None,
            Some(&json!({ "invite_token": code, "password": "fresh-password-1" })),
        )
        .expect(204);
    server
        .login("fresh@example.org", "fresh-password-1")
        .expect(200);
    // The account elsewhere is untouched, and still the only one with that address.
    server.login(taken, USER_PASSWORD).expect(200);
    assert_eq!(sink.count_to(taken), 1);

    // Setting another person's password would show whether the address is free: only an
    // administrator of the whole service may, and it is told (it can list every user).
    bravo_admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": bravo.tenant_id, "email": "set@example.org",
                    "first_name": "Set", "last_name": "Doe", "password": "chosen-password-1" }),
        )
        .expect_problem(400, "invalid_request");
    root.post(
        "/api/v1/users",
        json!({ "tenant_id": bravo.tenant_id, "email": taken, "first_name": "T",
                "last_name": "Doe", "password": "chosen-password-1" }),
    )
    .expect_problem(409, "email_taken");
}

#[test]
fn a_new_address_of_an_account_takes_effect_when_its_owner_confirms_it() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let root = server.admin();
    let alpha = server.customer(&root, "alpha");
    let bravo = server.customer(&root, "bravo");
    let bravo_admin = server.as_member(bravo.member("admin"));
    let operator = bravo.member("operator");
    let path = format!("/api/v1/users/{}", operator.user_id);
    let taken = &alpha.member("admin").email;

    let to_taken = bravo_admin
        .patch(&path, json!({ "email": taken }))
        .expect(200);
    assert_eq!(
        to_taken["email"],
        operator.email.as_str(),
        "nothing changed yet"
    );
    assert_eq!(to_taken["pending_email"], taken.as_str());
    let notice = sink.wait_for(taken);
    assert_eq!(code_in(&notice, "lpe_"), None, "{notice:#?}");

    let fresh = "operator-new@example.org";
    let to_fresh = bravo_admin
        .patch(&path, json!({ "email": fresh }))
        .expect(200);
    assert_eq!(to_fresh["email"], operator.email.as_str());
    assert_eq!(to_fresh["pending_email"], fresh);
    let message = sink.wait_for(fresh);
    let code = code_in(&message, "lpe_").expect("a confirmation code");
    // Until it is confirmed, the account signs in with its old address.
    server.login(&operator.email, USER_PASSWORD).expect(200);
    let confirm = |token: &str| {
        server.call(
            "post",
            "/api/v1/auth/confirm-email",
            None,
            Some(&json!({ "token": token })),
        )
    };
    confirm("lpe_not-a-code").expect_problem(404, "not_found");
    confirm(&code).expect(204);
    server.login(fresh, USER_PASSWORD).expect(200);
    server
        .login(&operator.email, USER_PASSWORD)
        .expect_problem(401, "invalid_credentials");
    confirm(&code).expect_problem(404, "not_found");
    let after = bravo_admin.get(&path).expect(200);
    assert_eq!(after["email"], fresh);
    assert!(after.get("pending_email").is_none());
    // The administrator of the whole service changes an address at once, and that
    // replaces a change still waiting for confirmation.
    bravo_admin
        .patch(&path, json!({ "email": "operator-4@example.org" }))
        .expect(200);
    let waiting = code_in(&sink.wait_for("operator-4@example.org"), "lpe_").unwrap();
    let direct = root
        .patch(&path, json!({ "email": "operator-3@example.org" }))
        .expect(200);
    assert!(direct.get("pending_email").is_none(), "{direct:#?}");
    confirm(&waiting).expect_problem(404, "not_found");
    server
        .login("operator-3@example.org", USER_PASSWORD)
        .expect(200);
}

/// An invitation works once, even when two redemptions of it run at the same time (each
/// hashes its password before it writes, which leaves room for the other): one sets the
/// password, the other is told there is no such invitation, and one acceptance is audited.
#[test]
fn an_invitation_redeemed_twice_at_once_works_once() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let root = server.admin();
    let bravo = server.customer(&root, "bravo");
    invite_into(&server, &bravo, "twice@example.org");
    let code = code_in(&sink.wait_for("twice@example.org"), "lpi_").unwrap();
    let accept = |password: &str| {
        server
            .call(
                "post",
                "/api/v1/auth/accept-invite",
                None,
                Some(&json!({ "invite_token": code, "password": password })),
            )
            .status
    };
    let passwords = ["first-password-11", "second-password-22"];
    let answers: Vec<u16> = std::thread::scope(|sc| {
        let tries: Vec<_> = passwords
            .iter()
            .map(|p| sc.spawn(move || accept(p)))
            .collect();
        tries.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut sorted = answers.clone();
    sorted.sort();
    assert_eq!(sorted, [204, 404], "{answers:?}");
    let winner = passwords[answers.iter().position(|a| *a == 204).unwrap()];
    let loser = passwords[answers.iter().position(|a| *a == 404).unwrap()];
    server.login("twice@example.org", winner).expect(200);
    server
        .login("twice@example.org", loser)
        .expect_problem(401, "invalid_credentials");
    let accepted = root
        .audit_events()
        .iter()
        .filter(|e| e.action == "user.invite_accept")
        .count();
    assert_eq!(accepted, 1);
}

/// `bravo`'s admin invites `email`, signed in anew (a session does not outlive the days the
/// clock moves).
fn invite_into(server: &Server, bravo: &Customer, email: &str) {
    server
        .sign_in(&bravo.member("admin").email, USER_PASSWORD)
        .post(
            "/api/v1/users",
            json!({ "tenant_id": bravo.tenant_id, "email": email,
                    "first_name": "Late", "last_name": "Doe" }),
        )
        .expect(201);
}

/// A server mailing to a relay that is down, and its customer `bravo` (`None` where no SMTP
/// server can run here; `SmtpSink::start` says so).
fn relay_down() -> Option<(SmtpSink, Server, Customer)> {
    let mut sink = SmtpSink::start()?;
    let server = server_mailing_to(&sink);
    sink.stop();
    let bravo = server.customer(&server.admin(), "bravo");
    Some((sink, server, bravo))
}

#[test]
fn mail_waits_while_the_relay_is_down_and_goes_out_once_it_is_back() {
    let Some((mut sink, server, bravo)) = relay_down() else {
        return;
    };
    let bravo_admin = server.as_member(bravo.member("admin"));
    bravo_admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": bravo.tenant_id, "email": "late@example.org",
                    "first_name": "Late", "last_name": "Doe" }),
        )
        .expect(201);
    // Wait until the server has tried and failed at least once.
    outbox_until(
        &server,
        "late@example.org",
        "a failed try",
        |state, failed| state == "queued" && failed,
    );
    assert_eq!(sink.count_to("late@example.org"), 0);
    sink.restart();
    // The retry is due after the back-off; move the server's clock past it.
    server.advance(Duration::from_secs(3600));
    let m = sink.wait_for("late@example.org");
    assert!(code_in(&m, "lpi_").is_some(), "{m:#?}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.count_to("late@example.org"), 1, "sent once");
    // And the admin of the whole service signs in as always: nothing else waited on mail.
    server.login(ADMIN_EMAIL, ADMIN_PASSWORD).expect(200);
}

/// The state and last error of the mail to `email` in the outbox.
fn outbox_of(server: &Server, email: &str) -> (String, Option<String>) {
    server.block_on(async {
        sqlx::query_as(
            "SELECT m.state, m.last_error FROM mail_outbox m JOIN users u ON u.id = m.user_id
             WHERE u.email = $1",
        )
        .bind(email)
        .fetch_one(&server.state.db.pool)
        .await
        .unwrap()
    })
}

/// Waits (up to two minutes of wall time) until the mail to `email` is in such a state.
fn outbox_until(server: &Server, email: &str, what: &str, done: impl Fn(&str, bool) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (state, error) = outbox_of(server, email);
        if done(&state, error.is_some()) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn mail_the_relay_refuses_for_give_up_hours_is_marked_failed_and_never_sent() {
    let Some((mut sink, server, bravo)) = relay_down() else {
        return;
    };
    let invite = |email: &str| invite_into(&server, &bravo, email);
    invite("never@example.org");
    outbox_until(
        &server,
        "never@example.org",
        "a failed try",
        |state, failed| state == "queued" && failed,
    );
    // Past `mail.give_up_hours` (72 by default) the next failed try is the last.
    server.advance(Duration::from_secs(73 * 3600));
    outbox_until(
        &server,
        "never@example.org",
        "the mail given up",
        |state, _| state == "failed",
    );
    // With the relay back, later mail goes out and the given-up one stays unsent.
    sink.restart();
    server.advance(Duration::from_secs(3600));
    invite("later@example.org");
    sink.wait_for("later@example.org");
    assert_eq!(sink.count_to("never@example.org"), 0);
    assert_eq!(outbox_of(&server, "never@example.org").0, "failed");
}

/// Whether the outbox holds a record of mail to `email`.
fn outbox_holds(server: &Server, email: &str) -> bool {
    let n: i64 = server.block_on(async {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM mail_outbox m JOIN users u ON u.id = m.user_id
             WHERE u.email = $1",
        )
        .bind(email)
        .fetch_one(&server.state.db.pool)
        .await
        .unwrap()
    });
    n > 0
}

/// The outbox's record of a message that went out or was given up on goes
/// `privacy.mail_days` (90) after that, and no sooner; mail still waiting stays.
#[test]
fn the_record_of_finished_mail_goes_after_privacy_mail_days_and_waiting_mail_stays() {
    let Some((mut sink, server, bravo)) = relay_down() else {
        return;
    };
    let invite = |email: &str| invite_into(&server, &bravo, email);
    let tried = |email: &str| {
        outbox_until(&server, email, "a failed try", |state, failed| {
            state == "queued" && failed
        })
    };
    invite("given-up@example.org");
    tried("given-up@example.org");
    server.advance(Duration::from_secs(73 * 3600));
    outbox_until(&server, "given-up@example.org", "given up", |state, _| {
        state == "failed"
    });
    sink.restart();
    invite("sent@example.org");
    sink.wait_for("sent@example.org");
    outbox_until(&server, "sent@example.org", "sent", |state, _| {
        state == "sent"
    });
    sink.stop();
    invite("waiting@example.org");
    tried("waiting@example.org");

    let tick = || {
        server
            .block_on(loop_server::jobs::scheduler::tick(&server.state))
            .unwrap()
            .mail_forgotten
    };
    let all = [
        "given-up@example.org",
        "sent@example.org",
        "waiting@example.org",
    ];
    server.advance(Duration::from_secs(89 * 86_400));
    assert_eq!(tick(), 0);
    for email in all {
        assert!(outbox_holds(&server, email), "{email} kept for 89 days");
    }
    server.advance(Duration::from_secs(2 * 86_400));
    assert_eq!(tick(), 2);
    assert!(!outbox_holds(&server, "given-up@example.org"));
    assert!(!outbox_holds(&server, "sent@example.org"));
    assert!(
        outbox_holds(&server, "waiting@example.org"),
        "mail still waiting stays"
    );
}

/// A relay that refuses a recipient for good names the address in its answer: the message
/// fails at once (no try can pass), and the outbox keeps the answer with the address
/// replaced ("recipient 1"), so no erasure has to find it there.
#[test]
fn a_refusal_naming_the_recipient_is_kept_without_the_address() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let bravo = server.customer(&server.admin(), "bravo");
    server
        .as_member(bravo.member("admin"))
        .post(
            "/api/v1/users",
            json!({ "tenant_id": bravo.tenant_id, "email": "refused-rosa@example.org",
                    "first_name": "Rosa", "last_name": "Doe" }),
        )
        .expect(201);
    outbox_until(
        &server,
        "refused-rosa@example.org",
        "the refusal",
        |state, _| state == "failed",
    );
    let attempts: i64 = server.block_on(async {
        sqlx::query_scalar(
            "SELECT m.attempts FROM mail_outbox m JOIN users u ON u.id = m.user_id
             WHERE u.email = $1",
        )
        .bind("refused-rosa@example.org")
        .fetch_one(&server.state.db.pool)
        .await
        .unwrap()
    });
    assert_eq!(attempts, 1, "one try");
    let (_, error) = outbox_of(&server, "refused-rosa@example.org");
    let error = error.unwrap();
    assert!(error.contains("recipient 1"), "{error}");
    assert!(!error.to_lowercase().contains("refused-rosa"), "{error}");
}

/// A certificate for `localhost` and its key, as PEM files in `dir`: (cert, key).
fn localhost_cert(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (c, k) = (dir.join("relay.pem"), dir.join("relay.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

/// A server mailing through `port` with STARTTLS required, trusting `ca`; a test notice to
/// `to` is queued and one notifier pass made.
fn send_test_notice_over_starttls(port: u16, ca: &std::path::Path, to: &str) -> (Server, String) {
    let server = Server::start_with(|c| {
        c.mail.host = Some("localhost".into());
        c.mail.port = Some(port);
        c.mail.security = SmtpSecurity::Starttls;
        c.mail.ca_file = Some(ca.to_path_buf());
        c.mail.from = "Loop Backup <backup@provider.example>".into();
        c.notify.poll_seconds = 86_400;
    });
    let admin = server.admin();
    let target = admin
        .post(
            "/api/v1/notify/targets",
            json!({ "tenant_id": admin.provider_tenant_id(), "name": "ops",
                    "email": { "recipients": [to] } }),
        )
        .expect(201)["target"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .post(&format!("/api/v1/notify/targets/{target}/test"), json!({}))
        .expect(202);
    server
        .block_on(loop_server::notify::pass(&server.state, false))
        .unwrap();
    (server, target)
}

#[test]
fn mail_goes_over_starttls_and_never_in_plain_text_to_a_relay_that_lacks_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = localhost_cert(dir.path());
    let Some(tls_sink) = SmtpSink::start_tls(cert.clone(), key) else {
        return;
    };
    let (_server, _) = send_test_notice_over_starttls(tls_sink.port, &cert, "ops@tls.example");
    let m = tls_sink.wait_for("ops@tls.example");
    assert!(
        m["subject"].as_str().unwrap().contains("Test notification"),
        "{m:#?}"
    );

    // A relay that offers no STARTTLS gets nothing: the message waits, with the reason.
    let plain = SmtpSink::start().expect("the SMTP server started above");
    let (server, target) = send_test_notice_over_starttls(plain.port, &cert, "ops@plain.example");
    let failed = support::lifecycle::failed_delivery(&server, &target);
    assert_eq!(failed["state"], "queued", "{failed:#}");
    assert_eq!(
        plain.count_to("ops@plain.example"),
        0,
        "nothing went in plain text"
    );
}
