//! A forgotten password, by mail through a real SMTP server: the answer never tells whether
//! an address has an account, the mailed code works once and for an hour, using it ends
//! every session of the account, and asking is throttled and audited.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::lifecycle::{mail, server_mailing_to_with};
use support::smtp::SmtpSink;
use support::{Server, USER_PASSWORD};

fn ask(server: &Server, email: &str) -> support::Reply {
    server.call(
        "post",
        "/api/v1/auth/password-reset",
        None,
        Some(&json!({ "email": email })),
    )
}

fn reset(server: &Server, code: &str, password: &str) -> support::Reply {
    server.call(
        "post",
        "/api/v1/auth/password-reset/confirm",
        None,
        Some(&json!({ "token": code, "password": password })),
    )
}

const SUBJECT: &str = "Choose a new Loop Backup password";

/// A server mailing to `sink` that knows the address people reach it at, so its mail links
/// to the reset page.
fn server_at_its_address(sink: &SmtpSink) -> Server {
    server_mailing_to_with(sink, |c| {
        c.public_url = Some("https://backup.provider.example".into());
    })
}

/// The page address in the text of a reset mail, and the code it carries.
fn link_in(text: &str) -> (String, String) {
    let at = text
        .find("https://backup.provider.example/reset?code=lpr_")
        .unwrap_or_else(|| panic!("no reset link in {text}"));
    let link: String = text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let code = link.rsplit('=').next().unwrap().to_string();
    (link, code)
}

#[test]
fn a_mailed_code_sets_a_new_password_once_and_ends_every_session() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_at_its_address(&sink);
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let ana = acme.member("operator");
    let session = server.as_member(ana);
    // The same answer for the account, for an address nobody has, for an invited one and
    // for a disabled account.
    let invited = root
        .post(
            "/api/v1/users",
            json!({ "tenant_id": acme.tenant_id, "email": "ivy@acme.example",
                    "first_name": "Ivy", "last_name": "Invited" }),
        )
        .expect(201);
    let gone = acme.member("billing");
    root.post(
        &format!("/api/v1/users/{}/disable", gone.user_id),
        json!({}),
    )
    .expect(200);
    let answers: Vec<Value> = [
        ana.email.as_str(),
        "nobody@acme.example",
        "ivy@acme.example",
        gone.email.as_str(),
    ]
    .iter()
    .map(|e| ask(&server, e).expect(202))
    .collect();
    assert!(
        answers
            .iter()
            .all(|a| *a == json!({ "status": "reset_sent" })),
        "{answers:?}"
    );
    ask(&server, "not an address").expect_problem(400, "invalid_request");

    let (_, text) = mail(&sink, &ana.email, SUBJECT, 1);
    let (link, code) = link_in(&text);
    assert!(link.starts_with("https://backup.provider.example/reset?code=lpr_"));
    // Only the account got mail: the others, a moment later, still have none.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.count_to("nobody@acme.example"), 0);
    assert_eq!(sink.count_to("ivy@acme.example"), 0);
    assert_eq!(sink.count_to(&gone.email), 0);
    assert_eq!(invited["user"]["status"], "invited");

    // A password the rules refuse uses nothing up.
    reset(&server, &code, "short").expect_problem(400, "invalid_request");
    reset(&server, &code, "ana-found-a-new-one").expect(204);
    reset(&server, &code, "and-then-another-1").expect_problem(404, "not_found");
    server
        .login(&ana.email, USER_PASSWORD)
        .expect_problem(401, "invalid_credentials");
    server.login(&ana.email, "ana-found-a-new-one").expect(200);
    // Her session from before the reset has ended.
    session
        .get("/api/v1/me")
        .expect_problem(401, "unauthenticated");

    // Audited: each request where it belongs, and the reset as her own act.
    let events = root.audit_events();
    let of = |action: &str| -> Vec<&loop_api::AuditEvent> {
        events.iter().filter(|e| e.action == action).collect()
    };
    let asked = of("user.password_reset_request");
    let mine: Vec<_> = asked
        .iter()
        .filter(|e| e.object_id.as_deref() == Some(ana.user_id.as_str()))
        .collect();
    assert_eq!(mine.len(), 1, "{asked:#?}");
    assert_eq!(mine[0].tenant_id, acme.tenant_id);
    let mut refused: Vec<_> = asked
        .iter()
        .map(|e| e.details["reason"].as_str().unwrap_or("none"))
        .collect();
    refused.sort();
    // An invitation not yet accepted is no account.
    assert_eq!(
        refused,
        [
            "account_not_active",
            "none",
            "unknown_account",
            "unknown_account"
        ],
        "{asked:#?}"
    );
    let done = of("user.password_reset");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].actor_id.as_deref(), Some(ana.user_id.as_str()));
    assert_eq!(done[0].details["sessions_ended"], 1);
    assert!(
        !events
            .iter()
            .any(|e| e.details.to_string().contains("lpr_")),
        "no code in the audit log"
    );
}

#[test]
fn a_code_expires_after_an_hour_and_dies_with_a_newer_one_or_any_other_change() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_at_its_address(&sink);
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let bo = acme.member("auditor");
    let mailed = |n: usize| {
        ask(&server, &bo.email).expect(202);
        link_in(&mail(&sink, &bo.email, SUBJECT, n).1).1
    };

    let late = mailed(1);
    server.advance(Duration::from_secs(3_600 + 60));
    reset(&server, &late, "bo-was-too-late-1").expect_problem(410, "code_expired");

    // A newer code replaces the one before it.
    let first = mailed(2);
    let second = mailed(3);
    reset(&server, &first, "bo-used-the-old-one").expect_problem(404, "not_found");
    // Changing the password the usual way makes the code useless too (in a new session: the
    // hour that passed ended the one from before).
    server
        .sign_in(&bo.email, USER_PASSWORD)
        .post(
            "/api/v1/me/password",
            json!({ "current_password": USER_PASSWORD, "new_password": "bo-changed-it-1" }),
        )
        .expect(204);
    reset(&server, &second, "bo-used-it-after").expect_problem(404, "not_found");
    server.login(&bo.email, "bo-changed-it-1").expect(200);

    // So does disabling the account, even once it is enabled again.
    let third = mailed(4);
    let root = server.admin();
    for step in ["disable", "enable"] {
        root.post(&format!("/api/v1/users/{}/{step}", bo.user_id), json!({}))
            .expect(200);
    }
    reset(&server, &third, "bo-back-again-1").expect_problem(404, "not_found");

    // And so does a confirmed change of address: the code went to the old one.
    let code = server.plant_reset_code(&bo.user_id);
    let moved = server.plant_email_code(&bo.user_id, "bo-moved@acme.example");
    server
        .call(
            "post",
            "/api/v1/auth/confirm-email",
            None,
            Some(&json!({ "token": moved })),
        )
        .expect(204);
    reset(&server, &code, "bo-after-moving-1").expect_problem(404, "not_found");
    // As does a change an administrator of the whole service makes at once.
    let code = server.plant_reset_code(&bo.user_id);
    root.patch(
        &format!("/api/v1/users/{}", bo.user_id),
        json!({ "email": "bo-moved-again@acme.example" }),
    )
    .expect(200);
    reset(&server, &code, "bo-after-moving-2").expect_problem(404, "not_found");
    // And a password changed after someone asked for a new address voids that request: the
    // owner who changed it may not know who asked.
    let pending = server.plant_email_code(&bo.user_id, "bo-elsewhere@acme.example");
    server
        .sign_in("bo-moved-again@acme.example", "bo-changed-it-1")
        .post(
            "/api/v1/me/password",
            json!({ "current_password": "bo-changed-it-1", "new_password": "bo-changed-it-2" }),
        )
        .expect(204);
    let confirm = |token: &str| {
        server.call(
            "post",
            "/api/v1/auth/confirm-email",
            None,
            Some(&json!({ "token": token })),
        )
    };
    confirm(&pending).expect_problem(404, "not_found");
    // So does a reset: whoever asked for the new address may be the one the owner is
    // taking the account back from.
    let pending = server.plant_email_code(&bo.user_id, "bo-taken@evil.example");
    let code = server.plant_reset_code(&bo.user_id);
    reset(&server, &code, "bo-took-it-back-1").expect(204);
    confirm(&pending).expect_problem(404, "not_found");
    // And disabling the account; a code of a disabled account confirms nothing either.
    let pending = server.plant_email_code(&bo.user_id, "bo-taken@evil.example");
    root.post(&format!("/api/v1/users/{}/disable", bo.user_id), json!({}))
        .expect(200);
    confirm(&pending).expect_problem(404, "not_found");
    root.post(&format!("/api/v1/users/{}/enable", bo.user_id), json!({}))
        .expect(200);
    confirm(&pending).expect_problem(404, "not_found");
    server
        .login("bo-moved-again@acme.example", "bo-took-it-back-1")
        .expect(200);
}

#[test]
fn asking_is_throttled_per_address_and_per_client() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to_with(&sink, |_| {});
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let email = &acme.member("admin").email;
    for _ in 0..3 {
        ask(&server, email).expect(202);
    }
    let r = ask(&server, email);
    r.expect_problem(429, "throttled");
    let wait: u64 = r
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(wait > 0 && wait <= 15 * 60, "{wait}");
    // Per client: ten requests from here, then no more, whatever the address.
    for n in 0..7 {
        ask(&server, &format!("someone{n}@acme.example")).expect(202);
    }
    ask(&server, "fresh@acme.example").expect_problem(429, "throttled");
    // The throttled request is audited, once.
    let throttled = root
        .audit_events()
        .into_iter()
        .filter(|e| e.action == "user.password_reset_request" && e.details["reason"] == "throttled")
        .count();
    assert!(throttled >= 1, "{throttled}");
    // After the window, the address may ask again.
    server.advance(Duration::from_secs(15 * 60 + 1));
    ask(&server, email).expect(202);
}
