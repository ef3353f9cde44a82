//! Privacy rights a person exercises themselves, and the provider's transparency: the
//! versioned privacy policy acknowledged at sign-in, consent to marketing (off by default,
//! recorded with the policy in force), RFC 8058 one-click unsubscribe without a cookie, and
//! announcements that reach only the people who consented and are not restricted. Mail is
//! received by a real SMTP server.

mod support;

use serde_json::{Value, json};
use support::smtp::SmtpSink;
use support::{Caller, Server};

const PUBLIC_URL: &str = "https://backup.provider.example";

fn server_mailing_to(sink: &SmtpSink) -> Server {
    support::lifecycle::server_mailing_to_with(sink, |c| c.public_url = Some(PUBLIC_URL.into()))
}

fn consent(caller: &Caller<'_>, given: bool) -> Value {
    caller
        .put("/api/v1/me/marketing-consent", json!({ "given": given }))
        .expect(200)
}

fn announce(root: &Caller<'_>, subject: &str) -> Value {
    root.post(
        "/api/v1/announcements",
        json!({ "subject": subject, "text": "Restores are twice as fast now." }),
    )
    .expect(201)
}

/// The messages with `subject`, by recipient.
fn received(sink: &SmtpSink, subject: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = sink
        .messages()
        .into_iter()
        .filter(|m| m["subject"] == subject)
        .map(|m| (m["rcpt_tos"][0].as_str().unwrap().to_string(), m))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Waits until `n` messages with `subject` have arrived.
fn wait_for_count(sink: &SmtpSink, subject: &str, n: usize) -> Vec<(String, Value)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let got = received(sink, subject);
        if got.len() >= n {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} messages \"{subject}\" arrived",
            got.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn announcements_reach_only_consenting_unrestricted_people_and_unsubscribe_takes_one_click() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let root = server.admin();
    root.post(
        "/api/v1/privacy/policies",
        json!({ "version": "2026-12", "url": "https://provider.example/privacy/2026-12" }),
    )
    .expect(201);
    let alpha = server.customer(&root, "alpha");
    let bravo = server.customer(&root, "bravo");
    let (alpha_admin, alpha_operator) = (
        server.as_member(alpha.member("admin")),
        server.as_member(alpha.member("operator")),
    );
    let bravo_admin = server.as_member(bravo.member("admin"));

    // Off until given; giving it records the policy in force.
    let me = alpha_admin.get("/api/v1/me").expect(200);
    assert_eq!(me["user"]["marketing_consent"], false);
    let off = alpha_admin.get("/api/v1/me/marketing-consent").expect(200);
    assert_eq!(off, json!({ "given": false }));
    let given = consent(&alpha_admin, true);
    assert_eq!(given["given"], true);
    assert_eq!(given["policy_version"], "2026-12");
    assert!(given["changed_at"].is_string());
    consent(&bravo_admin, true);
    // The operator consented, then asked for processing of their data to be restricted.
    consent(&alpha_operator, true);
    let restricted = alpha_admin
        .put(
            &format!(
                "/api/v1/users/{}/restriction",
                alpha.member("operator").user_id
            ),
            json!({ "restricted": true }),
        )
        .expect(200);
    assert_eq!(restricted["restricted"], true);

    let first = announce(&root, "Loop Backup news: faster restores");
    assert_eq!(first["recipients"], 2, "{first}");
    let got = wait_for_count(&sink, "Loop Backup news: faster restores", 2);
    let to: Vec<&str> = got.iter().map(|(to, _)| to.as_str()).collect();
    let mut want = vec![
        alpha.member("admin").email.as_str(),
        bravo.member("admin").email.as_str(),
    ];
    want.sort();
    assert_eq!(
        to, want,
        "only the two who consented and are not restricted"
    );

    // Each message carries its own opaque one-click link (RFC 8058).
    let links: Vec<String> = got
        .iter()
        .map(|(_, m)| {
            let headers = &m["headers"];
            assert_eq!(
                headers["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click",
                "{m}"
            );
            let link = headers["List-Unsubscribe"]
                .as_str()
                .expect("List-Unsubscribe");
            let prefix = format!("<{PUBLIC_URL}/api/v1/unsubscribe/lpu_");
            assert!(link.starts_with(&prefix) && link.ends_with('>'), "{link}");
            assert!(
                m["text"]
                    .as_str()
                    .unwrap()
                    .contains(&link[1..link.len() - 1]),
                "the text names the link too"
            );
            link[PUBLIC_URL.len() + 1..link.len() - 1].to_string()
        })
        .collect();
    assert_ne!(links[0], links[1], "one link per recipient");
    let alpha_link = &links[usize::from(to[0] != alpha.member("admin").email)];

    // The mail client's POST: no session, no cookie, a form body.
    let unsubscribed = server.send(
        server
            .request(reqwest::Method::POST, alpha_link)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click"),
    );
    assert_eq!(
        unsubscribed.expect(200),
        json!({ "status": "unsubscribed" })
    );
    let now = alpha_admin.get("/api/v1/me/marketing-consent").expect(200);
    assert_eq!(now["given"], false, "withdrawn at once");
    let events = alpha_admin
        .get(&format!(
            "/api/v1/audit?tenant_id={}&action=user.unsubscribe",
            alpha.tenant_id
        ))
        .expect(200);
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor_kind"], "anonymous");
    // A link used again answers the same; one the service never sent is not found.
    let one_click = |path: &str, body: &str| {
        server.send(
            server
                .request(reqwest::Method::POST, path)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body.to_string()),
        )
    };
    let again = one_click(alpha_link, "List-Unsubscribe=One-Click");
    assert_eq!(again.status, 200, "{}", again.body);
    let forged = one_click(
        &format!("/api/v1/unsubscribe/lpu_{}", "0".repeat(64)),
        "List-Unsubscribe=One-Click",
    );
    assert_eq!(forged.status, 404);
    // Anything but the one-click form is refused (RFC 8058).
    assert_eq!(one_click(alpha_link, "List-Unsubscribe=Nope").status, 400);
    // Opening the link in a browser changes nothing; it shows the button.
    let page = server.send(server.request(reqwest::Method::GET, alpha_link));
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"), "{page:?}");
    assert!(page.body.contains("method=\"post\""), "{}", page.body);

    let second = announce(&root, "Loop Backup news: the console");
    assert_eq!(second["recipients"], 1, "{second}");
    let got = wait_for_count(&sink, "Loop Backup news: the console", 1);
    assert_eq!(got[0].0, bravo.member("admin").email);

    // Only the provider's admins announce.
    let refused = alpha_admin.post(
        "/api/v1/announcements",
        json!({ "subject": "Hello", "text": "Hello" }),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
}

/// A withdrawal stops even an announcement that is queued already: each message is made
/// when it is sent, and only for someone who still consents.
#[test]
fn a_withdrawal_stops_an_announcement_already_queued() {
    let Some(mut sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let root = server.admin();
    let alpha = server.customer(&root, "alpha");
    let bravo = server.customer(&root, "bravo");
    let alpha_admin = server.as_member(alpha.member("admin"));
    consent(&alpha_admin, true);
    consent(&server.as_member(bravo.member("admin")), true);
    // The relay is down while the news is queued, so nothing of it can leave before the
    // withdrawal.
    sink.stop();
    let subject = "Loop Backup news: queued";
    assert_eq!(announce(&root, subject)["recipients"], 2);
    consent(&alpha_admin, false);
    sink.restart();
    // Past any back-off of a try made while the relay was down.
    server.advance(std::time::Duration::from_secs(3600));
    let got = wait_for_count(&sink, subject, 1);
    assert_eq!(got[0].0, bravo.member("admin").email);
    // Alpha's message was dropped when its turn came, not only delayed.
    let state = || -> String {
        server
            .block_on(
                sqlx::query_scalar(
                    "SELECT state FROM mail_outbox WHERE user_id = $1 AND kind = 'announcement'",
                )
                .bind(&alpha.member("admin").user_id)
                .fetch_one(&server.state.db.pool),
            )
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while state() == "queued" {
        assert!(std::time::Instant::now() < deadline, "still queued");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(state(), "dropped");
    assert_eq!(sink.count_to(&alpha.member("admin").email), 0);
}

#[test]
fn a_new_privacy_policy_is_shown_at_the_next_sign_in_until_it_is_acknowledged() {
    let server = Server::start();
    let root = server.admin();
    let none = server.call("get", "/api/v1/privacy/policy", None, None);
    assert_eq!((none.status, none.code().as_str()), (404, "no_policy"));
    let alpha = server.customer(&root, "alpha");
    let email = alpha.member("admin").email.clone();
    let signed_in = server.login(&email, support::USER_PASSWORD).expect(200);
    assert!(signed_in.get("policy_to_acknowledge").is_none());

    let publish = |version: &str| {
        root.post(
            "/api/v1/privacy/policies",
            json!({ "version": version, "url": format!("https://provider.example/privacy/{version}"),
                    "summary": "Sub-processors are listed in the service." }),
        )
    };
    let v1 = publish("v1").expect(201);
    assert_eq!(publish("v1").code(), "policy_exists");
    let alpha_admin = server.as_member(alpha.member("admin"));
    let not_provider = alpha_admin.post(
        "/api/v1/privacy/policies",
        json!({ "version": "v9", "url": "https://example.org/" }),
    );
    assert_eq!(not_provider.status, 403, "{}", not_provider.body);
    // Anyone may read it.
    let public = server.call("get", "/api/v1/privacy/policy", None, None);
    assert_eq!(public.expect(200), v1);

    let signed_in = server.login(&email, support::USER_PASSWORD).expect(200);
    assert_eq!(signed_in["policy_to_acknowledge"], v1);
    let me = server.sign_in(&email, support::USER_PASSWORD);
    assert_eq!(
        me.get("/api/v1/me").expect(200)["policy_to_acknowledge"],
        v1
    );
    let stale = me.post(
        "/api/v1/me/policy-acknowledgement",
        json!({ "version": "v0" }),
    );
    assert_eq!(stale.code(), "policy_not_current");
    me.post(
        "/api/v1/me/policy-acknowledgement",
        json!({ "version": "v1" }),
    )
    .expect(204);
    let signed_in = server.login(&email, support::USER_PASSWORD).expect(200);
    assert!(
        signed_in.get("policy_to_acknowledge").is_none(),
        "{signed_in}"
    );
    assert!(
        me.get("/api/v1/me")
            .expect(200)
            .get("policy_to_acknowledge")
            .is_none()
    );
    let acks = alpha_admin
        .get(&format!(
            "/api/v1/audit?tenant_id={}&action=user.policy_acknowledge",
            alpha.tenant_id
        ))
        .expect(200);
    assert_eq!(acks.as_array().unwrap().len(), 1);

    // A new version: shown again at the next sign-in.
    let v2 = publish("v2").expect(201);
    let signed_in = server.login(&email, support::USER_PASSWORD).expect(200);
    assert_eq!(signed_in["policy_to_acknowledge"], v2);

    // Announcements carry a link to this server: without its public address, none goes.
    let refused = root.post(
        "/api/v1/announcements",
        json!({ "subject": "Hello", "text": "Hello" }),
    );
    assert_eq!(refused.code(), "public_url_missing");
}
